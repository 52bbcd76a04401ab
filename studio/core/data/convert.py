"""One record of the user's file → one row of the studio's shape, or the problem that stops it.

A chat row is {"messages": [turn, ...], "tools": JSON text or None, "rejected": [turn, ...] or None};
a turn is {"role": system|user|assistant|tool, "content", "tool_calls": JSON text or None,
"reasoning": text or None, "train": False for an answer that is not trained (an empty one), else None}.
A text row is {"text"}. What each format's record holds is formats.py's part; tool calls are read by
tool_calls.py, chosen and rejected answers by preference.py.
"""

from __future__ import annotations

import json
import re

from studio.core.data import preference, tool_calls
from studio.core.data.formats import FormatChoice
from studio.core.data.problems import ERROR, WARNING, Problem

ROLE_NAMES = {
    "user": "user", "human": "user", "prompter": "user", "customer": "user",
    "assistant": "assistant", "gpt": "assistant", "bot": "assistant", "model": "assistant", "chatgpt": "assistant",
    "system": "system", "developer": "system",
    "tool": "tool", "function": "tool", "observation": "tool", "ipython": "tool", "tool_response": "tool",
    "function_call": "call",  # ShareGPT (LLaMA-Factory): the assistant's call, as JSON in its value
}
# Placeholders that stand for an image, a video or a sound in multimodal data.
MEDIA_PLACEHOLDER = re.compile(r"<\|?(image|video|audio)(_\d+)?\|?>")
REASONING_KEYS = ("reasoning_content", "reasoning", "thinking")


class RowRejected(Exception):
    """A record that cannot be used; carries the problem to report (a warning: left out on purpose)."""

    def __init__(self, problem: Problem):
        super().__init__(problem.message)
        self.problem = problem


class Record:
    """One record being converted: where it is, and the warnings it collects."""

    def __init__(self, data: dict, line, file):
        self.data, self.line, self.file = data, line, file
        self.warnings: list[Problem] = []
        self.media = False  # the row shows an image, video or sound the model cannot see

    def reject(self, field, message: str, fix: str, kind: str, severity: str = ERROR) -> RowRejected:
        return RowRejected(Problem(self.line, field, message, fix, severity, self.file, kind))

    def warn(self, field, message: str, fix: str, kind: str) -> None:
        self.warnings.append(Problem(self.line, field, message, fix, WARNING, self.file, kind))

    def text(self, value, field: str, *, required: bool = True) -> str:
        """The text in `value`, with a problem for anything else (numbers become text, with a warning)."""
        if isinstance(value, str):
            return value
        if value is None:
            if not required:
                return ""
            raise self.reject(field, f"'{field}' is empty (null).", f"Fill in '{field}' or remove this row.", "null_value")
        if isinstance(value, bool):
            raise self.reject(field, f"'{field}' is {str(value).lower()}, not text.", f"Write '{field}' as text.", "wrong_type")
        if isinstance(value, (int, float)):
            self.warn(field, f"'{field}' is the number {value}, not text: it is used as \"{value}\".",
                      f"Put '{field}' in quotes in the file to make it text.", "number_as_text")
            return str(value)
        if isinstance(value, list) and value and all(isinstance(p, dict) and p.get("type") == "text" for p in value):
            return "".join(str(p.get("text", "")) for p in value)  # OpenAI's list of content parts
        kind = "a list" if isinstance(value, list) else "an object" if isinstance(value, dict) else type(value).__name__
        raise self.reject(field, f"'{field}' is {kind}, where text is expected.", f"Make '{field}' a single piece of text.",
                          "wrong_type")


def turn(role: str, content: str, tool_calls: list | None = None, reasoning: str | None = None, train=None) -> dict:
    """A stored turn (every key present: the Arrow file has one shape)."""
    calls = json.dumps(tool_calls, ensure_ascii=False) if tool_calls else None
    return {"role": role, "content": content, "tool_calls": calls, "reasoning": reasoning or None, "train": train}


def to_conversation(data: dict, choice: FormatChoice, line, file) -> tuple[dict, list[Problem]]:
    """Convert one record; raise RowRejected with the problem when it cannot be used."""
    rec = Record(data, line, file)
    if choice.label:
        preference.check_label(rec, choice.label)
    turns: list[dict] = []
    if choice.system and data.get(choice.system) not in (None, ""):
        turns.append(turn("system", rec.text(data[choice.system], choice.system)))
    if choice.format in ("alpaca", "prompt_completion"):
        turns += pair_turns(rec, choice)
    elif choice.format in ("sharegpt", "messages"):
        turns += chat_turns(rec, choice) if choice.messages_key else []
    else:
        raise ValueError(f"not a chat format: {choice.format}")
    rejected = None
    if choice.chosen:
        turns, rejected = preference.add_answers(rec, choice, turns)
    tools = _tools(rec, choice)
    _check_media(rec, choice, turns)
    check_turns(rec, turns, ends_on_answer=True)
    return {"messages": turns, "tools": tools, "rejected": rejected}, rec.warnings


def _tools(rec: Record, choice: FormatChoice) -> str | None:
    if not choice.tools:
        return None
    try:
        tools = tool_calls.normalize_tools(rec.data.get(choice.tools))
    except tool_calls.BadToolData as bad:
        raise rec.reject(choice.tools, f"The tool schema cannot be read: {bad}.",
                         f"Write '{choice.tools}' as a JSON list of function schemas (name, description, parameters).",
                         "bad_tools") from None
    return json.dumps(tools, ensure_ascii=False) if tools else None


def pair_turns(rec: Record, choice: FormatChoice) -> list[dict]:
    """A prompt and its response, after the history's pairs (alpaca: `input` joined to the prompt);
    no response when the answers are preference columns (preference.py adds them)."""
    turns = history_turns(rec)
    prompt = rec.text(required(rec, choice.prompt), choice.prompt)
    if choice.format == "alpaca":
        extra = rec.text(rec.data.get("input"), "input", required=False)
        if extra.strip():
            prompt = f"{prompt}\n\n{extra}" if prompt.strip() else extra
    turns.append(turn("user", prompt))
    if not choice.chosen:
        turns.append(turn("assistant", rec.text(required(rec, choice.response), choice.response)))
    return turns


def required(rec: Record, key: str):
    if key not in rec.data:
        raise rec.reject(key, f"This row has no '{key}'.", f"Add '{key}' to the row or remove the row.", "missing_field")
    return rec.data.get(key)


def history_turns(rec: Record) -> list[dict]:
    """`history`: earlier [question, answer] pairs of the conversation (alpaca, ms-swift's query/response)."""
    turns = []
    history = rec.data.get("history")
    history = history if history not in ("", None) else []
    if isinstance(history, str):
        try:
            history = json.loads(history)
        except json.JSONDecodeError:
            history = None
    for i, pair in enumerate(history if isinstance(history, list) else [None]):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            raise rec.reject(f"history[{i}]", "Each history entry must be a [question, answer] pair.",
                             "Write history as a list of two-item lists.", "bad_history")
        turns.append(turn("user", rec.text(pair[0], f"history[{i}][0]")))
        turns.append(turn("assistant", rec.text(pair[1], f"history[{i}][1]")))
    return turns


def chat_turns(rec: Record, choice: FormatChoice, key: str | None = None, raw=None) -> list[dict]:
    """The turns of a messages (role/content) or sharegpt (from/value) conversation."""
    key = key or choice.messages_key
    raw = rec.data.get(key) if raw is None else raw
    if not isinstance(raw, list) or not raw:
        what = "missing" if raw is None else "empty" if raw == [] else f"a {type(raw).__name__}, not a list of turns"
        raise rec.reject(key, f"'{key}' is {what}.", f"Give each row a list of turns in '{key}'.", "no_turns")
    turns: list[dict] = []
    for i, item in enumerate(raw):
        one = read_turn(rec, item, f"{key}[{i}]", i)
        if one["role"] == "assistant" and one["tool_calls"] and turns and turns[-1]["role"] == "assistant" \
                and not turns[-1]["tool_calls"] and not one["content"]:
            turns[-1] = {**turns[-1], "tool_calls": one["tool_calls"]}  # words, then the call: one answer
        else:
            turns.append(one)
    return turns


def read_turn(rec: Record, item, where: str, i: int) -> dict:
    """One turn in either style ({role, content} or {from, value}), tool calls and reasoning included."""
    if not isinstance(item, dict):
        raise rec.reject(where, f"Turn {i + 1} is not an object.", "Write each turn as {\"role\": ..., \"content\": ...}.",
                         "bad_turn")
    role_key, text_key = ("from", "value") if "from" in item and "role" not in item else ("role", "content")
    role_raw = item.get(role_key)
    role = ROLE_NAMES.get(str(role_raw).strip().lower()) if role_raw is not None else None
    if role is None:
        raise rec.reject(f"{where}.{role_key}", f"Turn {i + 1} has the role '{role_raw}', which the studio does not read.",
                         "Use user, assistant, system or tool (ShareGPT: human, gpt, system, function_call, observation).",
                         "unknown_role")
    try:
        return _turn_of(rec, role, item, item.get(text_key), f"{where}.{text_key}")
    except tool_calls.BadToolData as bad:
        raise rec.reject(where, f"Turn {i + 1}: {bad}.", "Write tool calls as {\"name\": ..., \"arguments\": {...}} "
                         "(arguments as an object, or as a JSON string of one).", "bad_tool_call") from None


def _turn_of(rec: Record, role: str, item: dict, value, field: str) -> dict:
    calls = []
    if role == "call":  # ShareGPT's function_call: the value is the call itself
        return turn("assistant", "", tool_calls.normalize_calls(value))
    reasoning = next((item[k] for k in REASONING_KEYS if isinstance(item.get(k), str) and item[k].strip()), None)
    if isinstance(value, list) and value and any(isinstance(p, dict) and p.get("type") not in (None, "text") for p in value):
        parts = tool_calls.read_parts(value)
        text = "".join(parts["text"] + parts["results"])
        reasoning = "\n".join(parts["reasoning"]) or reasoning
        calls, rec.media = parts["calls"], rec.media or bool(parts["media"])
    else:
        text = rec.text(value, field, required=role in ("user", "system"))
    if item.get("tool_calls"):
        calls += tool_calls.normalize_calls(item["tool_calls"])
    if item.get("function_call"):  # OpenAI's older single call
        calls += tool_calls.normalize_calls(item["function_call"])
    if calls and role != "assistant":
        raise rec.reject(field, f"A {role} turn holds tool calls; only the assistant calls tools.",
                         "Move the calls to the assistant's turn that makes them.", "bad_tool_call")
    return turn(role, text, calls, reasoning if role == "assistant" else None)


def _check_media(rec: Record, choice: FormatChoice, turns: list[dict]) -> None:
    """A row that refers to an image (a placeholder, an image part) is left out; an image column the text
    never mentions is only noted."""
    mentions = rec.media or any(MEDIA_PLACEHOLDER.search(t["content"]) for t in turns)
    if mentions:
        raise rec.reject(None, "This row refers to an image, video or sound, which a text-only model cannot see: left out.",
                         "Train a vision model elsewhere for such rows, or remove the placeholder if the text stands alone.",
                         "needs_media")
    if choice.media and rec.data.get(choice.media) not in (None, "", []):
        rec.warn(choice.media, f"The '{choice.media}' of this row is ignored: the model reads text only.",
                 "Nothing to do if the text stands on its own.", "media_ignored")


def check_turns(rec: Record, turns: list[dict], *, ends_on_answer: bool) -> None:
    """System first, then user and assistant taking turns (tool results after the call that asked for them);
    an empty answer in the middle is kept untrained and flagged; the last turn is an answer."""
    body = turns[1:] if turns and turns[0]["role"] == "system" else turns
    if not body:
        raise rec.reject("messages", "The conversation has no user or assistant turns.",
                         "Add a user message and the assistant's answer.", "no_turns")
    previous = None
    first = len(turns) - len(body)  # turns are numbered as the file lists them, a system message included
    for i, t in enumerate(body, start=first):
        _check_order(rec, previous, t, i)
        _check_content(rec, t, i)
        previous = t
    if not any(t["role"] == "assistant" and t["train"] is not False for t in body):
        raise rec.reject(f"turn {len(turns)}", "The response is empty.", "Write the response, or remove this row.",
                         "empty_response")
    if ends_on_answer and body[-1]["role"] != "assistant":
        ends = "a tool's result" if body[-1]["role"] == "tool" else "the user"
        raise rec.reject(f"turn {len(turns)}", f"The conversation ends with {ends}: there is no answer to learn from.",
                         "Add the assistant's answer at the end, or remove the last message.", "ends_on_user")


def _check_order(rec: Record, previous: dict | None, t: dict, i: int) -> None:
    role = t["role"]
    if role == "system":
        raise rec.reject("messages", "A system message appears after the conversation started.",
                         "Put the system message first, or merge it into the user's message.", "late_system")
    allowed = {None: ("user",), "user": ("assistant",), "tool": ("tool", "assistant", "user"),
               "assistant": ("tool", "user") if previous and previous["tool_calls"] else ("user",)}
    if role not in allowed[previous["role"] if previous else None]:
        if role == "tool":
            message = f"Turn {i + 1} is a tool's result, but no call asked for it."
        else:
            expected = "user" if previous is None or previous["role"] == "assistant" else "assistant"
            message = (f"The conversation does not alternate: turn {i + 1} is from the {role}, "
                       f"where the {expected} should speak.")
        raise rec.reject(f"turn {i + 1}", message, "Merge consecutive messages of one speaker, so user and assistant take "
                         "turns starting with the user (tool results right after the call).", "not_alternating")


def _check_content(rec: Record, t: dict, i: int) -> None:
    if t["content"].strip() or t["tool_calls"] or t["role"] == "tool":
        return
    if t["role"] == "user":
        raise rec.reject(f"turn {i + 1}", "The prompt is empty.", "Write the prompt, or remove this row.", "empty_prompt")
    t["train"] = False
    rec.warn(f"turn {i + 1}", f"The answer at turn {i + 1} is empty: it is kept, but not trained.",
             "Write the answer, or remove that exchange.", "empty_answer_turn")


def to_text(data: dict, choice: FormatChoice, line, file) -> tuple[str, list[Problem]]:
    rec = Record(data, line, file)
    key = choice.text_key or "text"
    text = rec.text(required(rec, key), key)
    if not text.strip():
        raise rec.reject(key, "The text is empty.", "Remove this row.", "empty_text")
    if MEDIA_PLACEHOLDER.search(text):
        raise rec.reject(key, "This text refers to an image, video or sound, which a text-only model cannot see: left out.",
                         "Remove the placeholder if the text stands alone.", "needs_media")
    return text, rec.warnings
