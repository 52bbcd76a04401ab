"""Token statistics of a loaded dataset: what the memory planner and the Data page need."""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np

from studio.core.data.tokens import Renderer

BATCH = 1000
LONGEST_KEPT = 64  # indices of the longest rows, for the worst-batch preflight


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

    @property
    def truncated_share(self) -> float:
        return self.truncated_rows / self.rows if self.rows else 0.0

    def as_dict(self) -> dict:
        return {"rows": self.rows, "total_tokens": self.total_tokens, "min": self.min, "median": self.median,
                "p95": self.p95, "max": self.max, "mean": round(self.mean, 1), "seq_len": self.seq_len,
                "truncated_rows": self.truncated_rows, "truncated_share": round(self.truncated_share, 4),
                "turns": self.turns, "histogram": self.histogram, "bin_edges": self.bin_edges}


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


def token_lengths(dataset, tokenizer, renderer: Renderer | None) -> tuple[np.ndarray, int]:
    """Token count of every row as the model will see it, and the number of chat turns."""
    lengths = np.zeros(len(dataset), dtype=np.int64)
    turns = 0
    i = 0
    chat = "messages" in dataset.column_names
    eos_id = tokenizer.eos_token_id
    for batch in dataset.iter(batch_size=BATCH):
        if chat:
            conversations = batch["messages"]
            texts = renderer.render_many(conversations)
            turns += sum(sum(1 for t in m if t["role"] != "system") for m in conversations)
            n = _count_tokens(tokenizer, texts, add_special_tokens=False)
        else:
            n = _count_tokens(tokenizer, batch["text"], add_special_tokens=True, eos_id=eos_id)
        lengths[i:i + len(n)] = n
        i += len(n)
    return lengths, turns


def summarize(lengths: np.ndarray, seq_len: int, turns: int = 0, bins: int = 30) -> TokenStats:
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
    )
