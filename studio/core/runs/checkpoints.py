"""A run's checkpoints: which are whole, the one a resume starts from, and those whose adapter can be
exported (an export needs the adapter's weights and config, not the optimizer's state)."""

from __future__ import annotations

import json
import re
import struct
import zipfile
from pathlib import Path

from studio.core.errors import StudioError
from studio.core.runs.folders import ADAPTER_WEIGHTS, CHECKPOINTS

# Files a Trainer checkpoint needs to resume a PEFT run.
CHECKPOINT_FILES = ("trainer_state.json", "adapter_model.safetensors", "adapter_config.json", "optimizer.pt", "scheduler.pt")
# An FSDP run's checkpoint holds each process's shard of the model and optimizer instead of optimizer.pt;
# torch.distributed.checkpoint writes a folder's .metadata after all its shards.
SHARDED_FILES = ("optimizer_0/.metadata", "pytorch_model_fsdp_0/.metadata")
TORCH_FILES = ("optimizer.pt", "scheduler.pt", "rng_state.pth")  # torch.save's zip archives; rng_state is optional
# Files only Trainer reads to resume (the optimizer, scheduler, random and training state): never part of an export.
TRAINER_FILE = re.compile(r"trainer_state\.json|training_args\.bin|.*\.pth?")


def checkpoint_step(path: Path) -> int | None:
    m = re.fullmatch(r"checkpoint-(\d+)", path.name)
    return int(m.group(1)) if m else None


def is_complete_checkpoint(path: Path) -> bool:
    return checkpoint_problem(path) is None


def checkpoint_problem(path: Path) -> str | None:
    """Why a checkpoint cannot be resumed from (a worker killed mid-save, a full disk, a cut copy),
    in a few words; None when every file is there, whole, and its state names its step."""
    return _missing_file(path) or _cut_file(path) or _state_problem(path)


def _missing_file(path: Path) -> str | None:
    sharded = (path / "optimizer_0").is_dir()
    needed = [n for n in CHECKPOINT_FILES if not (sharded and n == "optimizer.pt")] + list(SHARDED_FILES if sharded else ())
    for name in needed:
        if not (path / name).is_file() or (path / name).stat().st_size == 0:
            return f"its {name} is missing or empty"
    return None


def _cut_file(path: Path) -> str | None:
    if not _safetensors_whole(path / "adapter_model.safetensors"):
        return "its adapter_model.safetensors is cut short"
    for name in TORCH_FILES:
        if (path / name).is_file() and not _zip_whole(path / name):
            return f"its {name} is cut short"
    return None


def _state_problem(path: Path) -> str | None:
    try:
        state = json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return "its trainer_state.json cannot be read"
    if not isinstance(state, dict) or state.get("global_step") != checkpoint_step(path):
        return "its trainer_state.json is for another step"
    return None


def _safetensors_whole(path: Path) -> bool:
    """A safetensors file is an 8-byte header length, a JSON header, then the tensors' bytes: whole
    when its size is exactly what the header describes."""
    try:
        with path.open("rb") as fh:
            (length,) = struct.unpack("<Q", fh.read(8))
            if length > 100_000_000:
                return False
            header = json.loads(fh.read(length))
        ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
        return path.stat().st_size == 8 + length + max(ends, default=0)
    except (OSError, struct.error, ValueError, KeyError, TypeError, IndexError, AttributeError):
        return False


def _zip_whole(path: Path) -> bool:
    """torch.save writes a zip archive whose directory comes last: a cut file has none (read without
    unpickling anything)."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (OSError, zipfile.BadZipFile, ValueError):
        return False
    size = path.stat().st_size
    return bool(entries) and all(e.header_offset + e.compress_size <= size for e in entries)


def resume_point(run_dir: Path) -> Path | None:
    """The newest complete checkpoint of a run, or None."""
    return next((p for p in checkpoints(run_dir) if is_complete_checkpoint(p)), None)


def checkpoints(run_dir: Path) -> list[Path]:
    """The run's checkpoint folders, newest first."""
    folder = Path(run_dir) / CHECKPOINTS
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if p.is_dir() and checkpoint_step(p) is not None),
                  key=checkpoint_step, reverse=True)


def adapter_problem(path: Path) -> str | None:
    """Why a checkpoint's adapter cannot be exported, in a few words; None when its weights and config are whole."""
    for name in ADAPTER_WEIGHTS:
        if not (path / name).is_file() or (path / name).stat().st_size == 0:
            return f"its {name} is missing or empty"
    if not _safetensors_whole(path / ADAPTER_WEIGHTS[0]):
        return f"its {ADAPTER_WEIGHTS[0]} is cut short"
    try:
        config = json.loads((path / ADAPTER_WEIGHTS[1]).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        config = None
    return None if isinstance(config, dict) else f"its {ADAPTER_WEIGHTS[1]} cannot be read"


def exportable_checkpoints(run_dir: Path) -> list[int]:
    """The steps of the run's checkpoints whose adapter can be exported, oldest first."""
    return sorted(checkpoint_step(p) for p in checkpoints(run_dir) if adapter_problem(p) is None)


def checkpoint_to_export(run_dir: Path, step: int) -> Path:
    """The folder of the checkpoint saved at `step`; a StudioError naming the steps there are when it is
    missing or its adapter is damaged."""
    run_dir = Path(run_dir)
    path = run_dir / CHECKPOINTS / f"checkpoint-{step}"
    problem = adapter_problem(path) if path.is_dir() else None
    if path.is_dir() and problem is None:
        return path
    steps = exportable_checkpoints(run_dir)
    where = (f"Its checkpoints are at {_steps(steps)}." if steps else "It kept no checkpoint that can be exported.")
    if path.is_dir():
        message = f"The checkpoint at step {step} of the run {run_dir.name} cannot be exported: {problem}. {where}"
    else:
        message = f"The run {run_dir.name} has no checkpoint at step {step}. {where}"
    advice = (f"Export one of those (--checkpoint {steps[-1]}), or the final adapter (leave out --checkpoint)." if steps else
              "Export the final adapter (leave out --checkpoint); a run keeps checkpoints when save_every is set.")
    raise StudioError(message, advice)


def _steps(steps: list[int]) -> str:
    words = [str(s) for s in steps]
    return ("step " if len(words) == 1 else "steps ") + (", ".join(words[:-1]) + " and " + words[-1] if len(words) > 1 else words[0])
