"""One answer against its expected answer. ROUGE-L and token F1 (ROUGE-1's F-measure: the words the
two share) come from Google's `rouge-score` package, with a tokenizer that keeps every script's
letters (its default drops all but a–z and 0–9, which would empty German or Japanese text)."""

from __future__ import annotations

import re
from dataclasses import dataclass

METRICS = ("exact", "contains", "f1", "rouge_l")
SCORE = "rouge_l"  # the golden-question score the best checkpoint is chosen by
_WORDS = re.compile(r"\w+", re.UNICODE)


class _Words:
    """rouge-score's tokenizer interface: lower-cased words of any script."""

    def tokenize(self, text: str) -> list[str]:
        return _WORDS.findall(text.lower())


def _normal(text: str) -> str:
    return " ".join(_WORDS.findall(text.lower()))


def score_answer(answer: str, expected: str) -> dict:
    """{"exact", "contains", "f1", "rouge_l"} in [0, 1] and the answer's length in words."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rougeL"], tokenizer=_Words())
    scores = scorer.score(expected, answer)
    got, want = _normal(answer), _normal(expected)
    return {"exact": float(got == want), "contains": float(bool(want) and want in got),
            "f1": round(scores["rouge1"].fmeasure, 4), "rouge_l": round(scores["rougeL"].fmeasure, 4),
            "words": len(got.split())}


def mean_scores(scored: list[dict]) -> dict:
    """The mean of each metric (and of the answers' length) over the scored answers; with a judge's
    grades ("judge": 1-5, None where it gave none), their mean over the graded answers too."""
    keys = METRICS + ("words",)
    if not scored:
        return {k: None for k in keys}
    means = {k: round(sum(s[k] for s in scored) / len(scored), 4) for k in keys}
    if any("judge" in s for s in scored):
        grades = [s["judge"] for s in scored if s.get("judge") is not None]
        means["judge"] = round(sum(grades) / len(grades), 3) if grades else None
    return means


LOWER, HIGHER = "lower is better", "higher is better"


@dataclass(frozen=True)
class Measure:
    """What a number a run reports is, in words, and which way is better (the window's tables and plots)."""

    words: str
    direction: str  # LOWER or HIGHER
    about: str


MEASURES = {  # the numbers `eval` events carry besides the eval loss, the golden-question score first
    SCORE: Measure("Golden score (ROUGE-L)", HIGHER,
                   "ROUGE-L of the answers to your golden questions against the expected ones (0 to 1)."),
    "f1": Measure("Token F1", HIGHER, "The share of words the answers to your golden questions and the expected "
                                      "answers have in common (0 to 1)."),
    "contains": Measure("Contains the answer", HIGHER, "The share of answers to your golden questions that contain "
                                                       "the whole expected answer."),
    "exact": Measure("Exact answers", HIGHER, "The share of answers to your golden questions equal to the expected "
                                              "answer (case and punctuation aside)."),
    "judge": Measure("Judge's grade", HIGHER, "A local judge model's grade of the answers, 1 to 5: an opinion, "
                                              "not a measurement."),
    "general_loss": Measure("General loss (forgetting)", LOWER,
                            "The loss on ordinary text the studio ships: much higher than the base model's means "
                            "the fine-tune damaged what the model knew."),
}


def measure(name: str) -> Measure:
    """The words for a number an `eval` event carries (one the studio does not know: its name, and a
    loss is lower-is-better)."""
    return MEASURES.get(name) or Measure(name.replace("_", " ").capitalize(), LOWER if name.endswith("loss") else HIGHER,
                                         f"The number “{name}” the run's eval events carry.")


def best_point(curve: list[tuple[int, float]], direction: str) -> tuple[int, float] | None:
    """A score's best checkpoint (the first such step); step 0 is the base model, what a run is measured against."""
    checkpoints = [point for point in curve if point[0] > 0]
    if not checkpoints:
        return None
    pick = min if direction == LOWER else max
    return pick(checkpoints, key=lambda point: point[1])
