"""Every generated question–answer pair is checked against its chunk, never silently: the quote is in
the chunk (its span is kept, for the review's highlight), every number in the answer is in the chunk
(with its unit, where it has one), the question stands on its own (no "the text above"), and the
pair is not a near-duplicate of an earlier one. Each failed check is a reason shown on the row."""

from __future__ import annotations

import re
from dataclasses import dataclass

# one character for one, so that positions in the normalised text are positions in the original
_SAME = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "„": '"', "–": "-", "—": "-", "\u00a0": " "})
UNITS = {"mm", "cm", "m", "km", "mg", "g", "kg", "t", "ml", "l", "%", "°c", "°f", "°", "c", "f", "w", "kw", "v", "a",
         "s", "min", "h", "day", "days", "week", "weeks", "month", "months", "year", "years", "hour", "hours",
         "minute", "minutes", "second", "seconds", "tage", "tag", "wochen", "monate", "jahre", "stunden", "minuten"}
REFERS_TO_TEXT = re.compile(
    r"\b(the|this|that|above|following|given|provided)\s+(text|passage|excerpt|chunk|document|section|paragraph|"
    r"article|context)\b|\baccording to (it|the author)\b|\b(mentioned|described|stated) above\b|"
    r"\b(im|dem|diesem|obigen) (text|abschnitt|dokument)\b|\boben genannt", re.IGNORECASE)
NEAR_DUPLICATE = 90  # rapidfuzz's ratio (0–100) of two questions at or above which the later one is merged


@dataclass(frozen=True)
class Checked:
    quote_span: tuple[int, int] | None  # where the quote is in the chunk's text
    failed: tuple[str, ...]  # the reasons, in people's words; empty when every check passed


def check_pair(question: str, answer: str, quote: str, chunk_text: str) -> Checked:
    span = quote_span(quote, chunk_text)
    failed = []
    if not question.strip() or not answer.strip():
        failed.append("the question or the answer is empty")
    if span is None:
        failed.append("its quote is not in the source text" if quote.strip() else "it has no quote from the source")
    missing = missing_numbers(answer, chunk_text)
    if missing:
        failed.append(f"the answer's {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not in the source text")
    if REFERS_TO_TEXT.search(question):
        failed.append("the question refers to the text instead of standing on its own")
    return Checked(span, tuple(failed))


def quote_span(quote: str, text: str) -> tuple[int, int] | None:
    """Where the quote stands in the text: word for word, whatever the spaces, line breaks, case and
    typographic quotes between them."""
    words = quote.translate(_SAME).split()
    if not words:
        return None
    pattern = r"\s+".join(re.escape(w) for w in words)
    found = re.search(pattern, text.translate(_SAME), re.IGNORECASE)
    if found is None:  # a quote that dropped its final full stop or comma
        trimmed = [w.rstrip(".,;:!?") for w in words]
        found = re.search(r"\s+".join(re.escape(w) for w in trimmed), text.translate(_SAME), re.IGNORECASE)
    return (found.start(), found.end()) if found else None


def missing_numbers(answer: str, text: str) -> list[str]:
    """The answer's numbers (with their units) that the text does not have: "3 weeks" where the text
    says "3 days" is missing, "3" where it says "3 days" is not."""
    have = {(number, unit) for number, unit, _ in _numbers(text)}
    plain = {number for number, _ in have}
    missing = []
    for number, unit, shown in _numbers(answer):
        found = (number, unit) in have or (number, "") in have if unit else number in plain
        if not found:
            missing.append(shown)
    return list(dict.fromkeys(missing))


def _numbers(text: str) -> list[tuple[str, str, str]]:
    """(number, unit — a known one, singular —, the words as written) of each number in the text."""
    out = []
    for m in re.finditer(r"(?<![\w.])(\d+(?:[.,]\d+)?)\s*(%|°\s?[cf]?|[a-zäöü]+)?", text.translate(_SAME), re.IGNORECASE):
        number = m.group(1).replace(",", ".")
        unit = (m.group(2) or "").lower().replace(" ", "")
        unit = unit if unit in UNITS else ""
        singular = unit[:-1] if len(unit) > 3 and unit.endswith("s") else unit  # days → day
        out.append((number, singular, f"{m.group(1)} {m.group(2)}" if unit else m.group(1)))
    return out


def near_duplicates(questions: list[str]) -> dict[int, int]:
    """{index: index of the earlier question it repeats} for questions that say the same thing in
    (almost) the same words (rapidfuzz's token-set ratio)."""
    from rapidfuzz import fuzz, process

    normalised = [" ".join(q.casefold().split()) for q in questions]
    repeats: dict[int, int] = {}
    for i, q in enumerate(normalised):
        if i in repeats or not q:
            continue
        for _, _score, j in process.extract(q, normalised[i + 1:], scorer=fuzz.token_set_ratio, limit=None,
                                           score_cutoff=NEAR_DUPLICATE):
            repeats.setdefault(i + 1 + j, i)
    return repeats
