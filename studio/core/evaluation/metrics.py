"""One answer against its expected answer. ROUGE-L and token F1 (ROUGE-1's F-measure: the words the
two share) come from Google's `rouge-score` package, with a tokenizer that keeps every script's
letters (its default drops all but a–z and 0–9, which would empty German or Japanese text)."""

from __future__ import annotations

import re

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
    """The mean of each metric (and of the answers' length) over the scored answers."""
    keys = METRICS + ("words",)
    if not scored:
        return {k: None for k in keys}
    return {k: round(sum(s[k] for s in scored) / len(scored), 4) for k in keys}
