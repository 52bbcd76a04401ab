"""The adapter a run goes on training (`adapter.start_from`): an earlier run's adapter, or any PEFT LoRA
adapter folder. Its own rank, alpha and layers are the run's, since the weights are shaped by them."""

from __future__ import annotations

import json
from pathlib import Path

from studio.core.errors import StudioError


def start_adapter(source: str | Path) -> Path:
    """The adapter folder `source` names: a run folder's final adapter, or the folder itself."""
    from studio.core import runs

    folder = Path(source).expanduser()
    for candidate in (folder / runs.ADAPTER, folder):
        if (candidate / "adapter_config.json").is_file():
            return candidate
    if (folder / runs.CHECKPOINTS).is_dir():
        raise StudioError(f"The run {folder.name} has no finished adapter to start from.",
                          "Let that run finish (or resume it), or start from another run.", topic="settings")
    raise StudioError(f"{folder} is neither a run folder nor an adapter folder (no adapter_config.json).",
                      "Choose a finished run's folder, or a folder holding a PEFT LoRA adapter.", topic="settings")


def saved_lora(folder: Path) -> dict:
    """The saved adapter's LoRA settings, as AdapterSpec's keyword arguments."""
    config = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    if config.get("peft_type", "LORA") != "LORA":
        raise StudioError(f"The adapter in {folder} is a {config.get('peft_type')} adapter, not LoRA.",
                          "Start from a LoRA adapter made by LoRA Studio or PEFT.", topic="settings")
    targets = config.get("target_modules") or ["all-linear"]
    return {"rank": int(config.get("r", 8)), "alpha": int(config.get("lora_alpha", 8)),
            "dropout": float(config.get("lora_dropout", 0.0)),
            "targets": tuple([targets] if isinstance(targets, str) else sorted(targets)),
            "use_dora": bool(config.get("use_dora", False)), "use_rslora": bool(config.get("use_rslora", False))}
