"""Try & export and the Runs list with real runs of the demo model: an older completed run and a newer
one cancelled after its first step. Try opens on the completed one and says nothing about training
first; choosing another run clears the answers; "Open folder" says where the folder is when nothing
can open it; the Runs list shows "newest first" with a downward arrow; counts are said in the right number."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from studio.core import runs
from studio.core.training import launcher
from tests.demo_runs import demo_recipe, finished_demo_run
from tests.ui.conftest import close_window, make_window, pump, wait_until

pytestmark = pytest.mark.slow


def _cancelled_after_its_first_step(home: Path) -> Path:
    """A run cancelled (the polite way: it saves its adapter) as soon as its first step is reported."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STUDIO_HOME", str(home))
        handle = launcher.start(demo_recipe("cancelled", runs_dir=home / "runs", steps=200))
        for event in launcher.watch(handle):
            if event["type"] == "step" and handle.cancel_requests == 0:
                launcher.cancel(handle)
    assert runs.status_of(handle.run_dir) == "cancelled"
    assert (handle.run_dir / runs.ADAPTER / "adapter_model.safetensors").is_file()
    return handle.run_dir


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> tuple[Path, Path]:
    """(an older run completed in 1 step, a newer one cancelled after its first step), in one runs folder."""
    home = tmp_path_factory.mktemp("try-page-home")
    completed = finished_demo_run(home, "completed", steps=1)
    return completed, _cancelled_after_its_first_step(home)


@pytest.fixture
def window(qapp, two_runs):
    w = make_window(runs_dir=two_runs[0].parent)
    yield w
    close_window(w)


def _open_try(window) -> None:
    window.show_page("try")
    wait_until(lambda: window.page("try").run_combo.count() == 2, 30, "the runs with an adapter")
    pump(seconds=0.05)


def test_try_opens_on_the_newest_completed_run_without_the_train_first_hint(window, two_runs):
    completed, _cancelled = two_runs
    page = window.page("try")
    _open_try(window)
    assert window.state.current_run == completed
    assert page.run_combo.currentData() == str(completed)
    assert "Train a run first" not in page.try_status.text()
    assert page.ask_button.isEnabled()


def test_choosing_another_run_clears_the_previous_runs_answers(window, two_runs):
    _completed, cancelled = two_runs
    page = window.page("try")
    _open_try(window)
    page.prompt.setPlainText("How much water does a prayer plant need?")
    page.max_tokens.setValue(8)
    page.ask_button.click()
    wait_until(lambda: page._ask_task is not None and not page._ask_task.running, 120, "both answers")
    pump(seconds=0.05)
    assert page.base_view.toPlainText().strip() and page.adapter_view.toPlainText().strip()
    index = page.run_combo.findData(str(cancelled))
    page.run_combo.setCurrentIndex(index)
    page.run_combo.activated.emit(index)  # what the combo sends when the user picks a run
    pump(seconds=0.05)
    assert window.state.current_run == cancelled
    assert page.base_view.toPlainText() == "" and page.adapter_view.toPlainText() == ""
    assert page.answers == {"base": "", "adapter": ""} and page.try_status.text() == ""


def test_open_folder_says_where_the_folder_is_when_nothing_can_open_it(window, two_runs, tmp_path):
    """Offscreen, as on a computer without a file manager, nothing can open a folder."""
    completed, _cancelled = two_runs
    page = window.page("try")
    _open_try(window)
    page.destination.setText(str(tmp_path / "export"))
    page.export_buttons["adapter"].click()
    wait_until(lambda: page._export_task is not None and not page._export_task.running, 120, "the export")
    pump(seconds=0.05)
    page.open_button.click()
    assert not page.folder_note.isHidden() and str(tmp_path / "export") in page.folder_note.text()
    assert QApplication.clipboard().text() == str(tmp_path / "export")

    runs_page = window.page("runs")
    window.show_page("runs")
    wait_until(lambda: runs_page.summaries, 30, "the runs list")
    runs_page.select(completed)
    wait_until(lambda: runs_page.opened == completed, 30, "the run to open")
    runs_page.folder_button.click()
    assert not runs_page.folder_note.isHidden() and str(completed) in runs_page.folder_note.text()
    assert QApplication.clipboard().text() == str(completed)


def test_the_runs_list_shows_newest_first_with_a_downward_arrow(window, two_runs):
    completed, cancelled = two_runs
    page = window.page("runs")
    window.show_page("runs")
    wait_until(lambda: len(page.summaries) == 2, 30, "the runs list")
    pump(seconds=0.05)
    header = page.table.horizontalHeader()
    started = page.table.horizontalHeaderItem(6)
    assert started.text() == "Started ▼" and not header.isSortIndicatorShown()
    assert page.table.item(0, 0).data(Qt.ItemDataRole.UserRole) == str(cancelled)  # the newest
    x = header.sectionViewportPosition(6) + header.sectionSize(6) // 2
    QTest.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, header.height() // 2))
    pump(seconds=0.05)
    assert started.text() == "Started ▲"
    assert page.table.item(0, 0).data(Qt.ItemDataRole.UserRole) == str(completed)  # oldest first now
    assert page.table.horizontalHeaderItem(0).text() == "Run"


def test_counts_are_said_in_the_right_number(window, two_runs):
    page = window.page("try")
    _open_try(window)
    completed_label = page.run_combo.itemText(page.run_combo.findData(str(two_runs[0])))
    assert "completed, 1 step," in completed_label, completed_label
    window.show_page("runs")
    wait_until(lambda: window.page("runs").summaries, 30, "the runs list")
    pump(seconds=0.05)
    runs_item = next(window.steps.item(i) for i in range(window.steps.count())
                     if window.steps.item(i).data(Qt.ItemDataRole.UserRole) == "runs")
    assert runs_item.text().endswith("2 runs")
