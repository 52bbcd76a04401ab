"""Reading a recipe: the TOML file, then each section's settings checked against its fields — an
unknown section or setting, or a value of the wrong type, is named here rather than failing later
inside training."""

from __future__ import annotations

import sys
from dataclasses import Field, fields
from pathlib import Path

from studio.core.errors import StudioError
from studio.core.recipe.fields import kinds_of

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

def read_toml(path: Path) -> dict:
    """The TOML tables of the recipe at `path`; a StudioError that says what is wrong with the file otherwise."""
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise StudioError(f"There is no recipe at {path}.",
                          "Check the path, or write one with `studio train --model ... --data ...`.") from exc
    except UnicodeDecodeError as exc:
        raise StudioError(f"The recipe {path} is not UTF-8 text (byte {exc.start} cannot be read).",
                          "Save it as UTF-8 in a text editor, or write a new one with `studio train --model ... --data ...`.") from exc
    except IsADirectoryError as exc:
        raise StudioError(f"The recipe {path} is a folder, not a file.", "Give the path of a run.toml file.") from exc
    except OSError as exc:
        raise StudioError(f"The recipe {path} cannot be read: {exc.strerror}.", "Check the file's permissions.") from exc
    except tomllib.TOMLDecodeError as exc:
        raise StudioError(f"The recipe {path} is not valid TOML: {exc}.", "Fix the line it names.") from exc


def sections_from(data: dict, sections: dict[str, type]) -> dict[str, object]:
    """Each section of `sections` (name → dataclass) built from its table in `data`, today's shape."""
    unknown = set(data) - set(sections)
    if unknown:
        raise StudioError(f"The recipe has unknown sections: {', '.join(sorted(unknown))}.",
                          f"Use only: {', '.join(sections)}.")
    return {name: section_from(name, kind, data.get(name)) for name, kind in sections.items()}


def section_from(name: str, kind: type, values) -> object:
    values = values or {}
    if not isinstance(values, dict):
        raise StudioError(f"The recipe's {name} is the value {values!r}, but it must be a section.",
                          f"Write it as a table: a line [{name}] followed by its settings, one per line.")
    known = {f.name: f for f in fields(kind)}
    extra = set(values) - set(known)
    if extra:
        raise StudioError(f"The recipe's [{name}] section has unknown settings: {', '.join(sorted(extra))}.",
                          f"Known settings there: {', '.join(sorted(known))}.")
    values = {key: typed(name, known[key], value) for key, value in values.items()}
    if name == "training" and values.get("steps") is not None and "epochs" not in values:
        values["epochs"] = None  # TOML has no null: with a step count, epochs were left out on purpose
    return kind(**values)


# What each annotation accepts from TOML, and how the error names it.
_KINDS = {"str": (str, "text in quotes"), "bool": (bool, "true or false"), "int": (int, "a whole number"),
          "float": (float, "a number"), "list": (list, "a list in brackets, e.g. [\"q_proj\", \"v_proj\"]"),
          "dict": (dict, "a table, e.g. {prompt = \"question\", response = \"answer\"}")}


def typed(section: str, spec: Field, value):
    """`value` as the type the field declares (a whole-number float counts as an int, an int as a
    float); a StudioError that names the field and the type it wants otherwise."""
    names = kinds_of(spec)
    if "None" in names and value is None:
        return value
    for name in (n for n in names if n in _KINDS):
        accepted, ok = _as_kind(_KINDS[name][0], value)
        if ok:
            return accepted
    wanted = " or ".join(_KINDS[n][1] for n in names if n in _KINDS)
    raise StudioError(f"The recipe's {section}.{spec.name} is {value!r}, but it must be {wanted}.",
                      f"Change {spec.name} in the [{section}] section ({spec.metadata.get('help', '')}).")


def _as_kind(kind: type, value) -> tuple[object, bool]:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value), True
    if kind is int and isinstance(value, float) and value.is_integer():
        return int(value), True
    return value, isinstance(value, kind) and not (kind is int and isinstance(value, bool))
