"""Bring your own data: load any common fine-tuning dataset, detect its format, validate it with
line numbers, and show how each example will be seen by the model — before a GPU minute is spent.

    sources.py   files, folders and hub datasets, streamed with line numbers
    text_files.py  plain text (.txt, .md) into documents: one a line, a paragraph or a file (auto: by its shape)
    formats.py   alpaca / sharegpt / messages / prompt_completion / text, and the columns that add to them
    convert.py   one record → one row (a conversation, or a text), or the problem that stops it
    tool_calls.py  tool calls, results and schemas from every layout that writes them
    preference.py  chosen / rejected answers and KTO labels: the chosen trained, the rejected kept
    layout.py    what the data is, in words, with its rows counted
    loading.py   one validating pass into a memory-mapped Arrow file (cached)
    tokens.py    chat template, token ids and the assistant-only loss mask
    stats.py     token lengths, truncation, histogram
    chunks.py    raw text for training: long documents cut into sequence-length chunks, all trained
    model_files.py  a model's files given as data: recognised and refused (or left out of a folder)

Memory and time stay bounded on hostile data. Inspecting a dataset needs at most about
    base + 6 × the largest record + 200 MB + 200 bytes × the number of records
of memory (base: Python, datasets and the tokenizer, ~0.45 GB), plus the pages of the memory-mapped
Arrow cache file it reads (page cache: shared, and dropped by the kernel when memory is short). It
tokenizes at most stats.EXACT_CHARS characters, plus about a million (stats.EXACT_TOKENS × 8) of
each of the longest rows: records are read, written and tokenized in batches bounded in characters
as well as rows; a row longer than any sequence length the studio offers is tokenized only as far
as needed (counted from a prefix and estimated beyond, marked as estimated; encoded for training
from a prefix, with the same ids and mask); examples are shown shortened, with a note of what is
left out. Measured in benchmarks/RESULTS.md ("Hostile data"). A .json file (not JSON Lines) is
parsed whole: for it, the largest record is the file (so is a text file read as one document).
"""

from __future__ import annotations

import numbers
from collections import Counter
from dataclasses import dataclass, field

from studio.core.data.formats import CHAT_FORMATS, FORMATS, ROLES, ColumnPreview, FormatChoice
from studio.core.data.layout import Layout
from studio.core.data.layout import describe as describe_layout
from studio.core.data.loading import LoadedData, load_data
from studio.core.data.problems import CLI, ERROR, FATAL, WARNING, WINDOW, Audience, DataError, Problem, count_kinds
from studio.core.data.stats import TokenStats, count_lengths, summarize, truncated_share
from studio.core.data.tokens import IGNORE_INDEX, Encoded, Renderer, encode_conversation, encode_text, marked_segments

__all__ = [
    "CHAT_FORMATS", "CLI", "FORMATS", "ROLES", "ERROR", "FATAL", "WARNING", "WINDOW", "IGNORE_INDEX", "Audience",
    "ColumnPreview", "DataError", "DataReport", "Layout", "Encoded", "Example", "FormatChoice", "LoadedData", "Problem", "Renderer",
    "TokenStats", "encode_conversation", "encode_text", "check_seq_len", "count_kinds", "count_lengths", "encode_row",
    "describe_layout", "inspect_data", "load_data", "marked_segments", "parse_mapping",
]


@dataclass(frozen=True)
class Example:
    index: int  # row in the loaded dataset
    line: int
    file: str
    tokens: int
    trained_tokens: int
    truncated: bool
    segments: list[dict]  # shortened when long: "note" segments say how many characters are left out
    tokens_estimated: bool = False  # the row is too long to count in full: `tokens` is an estimate
    hidden_chars: int = 0  # characters of the row the shortened segments leave out

    def as_dict(self) -> dict:
        return {"index": self.index, "line": self.line, "file": self.file or None, "tokens": self.tokens,
                "tokens_estimated": self.tokens_estimated, "trained_tokens": self.trained_tokens,
                "truncated": self.truncated, "hidden_chars": self.hidden_chars, "segments": self.segments}


@dataclass
class DataReport:
    loaded: LoadedData
    model_name: str
    template_is_default: bool
    assistant_only: bool
    stats: TokenStats
    examples: list[Example] = field(default_factory=list)
    lengths: object = None  # numpy array: every row's token count (estimated beyond stats.EXACT_ROWS)
    notes: list[Problem] = field(default_factory=list)  # about the data with this model (tools its template lacks)

    def truncated_share(self, seq_len: int) -> float:
        """The share of rows a sequence length would cut, without tokenizing again (none of raw text: it is chunked)."""
        return 0.0 if self.lengths is None or not self.loaded.is_chat else truncated_share(self.lengths, seq_len)

    def as_dict(self, audience: Audience = CLI) -> dict:
        """The report as the front end `audience` shows it (fixes that name a setting in its words)."""
        d = self.loaded
        return {
            "source": d.source.description,
            "format": d.format,
            "format_detail": d.choice.describe(),
            "detected_format": d.detected.format if d.detected else None,
            "columns": d.columns,
            "first_row": d.first_row,  # each column's first value, shortened
            "mapping": d.choice.mapping(),  # the columns in effect, by role
            "roles": list(ROLES[d.format]),  # the roles this format's columns can be mapped to
            "rows": d.rows_kept,
            "rows_read": d.rows_read,
            "rows_dropped": d.rows_dropped,
            "rows_skipped": d.rows_skipped,
            "duplicates": d.duplicates,
            "encodings": d.source.encodings,
            "text_split": d.text_split_used,  # text files: "one document per line (auto: no blank lines)"
            "usable": d.usable,
            "model": self.model_name,
            "chat_template": "studio default (the model has none)" if self.template_is_default else "the model's own",
            "assistant_only_loss": self.assistant_only and d.is_chat,
            "layout": describe_layout(d.choice, d.kinds, d.rows_kept, d.text_split_used).as_dict(),
            "problems": [p.as_dict(audience) for p in self.notes + d.problems],
            "problem_counts": dict(Counter(d.problem_counts) + Counter(p.kind for p in self.notes)),
            "stats": self.stats.as_dict(),
            "examples": [e.as_dict() for e in self.examples],
        }


MAPPABLE = ("prompt", "response", "system", "text", "messages", "tools", "chosen", "rejected", "label")


def parse_mapping(text: str | None) -> dict | None:
    """'prompt=question,response=answer' → {"prompt": "question", "response": "answer"}."""
    if not text:
        return None
    from studio.core.errors import StudioError

    mapping = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise StudioError(f"'{part}' is not a column mapping.", "Write it as prompt=COLUMN,response=COLUMN (system=COLUMN optional).")
        key = key.strip().lower()
        if key not in MAPPABLE:
            raise StudioError(f"'{key}' is not something a column can be mapped to.", f"Map {', '.join(MAPPABLE)}.")
        mapping[key] = value.strip()
    return mapping


def encode_row(row: dict, renderer: Renderer, *, assistant_only: bool = True, max_length: int | None = None) -> Encoded:
    """Token ids and labels of one loaded row, as training will use them."""
    if "messages" in row and row["messages"] is not None:
        return encode_conversation(renderer, row["messages"], assistant_only=assistant_only, max_length=max_length,
                                   tools=row.get("tools"))
    return encode_text(renderer.tokenizer, row["text"], max_length=max_length)


def _pick_examples(dataset, count: int) -> list[int]:
    """The first row, plus a multi-turn and a system-prompted one when the data has them."""
    if len(dataset) == 0 or count <= 0:
        return []
    picks = [0]
    if "messages" in dataset.column_names:
        wanted = [lambda r: any(t["tool_calls"] for t in r["messages"]), lambda r: bool(r["rejected"]),
                  lambda r: sum(t["role"] == "user" for t in r["messages"]) > 1, lambda r: r["messages"][0]["role"] == "system"]
        for test in wanted:
            for i, row in enumerate(dataset.select(range(min(len(dataset), 2000)))):
                if i not in picks and test(row):
                    picks.append(i)
                    break
    i = 1
    while len(picks) < min(count, len(dataset)):
        if i not in picks:
            picks.append(i)
        i += 1
    return picks[:count]


MIN_SEQ_LEN = 16  # as training requires (recipe.py)


def check_seq_len(seq_len) -> None:
    """A sequence length training can use: a whole number of at least MIN_SEQ_LEN tokens."""
    if isinstance(seq_len, bool) or not isinstance(seq_len, numbers.Integral) or seq_len < MIN_SEQ_LEN:
        raise DataError(f"The sequence length is {seq_len!r}, but it must be a whole number of at least {MIN_SEQ_LEN} tokens.",
                        "Set {setting} to the longest row, in tokens, the model should see in training, e.g. 2048.",
                        setting="training.seq_len")


def inspect_data(source, *, model="demo", fmt: str | None = None, mapping: dict | None = None, seq_len: int = 2048,
                 skip_bad_rows: bool = False, split: str | None = None, subset: str | None = None,
                 assistant_only: bool = True, examples: int = 3, tokenizer=None, text_split: str | None = None) -> DataReport:
    """Everything `studio data inspect` and the Data page show about a dataset."""
    from studio.core.models import ModelInfo, load_tokenizer, resolve_model

    check_seq_len(seq_len)
    loaded = load_data(source, fmt=fmt, mapping=mapping, skip_bad_rows=skip_bad_rows, split=split, subset=subset,
                       text_split=text_split)
    info = model if isinstance(model, ModelInfo) else resolve_model(model)
    tokenizer = tokenizer or load_tokenizer(info)
    renderer = Renderer(tokenizer)
    counted = count_lengths(loaded.dataset, tokenizer, renderer if loaded.is_chat else None, exact_up_to=seq_len + 1)
    stats = summarize(counted.lengths, seq_len, counted.turns, estimated_rows=int(counted.estimated.sum()),
                      long_rows=counted.long_rows, chunked=not loaded.is_chat)
    shown = [_example(loaded.dataset, index, renderer, assistant_only, seq_len, counted)
             for index in _pick_examples(loaded.dataset, examples)]
    return DataReport(loaded, info.name, renderer.is_default, assistant_only, stats, shown, counted.lengths,
                      _template_notes(loaded, renderer, info.name))


def _template_notes(loaded, renderer: Renderer, model_name: str) -> list[Problem]:
    """A warning when the data calls tools and the model's chat template cannot show them."""
    if renderer.tools_native or not (loaded.kinds.get("tool_calls") or loaded.kinds.get("tool_schema")):
        return []
    return [Problem(None, None, f"The chat template of {model_name} has no tool support: tool calls are written as "
                    "<tool_call> JSON in the answers, results as <tool_response> user turns, and the tool schema joins "
                    "the system message.",
                    "Nothing to do if that is how the model should call tools; for a model's own tool format, choose a "
                    "model whose chat template handles tools (e.g. Qwen2.5 or Llama 3.1).", WARNING, None, "tools_as_text")]


def _example(dataset, index: int, renderer: Renderer, assistant_only: bool, seq_len: int, counted) -> Example:
    row = dataset[index]
    enc = encode_row(row, renderer, assistant_only=assistant_only, max_length=seq_len)
    segments = marked_segments(enc)
    return Example(index, row["line"], row["file"], int(counted.lengths[index]), enc.trained_tokens, enc.truncated,
                   segments, bool(counted.estimated[index]), sum(s.get("hidden", 0) for s in segments))
