"""Runs side by side (`runs.compare_runs`): three real demo runs that differ only in their learning rate
(1e-4, 1e-3, 3e-3; 12 steps, eval every 4), and the folders a comparison refuses."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from studio.core import runs
from studio.core.errors import StudioError
from studio.core.runs import RunHistory, compare_runs
from studio.core.runs.compare import NAMING, settings_of
from studio.core.training.events import read_events
from tests.demo_runs import RATES


@pytest.fixture(scope="module")
def home(rate_runs_home) -> Path:
    return rate_runs_home


@pytest.fixture(scope="module")
def three_runs(home) -> list[Path]:
    """home/runs/lr-<rate>: the same recipe at three learning rates."""
    return [home / "runs" / f"lr-{rate:g}" for rate in RATES]


def _curve(run_dir: Path, kind: str, key: str) -> list[tuple[int, float]]:
    return [(e["step"], e[key]) for e in read_events(run_dir / runs.EVENTS) if e["type"] == kind]


# ---------------------------------------------------------------------------------------------
# Three real runs
# ---------------------------------------------------------------------------------------------


def test_the_curves_are_the_logged_steps_and_values(three_runs):
    comparison = compare_runs(three_runs)
    assert [r.path for r in comparison.runs] == three_runs and [r.name for r in comparison.runs] == [d.name for d in three_runs]
    for run, run_dir in zip(comparison.runs, three_runs, strict=True):
        assert run.status == "completed"
        assert run.losses == _curve(run_dir, "step", "loss") and [s for s, _ in run.losses] == list(range(1, 13))
        assert run.eval_losses == _curve(run_dir, "eval", "eval_loss") and [s for s, _ in run.eval_losses] == [4, 8, 12]
        assert run.scores == {}  # the demo's eval events carry only the eval loss
        assert run.final_loss == run.losses[-1][1]
        best = min(run.eval_losses, key=lambda point: point[1])
        assert (run.best_eval_step, run.best_eval_loss) == best


def test_only_the_learning_rate_differs(three_runs):
    assert compare_runs(three_runs).differences == {"training.learning_rate": list(RATES)}
    # in the order the runs are given
    assert compare_runs(three_runs[::-1]).differences == {"training.learning_rate": list(RATES[::-1])}
    # the folder names differ, and are left out: they change nothing the runs learn
    named = [settings_of(runs.load_recipe(d))["output.name"] for d in three_runs]
    assert named == [d.name for d in three_runs] and "output.name" in NAMING


def test_every_other_setting_that_differs_is_shown_as_the_recipe_writes_it(three_runs, tmp_path):
    edited = tmp_path / "edited"
    shutil.copytree(three_runs[0], edited)
    config = runs.load_recipe(edited)
    config.training.seed, config.adapter.targets, config.data.format = 7, ["q_proj", "v_proj"], "messages"
    config.output.runs_dir = str(tmp_path)
    config.save(edited / runs.RECIPE)
    differences = compare_runs([three_runs[0], edited]).differences
    assert differences == {"data.format": [None, "messages"], "adapter.targets": [["all-linear"], ["q_proj", "v_proj"]],
                           "training.seed": [42, 7]}
    assert list(differences) == [k for k in settings_of(config) if k in differences]  # the recipe's order


def test_the_higher_learning_rate_ends_with_the_lower_loss(three_runs):
    """True on the demo at 12 steps by a wide margin (about 1.26, 0.69, 0.38 with seed 42; the same
    order with seeds 1 and 7)."""
    compared = compare_runs(three_runs).runs
    finals = [r.final_loss for r in compared]
    assert finals[0] > finals[1] > finals[2], finals
    bests = [r.best_eval_loss for r in compared]
    assert bests[0] > bests[1] > bests[2], bests


def test_the_comparison_as_json(three_runs):
    data = json.loads(json.dumps(compare_runs(three_runs).as_dict()))
    assert data["differences"] == {"training.learning_rate": list(RATES)}
    first = data["runs"][0]
    assert first["path"] == str(three_runs[0]) and first["status"] == "completed"
    assert first["losses"] == [list(p) for p in _curve(three_runs[0], "step", "loss")]
    assert {"eval_losses", "scores", "final_loss", "best_eval_loss", "best_eval_step"} <= set(first)


def test_runs_named_as_studio_runs_lists_them(three_runs, home, monkeypatch):
    monkeypatch.setenv("STUDIO_HOME", str(home))
    comparison = compare_runs([d.name for d in three_runs])
    assert [r.path for r in comparison.runs] == three_runs


# ---------------------------------------------------------------------------------------------
# Scores from eval events
# ---------------------------------------------------------------------------------------------


def test_scores_that_eval_events_carry_become_curves(three_runs, tmp_path):
    scored = tmp_path / "scored"
    shutil.copytree(three_runs[0], scored)
    with (scored / runs.EVENTS).open("a", encoding="utf-8") as fh:
        for step, score in ((4, 0.25), (8, 0.5)):
            fh.write(json.dumps({"type": "eval", "time": 1.0, "step": step, "score": score, "exact_match": 1,
                                 "passed": True, "note": "text"}) + "\n")
    run = compare_runs([three_runs[1], scored]).runs[1]
    assert run.scores == {"score": [(4, 0.25), (8, 0.5)], "exact_match": [(4, 1), (8, 1)]}
    assert run.eval_losses == _curve(three_runs[0], "eval", "eval_loss")  # an eval event without eval_loss adds none


def test_a_resume_forgets_the_scores_after_its_step():
    history = RunHistory.from_events([
        {"type": "started"}, {"type": "eval", "step": 4, "score": 0.1}, {"type": "eval", "step": 8, "score": 0.2},
        {"type": "started", "resumed_from_step": 4}, {"type": "eval", "step": 6, "score": 0.3},
    ])
    assert history.scores == {"score": [(4, 0.1), (6, 0.3)]}


# ---------------------------------------------------------------------------------------------
# What a comparison refuses
# ---------------------------------------------------------------------------------------------


def test_a_missing_run_folder_is_named(three_runs, tmp_path):
    with pytest.raises(StudioError) as caught:
        compare_runs([three_runs[0], tmp_path / "gone"])
    assert str(tmp_path / "gone") in caught.value.message and "studio runs" in caught.value.advice


def test_a_folder_that_is_not_a_run_is_named(three_runs, tmp_path):
    (tmp_path / "plain").mkdir()
    with pytest.raises(StudioError) as caught:
        compare_runs([three_runs[0], tmp_path / "plain"])
    assert "plain is not a run folder" in caught.value.message and runs.RECIPE in caught.value.message


def test_a_damaged_run_is_named_with_what_to_do(three_runs, tmp_path):
    damaged = tmp_path / "damaged"
    shutil.copytree(three_runs[0], damaged)
    (damaged / runs.RECIPE).write_text("[training\nsteps = ", encoding="utf-8")
    with pytest.raises(StudioError) as caught:
        compare_runs([damaged, three_runs[1]])
    assert caught.value.message.startswith("The run damaged cannot be compared: ") and "not valid TOML" in caught.value.message
    assert f"leave {damaged} out of the comparison" in caught.value.advice

    (damaged / runs.RECIPE).write_text((three_runs[0] / runs.RECIPE).read_text(encoding="utf-8"), encoding="utf-8")
    with (damaged / runs.EVENTS).open("a", encoding="utf-8") as fh:
        fh.write(json.dumps({"type": "step", "step": "twelve", "loss": 1.0}) + "\n")
    with pytest.raises(StudioError) as caught:
        compare_runs([damaged, three_runs[1]])
    assert caught.value.message.startswith("The run damaged cannot be read") and "events.jsonl" in caught.value.advice


def test_fewer_than_two_runs_or_one_run_twice(three_runs):
    with pytest.raises(StudioError, match="two or more; one was given"):
        compare_runs(three_runs[:1])
    with pytest.raises(StudioError, match="two or more; none were given"):
        compare_runs([])
    with pytest.raises(StudioError, match="is given twice"):
        compare_runs([three_runs[0], three_runs[1], three_runs[0]])
