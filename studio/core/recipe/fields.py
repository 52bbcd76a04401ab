"""One recipe setting: a dataclass field that carries its help text, its command-line flag, the
window's label for it and, where it has them, the values it takes. This is the table the CLI's flags
(studio/cli/recipe_flags.py), the window's tooltips (`help_of`), the data messages
(data/problems.py `setting_words`) and each section's `validate()` read; nothing repeats it.
"""

from __future__ import annotations

from dataclasses import Field, field, fields
from typing import Any, NoReturn

from studio.core.errors import StudioError


def setting(text: str, *, flag: str, label: str | None = None, choices: tuple[str, ...] | None = None,
            plans: bool = False, many: bool = False, **kw) -> Any:
    """A recipe field with its help `text` and:
    `flag`: the command line's flag; for a switch the one that turns it on (`--no-...` turns it off);
    `label`: the window's words for it, where a message names it;
    `choices`: the values it takes (the flag offers them, `validate()` checks them);
    `plans`: the memory plan depends on it, so `studio plan` takes its flag too;
    `many`: a list the command line gives one item per flag (`--sample-prompt A --sample-prompt B`)."""
    metadata = {"help": text, "flag": flag, "label": label, "choices": choices, "plans": plans, "many": many}
    return field(metadata=metadata, **kw)


def spec_of(section: type, name: str) -> Field:
    for f in fields(section):
        if f.name == name:
            return f
    raise KeyError(name)


def help_of(section: type, name: str) -> str:
    """The help text of one recipe field (the window's tooltips use it)."""
    return spec_of(section, name).metadata["help"]


def flag_of(section: type, name: str) -> str:
    """The command line's flag for one recipe field."""
    return spec_of(section, name).metadata["flag"]


def kinds_of(spec: Field) -> list[str]:
    """The type names a field's annotation allows ("int | None" → ["int", "None"])."""
    return [name.strip() for name in str(spec.type).split("|")]


def refuse(section: object, name: str, what: str, want: str, flag: str | None = None) -> NoReturn:
    """A StudioError that names the bad value, what it must be and the flag that changes it; its topic
    is the section's (`TOPIC`: the data or the model), else the settings."""
    value = getattr(section, name)
    flag = flag or flag_of(type(section), name)
    raise StudioError(f"{what} is {value!r}, but it must be {want}.", f"Change it with {flag}.",
                      topic=getattr(section, "TOPIC", "settings"))


def require(ok: bool, section: object, name: str, what: str, want: str, flag: str | None = None) -> None:
    if not ok:
        refuse(section, name, what, want, flag)


def require_choice(section: object, name: str, what: str) -> None:
    """The field's value is one of its choices."""
    choices = spec_of(type(section), name).metadata["choices"]
    require(getattr(section, name) in choices, section, name, what, one_of(choices))


def one_of(choices) -> str:
    """("a", "b", "c") → "a, b or c"."""
    choices = list(choices)
    return ", ".join(choices[:-1]) + " or " + choices[-1] if len(choices) > 1 else choices[0]
