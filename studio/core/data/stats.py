"""Token statistics of a loaded dataset: what the memory planner and the Data page need."""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np

from studio.core.data.tokens import Renderer

BATCH = 1000
LONGEST_KEPT = 64  # indices of the longest rows kept in the report (the preflight finds its own, after the split)
# Up to this many rows every row is tokenized. Beyond it (byte-level BPE runs at ~4 MB/s per core
# here, so 200 MB would take a minute on two cores) a seeded random sample of this many rows, plus
# the LONGEST_BY_CHARS longest rows, are tokenized exactly; the others are estimated from their
# character and turn counts with a fit on the sample. The report says which.
EXACT_ROWS = 50_000
LONGEST_BY_CHARS = 256


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
    truncated_rows: int  # rows longer than seq_len (cut for chat data; split for raw text)
    histogram: list[int] = field(default_factory=list)
    bin_edges: list[float] = field(default_factory=list)
    turns: int = 0  # user + assistant turns over all rows (chat data)
    longest_rows: list[int] = field(default_factory=list)  # dataset indices, longest first
    estimated_rows: int = 0  # rows whose length was estimated rather than counted (large datasets)

    @property
    def truncated_share(self) -> float:
        return self.truncated_rows / self.rows if self.rows else 0.0

    def as_dict(self) -> dict:
        return {"rows": self.rows, "total_tokens": self.total_tokens, "min": self.min, "median": self.median,
                "p95": self.p95, "max": self.max, "mean": round(self.mean, 1), "seq_len": self.seq_len,
                "truncated_rows": self.truncated_rows, "truncated_share": round(self.truncated_share, 4),
                "turns": self.turns, "histogram": self.histogram, "bin_edges": self.bin_edges,
                "estimated_rows": self.estimated_rows}


def _count_tokens(tokenizer, texts: list[str], add_special_tokens: bool, eos_id: int | None = None) -> list[int]:
    """Token counts of `texts`, through the Rust tokenizer's batch encoder (both cores, no offsets).
    With `eos_id`, a document that does not end with EOS counts one more (encode_text appends it)."""
    backend = getattr(tokenizer, "backend_tokenizer", None) or getattr(tokenizer, "_tokenizer", None)
    encode = getattr(backend, "encode_batch_fast", None) or getattr(backend, "encode_batch", None)
    if encode is None:
        ids = tokenizer(texts, add_special_tokens=add_special_tokens)["input_ids"]
        return [len(x) + (0 if eos_id is None or (x and x[-1] == eos_id) else 1) for x in ids]
    encodings = encode(texts, add_special_tokens=add_special_tokens)
    if eos_id is None:
        return [len(e) for e in encodings]
    return [len(e) + (0 if len(e) and e.ids[-1] == eos_id else 1) for e in encodings]


def _lengths_of(batch: dict, chat: bool, tokenizer, renderer, eos_id) -> list[int]:
    if chat:
        return _count_tokens(tokenizer, renderer.render_many(batch["messages"]), add_special_tokens=False)
    return _count_tokens(tokenizer, batch["text"], add_special_tokens=True, eos_id=eos_id)


def _size_features(dataset, chat: bool) -> tuple[np.ndarray, np.ndarray]:
    """Characters and turns of every row: cheap, and nearly proportional to the token count."""
    chars = np.zeros(len(dataset), dtype=np.int64)
    turns = np.zeros(len(dataset), dtype=np.int64)
    i = 0
    column = "messages" if chat else "text"
    for batch in dataset.iter(batch_size=5000):
        for row in batch[column]:
            if chat:
                chars[i] = sum(len(t["content"]) for t in row)
                turns[i] = len(row)
            else:
                chars[i] = len(row)
                turns[i] = 1
            i += 1
    return chars, turns


def token_lengths(dataset, tokenizer, renderer: Renderer | None) -> tuple[np.ndarray, int, int]:
    """Token count of every row as the model will see it, the number of chat turns, and how many
    of the counts are estimates (see EXACT_ROWS)."""
    n_rows = len(dataset)
    chat = "messages" in dataset.column_names
    eos_id = tokenizer.eos_token_id
    if n_rows <= EXACT_ROWS:
        lengths = np.zeros(n_rows, dtype=np.int64)
        turns = 0
        i = 0
        for batch in dataset.iter(batch_size=BATCH):
            n = _lengths_of(batch, chat, tokenizer, renderer, eos_id)
            if chat:
                turns += sum(sum(1 for t in m if t["role"] != "system") for m in batch["messages"])
            lengths[i:i + len(n)] = n
            i += len(n)
        return lengths, turns, 0

    chars, row_turns = _size_features(dataset, chat)
    rng = np.random.default_rng(0)
    sample = set(rng.choice(n_rows, size=EXACT_ROWS, replace=False).tolist())
    sample.update(np.argsort(chars)[-LONGEST_BY_CHARS:].tolist())
    exact_idx = np.array(sorted(sample), dtype=np.int64)
    exact = np.zeros(len(exact_idx), dtype=np.int64)
    for start in range(0, len(exact_idx), BATCH):
        part = exact_idx[start:start + BATCH]
        exact[start:start + len(part)] = _lengths_of(dataset[part], chat, tokenizer, renderer, eos_id)
    # tokens ≈ a·chars + b·turns + c, fitted on the exactly counted rows
    features = np.stack([chars[exact_idx], row_turns[exact_idx], np.ones(len(exact_idx))], axis=1).astype(float)
    coef, *_ = np.linalg.lstsq(features, exact.astype(float), rcond=None)
    every = np.stack([chars, row_turns, np.ones(n_rows)], axis=1).astype(float)
    lengths = np.maximum(1, np.rint(every @ coef)).astype(np.int64)
    lengths[exact_idx] = exact
    system_turns = 0
    if chat:  # turns without system messages: count them on the sample too
        system_turns = int(round(sum(1 for i in exact_idx.tolist()[:2000] for t in dataset[int(i)]["messages"] if t["role"] == "system")
                                 * n_rows / min(2000, len(exact_idx))))
    turns = int(row_turns.sum()) - system_turns if chat else 0
    return lengths, turns, n_rows - len(exact_idx)


def truncated_share(lengths: np.ndarray, seq_len: int) -> float:
    """The share of rows a sequence length would cut (0.0 for no rows), without tokenizing again."""
    return float((lengths > seq_len).mean()) if len(lengths) else 0.0


def summarize(lengths: np.ndarray, seq_len: int, turns: int = 0, bins: int = 30, estimated_rows: int = 0) -> TokenStats:
    if len(lengths) == 0:
        return TokenStats(0, 0, 0, 0.0, 0.0, 0, 0.0, seq_len, 0)
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
        truncated_rows=int((lengths > seq_len).sum()),
        histogram=[int(c) for c in counts],
        bin_edges=[float(e) for e in edges],
        turns=turns,
        longest_rows=[int(x) for x in longest],
        estimated_rows=estimated_rows,
    )
