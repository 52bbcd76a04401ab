"""Where things live: the bundled resources, and the user's data folder (runs, settings)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "lora-studio"


def resources_dir() -> Path:
    """The folder that holds the demo model, demo data and the model catalog.

    A source checkout or editable install keeps it beside the package; a frozen build (PyInstaller)
    unpacks it next to the executable, which `STUDIO_RESOURCES` can point to.
    """
    override = os.environ.get("STUDIO_RESOURCES")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2] / "resources"


def demo_model_dir() -> Path:
    return resources_dir() / "demo-model"


def demo_data_dir() -> Path:
    return resources_dir() / "demo-data"


def catalog_dir() -> Path:
    return resources_dir() / "catalog"


def user_data_dir() -> Path:
    """Runs and exported adapters (e.g. ~/.local/share/lora-studio on Linux); `STUDIO_HOME` overrides."""
    override = os.environ.get("STUDIO_HOME")
    if override:
        return Path(override)
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def user_config_dir() -> Path:
    """Settings (e.g. ~/.config/lora-studio on Linux); lives under `STUDIO_HOME` when that is set."""
    override = os.environ.get("STUDIO_HOME")
    if override:
        return Path(override) / "config"
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def user_cache_dir() -> Path:
    """Loaded datasets and other things the studio can rebuild (e.g. ~/.cache/lora-studio on Linux)."""
    override = os.environ.get("STUDIO_HOME")
    if override:
        return Path(override) / "cache"
    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def runs_dir() -> Path:
    return user_data_dir() / "runs"
