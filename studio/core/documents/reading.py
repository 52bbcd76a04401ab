"""Read a document of any kind the studio takes — PDF, Word (DOCX), a saved web page (HTML),
Markdown or plain text — into pages of blocks (parsed.py), offline, with small permissively licensed
libraries: pdfplumber (MIT), python-docx (MIT), trafilatura (Apache-2.0). They are the optional extra
`lora-studio[docs]`; without it, a clear message says how to add it."""

from __future__ import annotations

import time
from pathlib import Path

from studio.core.documents.parsed import HEADING, PARAGRAPH, TABLE, Block, Document, Page, text_blocks
from studio.core.errors import StudioError

KINDS = {".pdf": "pdf", ".docx": "docx", ".html": "html", ".htm": "html", ".md": "markdown", ".markdown": "markdown",
         ".txt": "text"}
EXTRA = "pip install 'lora-studio[docs]'"


LIBRARIES = {"pdfplumber": "pdfplumber", "docx": "python-docx", "trafilatura": "trafilatura",
             "lxml_html_clean": "lxml_html_clean", "rapidfuzz": "rapidfuzz", "openai": "openai"}


def missing_libraries() -> list[str]:
    """The documents extra's packages this Python lacks (their pip names); [] when all are there."""
    import importlib.util

    return [name for module, name in LIBRARIES.items() if importlib.util.find_spec(module) is None]


def require_libraries() -> None:
    """StudioError naming what is missing and the one command that adds it."""
    missing = missing_libraries()
    if missing:
        raise StudioError(f"Turning documents into a dataset needs the documents extra ({', '.join(missing)} "
                          "missing).", f"Install it: {EXTRA}", topic="data")


def documents_in(folder: Path) -> list[Path]:
    """The documents the studio can read in a folder (and its subfolders), in a stable order; a single
    file is itself."""
    folder = Path(folder)
    if folder.is_file():
        return [folder]
    if not folder.is_dir():
        raise StudioError(f"{folder} does not exist.", "Give a folder of documents (PDF, DOCX, HTML, Markdown, text).",
                          topic="data")
    found = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in KINDS
                   and not p.name.startswith((".", "~$")))
    if not found:
        raise StudioError(f"No documents the studio can read are in {folder}.",
                          f"Add PDF, DOCX, HTML, Markdown or text files ({', '.join(sorted(KINDS))}).", topic="data")
    return found


def read_document(path: Path) -> Document:
    """The document's pages of blocks, and how long reading took. A file that cannot be read raises
    StudioError with its name and what to do."""
    path = Path(path)
    kind = KINDS.get(path.suffix.lower())
    if kind is None:
        raise StudioError(f"{path.name}: the studio cannot read {path.suffix or 'files without an extension'}.",
                          "Save it as PDF, DOCX, HTML, Markdown or text.", topic="data")
    started = time.perf_counter()
    try:
        pages = _READERS[kind](path)
    except ImportError as exc:
        raise StudioError(f"Reading {kind.upper()} files needs the documents extra ({exc.name or exc} is missing).",
                          f"Install it: {EXTRA}", topic="data") from exc
    except StudioError:
        raise
    except Exception as exc:  # a damaged or encrypted file: said with its name, the others go on
        raise StudioError(f"{path.name} cannot be read as {kind.upper()}: {str(exc)[:200] or type(exc).__name__}.",
                          "Open it and save it again (or export it as PDF or text), then add it again.",
                          topic="data") from exc
    return Document(path, kind, pages, time.perf_counter() - started)


def _pdf(path: Path) -> list[Page]:
    from studio.core.documents.pdf import read_pdf

    return read_pdf(path)


def _docx(path: Path) -> list[Page]:
    """Paragraphs and tables in the order of the document's body; "Heading N" and "Title" styles are headings."""
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    document = docx.Document(str(path))
    blocks: list[Block] = []
    for child in document.element.body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            paragraph = Paragraph(child, document)
            text = paragraph.text.strip()
            if text:
                blocks.append(_styled(text, paragraph.style.name if paragraph.style is not None else ""))
        elif tag == "tbl":
            rows = [" | ".join(cell.text.strip() for cell in row.cells) for row in Table(child, document).rows]
            blocks.append(Block(TABLE, "\n".join(rows)))
    return [Page(1, blocks)]


def _styled(text: str, style: str) -> Block:
    if style == "Title":
        return Block(HEADING, text, 1)
    if style.startswith("Heading"):
        level = style.removeprefix("Heading").strip()
        return Block(HEADING, text, int(level) if level.isdigit() else 1)
    return Block(PARAGRAPH, text)


def _html(path: Path) -> list[Page]:
    """The page's main text (trafilatura leaves menus, footers and ads out), as Markdown, then blocks."""
    import trafilatura

    html = path.read_bytes().decode("utf-8", errors="replace")
    text = trafilatura.extract(html, output_format="markdown", include_tables=True, include_comments=False,
                               favor_recall=True)
    if not text:  # no article found (a very short page, a list of links): all of its text, plainly
        text = trafilatura.html2txt(html)
    return [Page(1, text_blocks(text or ""))]


def _text(path: Path) -> list[Page]:
    """Markdown or text in the encoding the data files' reader recognises (UTF-8 unless it says otherwise)."""
    from studio.core.data.encodings import detect_encoding
    from studio.core.data.problems import ProblemLog

    log = ProblemLog()
    encoding = detect_encoding(path, path.name, log)
    if encoding is None:
        raise StudioError(f"{path.name}: {log.problems[0].message}", log.problems[0].advice, topic="data")
    return [Page(1, text_blocks(path.read_text(encoding=encoding)))]


_READERS = {"pdf": _pdf, "docx": _docx, "html": _html, "markdown": _text, "text": _text}
