"""Plain text files (.txt, .md) for continued pretraining: how a file is cut into documents.

    line       one document per non-empty line (the layout of LLaMA-Factory's and the Hugging Face
               `text` builder's corpora)
    paragraph  one document per paragraph: lines separated by blank lines (prose wrapped over lines)
    file       the whole file is one document
    auto       decided per file from its first SNIFF_CHARS characters: a Markdown file of at most
               MARKDOWN_DOCUMENT_BYTES is one document (its headings belong with their text); else
               blank lines between paragraphs of several lines mean paragraphs, and otherwise (no blank
               lines, blank lines between single lines, or blank lines too rare to mark paragraphs)
               each line is a document

A document's record starts on its first line, so problems and examples name it. Files are read a
line at a time: only the document being read is held. Training cuts a document longer than the
sequence length into chunks that are all trained (data/chunks.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from studio.core.data.problems import FATAL, Problem, ProblemLog
from studio.core.errors import StudioError

TEXT_SPLITS = ("auto", "line", "paragraph", "file")
SNIFF_CHARS = 4 * 2**20  # auto decides from this much of the start of a file
MARKDOWN_DOCUMENT_BYTES = 16 * 2**20  # a larger Markdown file is split like a .txt
MAX_PARAGRAPH_LINES = 40  # paragraphs of more lines than this on average: blank lines are strays, lines are documents
WORDS = {"line": "one document per line", "paragraph": "one document per paragraph", "file": "one document per file"}


def checked_split(setting: str | None) -> str:
    """The text split asked for (None: auto); a StudioError for one that does not exist."""
    if setting is not None and setting not in TEXT_SPLITS:
        raise StudioError(f"The text split is {setting!r}, but it must be one of {', '.join(TEXT_SPLITS)}.",
                          "Choose auto, line, paragraph or file (--text-split).", topic="data")
    return setting or "auto"


def choose_split(path: Path, encoding: str, setting: str) -> tuple[str, str]:
    """(split, why) for one file: the setting when it is not "auto", else what the file's shape says."""
    if setting != "auto":
        return setting, "chosen"
    if path.suffix.lower() == ".md" and path.stat().st_size <= MARKDOWN_DOCUMENT_BYTES:
        return "file", "auto: a Markdown file is one document"
    return _split_by_shape(path, encoding)


def _split_by_shape(path: Path, encoding: str) -> tuple[str, str]:
    lines, blanks, paragraph_lines, partial = _shape(path, encoding)
    where = f" in its first {SNIFF_CHARS // 2**20} MB" if partial else ""
    if not blanks:
        return "line", f"auto: no blank lines{where}"
    if lines > MAX_PARAGRAPH_LINES * len(paragraph_lines):
        return "line", f"auto: blank lines are rare{where}"
    if 2 * sum(n > 1 for n in paragraph_lines) >= len(paragraph_lines):
        return "paragraph", "auto: blank lines between paragraphs of several lines"
    return "line", "auto: blank lines between single lines"


def _shape(path: Path, encoding: str) -> tuple[int, int, list[int], bool]:
    """(non-blank lines, blank lines, the lines of each paragraph, whether the file is longer) of the
    file's first SNIFF_CHARS characters."""
    lines = blanks = read = 0
    paragraph_lines = [0]
    with path.open("r", encoding=encoding) as fh:
        while read < SNIFF_CHARS:
            line = fh.readline(SNIFF_CHARS - read)  # (bounded: a file may be one enormous line)
            if not line:
                break
            read += len(line)
            if line.strip():
                lines += 1
                paragraph_lines[-1] += 1
            else:
                blanks += 1
                if paragraph_lines[-1]:
                    paragraph_lines.append(0)
    if not paragraph_lines[-1]:
        paragraph_lines.pop()
    return lines, blanks, paragraph_lines, read >= SNIFF_CHARS


def text_records(path: Path, label: str | None, encoding: str, log: ProblemLog, split: str) -> Iterator:
    """Raw text for continued pretraining: the documents of one file as sources.Record objects."""
    from studio.core.data.sources import Record  # (sources reads text files through this module)

    found = False
    for line, text in documents(path, encoding, split):
        found = True
        yield Record(line, {"text": text}, label, len(text))
    if not found:
        log.add(Problem(None, None, f"{label or path.name} holds only blank lines.", "Choose the file that holds your text.",
                        FATAL, label, "empty_file"))


def documents(path: Path, encoding: str, split: str) -> Iterator[tuple[int, str]]:
    """(first line, text) of each document of one text file, stripped of the blank space around it."""
    with path.open("r", encoding=encoding) as fh:
        if split == "file":
            text = fh.read()
            body = text.strip()
            if body:
                yield text[:len(text) - len(text.lstrip())].count("\n") + 1, body
            return
        if split == "line":
            for number, line in enumerate(fh, start=1):
                if not line.isspace():
                    yield number, line.strip()
            return
        yield from _paragraphs(fh)


def _paragraphs(fh) -> Iterator[tuple[int, str]]:
    paragraph: list[str] = []
    start = 1
    for number, line in enumerate(fh, start=1):
        if not line.isspace():
            if not paragraph:
                start = number
            paragraph.append(line)
        elif paragraph:
            yield start, "".join(paragraph).strip()
            paragraph = []
    if paragraph:
        yield start, "".join(paragraph).strip()


def describe(splits: dict) -> str | None:
    """In words, how the text files were split: "one document per line (auto: no blank lines)"; for a
    folder whose files were split differently, how many files each way."""
    if not splits:
        return None
    chosen = set(splits.values())
    if len(chosen) == 1:
        split, why = chosen.pop()
        return f"{WORDS[split]} ({why})"
    modes = [split for split, _ in splits.values()]
    if len(set(modes)) == 1:
        return f"{WORDS[modes[0]]} (auto)"
    counts = ", ".join(f"{modes.count(m)} file{'s' if modes.count(m) > 1 else ''} {WORDS[m]}" for m in WORDS if m in modes)
    return f"by file (auto): {counts}"
