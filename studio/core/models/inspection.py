"""Inspect a folder that holds a config.json (weights optional) into a `ModelInfo`: its exact
architecture (architecture.py), its dimensions, its files (files.py) and where it came from."""

from __future__ import annotations

from pathlib import Path

from studio.core.models.architecture import inspect_on_meta, load_config, text_config
from studio.core.models.catalog import CatalogEntry
from studio.core.models.files import CONFIG_NAME, card_license, has_chat_template, read_config_dict, weights_on_disk
from studio.core.models.info import ModelInfo


def inspect_folder(
    folder: Path,
    *,
    source: str,
    name: str | None = None,
    hub_id: str | None = None,
    entry: CatalogEntry | None = None,
    trust_remote_code: bool = False,
    config_file: Path | None = None,
    weights_folder: Path | None = None,
) -> ModelInfo:
    """Build a `ModelInfo` from a folder with a config.json (weights optional)."""
    raw = read_config_dict(config_file or folder / CONFIG_NAME)
    config = load_config(folder, raw, trust_remote_code)
    shape = inspect_on_meta(config, trust_remote_code)
    files_folder = weights_folder if weights_folder is not None else folder
    weights_bytes, weights_format, damaged = weights_on_disk(files_folder)
    return ModelInfo(
        source=source,
        architecture=shape.architecture,
        model_type=str(raw.get("model_type", "")),
        total_params=shape.total,
        quantizable_params=shape.quantizable,
        embedding_params=shape.embedding,
        lm_head_params=shape.lm_head,
        other_params=shape.total - shape.quantizable - shape.embedding - shape.lm_head,
        tied_embeddings=shape.tied,
        linear_layers=shape.linears,
        **_dimensions(text_config(config)),
        **_provenance(folder, files_folder, raw, name=name, hub_id=hub_id, entry=entry),
        weights_bytes=weights_bytes,
        weights_format=weights_format,
        needs_trust_remote_code=trust_remote_code and "auto_map" in raw,
        notes=_notes(weights_format, damaged),
    )


def _dimensions(text) -> dict:
    """The language model's sizes, from its (text) configuration; 0 for what it does not state."""
    heads = int(getattr(text, "num_attention_heads", 0) or 0)
    hidden = int(getattr(text, "hidden_size", 0) or 0)
    context = getattr(text, "max_position_embeddings", None)
    return {
        "vocab_size": int(getattr(text, "vocab_size", 0) or 0),
        "hidden_size": hidden,
        "num_layers": int(getattr(text, "num_hidden_layers", 0) or 0),
        "num_attention_heads": heads,
        "num_kv_heads": int(getattr(text, "num_key_value_heads", 0) or heads),
        "head_dim": int(getattr(text, "head_dim", 0) or (hidden // heads if heads else 0)),
        "intermediate_size": int(getattr(text, "intermediate_size", 0) or 0),
        "context_length": int(context) if context else None,
        "logit_softcapping": getattr(text, "final_logit_softcapping", None) or None,
    }


def _provenance(folder: Path, files_folder: Path, raw: dict, *, name: str | None, hub_id: str | None,
                entry: CatalogEntry | None) -> dict:
    """Name, origin, license and chat template: from the catalog entry when there is one, else the files."""
    if entry is not None:
        return {
            "name": name or entry.display_name,
            "has_chat_template": entry.chat_template or has_chat_template(files_folder),
            "path": None,
            "hub_id": hub_id or entry.hub_id,
            "license": entry.license,
            "family": entry.family,
            "catalog_name": entry.name,
        }
    return {
        "name": name or hub_id or folder.name,
        "has_chat_template": has_chat_template(files_folder),
        "path": folder,
        "hub_id": hub_id,
        "license": raw.get("license") or card_license(files_folder),
        "family": None,
        "catalog_name": None,
    }


def _notes(weights_format: str | None, damaged: str | None) -> tuple[str, ...]:
    notes = []
    if damaged:
        notes.append(f"A weight file is damaged ({damaged}): download the model again before training.")
    if weights_format == "bin":
        notes.append("Weights are pickled .bin files, which can run code when loaded; the studio asks before loading them.")
    return tuple(notes)
