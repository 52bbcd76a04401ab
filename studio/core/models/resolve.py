"""Resolve what the user named into a `ModelInfo`: a local folder, a path to a config.json, the
built-in demo (`demo`), a name from the built-in catalog (`llama-3.1-8b`), or a hub id
(`Qwen/Qwen2.5-0.5B`: the local Hugging Face cache first, then the catalog, then — when online —
the config and tokenizer files only, never weights). Results are cached per source and the files
behind it."""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path

from studio.core import paths
from studio.core.errors import StudioError
from studio.core.hub import hub_offline
from studio.core.models.catalog import CatalogEntry, catalog_entry
from studio.core.models.files import CONFIG_NAME
from studio.core.models.hub_cache import cached_snapshot, download_planning_files
from studio.core.models.info import ModelInfo
from studio.core.models.inspection import inspect_folder

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
DEMO_NAMES = ("demo", "demo-model", "builtin:demo")


def is_demo(source: str | None) -> bool:
    """Whether a model source names the built-in demo model."""
    return (source or "").strip().lower() in DEMO_NAMES


def resolve_model(source: str | os.PathLike, *, trust_remote_code: bool = False, cache_dir: Path | None = None) -> ModelInfo:
    """Find and inspect the model the user named. See the module docstring for what `source` may be.

    Results are cached per source, keyed also on the files behind it, so a folder that changes
    (weights downloaded, a chat template added) is inspected again.
    """
    folder = str(cache_dir) if cache_dir else None
    return _resolve_cached(str(source), trust_remote_code, folder, _fingerprint(str(source), folder))


def _fingerprint(source: str, cache_dir: str | None) -> tuple:
    """What changes when the files behind `source` change: names, sizes and times of its folder."""
    path = Path(source.strip()).expanduser()
    if not path.exists() and HUB_ID.match(source.strip()):
        path = cached_snapshot(source.strip(), Path(cache_dir) if cache_dir else None) or path
        env = (os.environ.get("HF_HUB_CACHE"), os.environ.get("HF_HOME"), hub_offline())
    else:
        env = ()
    folder = path.parent if path.is_file() else path
    if not folder.is_dir():
        return (str(folder),) + env
    entries = []
    for child in sorted(folder.iterdir()):
        try:
            stat = child.stat()
        except OSError:
            continue
        entries.append((child.name, stat.st_size, stat.st_mtime_ns))
    return (str(folder), tuple(entries)) + env


@lru_cache(maxsize=32)
def _resolve_cached(source: str, trust_remote_code: bool, cache_dir: str | None, fingerprint: tuple) -> ModelInfo:
    text = source.strip()
    if not text:
        raise StudioError("No model was given.", "Name a model: a folder, a hub id like Qwen/Qwen2.5-0.5B, or 'demo'.")
    cache = Path(cache_dir) if cache_dir else None
    if is_demo(text):
        return _demo(source)
    path = Path(text).expanduser()
    if path.exists():
        return _resolve_path(path, source, trust_remote_code)
    entry = catalog_entry(text)
    if entry is not None and "/" not in text:
        return _from_catalog(entry, source, cache)
    if HUB_ID.match(text):
        return _from_hub_id(text, entry, source, trust_remote_code, cache)
    if any(sep in text for sep in ("/", "\\")) or text.startswith("."):
        raise StudioError(f"There is no file or folder at {text}.", "Check the path, or drag the model folder into the window.")
    raise StudioError(
        f"'{text}' is neither a folder, a catalog model nor a hub id.",
        "Use a folder path, a hub id like Qwen/Qwen2.5-0.5B, 'demo', or a name from `studio models`.",
    )


def _demo(source: str) -> ModelInfo:
    folder = paths.demo_model_dir()
    if not (folder / CONFIG_NAME).is_file():
        raise StudioError("The built-in demo model is missing from this installation.", "Reinstall LoRA Studio.")
    return inspect_folder(folder, source=source, name="demo", trust_remote_code=False)


def _resolve_path(path: Path, source: str, trust_remote_code: bool) -> ModelInfo:
    if path.is_file():
        if path.suffix != ".json":
            raise StudioError(
                f"{path} is a file, not a model folder.",
                "Point the studio at the folder that holds config.json (and the weights), or at the config.json itself.",
            )
        return inspect_folder(path.parent, source=source, config_file=path, weights_folder=path.parent, trust_remote_code=trust_remote_code)
    if not (path / CONFIG_NAME).is_file():
        inner = sorted(p.parent for p in path.glob(f"*/{CONFIG_NAME}"))
        hint = f" It has a model in {inner[0]}: point the studio there." if inner else ""
        raise StudioError(
            f"{path} has no config.json, so it is not a model folder.{hint}",
            "A Hugging Face model folder holds config.json, tokenizer files and *.safetensors weights.",
        )
    return inspect_folder(path, source=source, trust_remote_code=trust_remote_code)


def _from_hub_id(hub_id: str, entry: CatalogEntry | None, source: str, trust_remote_code: bool, cache: Path | None) -> ModelInfo:
    """The hub cache first, then the catalog, then the hub itself (planning files only)."""
    snapshot = cached_snapshot(hub_id, cache)
    if snapshot is not None:
        return inspect_folder(snapshot, source=source, hub_id=hub_id, entry=None, trust_remote_code=trust_remote_code).with_catalog(entry)
    if entry is not None:
        return _from_catalog(entry, source, cache)
    snapshot = download_planning_files(hub_id, cache)
    return inspect_folder(snapshot, source=source, hub_id=hub_id, trust_remote_code=trust_remote_code)


def _from_catalog(entry: CatalogEntry, source: str, cache: Path | None) -> ModelInfo:
    snapshot = cached_snapshot(entry.hub_id, cache)
    if snapshot is not None:  # downloaded before: the cache also knows the weights' size
        return inspect_folder(snapshot, source=source, hub_id=entry.hub_id).with_catalog(entry)
    return inspect_folder(entry.config_path.parent, source=source, config_file=entry.config_path, entry=entry)
