"""A run's folder: the names of what it holds, making one, reading its recipe, the disk it is on."""

from __future__ import annotations

import os
import shutil
from datetime import datetime
from pathlib import Path

from studio.core import paths
from studio.core.errors import StudioError
from studio.core.recipe import RunConfig
from studio.core.training import ownership

RECIPE = "run.toml"
EVENTS = "events.jsonl"
STDERR = "stderr.log"
PID = ownership.PID
LOCK = ownership.LOCK
CANCEL = "cancel.request"
CHECKPOINTS = "checkpoints"
ADAPTER = "adapter"
# The trained adapter's own files in adapter/ (the tokenizer files and studio.json sit beside them).
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_config.json")
DISK_MARGIN = 64 * 1024**2  # bytes kept free beyond what a checkpoint or an export needs


def free_bytes(path: Path) -> int:
    """Free disk space where `path` is or will be (its nearest existing folder). The worker and the
    export import it by name, so a test can simulate a full disk in either module."""
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def folder_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def has_adapter(run_dir: Path) -> bool:
    """Whether the run saved its trained adapter (adapter/adapter_model.safetensors)."""
    return (Path(run_dir) / ADAPTER / ADAPTER_WEIGHTS[0]).is_file()


def runs_root(config: RunConfig | None = None) -> Path:
    if config is not None and config.output.runs_dir:
        return Path(config.output.runs_dir).expanduser()
    return paths.runs_dir()


def create_run_dir(config: RunConfig, run_dir: Path | None = None) -> Path:
    """A new run folder holding the recipe: `<runs>/<YYYY-MM-DD-HHMM>-<name>`, never reusing one."""
    folder = _given_folder(Path(run_dir).expanduser()) if run_dir is not None else _new_folder(config)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StudioError(f"The run folder {folder} cannot be created: {exc.strerror}.", "Choose a folder you can write to.") from exc
    config.save(folder / RECIPE)
    return folder


def _given_folder(folder: Path) -> Path:
    if folder.exists() and not folder.is_dir():
        raise StudioError(f"{folder} is a file, not a folder.", "Give --run-dir a new or empty folder for the run.")
    if folder.exists() and any(folder.iterdir()):
        raise StudioError(f"{folder} already holds files.", "Choose an empty or new folder for the run, or resume it with --resume.")
    return folder


def _new_folder(config: RunConfig) -> Path:
    root = runs_root(config)
    stamp = datetime.now().strftime("%Y-%m-%d-%H%M")
    folder = root / f"{stamp}-{config.output.name}"
    n = 2
    while folder.exists():
        folder = root / f"{stamp}-{config.output.name}-{n}"
        n += 1
    return folder


def run_folder(run_dir: Path | str) -> Path:
    """The run folder `run_dir` names: a folder, or a run's name in the runs folder as `studio runs` lists it."""
    run_dir = Path(run_dir).expanduser()
    if not run_dir.is_dir() and not run_dir.is_absolute() and (runs_root() / run_dir).is_dir():
        run_dir = runs_root() / run_dir
    if not run_dir.is_dir():
        raise StudioError(f"There is no run folder at {run_dir}.", "Pick a folder from `studio runs`.")
    return run_dir


def load_recipe(run_dir: Path) -> RunConfig:
    path = Path(run_dir) / RECIPE
    if not path.is_file():
        raise StudioError(f"{run_dir} is not a run folder (it has no {RECIPE}).", "Pick a folder from `studio runs`.")
    return RunConfig.load(path)
