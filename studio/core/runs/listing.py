"""The runs folder, listed: one `RunSummary` per run, newest first. A run whose files cannot be read
is listed with what is wrong, never hides the others."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from studio.core import paths
from studio.core.errors import StudioError
from studio.core.runs.folders import ADAPTER, RECIPE, folder_size, has_adapter, load_recipe
from studio.core.runs.history import RunHistory
from studio.core.runs.status import status_of
from studio.core.training.failures import Failure


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
    error: dict | None = None  # a failed run's error (failures.py): kind, message, advice, topic
    adapter: Path | None = None
    losses: list[tuple[int, float]] = field(default_factory=list)
    problem: str | None = None  # what in the folder cannot be read, and what to do

    @property
    def failure(self) -> Failure | None:
        """The error, typed (a run from an older studio gets its kind's default topic)."""
        return Failure.from_dict(self.error)

    def as_dict(self) -> dict:
        return {"path": str(self.path), "name": self.name, "status": self.status, "step": self.step,
                "total_steps": self.total_steps, "final_loss": self.final_loss, "eval_loss": self.eval_loss,
                "started": self.started, "model": self.model, "size_bytes": self.size_bytes, "error": self.error,
                "adapter": str(self.adapter) if self.adapter else None, "problem": self.problem}


def summarize_run(run_dir: Path, *, with_size: bool = True, history: RunHistory | None = None) -> RunSummary:
    """`history`: the run's, when the caller has read it already."""
    run_dir = Path(run_dir)
    history = history if history is not None else RunHistory.read(run_dir)
    status = status_of(run_dir, history)
    last = history.last_loss
    model, problem = _model_of(run_dir)
    return RunSummary(
        path=run_dir, name=run_dir.name, status=status,
        step=last[0] if last else 0, total_steps=history.total_steps,
        final_loss=last[1] if last else None, eval_loss=history.last_eval_loss,
        started=history.first_started["time"] if history.first_started else None,
        model=model, size_bytes=folder_size(run_dir) if with_size else 0,
        error=history.error if status == "failed" else None,
        adapter=run_dir / ADAPTER if has_adapter(run_dir) else None,
        losses=history.series["loss"], problem=problem,
    )


def _model_of(run_dir: Path) -> tuple[str, str | None]:
    """(the recipe's model, None), or ("?", what is wrong with the recipe)."""
    try:
        return load_recipe(run_dir).model.source, None
    except Exception as exc:  # noqa: BLE001 - one broken recipe must not hide the run, or the others
        return "?", (f"Its recipe ({RECIPE}) cannot be read: {_reason(exc)} Fix or replace {run_dir / RECIPE}; "
                     "its events, checkpoints and adapter are untouched.")


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
    found = [_summary_or_problem(p, with_size) for p in root.iterdir() if p.is_dir() and (p / RECIPE).is_file()]
    return sorted(found, key=lambda r: r.started or os.path.getmtime(r.path), reverse=True)
