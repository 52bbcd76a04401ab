"""Preference data: a prompt with a chosen and a rejected answer, or answers labelled good or bad.

Supervised training learns the chosen answer only; the rejected one is kept with the row (for
preference tuning) and never trained. Rows labelled undesirable (KTO's `label: false`) are left out
and counted. The layouts read:

  TRL, explicit prompt   prompt + chosen + rejected, as texts or as message lists
  TRL, implicit prompt   chosen + rejected, full conversations that share their prompt turns
  hh-rlhf                chosen + rejected texts of "\\n\\nHuman: …\\n\\nAssistant: …" turns
  LLaMA-Factory ranking  conversations (ending on the user) + chosen/rejected single messages;
                         alpaca instruction/input + chosen/rejected texts
  paired columns         response_j (better) / response_k, chosen_response / rejected_response
  KTO                    a conversation or prompt/completion with a true/false `label`
"""

from __future__ import annotations

import re

# (chosen, rejected) column names, the better answer first.
PAIRS = (("chosen", "rejected"), ("response_j", "response_k"), ("chosen_response", "rejected_response"),
         ("preferred", "dispreferred"))
LABELS = ("label", "kto_tag", "desirable")  # KTO: true for a desirable answer, false for an undesirable one
# Columns never proposed as the answer to train on.
NOT_ANSWERS = frozenset(r for _, r in PAIRS) | frozenset(LABELS) | {"rejected_score", "chosen_score", "score_chosen",
                                                                     "score_rejected"}
HH_TURN = re.compile(r"(?:^|\n\n)(Human|Assistant):[ \t]?")


def detect(lower: dict[str, str], samples: list[dict]) -> dict:
    """{"chosen", "rejected"} and/or {"label"}: the preference columns of the data (real names), if any."""
    found = {}
    pair = next(((c, r) for c, r in PAIRS if c in lower and r in lower), None)
    if pair:
        found = {"chosen": lower[pair[0]], "rejected": lower[pair[1]]}
    label = next((lower[k] for k in LABELS if k in lower), None)
    if label and all(isinstance(row.get(label), bool) for row in samples if label in row):
        found["label"] = label
    return found


def check_label(rec, column: str) -> None:
    """A row labelled undesirable is left out (a warning, counted); a label that is not true/false is an error."""
    value = rec.data.get(column)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        value = value.strip().lower() == "true"
    if value is True:
        return
    if value is False:
        raise rec.reject(column, f"Labelled undesirable ({column}: false): left out of training.",
                         "Nothing to do: supervised training learns only the desirable answers.", "undesirable", "warning")
    raise rec.reject(column, f"'{column}' is {value!r}, not true or false.", f"Write '{column}' as true or false.", "bad_label")


def add_answers(rec, choice, turns: list[dict]) -> tuple[list[dict], list[dict] | None]:
    """(the conversation ending on the chosen answer, the rejected answer's turns)."""
    chosen = answer_turns(rec, choice.chosen)
    rejected = answer_turns(rec, choice.rejected, required=False) if choice.rejected else None
    if any(t["role"] == "user" for t in chosen):  # whole conversations: the prompt is what both share
        cut = _prompt_end(chosen, rejected or [])
        if cut == 0:
            raise rec.reject(choice.chosen, f"'{choice.chosen}' holds a conversation whose answer cannot be told apart "
                             "from its prompt.", "End it on the assistant's answer.", "bad_preference")
        system = [t for t in turns if t["role"] == "system"] if chosen[0]["role"] != "system" else []
        turns, shared = system + chosen[:cut], chosen[:cut]
        chosen = chosen[cut:]
        if rejected is not None:
            rejected = rejected[cut:] if rejected[:cut] == shared else [t for t in rejected if t["role"] != "user"][-1:]
    if not rejected and choice.rejected:
        rec.warn(choice.rejected, "This row has no rejected answer: it trains as usual, but preference tuning will "
                 "leave it out.", f"Fill in '{choice.rejected}'.", "no_rejected")
        rejected = None
    elif rejected and said(rejected) == said(chosen):
        rec.warn(choice.rejected, "The rejected answer is the same as the chosen one: the row trains as usual, but "
                 "preference tuning will leave it out (there is nothing to prefer).",
                 f"Write a worse answer in '{choice.rejected}', or remove it.", "same_answers")
        rejected = None
    return turns + chosen, rejected


def said(turns: list[dict]) -> list[tuple]:
    """What a list of answer turns says, for telling two answers apart (whitespace aside)."""
    return [(t["role"], str(t.get("content") or "").strip(), str(t.get("tool_calls") or "")) for t in turns]


def _prompt_end(chosen: list[dict], rejected: list[dict]) -> int:
    """Where the answer starts: after the last user turn the two conversations share (after the last
    user turn of `chosen` when they share none, as in a conversation with no rejected answer)."""
    shared = 0
    while shared < min(len(chosen), len(rejected)) and chosen[shared] == rejected[shared]:
        shared += 1
    users = [i for i, t in enumerate(chosen[:shared or len(chosen)]) if t["role"] == "user"]
    return users[-1] + 1 if users else 0


def answer_turns(rec, column: str, *, required: bool = True) -> list[dict]:
    """The turns of a chosen or rejected value: a text (hh-rlhf's Human:/Assistant: turns, or one
    answer), one message, or a list of messages."""
    from studio.core.data import convert

    value = rec.data.get(column)
    if value in (None, "", []):
        if not required:
            return []
        raise rec.reject(column, f"The chosen answer ('{column}') is empty.", f"Fill in '{column}', or remove this row.",
                         "empty_response")
    if isinstance(value, str):
        return _hh_turns(value) or [convert.turn("assistant", value)]
    if isinstance(value, dict):
        return [convert.read_turn(rec, value, column, 0)]
    return convert.chat_turns(rec, None, column, value)


def _hh_turns(text: str) -> list[dict]:
    """Anthropic hh-rlhf's "\\n\\nHuman: …\\n\\nAssistant: …" text as turns; [] when it is not one."""
    from studio.core.data import convert

    marks = list(HH_TURN.finditer(text))
    if len(marks) < 2 or marks[0].start() != 0 and text[:marks[0].start()].strip():
        return []
    turns = []
    for mark, after in zip(marks, marks[1:] + [None], strict=True):
        body = text[mark.end():after.start() if after else len(text)].strip()
        turns.append(convert.turn("user" if mark.group(1) == "Human" else "assistant", body))
    return turns
