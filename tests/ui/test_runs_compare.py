"""Compare runs on the Runs page: three real demo runs that differ only in their learning rate (1e-4, 1e-3,
3e-3; 12 steps, eval every 4), selected together and compared — their curves overlaid, the one setting
that differs, their best figures — and one of them selected alone, opened as before."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from studio.core import runs
from studio.core.runs import compare_runs
from studio.core.training.events import read_events
from studio.ui.pages.runs_compare import VALUE_ROLE
from tests.demo_runs import RATES
from tests.ui.conftest import close_window, make_window, pump, wait_until


@pytest.fixture(scope="module")
def three_runs(rate_runs_home) -> list[Path]:
    """home/runs/lr-<rate>: the same recipe at three learning rates."""
    return [rate_runs_home / "runs" / f"lr-{rate:g}" for rate in RATES]


@pytest.fixture
def page(qapp, three_runs):
    """The Runs page with the three runs listed."""
    w = make_window(model=None, data=None, wait=False, runs_dir=three_runs[0].parent)
    page = w.page("runs")
    w.show_page("runs")
    wait_until(lambda: page.table.rowCount() == 3, 30, "the three runs listed")
    yield page
    close_window(w)


def _events(run_dir: Path, kind: str, key: str) -> list[tuple[int, float]]:
    return [(e["step"], e[key]) for e in read_events(run_dir / runs.EVENTS) if e["type"] == kind]


def _plotted(curve) -> list[tuple[int, float]]:
    x, y = curve.getOriginalDataset()
    return [(int(s), float(v)) for s, v in zip(x, y, strict=True)]


def _click(page, row: int, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    centre = page.table.visualRect(page.table.model().index(row, 0)).center()
    QTest.mouseClick(page.table.viewport(), Qt.MouseButton.LeftButton, modifier, centre)


def _compare_all(page):
    _click(page, 0)
    _click(page, 2, Qt.KeyboardModifier.ShiftModifier)  # the three, as a user selects them
    assert page.compare_button.isEnabled() and page.compare_button.text().replace("&", "") == "Compare 3 runs"
    assert "3 runs selected" in page.title_label.text() and "Compare them" in page.title_label.text()
    page.compare_button.click()
    view = page.compare_view
    wait_until(lambda: view.comparison is not None, 30, "the comparison")
    assert page.detail_stack.currentWidget() is view
    return view


def test_three_runs_compared_curves_settings_and_best_figures(page, three_runs):
    view = _compare_all(page)
    by_name = {d.name: d for d in three_runs}
    names = [r.name for r in view.comparison.runs]
    assert sorted(names) == sorted(by_name)
    # the training loss: one curve per run, its points the run's step events, a legend entry with its name
    assert view.kind().key == "loss" and "lower is better" in view.curve_choice.currentText()
    assert len(view.curves) == 3
    for name, curve in zip(names, view.curves, strict=True):
        assert _plotted(curve) == _events(by_name[name], "step", "loss")
    assert [label.text for _, label in view.legend.items] == names
    assert len({curve.opts["pen"].color().name() for curve in view.curves}) == 3  # one colour per run
    # the eval loss, chosen in words
    view.curve_choice.setCurrentIndex(view.curve_choice.findData("eval_loss"))
    assert view.curve_choice.currentText() == "Eval loss — lower is better"
    for name, curve in zip(names, view.curves, strict=True):
        assert _plotted(curve) == _events(by_name[name], "eval", "eval_loss") and len(_plotted(curve)) == 3
    # only the learning rate differs (the folder's name is left out), one column per run
    table = view.differences
    keys = [table.item(r, 0).data(VALUE_ROLE) for r in range(table.rowCount())]
    assert keys == ["training.learning_rate"] and "output.name" not in keys
    assert [table.horizontalHeaderItem(c).text() for c in range(1, 4)] == names
    rates = {name: runs.load_recipe(by_name[name]).training.learning_rate for name in names}
    assert [table.item(0, c).data(VALUE_ROLE) for c in range(1, 4)] == [rates[n] for n in names]
    assert [table.item(0, c).text() for c in range(1, 4)] == [f"{rates[n]:g}" for n in names]
    assert "peak learning rate" in table.item(0, 0).toolTip()
    # the best figures are the core's
    expected = compare_runs([by_name[n] for n in names])
    figures = view.figures
    rows = {figures.item(r, 0).text(): r for r in range(figures.rowCount())}
    final, best = rows["Final training loss ↓"], rows["Eval loss ↓"]
    for c, run in enumerate(expected.runs, start=1):
        assert figures.item(final, c).data(VALUE_ROLE) == (run.final_loss, None)
        assert figures.item(best, c).data(VALUE_ROLE) == (run.best_eval_loss, run.best_eval_step)
        assert figures.item(best, c).text() == f"{run.best_eval_loss:.4f} ({run.best_eval_step})"
    lowest = min(range(3), key=lambda i: expected.runs[i].final_loss)
    assert figures.item(final, lowest + 1).font().bold()  # the best run of the row stands out
    assert "1 setting of their recipes differs" in view.status.text()
    assert QApplication.activeModalWidget() is None
    # Ctrl-click leaves one out: the comparison follows the selection
    _click(page, 1, Qt.KeyboardModifier.ControlModifier)
    wait_until(lambda: len(view.comparison.runs) == 2, 30, "the comparison of two")
    assert len(view.curves) == 2 and view.figures.columnCount() == 3 and "2 runs compared" in page.title_label.text()


def test_one_run_selected_opens_its_detail(page, three_runs):
    _compare_all(page)
    row = next(r for r in range(page.table.rowCount()) if page.table.item(r, 0).text() == three_runs[1].name)
    _click(page, row)
    wait_until(lambda: page.opened == three_runs[1], 30, "the run to open")
    assert page.detail_stack.currentWidget() is page.tabs
    assert three_runs[1].name in page.title_label.text() and "completed" in page.title_label.text()
    assert page.plot.point_count() == 12 and page.try_button.isEnabled()
    assert not page.compare_button.isEnabled()


def test_a_run_that_cannot_be_compared_is_said_on_the_page(page, three_runs, tmp_path):
    view = page.compare_view
    stranger = tmp_path / "not-a-run"
    stranger.mkdir()  # a folder without run.toml
    view.compare([three_runs[0], stranger])
    wait_until(lambda: "not a run folder" in view.status.text(), 30, "the error")
    assert "Name run folders" in view.status.text()  # the advice, on the page
    assert view.comparison is None and view.curves == [] and view.differences.rowCount() == 0
    assert QApplication.activeModalWidget() is None
    pump(seconds=0.05)
