"""The expert's review of the generated pairs, and the dataset it makes.

Each pair is accepted, rejected or edited (an edited pair is accepted as edited and its checks run
again); the decisions live in OUT/review.json, so a review can stop and go on. "Accept every pair
that passes every check" is one call; `sample` draws rows at random to estimate the error rate of
what would be accepted. `write_dataset` writes the accepted pairs in the messages format:

    OUT/train.jsonl        the pairs of the training documents (for the Data page)
    OUT/eval.jsonl         the pairs of the evaluation documents: the golden questions
    OUT/provenance.jsonl   per row: its id, file, pages, chunk, quote and span, generator, prompt version

Closed book (the default): the user's turn is the question alone, so the model learns the facts.
Open book: the chunk goes into the user's turn before the question, so it learns to read for them.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from studio.core.atomic import write_jsonl, write_text
from studio.core.documents.checks import check_pair
from studio.core.documents.pipeline import Row, load_rows

ACCEPTED, REJECTED = "accepted", "rejected"


@dataclass
class Review:
    out: Path
    rows: list[Row]
    chunks: dict[str, dict]
    decisions: dict[str, str]  # row id → ACCEPTED / REJECTED

    @classmethod
    def open(cls, out: Path) -> Review:
        rows, chunks = load_rows(Path(out))
        saved = Path(out) / "review.json"
        state = json.loads(saved.read_text(encoding="utf-8")) if saved.is_file() else {}
        edits = state.get("edits", {})
        for row in rows:
            if row.id in edits:
                _apply(row, edits[row.id], chunks)
        return cls(Path(out), rows, chunks, dict(state.get("decisions", {})))

    def save(self) -> None:
        edits = {r.id: {"question": r.question, "answer": r.answer, "quote": r.quote} for r in self.rows
                 if r.edited}
        write_text(self.out / "review.json", json.dumps({"decisions": self.decisions, "edits": edits}, indent=1,
                                                        ensure_ascii=False))

    def decide(self, row_id: str, decision: str | None) -> None:
        if decision is None:
            self.decisions.pop(row_id, None)
        else:
            self.decisions[row_id] = decision
        self.save()

    def edit(self, row_id: str, question: str, answer: str, quote: str) -> Row:
        """The expert's own words for a pair: its checks run again, and it counts as accepted."""
        row = next(r for r in self.rows if r.id == row_id)
        _apply(row, {"question": question, "answer": answer, "quote": quote}, self.chunks)
        self.decisions[row_id] = ACCEPTED
        self.save()
        return row

    def accept_passing(self) -> int:
        """Accept every undecided pair that passes every check; returns how many."""
        fresh = [r.id for r in self.rows if r.passed and r.id not in self.decisions]
        self.decisions.update({i: ACCEPTED for i in fresh})
        self.save()
        return len(fresh)

    def sample(self, n: int = 30, seed: int = 0) -> list[Row]:
        """`n` pairs at random among those that pass every check: review them to estimate how many of
        the accepted would be wrong."""
        passing = [r for r in self.rows if r.passed]
        return random.Random(seed).sample(passing, min(n, len(passing)))

    def accepted(self) -> list[Row]:
        return [r for r in self.rows if self.decisions.get(r.id) == ACCEPTED]

    def write_dataset(self, open_book: bool = False) -> dict[str, int]:
        """The accepted pairs as OUT/train.jsonl and OUT/eval.jsonl (messages) with OUT/provenance.jsonl."""
        rows = self.accepted()
        counts = {}
        for side in ("train", "eval"):
            lines = [{"messages": self._messages(r, open_book)} for r in rows if r.side == side]
            write_jsonl(self.out / f"{side}.jsonl", lines)
            counts[side] = len(lines)
        chunk = self.chunks
        write_jsonl(self.out / "provenance.jsonl", ({
            "id": r.id, "side": r.side, "document": r.document, "source": r.source, "chunk_id": r.chunk_id,
            "pages": [chunk[r.chunk_id]["first_page"], chunk[r.chunk_id]["last_page"]], "quote": r.quote,
            "quote_span": r.quote_span, "generator": r.generator, "prompt_version": r.prompt_version,
            "edited": r.edited, "open_book": open_book} for r in rows))
        return counts

    def _messages(self, row: Row, open_book: bool) -> list[dict]:
        question = row.question
        if open_book:
            question = f"{self.chunks[row.chunk_id]['text']}\n\n{row.question}"
        return [{"role": "user", "content": question}, {"role": "assistant", "content": row.answer}]


def _apply(row: Row, fields: dict, chunks: dict[str, dict]) -> None:
    row.question, row.answer, row.quote = fields["question"], fields["answer"], fields["quote"]
    checked = check_pair(row.question, row.answer, row.quote, chunks[row.chunk_id]["text"])
    row.quote_span = list(checked.quote_span) if checked.quote_span else None
    row.failed = list(checked.failed)
    row.edited = True
