"""Continued pretraining trains every token: a document longer than the sequence length becomes
consecutive chunks of seq_len tokens, each a training row of its own, instead of losing its end.

A document's tokens are the ones tokens.encode_text gives it (the tokenizer's special tokens at the
start, EOS at the end); the chunks are those tokens in order, seq_len at a time, the last one
shorter. The rule for that last chunk: it is kept unless the document had a full chunk before it
and the rest is shorter than MIN_TAIL_TOKENS tokens — such a scrap would train a handful of tokens
with almost no context, at the cost of a row; it is left out, and the report counts it.

Memory stays bounded: a document longer than PIECE_CHARS characters is tokenized a piece at a time
(each piece cut at a line break, else before a space, so that the tokens at a cut are those of the
whole text in all but rare cases), and documents are tokenized together in batches of at most
BATCH_CHARS characters. The ids are numpy arrays: a 50 MB document costs its ~12 M ids at 8 bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from studio.core.data.tokens import batch_encoder

MIN_TAIL_TOKENS = 16  # a document's last chunk shorter than this (after a full one) is left out
PIECE_CHARS = 1_000_000  # a longer document is tokenized a piece of about this size at a time
BATCH_CHARS = 1_000_000  # shorter documents are tokenized together, this many characters at a time
MAP_CHARS = 8_000_000  # the rows one training map batch reads: about this many characters at most
MAP_ROWS = 1000


@dataclass(frozen=True)
class ChunkCounts:
    """What cutting documents into sequence-length chunks makes of them (from their token counts)."""

    documents: int
    chunks: int  # training rows
    split_documents: int  # documents longer than seq_len: more than one chunk
    dropped_tails: int  # last chunks shorter than MIN_TAIL_TOKENS, left out
    dropped_tokens: int  # the tokens in them

    def as_dict(self) -> dict:
        return {"documents": self.documents, "chunks": self.chunks, "split_documents": self.split_documents,
                "dropped_tails": self.dropped_tails, "dropped_tokens": self.dropped_tokens}


def count_chunks(lengths: np.ndarray, seq_len: int) -> ChunkCounts:
    """The chunks `lengths` (each document's token count, EOS included) make at `seq_len`."""
    lengths = np.asarray(lengths, dtype=np.int64)
    full, tail = np.divmod(lengths, seq_len)
    dropped = (full > 0) & (tail > 0) & (tail < MIN_TAIL_TOKENS)
    chunks = full + (tail > 0) - dropped
    return ChunkCounts(int(len(lengths)), int(chunks.sum()), int((lengths > seq_len).sum()), int(dropped.sum()),
                       int(tail[dropped].sum()))


def document_chunks(ids: np.ndarray, seq_len: int) -> list[np.ndarray]:
    """One document's ids cut into consecutive chunks of seq_len (the rule for the last one above)."""
    chunks = [ids[start:start + seq_len] for start in range(0, len(ids), seq_len)]
    if len(chunks) > 1 and len(chunks[-1]) < MIN_TAIL_TOKENS:
        chunks.pop()
    return chunks


def document_ids(tokenizer, texts: list[str]) -> list[np.ndarray]:
    """Each document's token ids as training sees it whole: special tokens as the tokenizer adds them,
    and EOS at the end (as tokens.encode_text does)."""
    out: list[np.ndarray | None] = [None] * len(texts)
    group: list[int] = []
    size = 0
    for i, text in enumerate(texts):
        if len(text) > PIECE_CHARS:
            out[i] = _long_ids(tokenizer, text)
            continue
        if group and size + len(text) > BATCH_CHARS:
            _encode_group(tokenizer, texts, group, out)
            group, size = [], 0
        group.append(i)
        size += len(text)
    _encode_group(tokenizer, texts, group, out)
    return [_with_eos(tokenizer, ids) for ids in out]


def map_batch_rows(largest_chars: int) -> int:
    """Rows a training map batch may hold so that it reads about MAP_CHARS characters at most."""
    return int(max(1, min(MAP_ROWS, MAP_CHARS // max(1, largest_chars))))


def _encode_group(tokenizer, texts: list[str], group: list[int], out: list) -> None:
    if group:
        for i, ids in zip(group, _encode(tokenizer, [texts[i] for i in group], True), strict=True):
            out[i] = ids


def _long_ids(tokenizer, text: str) -> np.ndarray:
    parts = [_encode(tokenizer, [piece], first)[0] for first, piece in _pieces(text)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _pieces(text: str, size: int = PIECE_CHARS) -> Iterator[tuple[bool, str]]:
    """(is the first, piece) of a long text: pieces of at most `size` characters, cut after a line
    break or before a space in their second half where there is one."""
    start = 0
    while len(text) - start > size:
        end = start + size
        cut = text.rfind("\n", start + size // 2, end)
        if cut >= 0:
            cut += 1
        else:
            cut = text.rfind(" ", start + size // 2, end)
            cut = end if cut <= start else cut
        yield start == 0, text[start:cut]
        start = cut
    yield start == 0, text[start:]


def _encode(tokenizer, texts: list[str], add_special_tokens: bool) -> list[np.ndarray]:
    """Token ids through the Rust tokenizer's batch encoder where there is one (both cores, no offsets)."""
    encode = batch_encoder(tokenizer)
    if encode is None:
        ids = tokenizer(texts, add_special_tokens=add_special_tokens)["input_ids"]
    else:
        ids = [e.ids for e in encode(texts, add_special_tokens=add_special_tokens)]
    return [np.asarray(x, dtype=np.int64) for x in ids]


def _with_eos(tokenizer, ids: np.ndarray) -> np.ndarray:
    eos = tokenizer.eos_token_id
    if eos is None or (len(ids) and ids[-1] == eos):
        return ids
    return np.append(ids, np.int64(eos))
