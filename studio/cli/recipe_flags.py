"""The recipe's settings as command-line flags. Every field of studio.core.recipe gives one flag whose
name, type, choices and help text are the field's, so `studio train` and `studio plan` take the flags
the recipe has and nothing maps them by hand. A flag given overrides the value from `--recipe` or
`--preset`; switches come in pairs (`--dora` / `--no-dora`, `--grad-ckpt` / `--no-grad-ckpt`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import MISSING, Field
from pathlib import Path

from studio.core.presets import PRESETS, with_preset
from studio.core.recipe import RunConfig, iter_settings, kinds_of

_TYPES = {"int": int, "float": float}
_HOW = {"list": " (here: comma-separated)", "dict": " (here: prompt=question,response=answer)"}  # as a flag writes it


def add_recipe_sources(p: argparse.ArgumentParser) -> None:
    """--recipe and --preset: where the settings start before the flags change them."""
    p.add_argument("--recipe", type=Path, help="a run.toml recipe (other options override its values)")
    presets = ", ".join(f"{key} (rank {p['rank']}, {p['epochs']:g} pass{'' if p['epochs'] == 1 else 'es'})"
                        for key, p in PRESETS.items())
    p.add_argument("--preset", choices=list(PRESETS),
                   help=f"a first-run preset, as the window's Adapter page has them: {presets}; on the demo model also "
                        f"CPU-sized training. Other options override it.")


def add_recipe_flags(p: argparse.ArgumentParser, *, keep: Callable[[str, Field], bool] = lambda key, spec: True,
                     changes: dict[str, dict] | None = None) -> None:
    """One flag per recipe field, grouped by section, with "section.name" as its destination.
    `keep(key, field)`: whether a field ("training.steps") gets its flag here (default: all);
    `changes`: argparse options that replace the generated ones for a field."""
    groups: dict[str, argparse._ArgumentGroup] = {}
    for section, spec in iter_settings():
        key = f"{section}.{spec.name}"
        if not keep(key, spec):
            continue
        if section not in groups:
            groups[section] = p.add_argument_group(f"[{section}] settings")
        options = {**_argument(spec), **(changes or {}).get(key, {})}
        groups[section].add_argument(spec.metadata["flag"], dest=key, default=None, **options)


def _argument(spec: Field) -> dict:
    kind = next(k for k in kinds_of(spec) if k != "None")
    if kind == "bool":
        return {"action": argparse.BooleanOptionalAction, "help": _help(spec, kind)}
    options: dict = {"help": _help(spec, kind)}
    choices = spec.metadata["choices"]
    if choices:
        options["choices"] = list(choices)
    else:
        options["metavar"] = spec.metadata["flag"].lstrip("-").upper().replace("-", "_")
    if kind in _TYPES:
        options["type"] = _TYPES[kind]
    if spec.metadata["many"]:
        options["action"] = "append"
    return options


def _help(spec: Field, kind: str) -> str:
    how = " (once per item)" if spec.metadata["many"] else _HOW.get(kind, "")
    default = _default_text(spec)
    text = spec.metadata["help"] + how + (f" (default: {default})" if default else "")
    return text.replace("%", "%%")  # argparse formats help with %


def _default_text(spec: Field) -> str:
    value = spec.default_factory() if spec.default is MISSING else spec.default
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        return ",".join(value)
    return "" if value is None else str(value)


def given(args: argparse.Namespace, key: str):
    """The value of the flag for "section.name", or None when the command line did not give it."""
    return getattr(args, key, None)


def recipe_from_flags(args: argparse.Namespace) -> RunConfig:
    """The recipe (--recipe, or the defaults), then the preset (--preset), then every flag given."""
    config = RunConfig.load(args.recipe) if args.recipe else RunConfig()
    if args.preset:
        config.model.source = given(args, "model.source") or config.model.source  # the demo gets its own training
        with_preset(config, args.preset)
    apply_flags(config, args)
    return config


def apply_flags(config: RunConfig, args: argparse.Namespace) -> None:
    """The flags given, into `config`; a step count replaces epochs and epochs replace a step count."""
    for section, spec in iter_settings():
        value = given(args, f"{section}.{spec.name}")
        if value is not None:
            setattr(getattr(config, section), spec.name, _from_text(spec, value))
    t = config.training
    if given(args, "training.steps") is not None:
        t.epochs = None
    elif given(args, "training.epochs") is not None:
        t.steps = None


def _from_text(spec: Field, value):
    kinds = kinds_of(spec)
    if "dict" in kinds:
        from studio.core.data import parse_mapping

        return parse_mapping(value)
    if "list" in kinds and not spec.metadata["many"]:
        return [item.strip() for item in value.split(",") if item.strip()]
    return value
