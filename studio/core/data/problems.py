"""A problem in the user's data: where it is, what is wrong, and how to fix it.

A fix that needs a setting names it by its recipe field ("data.skip_bad_rows") and writes
`{setting}` where the setting goes; each front end fills in its own words from the field's
metadata in recipe.py: "add --skip-bad-rows" on the command line, "turn on Skip broken lines" in
the window. One fact, one place: the flag and the label live on the recipe field.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields
from typing import Literal

from studio.core.errors import StudioError

FATAL = "fatal"  # nothing usable: the data cannot be trained on until this is fixed
ERROR = "error"  # this row is dropped (or, for bad lines, skipped when the user allows it)
WARNING = "warning"  # the row is kept, but the user should know

Audience = Literal["cli", "window"]  # who reads a fix: the command line or the window
CLI: Audience = "cli"
WINDOW: Audience = "window"


def setting_words(setting: str, audience: Audience, example: str | None = None) -> str:
    """How `audience` names a recipe setting in a fix. A switch comes with its verb ("add
    --skip-bad-rows", "turn on Skip broken lines"); any other setting is named ("--map
    prompt=foo,response=bar", "the column pickers"). `example` is a value the command line shows."""
    spec = _recipe_field(setting)
    is_switch = isinstance(spec.default, bool)
    if audience == WINDOW:
        label = spec.metadata["label"]
        return f"turn on {label}" if is_switch else label
    flag = spec.metadata["flag"]
    if is_switch:
        return f"add {flag}"
    return f"{flag} {example}" if example else flag


def fill_setting(text: str, setting: str | None, audience: Audience, example: str | None = None) -> str:
    """`text` with its `{setting}` in the words of `audience`."""
    if not setting:
        return text
    return text.replace("{setting}", setting_words(setting, audience, example))


def _recipe_field(setting: str):
    from studio.core.recipe import RunConfig

    section_name, _, name = setting.partition(".")
    section = next(f.default_factory for f in fields(RunConfig) if f.name == section_name)
    return next(f for f in fields(section) if f.name == name)


@dataclass(frozen=True)
class Problem:
    line: int | None  # 1-based line in the file (JSONL, CSV, text) or record/row number (JSON, Parquet, hub)
    field: str | None  # the column or turn the problem is in, e.g. "output", "messages[3].content"
    message: str
    fix: str  # may hold {setting}: read it with fix_for()
    severity: str = ERROR
    file: str | None = None  # the file's name, for folders of several files
    kind: str = ""  # a stable key for counting ("malformed_json", "empty_response", ...)
    setting: str | None = None  # the recipe field the fix names ("data.skip_bad_rows"), if any

    def where(self) -> str:
        place = f"{self.file}:" if self.file else ""
        return f"{place}{self.line}" if self.line is not None else (self.file or "")

    def fix_for(self, audience: Audience) -> str:
        return fill_setting(self.fix, self.setting, audience)

    def as_dict(self, audience: Audience = CLI) -> dict:
        """The problem as the front end `audience` shows it (its fix in that front end's words)."""
        return {"line": self.line, "field": self.field, "message": self.message, "fix": self.fix_for(audience),
                "severity": self.severity, "file": self.file, "kind": self.kind, "setting": self.setting}


class DataError(StudioError):
    """The data cannot be used. Its advice may name a setting (as Problem.fix does); `problems`
    lists what is wrong, line by line; `preview` (a formats.ColumnPreview), when the file was read
    far enough, holds its columns and first row, so the window can offer to map them."""

    def __init__(self, message: str, advice: str, *, setting: str | None = None, example: str | None = None,
                 problems=(), preview=None) -> None:
        super().__init__(message, fill_setting(advice, setting, CLI, example), topic="data")
        self.template, self.setting, self.example = advice, setting, example
        self.problems = list(problems)
        self.preview = preview

    def advice_for(self, audience: Audience) -> str:
        return fill_setting(self.template, self.setting, audience, self.example)


# What each kind of problem is called where problems are counted: "3 broken lines, 1 duplicate".
KIND_NOUNS = {
    "malformed_json": "broken line", "duplicate": "duplicate", "empty_prompt": "empty prompt",
    "empty_response": "empty answer", "empty_text": "empty text", "empty_file": "empty file",
    "missing_field": "missing field", "null_value": "empty (null) value", "wrong_type": "value of the wrong type",
    "number_as_text": "number read as text", "not_alternating": "conversation out of turn",
    "ends_on_user": "conversation without an answer", "unknown_role": "unknown speaker", "encoding": "encoding problem",
    "extra_fields": "row with extra fields", "bad_table": "table problem", "not_training_data": "file left out",
    "bad_history": "broken history", "bad_parquet": "unreadable Parquet file", "bad_turn": "broken turn",
    "late_system": "late system message",
    "not_an_object": "record without fields", "not_records": "file without records",
    "no_turns": ("conversation without turns", "conversations without turns"),
    "bad_tool_call": "broken tool call", "bad_tools": "broken tool schema",
    "needs_media": ("row that needs its image", "rows that need their image"),
    "media_ignored": ("row whose image is ignored", "rows whose image is ignored"),
    "undesirable": ("row labelled undesirable", "rows labelled undesirable"), "bad_label": "label not true or false",
    "no_rejected": ("pair without a rejected answer", "pairs without a rejected answer"),
    "same_answers": ("pair whose two answers are the same", "pairs whose two answers are the same"),
    "bad_preference": "unreadable preference pair", "empty_answer_turn": "empty answer kept untrained",
    "tools_as_text": ("note on tool rendering", "notes on tool rendering"),
}


def count_kinds(counts: dict) -> str:
    """'3 broken lines, 1 duplicate': the problems counted by kind, the most frequent first."""
    from studio.core.wording import count

    ordered = sorted(counts.items(), key=lambda kv: -kv[1])
    nouns = {kind: noun if isinstance(noun, tuple) else (noun, None) for kind, noun in KIND_NOUNS.items()}
    return ", ".join(count(n, *nouns.get(kind, (kind.replace("_", " "), None))) for kind, n in ordered)


@dataclass
class ProblemLog:
    """Collects problems; keeps every count but only the first `limit` problems themselves, so a
    million broken rows cannot fill the memory."""

    limit: int = 5000
    problems: list[Problem] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)

    def add(self, problem: Problem) -> None:
        self.counts[problem.kind or problem.message] += 1
        if len(self.problems) < self.limit:
            self.problems.append(problem)

    @property
    def total(self) -> int:
        return sum(self.counts.values())
