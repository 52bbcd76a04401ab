"""Token statistics of a loaded dataset: what the memory planner and the Data page need.

Bounded work: up to EXACT_ROWS rows and EXACT_CHARS characters every row is tokenized; beyond, a
seeded sample and the longest rows are, and the rest is estimated (see EXACT_ROWS). A row longer
than the longest sequence length the studio offers (EXACT_TOKENS) is counted exactly up to there
and estimated beyond from the characters per token of that prefix: a 50 MB field costs a prefix
of about a million characters, not a full tokenization. Rows are tokenized in batches of at most
BATCH rows and BATCH_CHARS characters, so no batch holds more than a few megabytes of text.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np

from studio.core.data.chunks import ChunkCounts, count_chunks
from studio.core.data.tokens import (
    PREFIX_CHARS_PER_TOKEN,
    PREFIX_MARGIN_TOKENS,
    Renderer,
    batch_encoder,
)

BATCH = 1000
BATCH_CHARS = 1_000_000  # tokenizing costs ~100 bytes of memory a character while a batch is encoded
LONGEST_KEPT = 64  # indices of the longest rows kept in the report (the preflight finds its own, after the split)
# Up to this many rows every row is tokenized. Beyond it (byte-level BPE runs at ~4 MB/s per core
# here, so 200 MB would take a minute on two cores) a seeded random sample of this many rows, plus
# the LONGEST_BY_CHARS longest rows, are tokenized exactly; the others are estimated from their
# character and turn counts with a fit on the sample. The report says which.
EXACT_ROWS = 50_000
EXACT_CHARS = 64_000_000  # ... and no more characters than this (≈ 50,000 rows of 1.3 KB)
LONGEST_BY_CHARS = 256
# The longest sequence length the studio offers (the Data page's limit): every row is counted
# exactly up to this many tokens, so the truncated share is exact for any sequence length.
EXACT_TOKENS = 131_072


@dataclass(frozen=True)
class TokenStats:
    rows: int
    total_tokens: int
    min: int
    median: float
    p95: float
    max: int
    mean: float
    seq_len: int
    truncated_rows: int  # rows longer than seq_len, which lose their end (chat data; raw text is chunked: 0)
    histogram: list[int] = field(default_factory=list)
    bin_edges: list[float] = field(default_factory=list)
    turns: int = 0  # user + assistant turns over all rows (chat data)
    longest_rows: list[int] = field(default_factory=list)  # dataset indices, longest first
    estimated_rows: int = 0  # rows whose length was estimated rather than counted (large datasets, long rows)
    long_rows: int = 0  # rows longer than EXACT_TOKENS tokens: a prefix counted, the rest estimated
    chunks: ChunkCounts | None = None  # raw text: the sequence-length chunks training makes (None for chat data)

    @property
    def truncated_share(self) -> float:
        return self.truncated_rows / self.rows if self.rows else 0.0

    def as_dict(self) -> dict:
        return {"rows": self.rows, "total_tokens": self.total_tokens, "min": self.min, "median": self.median,
                "p95": self.p95, "max": self.max, "mean": round(self.mean, 1), "seq_len": self.seq_len,
                "truncated_rows": self.truncated_rows, "truncated_share": round(self.truncated_share, 4),
                "turns": self.turns, "histogram": self.histogram, "bin_edges": self.bin_edges,
                "estimated_rows": self.estimated_rows, "long_rows": self.long_rows,
                **_chunk_fields(self.chunks)}


def _chunk_fields(chunks: ChunkCounts | None) -> dict:
    """Raw text: how many documents, the chunks training makes of them, how many are split, and the
    short last chunks left out (data/chunks.py); None for chat data."""
    if chunks is None:
        return {"documents": None, "chunks": None, "split_rows": None, "dropped_tails": None, "dropped_tail_tokens": None}
    return {"documents": chunks.documents, "chunks": chunks.chunks, "split_rows": chunks.split_documents,
            "dropped_tails": chunks.dropped_tails, "dropped_tail_tokens": chunks.dropped_tokens}


def _count_tokens(tokenizer, texts: list[str], add_special_tokens: bool, eos_id: int | None = None) -> list[int]:
    """Token counts of `texts`, through the Rust tokenizer's batch encoder (both cores, no offsets).
    With `eos_id`, a document that does not end with EOS counts one more (encode_text appends it)."""
    encode = batch_encoder(tokenizer)
    if encode is None:
        ids = tokenizer(texts, add_special_tokens=add_special_tokens)["input_ids"]
        return [len(x) + (0 if eos_id is None or (x and x[-1] == eos_id) else 1) for x in ids]
    encodings = encode(texts, add_special_tokens=add_special_tokens)
    if eos_id is None:
        return [len(e) for e in encodings]
    return [len(e) + (0 if len(e) and e.ids[-1] == eos_id else 1) for e in encodings]


def _lengths_of(batch: dict, chat: bool, tokenizer, renderer, eos_id) -> list[int]:
    if chat:
        return _count_tokens(tokenizer, renderer.render_many(batch["messages"], batch.get("tools")), add_special_tokens=False)
    return _count_tokens(tokenizer, batch["text"], add_special_tokens=True, eos_id=eos_id)


@dataclass
class Lengths:
    lengths: np.ndarray  # every row's token count
    estimated: np.ndarray  # bool per row: estimated (from the sample's fit, or beyond a long row's prefix)
    turns: int  # user and assistant turns over all rows (chat data)
    long_rows: int  # rows longer than EXACT_TOKENS tokens: counted up to there, estimated beyond


def row_sizes(dataset) -> tuple[np.ndarray, np.ndarray, int]:
    """Size (UTF-8 bytes of the text: characters, near enough) and turns of every row, and the number
    of system turns. Computed from Arrow's offsets: no row becomes a Python object, and the text
    itself is not even read."""
    import pyarrow.compute as pc

    chat = "messages" in dataset.column_names
    chars, turns, system = [], [], 0
    for table in dataset.with_format("arrow").iter(batch_size=BATCH * 50):
        for column in table.column("messages" if chat else "text").chunks:  # (combining them would copy the text)
            if not chat:
                chars.append(pc.fill_null(pc.binary_length(column), 0).to_numpy(zero_copy_only=False).astype(np.int64))
                turns.append(np.ones(len(column), dtype=np.int64))
                continue
            flat = pc.list_flatten(column)
            per_turn = pc.fill_null(pc.binary_length(pc.struct_field(flat, "content")), 0).to_numpy(zero_copy_only=False)
            parents = pc.list_parent_indices(column).to_numpy(zero_copy_only=False)
            chars.append(np.bincount(parents, weights=per_turn, minlength=len(column)).astype(np.int64))
            turns.append(pc.fill_null(pc.list_value_length(column), 0).to_numpy(zero_copy_only=False).astype(np.int64))
            system += int(pc.sum(pc.equal(pc.struct_field(flat, "role"), "system")).as_py() or 0)
    if not chars:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), 0
    return np.concatenate(chars), np.concatenate(turns), system


def long_row_chars(keep: int) -> int:
    """Rows with more characters than this are counted from a prefix (see tokens.tokenize_start)."""
    return (keep + PREFIX_MARGIN_TOKENS) * PREFIX_CHARS_PER_TOKEN


def _rows_to_count(chars: np.ndarray, keep: int) -> np.ndarray:
    """The rows tokenized exactly: all of them, or a seeded sample plus the longest rows."""
    n_rows = len(chars)
    cost = np.minimum(chars, long_row_chars(keep))
    if n_rows <= EXACT_ROWS and cost.sum() <= EXACT_CHARS:
        return np.arange(n_rows)
    rng = np.random.default_rng(0)
    chosen = rng.choice(n_rows, size=min(EXACT_ROWS, n_rows), replace=False)
    chosen = chosen[np.cumsum(cost[chosen]) <= EXACT_CHARS]
    longest = np.argsort(chars)[::-1][:LONGEST_BY_CHARS]
    longest = longest[np.cumsum(cost[longest]) <= EXACT_CHARS // 4]
    return np.unique(np.concatenate([chosen, longest, np.array([np.argmax(chars)])]))


def _batches(sizes: np.ndarray, long_chars: int):
    """(lo, hi) ranges of rows tokenized together: at most BATCH rows and BATCH_CHARS characters; a long row alone."""
    lo, total = 0, 0
    for i, size in enumerate(sizes.tolist()):
        alone = size > long_chars
        if i > lo and (alone or i - lo >= BATCH or total + size > BATCH_CHARS):
            yield lo, i
            lo, total = i, 0
        total += size
        if alone:
            yield i, i + 1
            lo, total = i + 1, 0
    if lo < len(sizes):
        yield lo, len(sizes)


def _rows(dataset, part: np.ndarray) -> dict:
    first, last = int(part[0]), int(part[-1])
    if last - first + 1 == len(part):
        return dataset[first:last + 1]
    return dataset[part.tolist()]


def _count_long(tokenizer, text: str, keep: int, add_special_tokens: bool, eos_id) -> tuple[int, bool]:
    """(tokens, exact) of one long text: exact up to `keep` tokens; beyond, the count of a prefix that
    holds more, scaled by the text's length (the rest is assumed to read like the prefix)."""
    size = long_row_chars(keep)
    while size < len(text):
        n = _count_tokens(tokenizer, [text[:size]], add_special_tokens)[0]
        if n > keep + PREFIX_MARGIN_TOKENS:
            return round(n * len(text) / size) + (eos_id is not None), False
        size *= 4
    return _count_tokens(tokenizer, [text], add_special_tokens, eos_id)[0], True


def _count_rows(dataset, idx: np.ndarray, chars: np.ndarray, tokenizer, renderer, keep: int):
    """Token counts of the rows `idx`, and which of them are estimates (long rows)."""
    chat = "messages" in dataset.column_names
    eos_id = tokenizer.eos_token_id
    counts = np.zeros(len(idx), dtype=np.int64)
    estimated = np.zeros(len(idx), dtype=bool)
    long_chars = long_row_chars(keep)
    for lo, hi in _batches(chars[idx], long_chars):
        part = idx[lo:hi]
        if hi - lo == 1 and chars[part[0]] > long_chars:
            row = dataset[int(part[0])]
            text = renderer.render(row["messages"], tools=row.get("tools")) if chat else row["text"]
            del row
            n, exact = _count_long(tokenizer, text, keep, not chat, None if chat else eos_id)
            counts[lo], estimated[lo] = n, not exact
        else:
            counts[lo:hi] = _lengths_of(_rows(dataset, part), chat, tokenizer, renderer, eos_id)
    return counts, estimated


def count_lengths(dataset, tokenizer, renderer: Renderer | None, exact_up_to: int = 0) -> Lengths:
    """Token count of every row as the model will see it (exact up to max(EXACT_TOKENS, exact_up_to)
    tokens a row, for EXACT_ROWS rows), the number of chat turns, and which counts are estimates."""
    keep = max(EXACT_TOKENS, exact_up_to)
    chars, row_turns, system_turns = row_sizes(dataset)
    n_rows = len(chars)
    turns = int(row_turns.sum()) - system_turns if "messages" in dataset.column_names else 0
    exact_idx = _rows_to_count(chars, keep)
    counted, long_estimated = _count_rows(dataset, exact_idx, chars, tokenizer, renderer, keep)
    estimated = np.ones(n_rows, dtype=bool)
    estimated[exact_idx] = long_estimated
    if len(exact_idx) == n_rows:
        return Lengths(counted, estimated, turns, int(long_estimated.sum()))
    # tokens ≈ a·chars + b·turns + c, fitted on the counted rows
    features = np.stack([chars[exact_idx], row_turns[exact_idx], np.ones(len(exact_idx))], axis=1).astype(float)
    coef, *_ = np.linalg.lstsq(features, counted.astype(float), rcond=None)
    every = np.stack([chars, row_turns, np.ones(n_rows)], axis=1).astype(float)
    lengths = np.maximum(1, np.rint(every @ coef)).astype(np.int64)
    lengths[exact_idx] = counted
    return Lengths(lengths, estimated, turns, int(long_estimated.sum()))


def token_lengths(dataset, tokenizer, renderer: Renderer | None) -> tuple[np.ndarray, int, int]:
    """Token count of every row, the number of chat turns, and how many counts are estimates."""
    counted = count_lengths(dataset, tokenizer, renderer)
    return counted.lengths, counted.turns, int(counted.estimated.sum())


def truncated_share(lengths: np.ndarray, seq_len: int) -> float:
    """The share of rows a sequence length would cut (0.0 for no rows), without tokenizing again."""
    return float((lengths > seq_len).mean()) if len(lengths) else 0.0


def summarize(lengths: np.ndarray, seq_len: int, turns: int = 0, bins: int = 30, estimated_rows: int = 0,
              long_rows: int = 0, chunked: bool = False) -> TokenStats:
    """`chunked`: raw text, whose long documents are cut into sequence-length chunks (nothing truncated)."""
    chunks = count_chunks(lengths, seq_len) if chunked else None
    if len(lengths) == 0:
        return TokenStats(0, 0, 0, 0.0, 0.0, 0, 0.0, seq_len, 0, chunks=chunks)
    low = min(int(lengths.min()), seq_len)
    high = max(int(lengths.max()), seq_len) + 1
    counts, edges = np.histogram(lengths, bins=bins, range=(low, high))
    longest = heapq.nlargest(min(LONGEST_KEPT, len(lengths)), range(len(lengths)), key=lengths.__getitem__)
    return TokenStats(
        rows=int(len(lengths)),
        total_tokens=int(lengths.sum()),
        min=int(lengths.min()),
        median=float(np.median(lengths)),
        p95=float(np.percentile(lengths, 95)),
        max=int(lengths.max()),
        mean=float(lengths.mean()),
        seq_len=seq_len,
        truncated_rows=0 if chunked else int((lengths > seq_len).sum()),
        histogram=[int(c) for c in counts],
        bin_edges=[float(e) for e in edges],
        turns=turns,
        longest_rows=[int(x) for x in longest],
        estimated_rows=estimated_rows,
        long_rows=long_rows,
        chunks=chunks,
    )
