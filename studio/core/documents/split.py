"""Training and evaluation drawn apart by document, before anything is generated: every pair made from
an evaluation document is held out, so no question about a held-out text can teach the model its answer.
Then the two sides are checked for text they share anyway (the same paragraph in two files, a copied
page): runs of words that occur on both sides are reported with where they are."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from studio.core.documents.chunking import Chunk

SHINGLE = 8  # words: a run this long found on both sides is shared text, not chance


@dataclass(frozen=True)
class Split:
    train: tuple[str, ...]  # document names
    eval: tuple[str, ...]
    shared: tuple[tuple[str, str, int], ...]  # (a training chunk's source, an evaluation chunk's source, runs shared)


def split_documents(names: list[str], eval_fraction: float, seed: int = 0) -> tuple[list[str], list[str]]:
    """(training, evaluation) document names: a stable draw by each name's hash (the same files split
    the same way on every run), at least one document on each side when there are two or more."""
    if eval_fraction <= 0 or len(names) < 2:
        return list(names), []
    ranked = sorted(names, key=lambda n: hashlib.sha1(f"{seed}:{n}".encode()).hexdigest())
    held = min(len(names) - 1, max(1, round(len(names) * eval_fraction)))
    held_out = set(ranked[:held])
    return [n for n in names if n not in held_out], [n for n in names if n in held_out]


def shared_text(train: list[Chunk], held_out: list[Chunk]) -> list[tuple[str, str, int]]:
    """Pairs of a training and an evaluation chunk that share runs of SHINGLE words, most first."""
    index: dict[tuple[str, ...], set[int]] = {}
    for i, chunk in enumerate(train):
        for run in _runs(chunk.text):
            index.setdefault(run, set()).add(i)
    counts: dict[tuple[int, int], int] = {}
    for j, chunk in enumerate(held_out):
        for run in _runs(chunk.text):
            for i in index.get(run, ()):
                counts[(i, j)] = counts.get((i, j), 0) + 1
    found = [(train[i].source, held_out[j].source, n) for (i, j), n in counts.items()]
    return sorted(found, key=lambda f: -f[2])


def _runs(text: str) -> set[tuple[str, ...]]:
    words = [w.strip(".,;:!?\"'()").casefold() for w in text.split()]
    words = [w for w in words if w]
    return {tuple(words[k:k + SHINGLE]) for k in range(len(words) - SHINGLE + 1)}
