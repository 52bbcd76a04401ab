"""Scores while a run trains: when the run has golden questions, the worker scores the model as each
checkpoint is saved (and the base model once, before the first step), writes the row to
eval/scores.json — where `studio eval` finds it and does not score it again — and the event `eval`
with the scores, which the Train page plots beside the loss. A run that stops early keeps the scores
of every checkpoint it saved, and the best checkpoint so far is kept when older ones are deleted
(Trainer's rotation spares `state.best_model_checkpoint`)."""

from __future__ import annotations

from pathlib import Path

from studio.core.errors import StudioError
from studio.core.evaluation.measures import Measures, general_rows, heldout_rows
from studio.core.evaluation.metrics import METRICS
from studio.core.evaluation.questions import load_questions, run_questions, save_questions
from studio.core.evaluation.saved import add_row, saved_rows, scores_key
from studio.core.evaluation.scoreboard import TargetScores, choose_best


def run_golden_questions(run_dir: Path, source: str | None) -> tuple[list, list]:
    """The run's golden questions: read from `source` (the recipe's data.questions) and saved with the
    run, or those it saved before (a resumed run); and the rows of `source` left out, with why."""
    if source:
        questions, problems = load_questions(source)
        if not questions:
            raise StudioError(f"{source} holds no question with an expected answer.",
                              "Give a file of questions and the answers you expect, or leave the golden questions out.",
                              topic="data")
        save_questions(run_dir, questions)
        return questions, problems
    return run_questions(run_dir) or [], []


class CheckpointScoring:
    """Scores the model of a training run on its golden questions (main process only)."""

    def __init__(self, run_dir: Path, questions: list, tokenizer, held_out, held_as: str):
        self.run_dir = Path(run_dir)
        self.tokenizer = tokenizer
        self.key = scores_key(questions, held_as)
        self.measures = Measures(questions, heldout_rows(held_out), general_rows(tokenizer))

    @property
    def count(self) -> int:
        return len(self.measures.questions)

    def has(self, name: str) -> bool:
        return name in saved_rows(self.run_dir, self.key)

    def score(self, model, name: str, step: int | None) -> TargetScores:
        """Score `model` as it is now ("base": with its adapter switched off) and save the row."""
        if step is None and hasattr(model, "disable_adapter"):
            with model.disable_adapter():
                row = self.measures.score(model, self.tokenizer, None, name, step)
        else:
            row = self.measures.score(model, self.tokenizer, None, name, step)
        add_row(self.run_dir, self.key, row)
        return row


    def best(self) -> str | None:
        """The best checkpoint scored so far (scoreboard.RULE)."""
        return choose_best(list(saved_rows(self.run_dir, self.key).values()))


def event_fields(row: TargetScores) -> dict:
    """The `eval` event of a scored model: its step (0 for the base), the golden-question metrics and
    the forgetting check. `checkpoint` names the row in eval/scores.json."""
    fields = {"step": row.step or 0, "checkpoint": row.name, "general_loss": row.general_loss}
    fields.update({k: row.golden.get(k) for k in METRICS})
    return fields
