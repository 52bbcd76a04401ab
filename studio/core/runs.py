"""The runs folder: one folder per run, enough on its own to show, resume or export it.

    runs/<date>-<name>/
        run.toml        the recipe (RunConfig)
        events.jsonl    what the worker reported, one JSON object per line
        stderr.log      the worker's full log and tracebacks
        worker.lock     locked by the one worker that owns the folder, for its whole life
        worker.pid      that worker's process id and start time (for a forced stop)
        checkpoints/    checkpoint-<step>/ folders Trainer can resume from
        adapter/        the trained adapter (written atomically at the end)

A run's status is derived from its events and its lock, never stored separately: a folder copied
from another machine reads the same.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import time
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from studio.core import paths
from studio.core.errors import StudioError
from studio.core.recipe import RunConfig
from studio.core.training import ownership
from studio.core.training.events import read_events

DISK_MARGIN = 64 * 1024**2  # bytes kept free beyond what a checkpoint or an export needs


def free_bytes(path: Path) -> int:
    """Free disk space where `path` is or will be (its nearest existing folder). The worker and the
    export import it by name, so a test can simulate a full disk in either module."""
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


RECIPE = "run.toml"
EVENTS = "events.jsonl"
STDERR = "stderr.log"
PID = ownership.PID
LOCK = ownership.LOCK
CANCEL = "cancel.request"
CHECKPOINTS = "checkpoints"
ADAPTER = "adapter"
# Files a Trainer checkpoint needs to resume a PEFT run.
CHECKPOINT_FILES = ("trainer_state.json", "adapter_model.safetensors", "adapter_config.json", "optimizer.pt", "scheduler.pt")
TORCH_FILES = ("optimizer.pt", "scheduler.pt", "rng_state.pth")  # torch.save's zip archives; rng_state is optional


def runs_root(config: RunConfig | None = None) -> Path:
    if config is not None and config.output.runs_dir:
        return Path(config.output.runs_dir).expanduser()
    return paths.runs_dir()


def create_run_dir(config: RunConfig, run_dir: Path | None = None) -> Path:
    """A new run folder holding the recipe: `<runs>/<YYYY-MM-DD-HHMM>-<name>`, never reusing one."""
    if run_dir is not None:
        folder = Path(run_dir).expanduser()
        if folder.exists() and not folder.is_dir():
            raise StudioError(f"{folder} is a file, not a folder.", "Give --run-dir a new or empty folder for the run.")
        if folder.exists() and any(folder.iterdir()):
            raise StudioError(f"{folder} already holds files.", "Choose an empty or new folder for the run, or resume it with --resume.")
    else:
        root = runs_root(config)
        stamp = datetime.now().strftime("%Y-%m-%d-%H%M")
        folder = root / f"{stamp}-{config.output.name}"
        n = 2
        while folder.exists():
            folder = root / f"{stamp}-{config.output.name}-{n}"
            n += 1
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StudioError(f"The run folder {folder} cannot be created: {exc.strerror}.", "Choose a folder you can write to.") from exc
    config.save(folder / RECIPE)
    return folder


def load_recipe(run_dir: Path) -> RunConfig:
    path = Path(run_dir) / RECIPE
    if not path.is_file():
        raise StudioError(f"{run_dir} is not a run folder (it has no {RECIPE}).", "Pick a folder from `studio runs`.")
    return RunConfig.load(path)


def checkpoint_step(path: Path) -> int | None:
    m = re.fullmatch(r"checkpoint-(\d+)", path.name)
    return int(m.group(1)) if m else None


def is_complete_checkpoint(path: Path) -> bool:
    return checkpoint_problem(path) is None


def checkpoint_problem(path: Path) -> str | None:
    """Why a checkpoint cannot be resumed from (a worker killed mid-save, a full disk, a cut copy),
    in a few words; None when every file is there, whole, and its state names its step."""
    for name in CHECKPOINT_FILES:
        if not (path / name).is_file() or (path / name).stat().st_size == 0:
            return f"its {name} is missing or empty"
    if not _safetensors_whole(path / "adapter_model.safetensors"):
        return "its adapter_model.safetensors is cut short"
    for name in TORCH_FILES:
        if (path / name).is_file() and not _zip_whole(path / name):
            return f"its {name} is cut short"
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


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (exited, not yet reaped by its parent) is not running
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


@dataclass
class RunSummary:
    path: Path
    name: str
    status: str  # running, completed, cancelled, failed, interrupted, created; unreadable (see `problem`)
    step: int = 0
    total_steps: int | None = None
    final_loss: float | None = None
    eval_loss: float | None = None
    started: float | None = None
    model: str = ""
    size_bytes: int = 0
    error: dict | None = None
    adapter: Path | None = None
    losses: list[tuple[int, float]] = field(default_factory=list)
    problem: str | None = None  # what in the folder cannot be read, and what to do

    def as_dict(self) -> dict:
        return {"path": str(self.path), "name": self.name, "status": self.status, "step": self.step,
                "total_steps": self.total_steps, "final_loss": self.final_loss, "eval_loss": self.eval_loss,
                "started": self.started, "model": self.model, "size_bytes": self.size_bytes, "error": self.error,
                "adapter": str(self.adapter) if self.adapter else None, "problem": self.problem}


def metrics(events: list[dict]) -> dict[str, list[tuple[int, float]]]:
    """Loss, eval loss and learning rate per step. After a resume the later value of a step wins,
    so the curve continues where the checkpoint left it."""
    series: dict[str, dict[int, float]] = {"loss": {}, "eval_loss": {}, "lr": {}, "grad_norm": {}, "tokens_per_s": {}}
    for e in events:
        step = e.get("step")
        if step is None:
            continue
        if e["type"] == "step":
            for key in ("loss", "lr", "grad_norm", "tokens_per_s"):
                if e.get(key) is not None:
                    series[key][step] = e[key]
        elif e["type"] == "eval" and e.get("eval_loss") is not None:
            series["eval_loss"][step] = e["eval_loss"]
        elif e["type"] == "started":  # a resume: forget what came after its starting step
            start = e.get("resumed_from_step") or 0
            for values in series.values():
                for s in [s for s in values if s > start]:
                    del values[s]
    return {k: sorted(v.items()) for k, v in series.items()}


def last_finished(events: list[dict]) -> dict | None:
    """How the last attempt ended: the `finished` event after the last `started`, if any. A run
    whose worker failed before it started (bad input found by its checks) has only its `finished`."""
    last_start = max((i for i, e in enumerate(events) if e["type"] == "started"), default=0)
    return next((e for e in reversed(events[last_start:]) if e["type"] == "finished"), None)


def status_of(run_dir: Path, events: list[dict] | None = None) -> str:
    if ownership.is_held(run_dir):
        return "running"
    events = read_events(Path(run_dir) / EVENTS) if events is None else events
    finished = last_finished(events)
    if finished is not None:
        return finished.get("status", "failed")
    return "interrupted" if any(e["type"] == "started" for e in events) else "created"


def is_completed(run_dir: Path, events: list[dict] | None = None) -> bool:
    """Trained to its last step: the last attempt ended `completed` and its adapter is there."""
    events = read_events(Path(run_dir) / EVENTS) if events is None else events
    finished = last_finished(events) or {}
    return finished.get("status") == "completed" and (Path(run_dir) / ADAPTER / "adapter_model.safetensors").is_file()


def folder_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def summarize_run(run_dir: Path, *, with_size: bool = True, events: list[dict] | None = None) -> RunSummary:
    """`events`: the run's events when the caller has read them already."""
    run_dir = Path(run_dir)
    if events is None:
        events = read_events(run_dir / EVENTS)
    series = metrics(events)
    status = status_of(run_dir, events)
    started = next((e for e in events if e["type"] == "started"), None)
    last_started = next((e for e in reversed(events) if e["type"] == "started"), None)
    finished = next((e for e in reversed(events) if e["type"] == "finished"), None)
    model, problem = "?", None
    try:
        model = load_recipe(run_dir).model.source
    except Exception as exc:  # noqa: BLE001 - one broken recipe must not hide the run, or the others
        problem = (f"Its recipe ({RECIPE}) cannot be read: {_reason(exc)} Fix or replace {run_dir / RECIPE}; "
                   "its events, checkpoints and adapter are untouched.")
    adapter = run_dir / ADAPTER
    return RunSummary(
        path=run_dir,
        name=run_dir.name,
        status=status,
        step=series["loss"][-1][0] if series["loss"] else 0,
        total_steps=(last_started or {}).get("total_steps"),
        final_loss=series["loss"][-1][1] if series["loss"] else None,
        eval_loss=series["eval_loss"][-1][1] if series["eval_loss"] else None,
        started=started["time"] if started else None,
        model=model,
        size_bytes=folder_size(run_dir) if with_size else 0,
        error=(finished or {}).get("error") if status == "failed" else None,
        adapter=adapter if (adapter / "adapter_model.safetensors").is_file() else None,
        losses=series["loss"],
        problem=problem,
    )


def _reason(exc: Exception) -> str:
    text = exc.message if isinstance(exc, StudioError) else f"{exc}"
    return text if text.endswith(".") else f"{text}."


def _summary_or_problem(run_dir: Path, with_size: bool) -> RunSummary:
    try:
        return summarize_run(run_dir, with_size=with_size)
    except Exception as exc:  # noqa: BLE001 - list the others, flag this one
        return RunSummary(path=run_dir, name=run_dir.name, status="unreadable", model="?",
                          problem=f"This run's files cannot be read: {_reason(exc)} Look at {run_dir} "
                                  "(its run.toml and events.jsonl); the other runs are not affected.")


def list_runs(root: Path | None = None, *, with_size: bool = True) -> list[RunSummary]:
    """Every run in the runs folder, newest first. `with_size=False` skips walking the checkpoints."""
    root = Path(root) if root else paths.runs_dir()
    if not root.is_dir():
        return []
    runs = [_summary_or_problem(p, with_size) for p in root.iterdir() if p.is_dir() and (p / RECIPE).is_file()]
    return sorted(runs, key=lambda r: r.started or os.path.getmtime(r.path), reverse=True)


def wait_for_status(run_dir: Path, statuses: tuple[str, ...], timeout: float) -> str:
    """Poll a run's status until it is one of `statuses` (used by tests and the CLI)."""
    deadline = time.monotonic() + timeout
    while True:
        status = status_of(run_dir)
        if status in statuses or time.monotonic() > deadline:
            return status
        time.sleep(0.2)
