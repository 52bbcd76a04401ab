"""The scores of a run's base model and checkpoints, and the best checkpoint by a rule the user reads."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from studio.core.evaluation.metrics import SCORE

RULE = ("the best golden-question score (ROUGE-L of the answers against the expected ones), ties broken by "
        "the lower held-out loss; without golden questions, the lowest held-out loss")


@dataclass(frozen=True)
class TargetScores:
    """The scores of one model: the base (step None) or a checkpoint."""

    name: str  # "base" or "checkpoint-N"
    step: int | None
    heldout_loss: float | None  # mean loss per trained token on the run's held-out rows (None: no held-out rows)
    general_loss: float | None  # the same on resources/eval/general.txt: the forgetting check
    golden: dict  # the mean of each metric over the golden questions (metrics.mean_scores)
    answers: list = field(default_factory=list)  # [{"question", "expected", "answer", "exact", "f1", ...}]

    @property
    def perplexity(self) -> float | None:
        return None if self.heldout_loss is None else round(math.exp(min(self.heldout_loss, 50.0)), 3)

    @property
    def score(self) -> float | None:
        return self.golden.get(SCORE)

    def as_dict(self) -> dict:
        return {**asdict(self), "perplexity": self.perplexity, "score": self.score}


@dataclass(frozen=True)
class Scoreboard:
    run: str
    rows: list[TargetScores]  # the base first, then the checkpoints by step
    best: str | None  # the best checkpoint's name, by RULE
    questions: int  # golden questions scored
    skipped: list[str] = field(default_factory=list)  # checkpoints left out, with why
    complete: bool = True  # False when scoring was stopped: the rows so far are kept and it resumes
    rule: str = RULE
    held_as: str = ""  # how the base was held while scoring: "4bit", "float32", ... (answers differ between them)

    def row(self, name: str) -> TargetScores | None:
        return next((r for r in self.rows if r.name == name), None)

    def as_dict(self) -> dict:
        return {"run": self.run, "best": self.best, "rule": self.rule, "questions": self.questions, "complete": self.complete,
                "held_as": self.held_as, "skipped": self.skipped, "rows": [r.as_dict() for r in self.rows]}


def choose_best(rows: list[TargetScores]) -> str | None:
    """The checkpoint RULE picks (the base is never "best": it is what the run is measured against)."""
    checkpoints = [r for r in rows if r.step is not None]
    scored = [r for r in checkpoints if r.score is not None]
    if scored:
        return max(scored, key=lambda r: (r.score, -(r.heldout_loss if r.heldout_loss is not None else math.inf))).name
    with_loss = [r for r in checkpoints if r.heldout_loss is not None]
    return min(with_loss, key=lambda r: r.heldout_loss).name if with_loss else None
