"""Load the user's data once into the studio's own shape, as an Arrow file that `datasets` maps.

One streaming pass reads every record, converts it (formats.py), drops what cannot be used with a
problem that names its line, drops exact duplicates, and writes the rest to an Arrow file in the
studio's cache. The file is memory-mapped, so a million rows do not fill the RAM; the same data
with the same options is not read twice (the cache key covers the files' sizes and times). The
records held at once (the detection sample, the rows waiting to be written) are bounded in
characters as well as in number, so a few huge records cannot fill the memory either.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from studio.core import paths
from studio.core.data.convert import RowRejected, to_conversation, to_text
from studio.core.data.formats import CHAT_FORMATS, ColumnPreview, FormatChoice, choose_format, columns_of, detect_format
from studio.core.data.layout import row_kinds
from studio.core.data.problems import ERROR, FATAL, WARNING, DataError, Problem, ProblemLog
from studio.core.data.sources import Source, open_source

LOADER_VERSION = "4"  # bump when the normalized shape changes, so old cache entries are not reused
DETECTION_SAMPLE = 200
DETECTION_CHARS = 8_000_000  # the detection sample stops early at this many characters
WRITE_CHARS = 8_000_000  # rows waiting to be written to the Arrow file: at most this many characters
CACHE_KEEP = 16  # loaded datasets kept in the cache, newest first


@dataclass
class LoadedData:
    source: Source
    choice: FormatChoice
    detected: FormatChoice | None
    columns: list[str]
    dataset: object  # datasets.Dataset: "messages", "tools", "rejected" (convert.py) or "text", plus "line" and "file"
    rows_read: int = 0
    rows_kept: int = 0
    rows_dropped: int = 0  # records that were read but cannot be used (problems name them)
    rows_skipped: int = 0  # malformed lines left out because the user allowed it
    duplicates: int = 0
    problems: list[Problem] = field(default_factory=list)
    problem_counts: dict = field(default_factory=dict)
    first_row: dict = field(default_factory=dict)  # each column's value in the first record, shortened for showing
    kinds: dict = field(default_factory=dict)  # rows of each kind kept (layout.KINDS: "tool_calls", "preference", …)
    text_split_used: str | None = None  # text files: how they became documents, and why (sources.Source.text_split_used)

    @property
    def preview(self) -> ColumnPreview:
        return ColumnPreview(self.columns, self.first_row)

    @property
    def format(self) -> str:
        return self.choice.format

    @property
    def is_chat(self) -> bool:
        return self.choice.format in CHAT_FORMATS

    @property
    def usable(self) -> bool:
        return self.rows_kept > 0 and not any(p.severity == FATAL for p in self.problems)


def _cache_root() -> Path:
    return paths.user_cache_dir() / "datasets"


def _cache_key(source: Source, fmt: str | None, mapping: dict | None, skip: bool) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([LOADER_VERSION, source.fingerprint(), fmt, sorted((mapping or {}).items()), skip]).encode())
    return h.hexdigest()[:24]


def _features(is_chat: bool):
    from datasets import Features, List, Value

    common = {"line": Value("int64"), "file": Value("string")}
    if is_chat:
        turn = {"role": Value("string"), "content": Value("string"), "tool_calls": Value("string"),
                "reasoning": Value("string"), "train": Value("bool")}
        return Features({"messages": List(turn), "tools": Value("string"), "rejected": List(turn), **common})
    return Features({"text": Value("string"), **common})


def load_data(source: str | os.PathLike | Source, *, fmt: str | None = None, mapping: dict | None = None,
              skip_bad_rows: bool = False, split: str | None = None, subset: str | None = None,
              use_cache: bool = True, text_split: str | None = None) -> LoadedData:
    """Read, detect, validate and store the data. Raises StudioError when nothing in it is usable."""
    src = source if isinstance(source, Source) else open_source(source, split=split, subset=subset, text_split=text_split)
    key = _cache_key(src, fmt, mapping, skip_bad_rows) if not src.hub_id else None
    folder = _cache_root() / key if key else None
    if use_cache and folder is not None and (folder / "report.json").is_file():
        cached = _from_cache(src, folder)
        if cached is not None:
            return cached

    log = ProblemLog()
    records = src.records(log, skip_bad_rows)
    head = _head(records)
    _raise_if_fatal(log, bool(head))
    preview = ColumnPreview.of([r.data for r in head])
    rows = _Rows(_choose(head, fmt, mapping, src.is_text, preview), log)

    def report() -> dict:  # once every row is read
        _raise_if_fatal(log, rows.read > 0)
        return _report(src, head, rows, log, preview, skip_bad_rows)

    folder = folder or Path(tempfile.mkdtemp(prefix="hub-", dir=_ensure(_cache_root())))
    _store(folder, rows(itertools.chain(head, records)), rows.is_chat, report)
    _prune_cache(keep=folder)
    loaded = _from_cache(src, folder)
    assert loaded is not None
    if loaded.rows_kept == 0:
        raise _nothing_usable(loaded)
    return loaded


class _Rows:
    """The records as the studio's rows (a conversation or a text, with its line and file), counted;
    a record that cannot be used, or repeats an earlier one exactly, is left out and logged."""

    def __init__(self, choice: FormatChoice, log: ProblemLog):
        self.choice, self.log = choice, log
        self.is_chat = choice.format in CHAT_FORMATS
        self.read = self.kept = self.dropped = self.duplicates = 0
        self.kinds: dict[str, int] = {}  # kept rows of each kind (layout.row_kinds)
        self._seen: dict[bytes, int] = {}  # an example's digest → the line it was first seen on

    def __call__(self, records) -> Iterator[dict]:
        for record in records:
            self.read += 1
            row = self._row(record)
            if row is not None:
                self.kept += 1
                yield row

    def _row(self, record) -> dict | None:
        convert = to_conversation if self.is_chat else to_text
        try:
            value, warnings = convert(record.data, self.choice, record.line, record.file)
        except RowRejected as rejected:
            self.log.add(rejected.problem)
            self.dropped += 1
            if rejected.problem.severity == WARNING:  # left out on purpose (an undesirable answer)
                self.kinds[rejected.problem.kind] = self.kinds.get(rejected.problem.kind, 0) + 1
            return None
        digest = _digest(value["messages"] if self.is_chat else value)
        first = self._seen.get(digest)
        if first is not None:
            self.duplicates += 1
            self.dropped += 1
            self.log.add(Problem(record.line, None, f"An exact duplicate of the example at line {first}: left out.",
                                 "Remove the copy; duplicates make the model memorise those examples.", ERROR, record.file,
                                 "duplicate"))
            return None
        self._seen[digest] = record.line or 0
        for w in warnings:
            self.log.add(w)
        if not self.is_chat:
            return {"text": value, "line": record.line or 0, "file": record.file or ""}
        for kind in row_kinds(value, warnings):
            self.kinds[kind] = self.kinds.get(kind, 0) + 1
        return {**value, "line": record.line or 0, "file": record.file or ""}


def _report(src: Source, head: list, rows: _Rows, log: ProblemLog, preview: ColumnPreview, skip_bad_rows: bool) -> dict:
    """What report.json says of the data: the format chosen and detected, its columns, the counts, the problems."""
    samples = [r.data for r in head]
    detected = detect_format(samples, is_text_file=src.is_text)
    return {
        "choice": rows.choice.__dict__, "detected": detected.__dict__ if detected else None, "columns": columns_of(samples),
        "first_row": preview.first_row,
        "rows_read": rows.read, "rows_kept": rows.kept, "rows_dropped": rows.dropped,
        "rows_skipped": log.counts.get("malformed_json", 0) if skip_bad_rows else 0, "duplicates": rows.duplicates,
        "problems": [asdict(p) for p in log.problems], "problem_counts": dict(log.counts), "kinds": rows.kinds,
        "encodings": src.encodings, "split": src.split, "text_split": src.text_split_used,
    }


def _store(folder: Path, rows: Iterator[dict], is_chat: bool, report) -> None:
    """The rows as an Arrow file and `report()` as report.json, built in a work folder that then
    replaces `folder` whole: a half-written entry is never picked up."""
    from datasets.arrow_writer import ArrowWriter

    work = Path(tempfile.mkdtemp(prefix=".loading-", dir=_ensure(_cache_root())))
    try:
        with ArrowWriter(features=_features(is_chat), path=str(work / "data.arrow"), writer_batch_size=5000) as writer:
            _write_rows(writer, rows)
            writer.finalize()
        (work / "report.json").write_text(json.dumps(report()), encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
        os.replace(work, folder)  # atomic: a half-written entry is never picked up
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _choose(head: list, fmt: str | None, mapping: dict | None, is_text: bool, preview: ColumnPreview) -> FormatChoice:
    """The format and columns to read; when they cannot be told, the error carries the file's columns
    and first row, so that the window can offer them to map."""
    try:
        return choose_format([r.data for r in head], fmt, mapping, is_text_file=is_text)
    except DataError as error:
        error.preview = preview
        raise


def _digest(value) -> bytes:
    """A fingerprint of one converted row, for finding exact duplicates (a huge row is hashed a
    megabyte at a time, so that it is not copied whole)."""
    parts = [("text", value)] if isinstance(value, str) else [
        (t["role"], t["content"] if not t.get("tool_calls") else f"{t['content']}\0{t['tool_calls']}") for t in value]
    h = hashlib.blake2b(digest_size=12)
    if sum(len(text) for _, text in parts) <= 1 << 20:
        h.update("".join(f"{role}\0{len(text)}\0{text}" for role, text in parts).encode("utf-8", "surrogatepass"))
        return h.digest()
    for role, text in parts:
        h.update(f"{role}\0{len(text)}\0".encode())
        for start in range(0, len(text), 1 << 20):
            h.update(text[start:start + (1 << 20)].encode("utf-8", "surrogatepass"))
    return h.digest()


def _head(records) -> list:
    """The first DETECTION_SAMPLE records (fewer when they pass DETECTION_CHARS): what detection sees."""
    head, chars = [], 0
    for record in records:
        head.append(record)
        chars += record.size
        if len(head) >= DETECTION_SAMPLE or chars >= DETECTION_CHARS:
            break
    return head


def _write_rows(writer, rows) -> None:
    """Write rows in batches of at most 5,000 rows and WRITE_CHARS characters."""
    pending = 0
    for row in rows:
        writer.write(row)
        pending += sum(len(t["content"]) for t in row["messages"]) if "messages" in row else len(row["text"])
        if pending >= WRITE_CHARS:
            writer.write_examples_on_file()
            pending = 0


def _ensure(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _from_cache(src: Source, folder: Path) -> LoadedData | None:
    from datasets import Dataset

    try:
        report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
        dataset = Dataset.from_file(str(folder / "data.arrow"))
    except Exception:
        return None
    os.utime(folder)  # most recently used: kept longest by _prune_cache
    src.encodings.update(report.get("encodings") or {})
    if report.get("split"):
        src.split = report["split"]
    loaded = LoadedData(
        source=src,
        choice=FormatChoice(**report["choice"]),
        detected=FormatChoice(**report["detected"]) if report.get("detected") else None,
        columns=report["columns"],
        dataset=dataset,
        rows_read=report["rows_read"],
        rows_kept=report["rows_kept"],
        rows_dropped=report["rows_dropped"],
        rows_skipped=report["rows_skipped"],
        duplicates=report["duplicates"],
        problems=[Problem(**p) for p in report["problems"]],
        problem_counts=report["problem_counts"],
        first_row=report.get("first_row") or {},
        kinds=report.get("kinds") or {},
        text_split_used=report.get("text_split"),
    )
    if loaded.rows_kept == 0:
        raise _nothing_usable(loaded)
    return loaded


def _raise_if_fatal(log: ProblemLog, has_records: bool) -> None:
    fatal = [p for p in log.problems if p.severity == FATAL]
    if not fatal:
        if not has_records:
            dropped = [p for p in log.problems if p.severity != "warning"]
            if dropped:
                raise DataError(f"None of the rows can be used: {dropped[0].message}",
                                "Fix the problems listed (each names its line).", problems=dropped)
            raise DataError("The data holds no records.", "Choose the file that holds your examples.")
        return
    first = fatal[0]
    more = f" {len(fatal) - 1} more like it." if len(fatal) > 1 else ""
    # the CLI and the window list them all
    raise DataError(f"{_with_line(first)}{more}", first.fix, setting=first.setting, problems=fatal)


def _with_line(problem: Problem) -> str:
    """The problem's message, naming its line unless it already does."""
    message = problem.message.rstrip(".")
    if problem.line and not message.lower().startswith(f"line {problem.line} "):
        message += f" (line {problem.line})"
    return message + "."


def _nothing_usable(loaded: LoadedData) -> DataError:
    from studio.core.data.problems import count_kinds

    return DataError(
        f"None of the {loaded.rows_read} rows can be used ({count_kinds(loaded.problem_counts)}).",
        "Fix the problems listed (each names its line), or choose other columns with {setting} if the format was misread.",
        setting="data.mapping", problems=loaded.problems, preview=loaded.preview,
    )


def _prune_cache(keep: Path) -> None:
    root = _cache_root()
    entries = sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                     key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[CACHE_KEEP:]:
        if old != keep:
            shutil.rmtree(old, ignore_errors=True)
