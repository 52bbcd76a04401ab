"""One run folder that cannot be read never hides the others: `studio runs` and the Runs page list
every run and flag the broken one with what is wrong and what to do."""

from __future__ import annotations

import json
from pathlib import Path

from studio.cli import main
from studio.core import runs
from studio.core.recipe import RunConfig


def _run(folder: Path, events: list[dict]) -> Path:
    folder.mkdir(parents=True)
    config = RunConfig()
    config.model.source = "demo"
    config.save(folder / runs.RECIPE)
    (folder / runs.EVENTS).write_text("".join(json.dumps(dict(e, time=1.0 + i)) + "\n" for i, e in enumerate(events)))
    return folder


def broken_runs_folder(root: Path) -> Path:
    """A good run, one whose run.toml is not text (saved by another program), one whose events cannot be summed up."""
    done = [{"type": "started", "total_steps": 2}, {"type": "step", "step": 1, "loss": 2.0},
            {"type": "step", "step": 2, "loss": 1.5}, {"type": "finished", "status": "completed", "step": 2}]
    _run(root / "good", done)
    (_run(root / "binary-recipe", done) / runs.RECIPE).write_bytes(b"\xff\xfe\x00[training]\x00steps = \xff\n")
    _run(root / "odd-events", [{"type": "started", "total_steps": 2}, {"type": "step", "step": "one", "loss": 2.0},
                               {"type": "step", "step": 2, "loss": 1.5}])
    return root


def test_one_unreadable_run_does_not_hide_the_others(tmp_path):
    found = {r.name: r for r in runs.list_runs(broken_runs_folder(tmp_path / "runs"))}
    assert set(found) == {"good", "binary-recipe", "odd-events"}
    assert found["good"].status == "completed" and found["good"].problem is None
    recipe = found["binary-recipe"]
    assert recipe.status == "completed" and recipe.final_loss == 1.5  # its events still tell its story
    assert "run.toml" in recipe.problem and "Fix or replace" in recipe.problem
    assert found["odd-events"].status == "unreadable" and "cannot be read" in found["odd-events"].problem


def test_studio_runs_lists_them_and_flags_the_broken(tmp_path, capsys):
    root = broken_runs_folder(tmp_path / "runs")
    assert main(["runs", "--runs-dir", str(root)]) == 0
    out = capsys.readouterr().out
    assert "good" in out and "completed" in out
    assert "Problem with binary-recipe:" in out and "Problem with odd-events:" in out and "Traceback" not in out
    assert main(["runs", "--runs-dir", str(root), "--json"]) == 0
    listed = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert listed["good"]["problem"] is None and "run.toml" in listed["binary-recipe"]["problem"]
