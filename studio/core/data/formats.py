"""The five dataset formats: detect which one a file uses, and turn each record into one shape.

Every format becomes either a conversation — a list of {"role", "content"} turns with roles
system/user/assistant — or raw text. Each conversion checks the record and reports what is wrong
with it as a `Problem` naming the field, instead of failing.

  alpaca             instruction, optional input, output, optional system and history
  sharegpt           conversations: [{from: human|gpt|system, value}], multi-turn
  messages           messages: [{role: user|assistant|system, content}] (OpenAI / chat template style)
  prompt_completion  two text columns: prompt/completion, question/answer, ... or a chosen mapping
  text               raw text for continued pretraining: the loss is on every token
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from studio.core.data.problems import ERROR, WARNING, DataError, Problem

FORMATS = ("alpaca", "sharegpt", "messages", "prompt_completion", "text")
CHAT_FORMATS = ("alpaca", "sharegpt", "messages", "prompt_completion")

# Column pairs recognised as prompt → response, most specific first.
PAIR_COLUMNS = (
    ("prompt", "completion"), ("prompt", "response"), ("prompt", "answer"), ("prompt", "output"),
    ("question", "answer"), ("question", "response"), ("query", "response"), ("query", "answer"),
    ("instruction", "response"), ("instruction", "answer"), ("input", "output"), ("input", "target"),
    ("source", "target"), ("user", "assistant"), ("human", "assistant"), ("context", "response"),
)
CONVERSATION_KEYS = ("messages", "conversations", "conversation", "dialog", "dialogue", "chat")
TEXT_KEYS = ("text", "content", "document", "body")
# The roles a format's columns can be mapped to (in the recipe's mapping), in the order the window shows them.
ROLES = {
    "prompt_completion": ("prompt", "response", "system"), "alpaca": ("prompt", "response", "system"),
    "messages": ("messages", "system"), "sharegpt": ("messages", "system"), "text": ("text",),
}
PREVIEW_CHARS = 120  # a first-row value shown next to its column is cut to this many characters
ROLE_NAMES = {
    "user": "user", "human": "user", "prompter": "user", "customer": "user",
    "assistant": "assistant", "gpt": "assistant", "bot": "assistant", "model": "assistant", "chatgpt": "assistant",
    "system": "system",
}


@dataclass(frozen=True)
class FormatChoice:
    """A detected (or chosen) format and, for prompt_completion, which columns hold what."""

    format: str
    prompt: str | None = None  # prompt_completion / alpaca instruction column
    response: str | None = None  # prompt_completion / alpaca output column
    messages_key: str | None = None  # sharegpt / messages
    text_key: str | None = None  # text
    system: str | None = None  # an optional system column

    def mapping(self) -> dict[str, str]:
        """The columns in effect, by role ({"prompt": "question", "response": "answer"}): as the
        recipe's mapping writes them."""
        if self.format in ("prompt_completion", "alpaca"):
            columns = {"prompt": self.prompt, "response": self.response}
        elif self.format in ("sharegpt", "messages"):
            columns = {"messages": self.messages_key}
        else:
            columns = {"text": self.text_key}
        if self.format != "text":
            columns["system"] = self.system
        return {role: column for role, column in columns.items() if column}

    def describe(self) -> str:
        if self.format == "prompt_completion":
            return f"prompt_completion ({self.prompt} → {self.response})"
        if self.format in ("sharegpt", "messages"):
            return f"{self.format} (in '{self.messages_key}')"
        if self.format == "text":
            return f"text (in '{self.text_key}')"
        return self.format


def _turn_style(turns) -> str | None:
    """'messages' for role/content turns, 'sharegpt' for from/value turns."""
    if not isinstance(turns, list):
        return None
    for turn in turns[:4]:
        if isinstance(turn, dict):
            if "from" in turn and "value" in turn:
                return "sharegpt"
            if "role" in turn and "content" in turn:
                return "messages"
    return None


def detect_format(samples: list[dict], *, is_text_file: bool = False) -> FormatChoice | None:
    """The format of `samples` (the first records), or None when no recognised columns exist."""
    if is_text_file:
        return FormatChoice("text", text_key="text")
    if not samples:
        return None
    columns: dict[str, int] = {}
    for row in samples:
        for key in row:
            columns[key] = columns.get(key, 0) + 1
    lower = {k.lower(): k for k in columns}
    for key in CONVERSATION_KEYS:
        if key in lower:
            real = lower[key]
            styles = {_turn_style(row.get(real)) for row in samples} - {None}
            if styles:
                style = "sharegpt" if "sharegpt" in styles else "messages"
                return FormatChoice(style, messages_key=real, system=lower.get("system"))
    if "instruction" in lower and ("output" in lower or "response" in lower):
        return FormatChoice("alpaca", prompt=lower["instruction"], response=lower.get("output") or lower["response"],
                            system=lower.get("system"))
    for prompt, response in PAIR_COLUMNS:
        if prompt in lower and response in lower:
            return FormatChoice("prompt_completion", prompt=lower[prompt], response=lower[response], system=lower.get("system"))
    for key in TEXT_KEYS:
        if key in lower:
            return FormatChoice("text", text_key=lower[key])
    return None


def choose_format(samples: list[dict], fmt: str | None, mapping: dict | None, *, is_text_file: bool = False) -> FormatChoice:
    """Detect the format, or apply the user's override and column mapping; explain when neither works."""
    columns = columns_of(samples)
    if fmt is not None and fmt not in FORMATS:
        raise DataError(f"Unknown format '{fmt}'.", f"Choose one of {', '.join(FORMATS)} with {{setting}}.", setting="data.format")
    mapping = dict(mapping or {})
    detected = detect_format(samples, is_text_file=is_text_file)
    if mapping:
        _check_mapping(mapping, columns)
        mapped = _mapped_choice(samples, fmt, mapping)
        if mapped is not None:
            return mapped
    if fmt is None:
        if detected is None:
            raise _no_columns_error(columns)
        return detected
    if detected is not None and detected.format == fmt:
        return detected
    # An override that does not match what was detected: use the standard columns of that format.
    chosen = _standard_columns(fmt, columns, is_text_file)
    if chosen is None:
        raise _no_columns_error(columns, fmt)
    return chosen


def _check_mapping(mapping: dict, columns: list[str]) -> None:
    for value in mapping.values():
        if value not in columns:
            raise DataError(f"The data has no column '{value}'.",
                            f"Its columns are: {', '.join(columns) or '(none)'}. Choose among them with {{setting}}.",
                            setting="data.mapping")


def _mapped_choice(samples: list[dict], fmt: str | None, mapping: dict) -> FormatChoice | None:
    """The format the user's column mapping names (with `fmt`, if given); None when it names none."""
    system = mapping.get("system")
    if fmt in (None, "prompt_completion") and {"prompt", "response"} <= set(mapping):
        return FormatChoice("prompt_completion", prompt=mapping["prompt"], response=mapping["response"], system=system)
    if fmt == "text" or "text" in mapping:
        return FormatChoice("text", text_key=mapping.get("text"))
    if fmt in ("messages", "sharegpt") or "messages" in mapping:
        key = mapping.get("messages")
        style = _turn_style(samples[0].get(key)) if samples else None
        return FormatChoice(fmt or style or "messages", messages_key=key, system=system)
    if fmt == "alpaca":
        return FormatChoice("alpaca", prompt=mapping.get("prompt", "instruction"), response=mapping.get("response", "output"),
                            system=system)
    return None


def _standard_columns(fmt: str, columns: list[str], is_text_file: bool) -> FormatChoice | None:
    """`fmt` read from the columns that format usually has (any case); None when the data has none of them."""
    lower = {k.lower(): k for k in columns}
    system = lower.get("system")
    if fmt == "alpaca" and "instruction" in lower:
        return FormatChoice("alpaca", prompt=lower["instruction"], response=lower.get("output") or lower.get("response"),
                            system=system)
    if fmt in ("messages", "sharegpt"):
        key = next((lower[k] for k in CONVERSATION_KEYS if k in lower), None)
        return FormatChoice(fmt, messages_key=key, system=system) if key else None
    if fmt == "text":
        key = next((lower[k] for k in TEXT_KEYS if k in lower), None)
        return FormatChoice("text", text_key=key or "text") if key or is_text_file else None
    if fmt == "prompt_completion":
        pair = next(((p, r) for p, r in PAIR_COLUMNS if p in lower and r in lower), None)
        return FormatChoice(fmt, prompt=lower[pair[0]], response=lower[pair[1]], system=system) if pair else None
    return None


def _no_columns_error(columns: list[str], fmt: str | None = None) -> DataError:
    found = ", ".join(columns) if columns else "(no columns)"
    wanted = f" as {fmt}" if fmt else ""
    first, second = (columns + ["COLUMN", "COLUMN"])[:2]
    what, example = {
        "text": ("which column holds the text", f"text={first}"),
        "messages": ("which column holds the conversations", f"messages={first}"),
        "sharegpt": ("which column holds the conversations", f"messages={first}"),
    }.get(fmt, ("which column holds the prompt and which the answer", f"prompt={first},response={second}"))
    return DataError(
        f"The studio cannot read this data{wanted}: it found the columns {found}, none of which it recognises.",
        f"Say {what}, with {{setting}}. Columns the studio recognises by itself: messages (role and content turns), "
        "conversations (from and value turns), instruction/input/output, prompt/completion, question/answer, text.",
        setting="data.mapping", example=example,
    )


@dataclass(frozen=True)
class ColumnPreview:
    """A file's columns and its first row, shortened: what the window shows next to each column."""

    columns: list[str]
    first_row: dict[str, str]

    @classmethod
    def of(cls, samples: list[dict]) -> ColumnPreview:
        first = samples[0] if samples else {}
        columns = columns_of(samples)
        return cls(columns, {c: preview_value(first.get(c)) for c in columns})


def preview_value(value, limit: int = PREVIEW_CHARS) -> str:
    """A value as a short line of text ("" for none): for showing, never for training."""
    import json

    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text[:limit * 2].split())
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


# ---------------------------------------------------------------------------------------------
# One record → one conversation
# ---------------------------------------------------------------------------------------------


class RowRejected(Exception):
    """A record that cannot be used; carries the problem to report."""

    def __init__(self, problem: Problem):
        super().__init__(problem.message)
        self.problem = problem


def _as_text(value, field: str, line, file, warnings: list[Problem], *, required: bool = True) -> str:
    """The text in `value`, with a problem for anything else (numbers become text, with a warning)."""
    if isinstance(value, str):
        return value
    if value is None:
        if not required:
            return ""
        raise RowRejected(Problem(line, field, f"'{field}' is empty (null).", f"Fill in '{field}' or remove this row.",
                                  ERROR, file, "null_value"))
    if isinstance(value, bool):
        raise RowRejected(Problem(line, field, f"'{field}' is {str(value).lower()}, not text.",
                                  f"Write '{field}' as text.", ERROR, file, "wrong_type"))
    if isinstance(value, (int, float)):
        warnings.append(Problem(line, field, f"'{field}' is the number {value}, not text: it is used as \"{value}\".",
                                f"Put '{field}' in quotes in the file to make it text.", WARNING, file, "number_as_text"))
        return str(value)
    if isinstance(value, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in value) and value:
        return "".join(str(p.get("text", "")) for p in value)  # OpenAI's list of content parts
    kind = "a list" if isinstance(value, list) else "an object" if isinstance(value, dict) else type(value).__name__
    raise RowRejected(Problem(line, field, f"'{field}' is {kind}, where text is expected.",
                              f"Make '{field}' a single piece of text.", ERROR, file, "wrong_type"))


def to_conversation(data: dict, choice: FormatChoice, line, file) -> tuple[list[dict], list[Problem]]:
    """Convert one record; raise RowRejected with the problem when it cannot be used."""
    warnings: list[Problem] = []
    turns: list[dict] = []
    if choice.system and choice.system in data and data[choice.system] not in (None, ""):
        turns.append({"role": "system", "content": _as_text(data[choice.system], choice.system, line, file, warnings)})
    if choice.format in ("alpaca", "prompt_completion"):
        turns += _pair_turns(data, choice, line, file, warnings)
    elif choice.format in ("sharegpt", "messages"):
        turns += _chat_turns(data, choice, line, file, warnings)
    else:
        raise ValueError(f"not a chat format: {choice.format}")
    _check_turns(turns, line, file)
    return turns, warnings


def _pair_turns(data: dict, choice: FormatChoice, line, file, warnings: list[Problem]) -> list[dict]:
    """A prompt and its response (alpaca: after the history's pairs, with `input` joined to the prompt)."""
    alpaca = choice.format == "alpaca"
    turns = _history_turns(data, line, file, warnings) if alpaca else []
    prompt = _as_text(_required(data, choice.prompt, line, file), choice.prompt, line, file, warnings)
    if alpaca:
        extra = _as_text(data.get("input"), "input", line, file, warnings, required=False)
        if extra.strip():
            prompt = f"{prompt}\n\n{extra}" if prompt.strip() else extra
    response = _as_text(_required(data, choice.response, line, file), choice.response, line, file, warnings)
    return turns + [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]


def _required(data: dict, key: str, line, file):
    if key not in data:
        raise RowRejected(Problem(line, key, f"This row has no '{key}'.", f"Add '{key}' to the row or remove the row.",
                                  ERROR, file, "missing_field"))
    return data.get(key)


def _history_turns(data: dict, line, file, warnings: list[Problem]) -> list[dict]:
    """alpaca's `history`: earlier [question, answer] pairs of the conversation."""
    turns = []
    for i, pair in enumerate(data.get("history") or []):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            raise RowRejected(Problem(line, f"history[{i}]", "Each history entry must be a [question, answer] pair.",
                                      "Write history as a list of two-item lists.", ERROR, file, "bad_history"))
        turns.append({"role": "user", "content": _as_text(pair[0], f"history[{i}][0]", line, file, warnings)})
        turns.append({"role": "assistant", "content": _as_text(pair[1], f"history[{i}][1]", line, file, warnings)})
    return turns


def _chat_turns(data: dict, choice: FormatChoice, line, file, warnings: list[Problem]) -> list[dict]:
    """The turns of a messages (role/content) or sharegpt (from/value) conversation."""
    fmt = choice.format
    key = choice.messages_key or ("conversations" if fmt == "sharegpt" else "messages")
    raw = data.get(key)
    if not isinstance(raw, list) or not raw:
        what = "missing" if raw is None else "empty" if raw == [] else f"a {type(raw).__name__}, not a list of turns"
        raise RowRejected(Problem(line, key, f"'{key}' is {what}.", f"Give each row a list of turns in '{key}'.",
                                  ERROR, file, "no_turns"))
    keys = ("from", "value") if fmt == "sharegpt" else ("role", "content")
    turns = []
    for i, turn in enumerate(raw):
        keys = _turn_keys(turn, keys, f"{key}[{i}]", i, line, file)
        turns.append(_chat_turn(turn, keys, f"{key}[{i}]", i, line, file, warnings))
    return turns


def _turn_keys(turn, keys: tuple[str, str], where: str, i: int, line, file) -> tuple[str, str]:
    """The (role, text) keys of this turn: the format's, or the other style's when the turn uses those."""
    role_key, text_key = keys
    if not isinstance(turn, dict):
        raise RowRejected(Problem(line, where, f"Turn {i + 1} is not an object.",
                                  f"Write each turn as {{\"{role_key}\": ..., \"{text_key}\": ...}}.", ERROR, file, "bad_turn"))
    if role_key not in turn and ("role" in turn or "from" in turn):
        return ("role", "content") if "role" in turn else ("from", "value")
    return keys


def _chat_turn(turn: dict, keys: tuple[str, str], where: str, i: int, line, file, warnings: list[Problem]) -> dict:
    role_key, text_key = keys
    role_raw = turn.get(role_key)
    role = ROLE_NAMES.get(str(role_raw).strip().lower()) if role_raw is not None else None
    if role is None:
        raise RowRejected(Problem(line, f"{where}.{role_key}",
                                  f"Turn {i + 1} has the role '{role_raw}', which the studio does not train on.",
                                  "Use user, assistant or system (tool and function turns are not supported yet).",
                                  ERROR, file, "unknown_role"))
    return {"role": role, "content": _as_text(turn.get(text_key), f"{where}.{text_key}", line, file, warnings)}


def _check_turns(turns: list[dict], line, file) -> None:
    body = turns[1:] if turns and turns[0]["role"] == "system" else turns
    if any(t["role"] == "system" for t in body):
        raise RowRejected(Problem(line, "messages", "A system message appears after the conversation started.",
                                  "Put the system message first, or merge it into the user's message.", ERROR, file, "late_system"))
    for i, turn in enumerate(body):
        if not turn["content"].strip():
            who = "prompt" if turn["role"] == "user" else "response"
            raise RowRejected(Problem(line, f"turn {i + 1}", f"The {who} is empty.", f"Write the {who}, or remove this row.",
                                      ERROR, file, f"empty_{who}"))
    if not body:
        raise RowRejected(Problem(line, "messages", "The conversation has no user or assistant turns.",
                                  "Add a user message and the assistant's answer.", ERROR, file, "no_turns"))
    for i, turn in enumerate(body):
        expected = "user" if i % 2 == 0 else "assistant"
        if turn["role"] != expected:
            raise RowRejected(Problem(line, f"turn {i + 1}",
                                      f"The conversation does not alternate: turn {i + 1} is from the {turn['role']}, "
                                      f"where the {expected} should speak.",
                                      "Merge consecutive messages of one speaker, so user and assistant take turns starting with the user.",
                                      ERROR, file, "not_alternating"))
    if body[-1]["role"] != "assistant":
        raise RowRejected(Problem(line, f"turn {len(body)}", "The conversation ends with the user: there is no answer to learn from.",
                                  "Add the assistant's answer at the end, or remove the last user message.",
                                  ERROR, file, "ends_on_user"))


def to_text(data: dict, choice: FormatChoice, line, file) -> tuple[str, list[Problem]]:
    warnings: list[Problem] = []
    key = choice.text_key or "text"
    if key not in data:
        raise RowRejected(Problem(line, key, f"This row has no '{key}'.", f"Add '{key}' or remove this row.", ERROR, file, "missing_field"))
    text = _as_text(data.get(key), key, line, file, warnings)
    if not text.strip():
        raise RowRejected(Problem(line, key, "The text is empty.", "Remove this row.", ERROR, file, "empty_text"))
    return text, warnings


def columns_of(samples: Iterable[dict]) -> list[str]:
    return list(dict.fromkeys(k for row in samples for k in row))
