"""Recipes that older studios wrote, read in today's form. A recipe file carries the `version` of its
shape (a recipe without one is version 1: it predates the key); each change to the shape that an old
recipe would trip over is one step below, from its version to the next, and `VERSION` is the shape
the studio writes. Every old recipe runs through the same steps, whichever front end reads it.
"""

from __future__ import annotations

from studio.core.errors import StudioError

VERSION = 2


def _packing_modes(data: dict) -> dict:
    """1 → 2: `packing` went from true/false to auto/on/off (true meant "where it costs nothing": auto)."""
    training = data.get("training")
    if isinstance(training, dict) and isinstance(training.get("packing"), bool):
        training = {**training, "packing": "auto" if training["packing"] else "off"}
        data = {**data, "training": training}
    return data


STEPS = {1: _packing_modes}  # version → the step to version + 1


def recipe_version(data: dict) -> int:
    """The shape version of a recipe's TOML tables; a StudioError for one this studio cannot read."""
    version = data.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise StudioError(f"The recipe's version is {version!r}, but it must be a whole number from 1 to {VERSION}.",
                          f"Write version = {VERSION} on the recipe's first line, or leave the line out for an old recipe.")
    if version > VERSION:
        raise StudioError(f"The recipe was written by a newer LoRA Studio (recipe version {version}; this one reads up "
                          f"to version {VERSION}).", "Update LoRA Studio to run it, or write the recipe again with this one.")
    return version


def migrated(data: dict) -> dict:
    """A recipe's TOML tables as today's studio writes them, without the `version` key."""
    version = recipe_version(data)
    data = {key: value for key, value in data.items() if key != "version"}
    for step in range(version, VERSION):
        data = STEPS[step](data)
    return data
