"""The Hugging Face cache: where it is, which models it holds, and fetching a model's planning files
(configuration and tokenizer, never weights) into it."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from studio.core.hub import hub_error, require_hub
from studio.core.models.files import CONFIG_NAME

log = logging.getLogger(__name__)

# Files fetched from the hub for planning: never weights.
PLANNING_FILES = ("config.json", "tokenizer_config.json", "chat_template.jinja", "chat_template.json", "generation_config.json")


def hf_cache_dir() -> Path:
    """The hub cache, read at call time so `HF_HUB_CACHE`/`HF_HOME` set after import still count."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def cached_snapshot(hub_id: str, cache_dir: Path | None = None) -> Path | None:
    """The snapshot folder of `hub_id` in the local cache if its config.json is there."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(hub_id, CONFIG_NAME, cache_dir=str(cache_dir or hf_cache_dir()))
    if isinstance(found, str) and Path(found).is_file():
        return Path(found).parent
    return None


@dataclass(frozen=True)
class CachedModel:
    hub_id: str
    path: Path  # the snapshot folder
    size_on_disk: int
    has_weights: bool


def cached_models(cache_dir: Path | None = None) -> list[CachedModel]:
    """Models in the local hub cache that have a config.json (what `studio models` lists)."""
    from huggingface_hub import scan_cache_dir

    folder = cache_dir or hf_cache_dir()
    if not folder.is_dir():
        return []
    try:
        info = scan_cache_dir(folder)
    except Exception as exc:  # a corrupt cache must not break listing the rest of the studio
        log.warning("could not scan the hub cache at %s: %s", folder, exc)
        return []
    models = []
    for repo in info.repos:
        if repo.repo_type != "model":
            continue
        for revision in sorted(repo.revisions, key=lambda r: r.last_modified, reverse=True):
            names = {f.file_name for f in revision.files}
            if CONFIG_NAME in names:
                has_weights = any(n.endswith((".safetensors", ".bin")) for n in names)
                models.append(CachedModel(repo.repo_id, Path(revision.snapshot_path), repo.size_on_disk, has_weights))
                break
    return sorted(models, key=lambda m: m.hub_id.lower())


def download_planning_files(hub_id: str, cache_dir: Path | None = None) -> Path:
    """Fetch config and tokenizer files (never weights) of `hub_id` into the hub cache."""
    from huggingface_hub import hf_hub_download

    require_hub(f"the configuration of {hub_id}")
    folder = str(cache_dir or hf_cache_dir())
    try:
        config = hf_hub_download(hub_id, CONFIG_NAME, cache_dir=folder)
    except Exception as exc:
        raise hub_error(hub_id, exc, "the configuration") from exc
    for name in PLANNING_FILES[1:]:
        try:
            hf_hub_download(hub_id, name, cache_dir=folder)
        except Exception:  # optional files: most repos lack some of them
            pass
    return Path(config).parent
