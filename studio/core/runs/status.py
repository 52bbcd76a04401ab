"""A run's status: its history's (how the last attempt ended), unless a worker owns the folder now
(its lock, ownership.py) — then it is running. Never stored separately: a folder copied from
another machine reads the same."""

from __future__ import annotations

from pathlib import Path

from studio.core.runs.folders import has_adapter
from studio.core.runs.history import RunHistory
from studio.core.training import ownership


def status_of(run_dir: Path, history: RunHistory | None = None) -> str:
    """running, completed, cancelled, failed, interrupted or created. `history`: the run's, when the
    caller has read it already."""
    if ownership.is_held(run_dir):
        return "running"
    return (history if history is not None else RunHistory.read(run_dir)).status


def is_completed(run_dir: Path, history: RunHistory | None = None) -> bool:
    """Trained to its last step: the last attempt ended `completed` and its adapter is there."""
    return (history if history is not None else RunHistory.read(run_dir)).status == "completed" and has_adapter(run_dir)
