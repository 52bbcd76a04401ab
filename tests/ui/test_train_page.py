"""The Train page as a user meets it, with real worker runs of the demo model: Start refused (with the
reason and a way to the Data page) while the data cannot be used; a run that fails on its data
explained in plain words, never a traceback, and listed as failed; the step list following a run
step by step, also after the window is reopened; the loss plot's legend and step axis."""

from __future__ import annotations

import math

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QApplication, QScrollBar, QWidget

from studio.core import runs
from tests.ui.conftest import close_window, make_window, pump, wait_until

pytestmark = pytest.mark.slow

BAD_ROWS = 'not json\n{"x": 1}\n'


def _step_label(window) -> str:
    items = (window.steps.item(i) for i in range(window.steps.count()))
    return next(item.text() for item in items if item.data(Qt.ItemDataRole.UserRole) == "train")


def _overflow(page: QWidget) -> list[str]:
    """Widgets reaching past the page's right edge, and horizontal scroll bars."""
    found = []
    for widget in page.findChildren(QWidget):
        if not widget.isVisible():
            continue
        right = widget.mapTo(page, QPoint(0, 0)).x() + widget.width()
        if right > page.width() + 1 or (isinstance(widget, QScrollBar) and widget.orientation() == Qt.Orientation.Horizontal):
            found.append(f"{type(widget).__name__} {widget.toolTip()[:40]!r} reaches x={right} of {page.width()}")
    return found


def test_start_is_refused_with_the_reason_while_the_data_cannot_be_used(qapp, tmp_path):
    bad = tmp_path / "broken.jsonl"
    bad.write_text(BAD_ROWS, encoding="utf-8")
    w = make_window(runs_dir=tmp_path / "runs")
    try:
        page = w.page("train")
        w.show_page("train")
        assert page.start_button.isEnabled()
        w.page("data").load(str(bad))
        wait_until(lambda: w.state.data_error is not None, 60, "the data check to fail")
        pump(seconds=0.05)
        assert not page.start_button.isEnabled()
        assert not page.blocked.isHidden()
        assert w.state.data_error[0] in page.blocked.reason.text()
        assert page.blocked.button.text() == "Go to the Data page"
        w.resize(1024, 700)
        pump(seconds=0.1)
        assert not _overflow(page), _overflow(page)
        page.start_run()  # Ctrl+Return, or the failure panel's "start again", cannot start it either
        assert not page.running and page.run_dir is None
        page.blocked.button.click()
        pump(seconds=0.05)
        assert w.current_key() == "data"
        w.page("data").load("demo")
        wait_until(lambda: w.state.data is not None, 60, "the demo data")
        pump(seconds=0.05)
        assert page.start_button.isEnabled() and page.blocked.isHidden()
    finally:
        close_window(w)


def test_start_is_refused_until_data_is_chosen(qapp, tmp_path):
    w = make_window(data=None, runs_dir=tmp_path / "runs")
    try:
        page = w.page("train")
        w.show_page("train")
        pump(seconds=0.05)
        assert not page.start_button.isEnabled() and not page.blocked.isHidden()
        assert "No training data is chosen yet" in page.blocked.reason.text()
    finally:
        close_window(w)


def test_a_run_that_fails_on_its_data_says_why_in_plain_words_and_is_listed_as_failed(qapp, tmp_path):
    """The data checked fine, then the file was broken before Start: the worker finds it, the log pane
    shows the message and advice (no traceback), the Runs page lists the run as failed."""
    bad = tmp_path / "broken.jsonl"
    bad.write_text(BAD_ROWS, encoding="utf-8")
    w = make_window(runs_dir=tmp_path / "runs")
    try:
        w.state.config.data.source = str(bad)
        w.state.changed()
        page = w.page("train")
        w.show_page("train")
        page.start_button.click()
        wait_until(lambda: page.last_finished is not None and not page.running, 120, "the run to fail")
        pump(seconds=0.3)
        error = page.last_finished["error"]
        assert error["kind"] == "bad_input"
        log = page.log.toPlainText()
        assert "Traceback" not in log and 'File "' not in log, log
        assert error["message"] in log and error["advice"] in log, log
        assert "Traceback" in (page.run_dir / runs.STDERR).read_text()  # the details are kept for a bug report
        assert runs.status_of(page.run_dir) == "failed"
        assert _step_label(w).endswith("failed")
        page.failure.log_button.click()  # nothing can open a file offscreen: the page says where the log is
        assert not page.failure.log_path.isHidden() and str(page.run_dir / runs.STDERR) in page.failure.log_path.text()
        assert QApplication.clipboard().text() == str(page.run_dir / runs.STDERR)
        runs_page = w.page("runs")
        w.show_page("runs")
        wait_until(lambda: runs_page.summaries, 30, "the runs list")
        assert [s.status for s in runs_page.summaries] == ["failed"]
        assert runs_page.table.item(0, 1).text() == "failed"
    finally:
        close_window(w)


def _step(window) -> int:
    steps = window.page("train").plot.steps()
    return steps[-1] if steps else 0


def _long_run(window, steps: int = 400) -> None:
    t = window.state.config.training
    t.steps, t.epochs = steps, None
    t.save_every, t.eval_every, t.sample_every = 2, 0, 0
    t.preflight = False
    window.state.changed()


def test_the_step_list_follows_the_run_step_by_step_and_after_reopening(qapp, tmp_path):
    runs_dir = tmp_path / "runs"
    first = make_window(runs_dir=runs_dir)
    try:
        _long_run(first)
        page = first.page("train")
        page.start_button.click()
        wait_until(lambda: _step(first) >= 3, 180, "three steps")
        seen = []
        for _ in range(3):  # the label moves with the steps, not only when the run starts or ends
            step = _step(first)
            wait_until(lambda step=step: _step(first) > step, 60, "the next step")
            pump(seconds=0.05)
            seen.append(_step_label(first))
            assert f"training, step {_step(first)}/400" in seen[-1], seen
        run_dir = page.run_dir
        first.close_policy = "leave"  # until here a failure stops the run as the window closes
    finally:
        close_window(first)

    second = make_window(model=None, data=None, wait=False, runs_dir=runs_dir)
    try:
        page = second.page("train")
        wait_until(lambda: page.running and _step(second) >= 3, 60, "the reopened window to follow the run")
        pump(seconds=0.05)
        assert f"training, step {_step(second)}/400" in _step_label(second)
        page.cancel_button.click()
        assert page.cancel_button.text().replace("&", "") == "■  Stop now"
        assert "Press “Stop now” to stop at once" in page.status.text()  # the words of the button
        wait_until(lambda: page.last_finished is not None, 120, "the cancelled run to end")
        pump(seconds=0.05)
        stopped = page.last_finished["step"]
        assert _step_label(second).endswith(f"cancelled at step {stopped}")
        assert second.state.current_run is None  # a cancelled run is tried only when asked ("Try it")
        page.try_button.click()
        assert second.state.current_run == run_dir and second.current_key() == "try"
    finally:
        close_window(second)

    third = make_window(model=None, data=None, wait=False, runs_dir=runs_dir)
    try:
        page = third.page("train")
        wait_until(lambda: page.resume_button.isEnabled(), 30, "the resume offer")
        pump(seconds=0.05)
        assert _step_label(third).endswith(f"cancelled at step {stopped}")
    finally:
        close_window(third)


def test_the_loss_legend_stays_off_the_curves_and_steps_are_whole_numbers(qapp):
    from studio.ui.widgets.loss_plot import LossPlot

    plot = LossPlot()
    plot.resize(460, 300)
    plot.show()
    plot.add_steps([{"step": s, "loss": 2.0 - 0.3 * s, "lr": 1e-3} for s in (1, 2, 3)])
    plot.add_eval({"step": 3, "eval_loss": 1.2})
    pump(seconds=0.4)
    try:
        curves = plot.loss_plot.vb.sceneBoundingRect()
        assert not plot.legend.sceneBoundingRect().intersects(curves)
        for p in (plot.loss_plot, plot.lr_plot):
            axis = p.getAxis("bottom")
            low, high = p.viewRange()[0]
            ticks = [v for _spacing, values in axis.tickValues(low, high, axis.width()) for v in values]
            assert ticks and all(float(v).is_integer() for v in ticks), ticks
        assert plot.placeholder.isVisible() is False and math.isclose(plot.losses()[-1], 1.1)
    finally:
        plot.close()
        plot.deleteLater()


def test_an_error_with_a_topic_opens_its_page_whatever_its_words():
    from studio.core.recipe import RunConfig
    from studio.ui.pages.train import page_that_fixes

    config = RunConfig()
    about_data = {"message": "The learning rate is 5.0, but it must be between 0 and 1 (see the data)."}
    assert page_that_fixes("could_not_start", about_data, config) == "data"  # no topic: the words decide
    assert page_that_fixes("could_not_start", {**about_data, "topic": "settings"}, config) == "adapter"
    assert page_that_fixes("could_not_start", {"message": "The eval fraction is 0.95.", "topic": "data"}, config) == "data"
    assert page_that_fixes("bad_input", {"message": "No such file.", "topic": "model"}, config) == "model"
