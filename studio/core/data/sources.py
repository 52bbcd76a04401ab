"""Read the user's data as it is: files of every common kind, a folder of them, or a hub dataset.

Everything here streams: records come one at a time with the line (or row) they start on, so a
problem can point at its place and a large file never has to fit in memory. Plain text files
(.txt, .md) become documents as text_files.py says: one a line, one a paragraph or one a file,
chosen from each file's shape unless the recipe's data.text_split says. Nothing here writes to the
user's files.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from studio.core.data import model_files, text_files
from studio.core.data.encodings import detect_encoding
from studio.core.data.problems import ERROR, FATAL, WARNING, Problem, ProblemLog
from studio.core.errors import StudioError

JSON_LINES = (".jsonl", ".ndjson")
TABLES = (".csv", ".tsv")
TEXT = (".txt", ".md")
SUPPORTED = (".json",) + JSON_LINES + TABLES + (".parquet",) + TEXT
# Keys under which JSON files commonly wrap their list of records.
WRAPPER_KEYS = ("data", "train", "examples", "rows", "records", "items", "conversations", "dataset", "samples")


@dataclass(frozen=True)
class Record:
    line: int | None  # where the record starts: a line number, or a record/row number
    data: dict
    file: str | None = None
    size: int = 0  # characters the record takes in the file (0: not known), to keep batches small in memory


@dataclass
class Source:
    """Something the user pointed at. `records()` streams its rows."""

    description: str
    files: list[Path] = field(default_factory=list)
    root: Path | None = None
    hub_id: str | None = None
    split: str | None = None
    subset: str | None = None
    encodings: dict = field(default_factory=dict)  # file name -> encoding used, where not UTF-8
    skipped: list = field(default_factory=list)  # (file, what it is): a model's files found in a data folder
    text_split: str = "auto"  # how text files become documents (text_files.py)
    text_splits: dict = field(default_factory=dict)  # text file name -> (split used, why), filled while reading

    @property
    def is_text(self) -> bool:
        return bool(self.files) and all(f.suffix.lower() in TEXT for f in self.files)

    @property
    def text_split_used(self) -> str | None:
        """How the text files were cut into documents, in words (None before reading, or for records)."""
        return text_files.describe(self.text_splits)

    def fingerprint(self) -> str:
        """Changes whenever the data behind the source changes (for caching the loaded dataset)."""
        import hashlib

        h = hashlib.sha256(self.description.encode())
        for f in self.files:
            st = f.stat()
            h.update(f"{f}:{st.st_size}:{st.st_mtime_ns}".encode())
        h.update(f"{self.hub_id}:{self.split}:{self.subset}:{self.skipped}".encode())
        if self.is_text:
            h.update(f"text_split:{self.text_split}".encode())
        return h.hexdigest()[:32]

    def records(self, log: ProblemLog, skip_bad_rows: bool = False) -> Iterator[Record]:
        if self.hub_id:
            yield from _hub_records(self)
            return
        for name, kind in self.skipped:
            log.add(Problem(None, None, f"{name} is {kind}, not training data: left out.", model_files.SKIPPED_ADVICE,
                            WARNING, name, "not_training_data"))
        for path in self.files:
            label = str(path.relative_to(self.root)) if self.root and len(self.files) > 1 else None
            yield from _file_records(path, label, log, skip_bad_rows, self)


def open_source(source: str | os.PathLike, *, split: str | None = None, subset: str | None = None,
                text_split: str | None = None) -> Source:
    """What the user named: a file, a folder, or a hub dataset id (from the local cache when offline);
    `text_split`: how text files become documents (text_files.TEXT_SPLITS; default auto)."""
    found = _open(source, split, subset)
    found.text_split = text_files.checked_split(text_split)
    return found


def _open(source: str | os.PathLike, split: str | None, subset: str | None) -> Source:
    text = str(source).strip()
    if not text:
        raise StudioError("No data was given.",
                          "Choose a data file (.jsonl, .json, .csv, .tsv, .parquet, .txt), a folder, or a hub dataset id.")
    if text.lower() in ("demo", "demo-data", "builtin:demo"):
        from studio.core.paths import demo_data_dir

        text = str(demo_data_dir() / "demo.jsonl")
    path = Path(text).expanduser()
    if path.is_file():
        kind = model_files.kind_of_file(path)
        if kind:
            raise StudioError(f"{path.name} is {kind}, not training data.", model_files.REFUSED_ADVICE)
        if path.suffix.lower() not in SUPPORTED:
            raise StudioError(
                f"{path.name} is a {path.suffix or 'extensionless'} file, which the studio cannot read as training data.",
                f"Export your data as one of: {', '.join(SUPPORTED)}.",
            )
        return Source(text, [path], path.parent)
    if path.is_dir():
        return _open_folder(text, path)
    if _looks_like_hub_id(text):
        return Source(text, hub_id=text, split=split, subset=subset)
    raise StudioError(f"There is no file or folder at {text}.", "Check the path, or drop the file onto the Data page.")


def _open_folder(text: str, path: Path) -> Source:
    """A folder of data files; a model's folder is refused, a model's files among the data are left out."""
    found = model_files.model_folder_files(path)
    if found:
        raise StudioError(f"{path} is a model folder (it holds {', '.join(found)}), not training data.",
                          model_files.REFUSED_ADVICE)
    files, skipped = [], []
    for p in sorted(path.rglob("*")):
        if not p.is_file() or p.suffix.lower() not in SUPPORTED or any(part.startswith(".") for part in p.relative_to(path).parts):
            continue
        kind = model_files.kind_of_file(p)
        if kind:
            skipped.append((p.relative_to(path).as_posix(), kind))
        else:
            files.append(p)
    if not files and skipped:
        names = ", ".join(f"{name} ({kind})" for name, kind in skipped)
        raise StudioError(f"The folder {path} holds only a model's files, which are not training data: {names}.",
                          model_files.REFUSED_ADVICE)
    if not files:
        raise StudioError(
            f"The folder {path} holds no data files.",
            f"Put files of these kinds in it: {', '.join(SUPPORTED)}.",
        )
    kinds = {("text" if f.suffix.lower() in TEXT else "records") for f in files}
    if len(kinds) > 1:
        raise StudioError(
            f"The folder {path} mixes raw text files with record files (JSON/CSV/Parquet).",
            "Keep one kind per folder: raw text for continued pretraining, or records for instruction tuning.",
        )
    return Source(text, files, path, skipped=skipped)


def _looks_like_hub_id(text: str) -> bool:
    parts = text.split("/")
    return len(parts) == 2 and all(parts) and not text.startswith((".", "~")) and "\\" not in text


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------


def _file_records(path: Path, label: str | None, log: ProblemLog, skip_bad_rows: bool, source: Source) -> Iterator[Record]:
    shown = label or path.name
    if path.stat().st_size == 0:
        log.add(Problem(None, None, f"{shown} is empty.", "Choose the file that holds your examples.", FATAL, label, "empty_file"))
        return
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        yield from _parquet_records(path, label, log)
        return
    encoding = detect_encoding(path, label, log)
    if encoding is None:
        return
    if encoding != "utf-8":
        source.encodings[shown] = encoding
    if suffix in JSON_LINES:
        yield from _jsonl_records(path, label, log, skip_bad_rows, encoding)
    elif suffix == ".json":
        yield from _json_records(path, label, log, skip_bad_rows, encoding)
    elif suffix in TABLES:
        yield from _table_records(path, label, log, skip_bad_rows, encoding, "\t" if suffix == ".tsv" else ",")
    else:
        split = source.text_splits[shown] = text_files.choose_split(path, encoding, source.text_split)
        yield from text_files.text_records(path, label, encoding, log, split[0])


def _bad_line(line: int, label: str | None, message: str, skip: bool) -> Problem:
    if skip:
        return Problem(line, None, f"{message.rstrip('.')} — skipped.", "Fix this line to include it.", ERROR, label,
                       "malformed_json")
    return Problem(line, None, message, "Fix or delete this line, or {setting} to leave it out.",
                   FATAL, label, "malformed_json", setting="data.skip_bad_rows")


# json.JSONDecodeError's messages in plain words: what is wrong where the reading stopped.
JSON_WORDS = {
    "Expecting ',' delimiter": "is cut off or has a missing comma",
    "Expecting ':' delimiter": "is missing a colon between a name and its value",
    "Expecting property name enclosed in double quotes": "has a name without double quotes, or a comma before a closing }",
    "Expecting value": "has a value JSON does not accept: text needs double quotes, and no comma may come before a closing ] or }",
    "Unterminated string starting at": "has text whose closing quote is missing",
    "Invalid control character at": "has a tab or line break inside quoted text: write it as \\t or \\n",
    "Invalid \\escape": "has a backslash JSON does not accept: write \\\\ for one backslash",
    "Invalid \\uXXXX escape": "has a broken \\u character code",
    "Extra data": "has more text after the end of its record",
    "Illegal trailing comma before end of object": "has a comma before a closing }",
    "Illegal trailing comma before end of array": "has a comma before a closing ]",
}


def json_trouble(exc: json.JSONDecodeError, line: int | None = None) -> str:
    """'Line 57 is cut off or has a missing comma (at character 31).' — `line`: where the text
    that was parsed starts in the file (a JSON Lines line), else the line the error is on."""
    line = line or json_error_line(exc)
    if _cut_off(exc):
        return f"Line {line} is cut off: it ends before its record does."
    known = next((words for msg, words in JSON_WORDS.items() if exc.msg.startswith(msg)), None)
    return f"Line {line} {known or f'cannot be read as JSON ({exc.msg})'} (at character {exc.colno})."


def json_error_line(exc: json.JSONDecodeError) -> int:
    """The line a JSON error is on: the last line with text when the text ends too early."""
    return exc.doc.rstrip().count("\n") + 1 if _cut_off(exc) else exc.lineno


def _cut_off(exc: json.JSONDecodeError) -> bool:
    return not exc.doc[exc.pos:].strip()


def _jsonl_records(path: Path, label: str | None, log: ProblemLog, skip: bool, encoding: str) -> Iterator[Record]:
    loads = json.loads
    with path.open("r", encoding=encoding, newline="") as fh:
        for number, line in enumerate(fh, start=1):
            if not line or line.isspace():  # (not strip(): that copies the line)
                continue
            try:
                value = loads(line)
            except json.JSONDecodeError as exc:
                log.add(_bad_line(number, label, json_trouble(exc, number), skip))
                continue
            size = len(line)
            del line  # not held while the record is used: a line can be tens of megabytes
            if not isinstance(value, dict):
                log.add(_bad_line(number, label, f"Line {number} holds {_json_kind(value)}, not a record with named fields.", skip))
                continue
            yield Record(number, value, label, size)


def _json_records(path: Path, label: str | None, log: ProblemLog, skip: bool, encoding: str) -> Iterator[Record]:
    text = path.read_text(encoding=encoding)
    stripped = text.lstrip()
    if not stripped:
        log.add(Problem(None, None, f"{label or path.name} holds only whitespace.", "Choose the file that holds your examples.",
                        FATAL, label, "empty_file"))
        return
    if stripped[0] == "[":
        yield from _json_array_records(text, label, log, skip)
        return
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data" and stripped[0] == "{":
            # One object per line in a .json file: read it as JSON Lines, which it is.
            yield from _jsonl_records(path, label, log, skip, encoding)
            return
        log.add(Problem(json_error_line(exc), None, json_trouble(exc), "Fix the file at that place, or export it again.",
                        FATAL, label, "malformed_json"))
        return
    if not isinstance(value, dict):
        log.add(Problem(None, None, f"The file holds a JSON {type(value).__name__}, not a list of records.",
                        "Export the data as a JSON list of objects, or as JSON Lines.", FATAL, label, "not_records"))
        return
    kind = model_files.kind_of_json(value, path.name)
    if kind:
        log.add(_not_data(label or path.name, kind, alone=label is None))
        return
    yield from _object_records(value, label, log)


def _object_records(value: dict, label: str | None, log: ProblemLog) -> Iterator[Record]:
    """The records of a JSON object: a list of them under a key ({"data": [...]}), columns of equal
    length ({"col": [...], ...}), or the object itself as the one record."""
    if any(_holds_records(v) and _holds_turns(v) for v in value.values()):
        yield Record(1, value, label)  # one conversation
        return
    key = next((k for k in WRAPPER_KEYS + tuple(value) if k != "messages" and _holds_records(value.get(k))), None)
    if key is not None:
        for i, row in enumerate(value[key], start=1):
            if isinstance(row, dict):
                yield Record(i, row, label)
            else:
                log.add(Problem(i, key, f"Record {i} of '{key}' is a {type(row).__name__}, not an object.",
                                "Make every record an object with fields.", ERROR, label, "not_an_object"))
        return
    columns = {k: v for k, v in value.items() if isinstance(v, list)}
    lengths = {len(v) for v in columns.values()}
    if columns and len(columns) == len(value) and len(lengths) == 1:  # columnar: {"col": [...], ...}
        for i in range(lengths.pop()):
            yield Record(i + 1, {k: v[i] for k, v in columns.items()}, label)
        return
    yield Record(1, value, label)  # a single record


def _holds_turns(rows: list) -> bool:
    """A list of a conversation's turns (a single conversation object, as axolotl's fixtures hold), not of records."""
    return all(("from" in r and "value" in r) or ("role" in r and ("content" in r or "tool_calls" in r)) for r in rows[:100])


def _holds_records(rows) -> bool:
    """A non-empty list whose first hundred items are objects."""
    return isinstance(rows, list) and bool(rows) and all(isinstance(r, dict) for r in rows[:100])


def _json_kind(value) -> str:
    kinds = {list: "a list", str: "a piece of text", bool: "true or false", type(None): "null"}
    return kinds.get(type(value), "a number" if isinstance(value, (int, float)) else "a value")


def _not_data(name: str, kind: str, alone: bool) -> Problem:
    if alone:
        return Problem(None, None, f"{name} is {kind}, not training data.", model_files.REFUSED_ADVICE, FATAL, None,
                       "not_training_data")
    return Problem(None, None, f"{name} is {kind}, not training data: left out.", model_files.SKIPPED_ADVICE, WARNING,
                   name, "not_training_data")


def _json_array_records(text: str, label: str | None, log: ProblemLog, skip: bool) -> Iterator[Record]:
    """Walk a top-level JSON array element by element, so each record knows its line."""
    decoder = json.JSONDecoder()
    pos = text.index("[") + 1
    line = text.count("\n", 0, pos) + 1
    last = pos
    n = len(text)
    index = 0
    while True:
        while pos < n and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= n:
            log.add(Problem(line, None, "The JSON list is not closed (a ']' is missing at the end).",
                            "The file may have been cut off: export it again.", FATAL, label, "malformed_json"))
            return
        if text[pos] == "]":
            return
        line += text.count("\n", last, pos)
        last = pos
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            log.add(Problem(json_error_line(exc), None, json_trouble(exc), "Fix the file at that place, or export it again.",
                            FATAL, label, "malformed_json"))
            return
        index += 1
        if isinstance(value, dict):
            yield Record(line, value, label, end - pos)
        else:
            log.add(Problem(line, None, f"Record {index} is a JSON {type(value).__name__}, not an object with fields.",
                            "Make every record an object with fields.", ERROR, label, "not_an_object"))
        pos = end
        # a record must be followed by ',' or ']'
        probe = pos
        while probe < n and text[probe] in " \t\r\n":
            probe += 1
        if probe < n and text[probe] not in ",]":
            bad_line = text.count("\n", 0, probe) + 1
            log.add(Problem(bad_line, None, f"Line {bad_line} is missing the comma between two records.",
                            "Add the missing comma between the records.", FATAL, label, "malformed_json"))
            return


def _table_records(path: Path, label: str | None, log: ProblemLog, skip: bool, encoding: str, delimiter: str) -> Iterator[Record]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    with path.open("r", encoding=encoding, newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            log.add(Problem(1, None, f"The header line cannot be read: {exc}.", "Check the file is a valid table.", FATAL, label,
                            "bad_table"))
            return
        header = [h.strip() for h in header]
        if not any(header):
            log.add(Problem(1, None, "The first line is empty: it should name the columns.",
                            "Put the column names (e.g. prompt, response) on the first line.", FATAL, label, "bad_table"))
            return
        dupes = sorted({h for h in header if header.count(h) > 1 and h})
        if dupes:
            log.add(Problem(1, None, f"Columns named more than once: {', '.join(dupes)}.", "Give every column its own name.",
                            FATAL, label, "bad_table"))
            return
        start = reader.line_num + 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                log.add(_bad_line(start, label, f"This row cannot be read: {exc}", skip))
                start = reader.line_num + 1
                continue
            line, start = start, reader.line_num + 1
            if not any(cell.strip() for cell in row):
                continue
            if len(row) > len(header):
                log.add(Problem(line, None, f"This row has {len(row)} fields but the header names {len(header)}.",
                                "A value probably holds an unquoted comma or tab: put quotes around it.", ERROR, label, "extra_fields"))
                continue
            yield Record(line, dict(zip(header, row + [None] * (len(header) - len(row)), strict=False)), label, sum(map(len, row)))


def _parquet_records(path: Path, label: str | None, log: ProblemLog) -> Iterator[Record]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:
        log.add(Problem(None, None, f"{label or path.name} is not a readable Parquet file ({exc}).",
                        "Export it again, or use JSON Lines or CSV.", FATAL, label, "bad_parquet"))
        return
    row = 0
    for batch in parquet.iter_batches(batch_size=_parquet_batch_rows(parquet)):
        size = batch.nbytes // max(batch.num_rows, 1)
        for data in batch.to_pylist():
            row += 1
            yield Record(row, data, label, size)


def _parquet_batch_rows(parquet, budget: int = 16 * 2**20) -> int:
    """Rows a batch may hold so that it stays near `budget` bytes (rows of megabytes come a few at a time)."""
    meta = parquet.metadata
    total = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    per_row = total / meta.num_rows if meta.num_rows else 1
    return int(max(1, min(4096, budget // max(per_row, 1))))


# ---------------------------------------------------------------------------------------------
# Hub datasets
# ---------------------------------------------------------------------------------------------


def load_hub_dataset(source: Source):
    """A hub dataset through `datasets.load_dataset` (the local cache first; offline works for cached data)."""
    import datasets

    try:
        loaded = datasets.load_dataset(source.hub_id, name=source.subset, split=source.split)
    except ValueError as exc:
        text = str(exc)
        if "Config name is missing" in text or "BuilderConfig" in text:
            raise StudioError(f"{source.hub_id} has several subsets: {text}", "Choose one with --subset NAME.") from exc
        if "Unknown split" in text or "split" in text.lower():
            raise StudioError(f"{source.hub_id}: {text}", "Choose an existing split with --split NAME (e.g. train).") from exc
        raise StudioError(f"{source.hub_id} could not be loaded: {text}", "Check the dataset id, subset and split.") from exc
    except Exception as exc:
        offline = "offline" in str(exc).lower() or "connect" in str(exc).lower() or type(exc).__name__ in (
            "DatasetNotFoundError", "ConnectionError", "OfflineModeIsEnabled", "LocalEntryNotFoundError")
        if offline:
            raise StudioError(
                f"The dataset {source.hub_id} is not in the local cache and the hub cannot be reached.",
                "Connect to the internet once to download it, or export it to a file and open that.",
            ) from exc
        raise StudioError(f"{source.hub_id} could not be loaded: {exc}", "Check the dataset id, subset and split.") from exc
    if isinstance(loaded, datasets.DatasetDict):
        names = list(loaded)
        chosen = "train" if "train" in loaded else names[0]
        source.split = chosen
        loaded = loaded[chosen]
    return loaded


def _hub_records(source: Source) -> Iterator[Record]:
    dataset = load_hub_dataset(source)
    for i, row in enumerate(dataset, start=1):
        yield Record(i, row, None)
