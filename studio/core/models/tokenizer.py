"""The model's own tokenizer: from its local folder, the hub cache, or — online — its tokenizer
files only."""

from __future__ import annotations

import warnings

from studio.core.errors import StudioError
from studio.core.hub import hub_offline, require_hub
from studio.core.models.hub_cache import cached_snapshot
from studio.core.models.info import ModelInfo


def load_tokenizer(info: ModelInfo):
    """The model's own tokenizer (local folder, hub cache, or — online — its tokenizer files only)."""
    from transformers import AutoTokenizer

    where = _tokenizer_location(info)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tokenizer = AutoTokenizer.from_pretrained(where, trust_remote_code=info.needs_trust_remote_code)
    except Exception as exc:
        raise _tokenizer_error(info, exc) from exc
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token  # batching needs a pad token; it is masked out of the loss
    return tokenizer


def _tokenizer_location(info: ModelInfo) -> str:
    """The folder (or, online, the hub id) to load the tokenizer from."""
    where: str | None = str(info.path) if info.path else None
    if where is None and info.hub_id:
        snapshot = cached_snapshot(info.hub_id)
        where = str(snapshot) if snapshot else info.hub_id
        if snapshot is None:
            require_hub(f"the tokenizer of {info.name}")
    if where is None:
        raise StudioError(f"{info.name} has no tokenizer on this computer.", "Choose a model folder that holds its tokenizer files.")
    return where


def _tokenizer_error(info: ModelInfo, exc: Exception) -> StudioError:
    offline = hub_offline() or "offline" in str(exc).lower() or "connect" in str(exc).lower()
    if info.path is None and offline:
        return StudioError(
            f"The tokenizer of {info.name} is not on this computer, and the hub cannot be reached.",
            "Connect once to fetch it (only the tokenizer files are downloaded), or use the demo model or a local folder.",
        )
    return StudioError(
        f"The tokenizer of {info.name} could not be loaded: {exc}",
        "The model folder needs tokenizer.json or tokenizer_config.json (with its vocabulary files).",
    )
