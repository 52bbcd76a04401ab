"""A benchmark's figures: printed, and appended to a Markdown file (benchmarks/RESULTS.md) when one is given."""

from __future__ import annotations

from pathlib import Path


def publish(text: str, results: Path | None) -> None:
    print(text)
    if results:
        with Path(results).open("a", encoding="utf-8") as f:
            f.write(text)
