"""The Runs page's Scores tab on a real demo run that scored its checkpoints while training: the saved
scoreboard shown without loading a model, a row's answers beside the expected ones, scoring from the
window stopped and resumed, and "Export this checkpoint" naming the checkpoint chosen."""

from __future__ import annotations

import pytest

from studio.core.evaluation import load_questions, save_questions
from studio.core.paths import demo_data_dir
from studio.core.recipe import DataSection
from studio.ui.pages.scoreboard_view import COLUMNS, ScoreboardView
from tests.demo_runs import finished_demo_run
from tests.ui.conftest import wait_until


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """8 steps, a checkpoint every 4, two golden questions scored by the worker as it saves."""
    home = tmp_path_factory.mktemp("scores")
    golden = save_questions(home / "golden", load_questions(demo_data_dir() / "golden.jsonl")[0][:2])
    return finished_demo_run(home, "scored", steps=8, save_every=4, learning_rate=2e-3,
                             data=DataSection(source="demo", questions=str(golden)))


def _cell(view: ScoreboardView, row: int, title: str) -> str:
    return view.table.item(row, [c[0] for c in COLUMNS].index(title)).text()


def test_the_saved_scores_show_and_a_row_opens_its_answers(qapp, run_dir):
    view = ScoreboardView()
    view.show_run(run_dir)
    board = wait_until(lambda: view.board, 60, "the saved scores")
    assert [r.name for r in board.rows] == ["base", "checkpoint-4", "checkpoint-8"]
    best = [r.name for r in board.rows].index(board.best)
    assert _cell(view, best, "Model") == f"★ {board.best}"
    for r, row in enumerate(board.rows):
        assert _cell(view, r, "Score ↑") == f"{row.score:.3f}"
        assert _cell(view, r, "Forgetting ↓") == f"{row.general_loss:.3f}"
    assert view.table.isColumnHidden([c[0] for c in COLUMNS].index("Judge (opinion) ↑"))  # no judge graded these
    view.table.selectRow(0)
    assert view.answers.rowCount() == 2
    assert view.answers.item(0, 1).text() == board.rows[0].answers[0]["expected"]
    assert view.answers.item(0, 2).text() == board.rows[0].answers[0]["answer"]
    assert not view.export_button.isEnabled()  # the base model is not a checkpoint
    asked = []
    view.export_requested.connect(lambda run, step: asked.append((run, step)))
    view.table.selectRow(1)
    assert view.export_button.isEnabled()
    view.export_button.click()
    assert asked == [(run_dir, 4)]


def test_scoring_from_the_window_stops_and_resumes(qapp, run_dir):
    view = ScoreboardView()
    view.show_run(run_dir)
    wait_until(lambda: view.board, 60, "the saved scores")
    view.score()  # on the 32-bit base the window loads: the worker's 4-bit scores are not reused
    assert view.stop_button.isEnabled() and not view.score_button.isEnabled()
    wait_until(lambda: view.progress.value() > 0 or not view.scoring(), 120, "the first model scored")
    view.stop()
    wait_until(lambda: not view.scoring(), 120, "scoring to stop")
    stopped = view.board
    assert not stopped.complete and 1 <= len(stopped.rows) < 3
    assert "goes on where it stopped" in view.status.text()
    view.score()
    wait_until(lambda: not view.scoring(), 180, "scoring to finish")
    assert view.board.complete and [r.name for r in view.board.rows] == ["base", "checkpoint-4", "checkpoint-8"]
    assert view.board.rows[0] == stopped.rows[0]  # kept, not scored again
    assert view.board.held_as == "float32"


def test_the_train_pages_plot_draws_the_score_of_each_checkpoint_under_the_loss(qapp, run_dir):
    from studio.core import runs
    from studio.core.training.events import read_events
    from studio.ui.widgets.loss_plot import LossPlot
    from tests.ui.conftest import pump

    events = read_events(run_dir / runs.EVENTS)
    plot = LossPlot()
    assert plot.score_plot is None  # a run without golden questions has no score row
    plot.add_steps([e for e in events if e["type"] == "step"])
    for e in events:
        if e["type"] == "eval":
            plot.add_eval(e)  # as the Train page hears them, eval losses and scores mixed
    pump(seconds=0.3)
    scored = [(e["step"], e["rouge_l"]) for e in events if e["type"] == "eval" and "checkpoint" in e]
    assert [s for s, _ in scored] == [0, 4, 8] and plot.score_points() == scored
    assert plot.eval_points() == sorted({e["step"]: e["eval_loss"] for e in events if e.get("eval_loss") is not None}.items())
    xs, ys = plot.score_curve.getData()
    assert list(xs) == [0, 4, 8] and plot.base_line.value() == scored[0][1]


def test_a_local_judge_chosen_in_the_window_grades_each_answer(qapp, run_dir):
    from tests.ollama_stand_in import OllamaStandIn

    view = ScoreboardView()
    view.show_run(run_dir)
    wait_until(lambda: view.board, 60, "the saved scores")
    with OllamaStandIn(["qwen2.5:7b"]) as ollama:  # a real HTTP server speaking Ollama's API on this computer
        view.judge.setText(f"ollama:qwen2.5:7b@{ollama.url}")
        view.score()
        wait_until(lambda: not view.scoring(), 180, "scoring with the judge")
    board = view.board
    assert board.complete and len(ollama.chats) == 2 * len(board.rows)  # each answer of each model graded once
    column = [c[0] for c in COLUMNS].index("Judge (opinion) ↑")
    assert not view.table.isColumnHidden(column)
    assert [view.table.item(r, column).text() for r in range(len(board.rows))] == ["4.000"] * len(board.rows)
    view.table.selectRow(0)
    assert view.answers.item(0, 3).toolTip() == "Mostly right."
