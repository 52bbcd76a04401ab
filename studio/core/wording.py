"""How counts are said in messages — "1 row", "2 rows", "1 file of yours" — in one place, for the
core, the CLI and the window alike."""

from __future__ import annotations


def count(n: int, noun: str, plural: str | None = None) -> str:
    """`n` and the noun in the right number, with thousands separators: count(1, "step") → "1 step"."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"
