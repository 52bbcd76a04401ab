"""Preference tuning in the window: the Adapter page's training method (supervised, DPO, ORPO) and its
strength reach the recipe and the memory plan; the data's preference pairs are offered in plain words
(and their absence said, and Start refused); an earlier adapter to go on from; and a preference run's
rewards drawn under the loss, live and from a run folder (Train page and the Runs page's Curves tab)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from studio.core.evaluation.metrics import SCORE
from studio.core.recipe import RunConfig, TrainingSection, help_of
from studio.core.runs import EVENTS, RECIPE, RunHistory
from studio.core.runs.history import EVAL_REWARD_SERIES, REWARD_SERIES
from tests.ui.conftest import ROOT, close_window, make_window, pump, wait_until
from tests.ui.test_data_page import choose, load_and_wait

PREFERENCES = ROOT / "resources" / "demo-data" / "preferences.jsonl"


def _phases(window) -> list[str]:
    return [p.name for p in window.state.plan().phases]


def _emitted(signal) -> list:
    heard = []
    signal.connect(lambda: heard.append(1))
    return heard


def test_the_training_method_reaches_the_recipe_the_plan_and_the_start_button(window):
    page, state = window.page("adapter"), window.state
    window.show_page("adapter")
    assert state.config.training.method == "sft" and page.method.currentData() == "sft"
    assert page.method.currentText() == "Supervised (SFT)" and page.beta.isHidden()
    assert help_of(TrainingSection, "method")[1:] in page.method.toolTip()  # the recipe's own words
    assert help_of(TrainingSection, "beta")[1:] in page.beta.toolTip()
    assert page.method_box.pairs_note.isHidden()  # the demo data has no pairs, and nothing asks for them
    supervised = _phases(window)
    assert "reference" not in supervised

    training, adapter = _emitted(state.training_changed), _emitted(state.adapter_changed)
    choose(page.method, "dpo")
    assert state.config.training.method == "dpo" and len(training) == 1 and not adapter  # one field, one event
    assert "reference" in _phases(window)  # DPO scores both answers again with the reference
    assert not page.beta.isHidden() and page.beta.value() == pytest.approx(0.1)
    page.beta.setValue(0.25)
    assert state.config.training.beta == pytest.approx(0.25) and len(training) == 2
    note = page.method_box.pairs_note
    assert not note.isHidden() and note.text().startswith("DPO needs preference pairs (a chosen and a rejected answer "
                                                          "per row), and your data has none.")
    # Start is refused at once, with the reason and the page that fixes it
    blocker = state.start_blocker()
    assert blocker.page == "data" and blocker.message.startswith("DPO needs preference pairs")
    train = window.page("train")
    assert not train.start_button.isEnabled() and not train.blocked.isHidden()
    assert "DPO needs preference pairs" in train.blocked.reason.text()
    assert window.pages["adapter"].summary().endswith(", DPO")

    choose(page.method, "orpo")
    assert state.config.training.method == "orpo" and "reference" not in _phases(window)  # ORPO has no reference pass
    assert note.text().startswith("ORPO needs preference pairs")
    choose(page.method, "sft")
    assert state.config.training.method == "sft" and page.beta.isHidden() and note.isHidden()
    assert _phases(window) == supervised and state.start_blocker() is None and train.start_button.isEnabled()
    assert state.config.training.beta == pytest.approx(0.25)  # kept for the next preference run


def test_the_data_s_preference_pairs_are_offered_in_plain_words(window, tmp_path):
    page, state = window.page("adapter"), window.state
    load_and_wait(window, PREFERENCES)
    rows = sum(1 for line in PREFERENCES.read_text(encoding="utf-8").splitlines() if line.strip())
    assert state.data is not None and state.data.pairs == rows == state.data.report["rows"]
    note = page.method_box.pairs_note
    assert not note.isHidden()
    assert note.text() == (f"Your data has {rows} preference pairs: train on the preferred answers only (supervised), "
                           "or teach the preference (DPO, or ORPO without a reference pass).")
    choose(page.method, "dpo")
    assert note.text() == (f"Your data has {rows} preference pairs: DPO teaches the model to prefer each chosen answer "
                           "over its rejected one.")
    assert state.start_blocker() is None and window.page("train").start_button.isEnabled()

    # a row without a rejected answer: counted out of the pairs, and said
    partial = tmp_path / "partial.jsonl"
    rows = [{"prompt": f"Question {i}?", "chosen": f"A good answer {i}.", "rejected": f"A poor answer {i}." if i else ""}
            for i in range(3)]
    partial.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    load_and_wait(window, partial)
    assert state.data.pairs == 2 and state.data.report["rows"] == 3
    assert note.text() == ("Your data has 2 preference pairs: DPO teaches the model to prefer each chosen answer over its "
                           "rejected one. The 1 row without a rejected answer is left out.")


def _adapter_folder(folder: Path, rank: int, alpha: int, targets: list[str]) -> Path:
    (folder / "adapter").mkdir(parents=True)
    config = {"peft_type": "LORA", "r": rank, "lora_alpha": alpha, "lora_dropout": 0.0, "target_modules": targets}
    (folder / "adapter" / "adapter_config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


def test_a_run_goes_on_from_an_earlier_adapter(window, tmp_path):
    page, state = window.page("adapter"), window.state
    box = page.method_box
    assert box.start_from.text() == "A new adapter" and not box.new_adapter.isEnabled()
    earlier = _adapter_folder(tmp_path / "2026-01-01-sft", 8, 16, ["q_proj", "v_proj"])
    box.set_start_from(earlier)
    assert state.config.adapter.start_from == str(earlier)
    assert state.plan().adapter.rank == 8  # the plan is made for the adapter gone on from
    assert box.start_from.text() == earlier.name and box.new_adapter.isEnabled()
    assert "rank 8, alpha 16, on q_proj, v_proj" in box.start_note.text()
    assert not page.adapter_group.isEnabled() and not page.targets_group.isEnabled()  # its own shape is used

    box.set_start_from(tmp_path / "nothing-here")  # no adapter to go on from: refused in words
    assert state.config.adapter.start_from == str(earlier)
    assert "neither a run folder nor an adapter folder" in box.start_note.text()

    QTest.mouseClick(box.new_adapter, Qt.MouseButton.LeftButton)
    assert state.config.adapter.start_from is None and box.start_from.text() == "A new adapter"
    assert state.plan().adapter.rank == state.config.adapter.rank and page.adapter_group.isEnabled()


# ---- the reward row ----

STEPS = range(1, 7)


def _preference_events() -> list[dict]:
    """A DPO run's events, as the worker writes them: rewards on every step, held-out ones at each eval."""
    events = [{"type": "started", "time": 1.0, "total_steps": 6, "device": "CPU"}]
    for s in STEPS:
        events.append({"type": "step", "time": 1.0 + s, "step": s, "total_steps": 6, "loss": 0.69 - 0.05 * s,
                       "lr": 1e-4, "reward_margin": 0.1 * s, "reward_accuracy": 0.5 + 0.08 * s,
                       "reward_chosen": 0.04 * s, "reward_rejected": -0.06 * s})
        if s % 3 == 0:
            events.append({"type": "eval", "time": 1.5 + s, "step": s, "eval_loss": 0.7 - 0.04 * s,
                           "eval_reward_margin": 0.08 * s, "eval_reward_accuracy": 0.45 + 0.09 * s,
                           "eval_reward_chosen": 0.03 * s, "eval_reward_rejected": -0.05 * s})
    events.append({"type": "finished", "time": 9.0, "status": "completed", "step": 6})
    return events


def _expected(events: list[dict], name: str) -> list[tuple[int, float]]:
    return [(e["step"], pytest.approx(e[name])) for e in events if name in e]


def _drawn(curve) -> list[tuple[int, float]]:
    x, y = curve.getData()
    return [(int(s), pytest.approx(float(v))) for s, v in zip(x, y, strict=True)]


def _assert_reward_row(plot, events: list[dict]) -> None:
    for name in REWARD_SERIES + EVAL_REWARD_SERIES:
        assert plot.reward_points(name) == _expected(events, name), name
    row = plot.rewards
    assert row is not None
    for name in ("reward_margin", "eval_reward_margin", "reward_chosen", "reward_rejected", "reward_accuracy",
                 "eval_reward_accuracy"):
        assert _drawn(row.curves[name]) == _expected(events, name), name
    assert [label.text for _, label in row.legend.items] == ["margin", "held out", "chosen", "rejected",
                                                             "accuracy →", "held out →"]
    # the accuracy on its own axis, 0 to 1; the chosen and rejected rewards thinner than the margin
    assert row.curves["reward_accuracy"] in row.accuracy_box.addedItems
    low, high = row.accuracy_box.viewRange()[1]
    assert low <= 0 and 1 <= high < 1.2
    assert row.curves["reward_chosen"].opts["pen"].widthF() < row.curves["reward_margin"].opts["pen"].widthF()
    assert row.plot.getAxis("bottom").labelText == "step" and plot.lr_plot.getAxis("bottom").labelText == ""
    assert not plot.lr_plot.isVisible()  # the learning rate folds away for the rewards (room at 1024 × 700)


def test_the_reward_row_draws_a_preference_run_live_and_from_its_folder(qapp, tmp_path):
    from studio.ui.widgets.loss_plot import LossPlot

    events = _preference_events()
    plot = LossPlot()
    plot.resize(640, 560)
    plot.show()
    assert plot.rewards is None
    plot.add_steps([e for e in events if e["type"] == "step"][:1])
    pump(seconds=0.3)
    assert plot.rewards is not None  # the row comes with the first reward
    plot.add_steps([e for e in events if e["type"] == "step"][1:])
    for e in events:
        if e["type"] == "eval":
            plot.add_eval(e)  # as the Train page hears them
    pump(seconds=0.3)
    _assert_reward_row(plot, events)
    # a step's x is the same in every row: the rows' axes are as wide
    plot.add_eval({"step": 0, "checkpoint": "base", SCORE: 0.2})  # golden questions too: their row above the rewards
    pump(seconds=0.3)
    rows = (plot.loss_plot, plot.score_plot, plot.rewards.plot)
    assert len({round(p.vb.sceneBoundingRect().left()) for p in rows}) == 1
    assert len({round(p.vb.sceneBoundingRect().width()) for p in rows}) == 1
    assert plot.score_plot.getAxis("bottom").labelText == "" and plot.rewards.plot.getAxis("bottom").labelText == "step"

    folder = tmp_path / "run"
    folder.mkdir()
    (folder / EVENTS).write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    series = RunHistory.read(folder).series
    plot.set_history(series["loss"], series["eval_loss"], series["lr"], rewards=series)
    pump(seconds=0.3)
    _assert_reward_row(plot, events)

    # a supervised run next: no reward row at all, the lowest row left carries the steps again
    plot.set_history([(1, 2.0), (2, 1.8)], [(2, 1.9)], [(1, 1e-4), (2, 1e-4)], rewards={"loss": [(1, 2.0)]})
    pump(seconds=0.3)
    assert plot.rewards is None and plot.score_plot.getAxis("bottom").labelText == "step" and plot.lr_plot.isVisible()
    assert plot.lr_plot.getAxis("bottom").labelText == ""
    assert not any(p.getAxis("right").isVisible() for p in (plot.loss_plot, plot.lr_plot, plot.score_plot))
    plot.deleteLater()


def test_the_runs_page_and_the_train_page_show_a_preference_run_s_rewards_from_its_folder(qapp, tmp_path):
    runs_dir = tmp_path / "runs"
    run = runs_dir / "2026-11-27-dpo"
    run.mkdir(parents=True)
    config = RunConfig()
    config.training.method = "dpo"
    config.save(run / RECIPE)
    events = _preference_events()
    (run / EVENTS).write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    w = make_window(model=None, data=None, wait=False, runs_dir=runs_dir)
    try:
        page = w.page("runs")
        w.show_page("runs")
        wait_until(lambda: page.table.rowCount() == 1, 30, "the run listed")
        centre = page.table.visualRect(page.table.model().index(0, 0)).center()
        QTest.mouseClick(page.table.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, centre)
        wait_until(lambda: page.opened == run, 30, "the run to open")
        pump(seconds=0.3)
        assert page.plot.point_count() == len(STEPS)
        _assert_reward_row(page.plot, events)
        train = w.page("train")  # the Train page shows a run from its folder the same way (a stopped run offered)
        train.run_dir = run
        train.show_history(run)
        w.show_page("train")
        wait_until(lambda: train.plot.rewards is not None, 30, "the Train page's reward row")
        pump(seconds=0.3)
        _assert_reward_row(train.plot, events)
    finally:
        close_window(w)
