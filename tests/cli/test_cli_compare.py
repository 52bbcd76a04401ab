"""`studio compare RUN RUN ...` on three real demo runs that differ only in their learning rate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studio.cli import main
from studio.cli.output import EXIT_USER_ERROR
from studio.core import runs
from studio.core.training.events import read_events
from tests.demo_runs import RATES, learning_rate_runs


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cli-compare-home")


@pytest.fixture(scope="module")
def three_runs(home) -> list[Path]:
    return learning_rate_runs(home, steps=4, eval_every=2)


def test_compare_json(three_runs, capsys):
    assert main(["compare", *map(str, three_runs), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["differences"] == {"training.learning_rate": list(RATES)}
    assert [r["name"] for r in data["runs"]] == ["lr-0.0001", "lr-0.001", "lr-0.003"]
    for run, run_dir in zip(data["runs"], three_runs, strict=True):
        events = read_events(run_dir / runs.EVENTS)
        assert run["losses"] == [[e["step"], e["loss"]] for e in events if e["type"] == "step"]
        assert run["eval_losses"] == [[e["step"], e["eval_loss"]] for e in events if e["type"] == "eval"]
        assert run["status"] == "completed" and run["final_loss"] == run["losses"][-1][1] and run["scores"] == {}
        assert run["best_eval_loss"] == min(v for _, v in run["eval_losses"])


def test_compare_by_name_prints_the_settings_losses_and_curves(three_runs, home, capsys, monkeypatch):
    monkeypatch.setenv("STUDIO_HOME", str(home))  # the runs folder that `studio runs` lists
    assert main(["compare", "lr-0.0001", "lr-0.001", "lr-0.003"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Settings that differ:"
    assert lines[1].split() == ["setting", "lr-0.0001", "lr-0.001", "lr-0.003"]
    assert lines[2].split() == ["training.learning_rate", "0.0001", "0.001", "0.003"]
    compared = runs.compare_runs(three_runs).runs
    for run in compared:
        row = next(line for line in lines if line.startswith(f"{run.name} "))
        assert row.split() == [run.name, "completed", f"{run.final_loss:.4f}", f"{run.best_eval_loss:.4f}", "(step",
                               f"{run.best_eval_step})"]
        for label, curve in (("loss", run.losses), ("eval loss", run.eval_losses)):
            spark = next(line for line in lines if line.startswith(f"  {label} ") and f" {run.name} " in line)
            first, last = curve[0], curve[-1]
            assert spark.endswith(f"{first[1]:.4f} (step {first[0]}) → {last[1]:.4f} (step {last[0]})")


def test_compare_a_missing_run_folder(three_runs, tmp_path, capsys):
    assert main(["compare", str(three_runs[0]), str(tmp_path / "nowhere")]) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert f"Error: There is no run folder at {tmp_path / 'nowhere'}." in err
    assert "What to do: Pick a folder from `studio runs`." in err


def test_compare_needs_two_runs(three_runs, capsys):
    assert main(["compare", str(three_runs[0])]) == EXIT_USER_ERROR
    assert "Comparing runs needs two or more; one was given." in capsys.readouterr().err
