"""What every model of a run is scored on, and the scoring of one model: the same questions, held-out
rows and general text for the base and each checkpoint, whether `studio eval` scores a finished run or
the worker scores a checkpoint as it is saved.

    held-out loss  mean loss per trained token on the run's held-out rows (at most HELD_OUT_ROWS)
    general loss   the same on resources/eval/general.txt: the forgetting check
    golden         greedy answers to the golden questions, scored against the expected answers
"""

from __future__ import annotations

from dataclasses import dataclass

from studio.core.evaluation.metrics import mean_scores, score_answer
from studio.core.evaluation.questions import GoldenQuestion
from studio.core.evaluation.scoreboard import TargetScores

HELD_OUT_ROWS = 64  # held-out rows scored at most (the loss of a sample: scoring stays minutes, not hours)
MAX_ANSWER_TOKENS = 384

Rows = list[tuple[list[int], list[int]]]  # (input ids, labels with -100 where nothing is trained)


@dataclass
class Measures:
    questions: list[GoldenQuestion]
    heldout: Rows  # [] when the run held nothing out
    general: Rows
    judge: object | None = None  # judge.Judge: grades each answer 1-5 (a judge's opinion, off by default)

    def score(self, model, tokenizer, renderer, name: str, step: int | None) -> TargetScores:
        """`model` (as it is now: adapter on or off is the caller's business) scored on everything."""
        heldout = mean_loss(model, self.heldout) if self.heldout else None
        general = mean_loss(model, self.general)
        answers = [self.answer(model, tokenizer, renderer, q) for q in self.questions]
        if self.judge is not None:
            from studio.core.evaluation.judge import grade_answers

            grade_answers(self.judge, answers)
        return TargetScores(name, step, heldout, general, mean_scores(answers), answers)

    @staticmethod
    def answer(model, tokenizer, renderer, q: GoldenQuestion) -> dict:
        from studio.core.generate import GenerationSettings, generate, without_cut_note

        wanted = len(tokenizer(q.expected, add_special_tokens=False)["input_ids"])
        settings = GenerationSettings(max_new_tokens=min(MAX_ANSWER_TOKENS, max(32, 2 * wanted)))
        answer = generate(model, tokenizer, list(q.prompt), settings, renderer)  # shown with its "cut at" note
        scored = score_answer(without_cut_note(answer, settings), q.expected)  # scored on the model's words only
        return {"question": q.question, "expected": q.expected, "answer": answer, **scored}


def heldout_rows(held_out) -> Rows:
    """The first HELD_OUT_ROWS rows of a tokenized held-out split (training.dataset.tokenized_splits)."""
    if held_out is None:
        return []
    return [(row["input_ids"], row["labels"]) for row in held_out.select(range(min(len(held_out), HELD_OUT_ROWS)))]


def general_rows(tokenizer) -> Rows:
    """The shipped general text, a row per paragraph, every token predicted."""
    from studio.core.paths import resources_dir

    text = (resources_dir() / "eval" / "general.txt").read_text(encoding="utf-8")
    rows = []
    for paragraph in filter(None, (p.strip() for p in text.split("\n\n"))):
        ids = tokenizer(paragraph, add_special_tokens=True)["input_ids"]
        rows.append((ids, list(ids)))
    return rows


def mean_loss(model, rows: Rows) -> float:
    """Mean cross-entropy per predicted token over `rows`, in eval mode (the model's mode is restored)."""
    import torch

    device = next(model.parameters()).device
    was_training = getattr(model, "training", False)
    model.eval()
    total, count = 0.0, 0
    try:
        with torch.no_grad():
            for ids, labels in rows:
                predicted = sum(1 for label in labels[1:] if label != -100)
                if not predicted:
                    continue
                out = model(input_ids=torch.tensor([ids], device=device), labels=torch.tensor([labels], device=device))
                total += float(out.loss) * predicted
                count += predicted
    finally:
        if was_training:
            model.train()
    return round(total / count, 5) if count else float("nan")
