"""The five dataset formats: detect which one a file uses and which columns hold what.

Every format becomes either a conversation or raw text (convert.py turns each record into it).
Besides the format, a choice names the columns that add to it: tool schemas, chosen and rejected
answers (preference.py), a KTO label, an image column.

  alpaca             instruction, optional input, output, optional system and history
  sharegpt           conversations: [{from: human|gpt|system, value}], multi-turn
  messages           messages: [{role: user|assistant|system, content}] (OpenAI / chat template style)
  prompt_completion  two text columns: prompt/completion, question/answer, ... or a chosen mapping
  text               raw text for continued pretraining: the loss is on every token
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from studio.core.data import preference
from studio.core.data.problems import DataError

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
TOOLS_KEYS = ("tools", "functions")
MEDIA_KEYS = ("images", "image", "videos", "video", "audios", "audio", "image_path", "image_url")
# Columns that hold the prompt when the answers are preference columns.
PROMPT_KEYS = ("prompt", "question", "query", "input", "context")


@dataclass(frozen=True)
class FormatChoice:
    """A detected (or chosen) format and, for prompt_completion, which columns hold what."""

    format: str
    prompt: str | None = None  # prompt_completion / alpaca instruction column
    response: str | None = None  # prompt_completion / alpaca output column
    messages_key: str | None = None  # sharegpt / messages
    text_key: str | None = None  # text
    system: str | None = None  # an optional system column
    tools: str | None = None  # the tool schemas (a list, or a JSON string of one)
    chosen: str | None = None  # the answer's turns, appended to the prompt: preference data's chosen answer
    rejected: str | None = None  # the rejected answer: kept for preference tuning, never trained
    label: str | None = None  # KTO: true/false, whether the answer is desirable (false: left out)
    media: str | None = None  # images or other media: the model cannot see them

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
            columns.update(system=self.system, tools=self.tools, chosen=self.chosen, rejected=self.rejected,
                           label=self.label)
        return {role: column for role, column in columns.items() if column}

    def describe(self) -> str:
        answer = f" + {self.chosen}" if self.chosen else ""
        if self.format == "prompt_completion":
            return f"prompt_completion ({self.prompt} → {self.response})"
        if self.format in ("sharegpt", "messages"):
            where = f"in '{self.messages_key}'{answer}" if self.messages_key else f"in '{self.chosen}'"
            return f"{self.format} ({where})"
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
    """The format of `samples` (the first records) and the columns that add to it; None when no
    recognised columns exist."""
    if is_text_file:
        return FormatChoice("text", text_key="text")
    if not samples:
        return None
    lower = {k.lower(): k for k in columns_of(samples)}
    extras = {"system": lower.get("system"), "tools": _first(lower, TOOLS_KEYS), **preference.detect(lower, samples)}
    base = _base_format(lower, samples, extras.get("chosen"))
    if base is None:
        return None
    media = _first(lower, MEDIA_KEYS)
    if base.format == "text":
        return replace(base, media=media)
    return replace(base, media=media, **{k: v for k, v in extras.items() if v})


def _first(lower: dict[str, str], keys: tuple[str, ...]) -> str | None:
    return next((lower[k] for k in keys if k in lower), None)


def _base_format(lower: dict[str, str], samples: list[dict], chosen: str | None) -> FormatChoice | None:
    """The format and its own columns (the prompt's, when the answers are preference columns)."""
    for key in CONVERSATION_KEYS:
        if key in lower:
            style = _style_of(samples, lower[key])
            if style:
                return FormatChoice(style, messages_key=lower[key])
    if "instruction" in lower and ("output" in lower or "response" in lower or chosen):
        return FormatChoice("alpaca", prompt=lower["instruction"], response=chosen or lower.get("output") or lower["response"])
    if chosen:
        return _preference_base(lower, samples, chosen)
    for prompt, response in PAIR_COLUMNS:
        if prompt in lower and response in lower:
            real = lower[prompt]
            style = _style_of(samples, real)
            if style:  # TRL's conversational prompt/completion: lists of messages
                return FormatChoice(style, messages_key=real, chosen=lower[response])
            return FormatChoice("prompt_completion", prompt=real, response=lower[response])
    key = _first(lower, TEXT_KEYS)
    return FormatChoice("text", text_key=key) if key else None


def _preference_base(lower: dict[str, str], samples: list[dict], chosen: str) -> FormatChoice:
    """Preference data's prompt: a prompt column (text or messages), or none (the prompt is the turns
    the chosen and rejected conversations share; hh-rlhf's texts of Human:/Assistant: turns)."""
    prompt = _first(lower, PROMPT_KEYS)
    if prompt:
        style = _style_of(samples, prompt)
        return FormatChoice(style, messages_key=prompt) if style else FormatChoice("prompt_completion", prompt=prompt,
                                                                                     response=chosen)
    style = _style_of(samples, chosen)
    if style or any(isinstance(r.get(chosen), str) and preference.HH_TURN.search(r[chosen]) for r in samples):
        return FormatChoice(style or "messages")
    return FormatChoice("text", text_key=chosen)


def _style_of(samples: list[dict], key: str) -> str | None:
    styles = {_turn_style(row.get(key)) for row in samples} - {None}
    return None if not styles else "sharegpt" if "sharegpt" in styles else "messages"


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
            return replace(mapped, **_kept_extras(detected, mapped, mapping))
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


def _kept_extras(detected: FormatChoice | None, mapped: FormatChoice, mapping: dict) -> dict:
    """The columns that add to a format, under a user's mapping: as mapped, else as detected (the
    preference pair only while the answer is still its chosen column)."""
    extras = {"tools": detected.tools, "label": detected.label, "media": detected.media} if detected else {}
    if detected and detected.chosen and mapped.response in (None, detected.chosen) and mapped.format == detected.format:
        extras.update(chosen=detected.chosen, rejected=detected.rejected)
    extras.update({k: mapping[k] for k in ("tools", "chosen", "rejected", "label") if k in mapping})
    return extras


def _check_mapping(mapping: dict, columns: list[str]) -> None:
    for value in mapping.values():
        if value not in columns:
            raise DataError(f"The data has no column '{value}'.",
                            f"Its columns are: {', '.join(columns) or '(none)'}. Choose among them with {{setting}}.",
                            setting="data.mapping")


def _mapped_choice(samples: list[dict], fmt: str | None, mapping: dict) -> FormatChoice | None:
    """The format the user's column mapping names (with `fmt`, if given); None when it names none."""
    system = mapping.get("system")
    if fmt in (None, "prompt_completion") and "prompt" in mapping and ("response" in mapping or "chosen" in mapping):
        return FormatChoice("prompt_completion", prompt=mapping["prompt"], response=mapping.get("response"), system=system)
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
    usable = [c for c in columns if c.lower() not in preference.NOT_ANSWERS]  # never propose training a rejected answer
    first, second = (usable + ["COLUMN", "COLUMN"])[:2]
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


def columns_of(samples: Iterable[dict]) -> list[str]:
    return list(dict.fromkeys(k for row in samples for k in row))
