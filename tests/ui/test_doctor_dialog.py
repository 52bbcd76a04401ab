"""The computer check (first start, and Help ▸ Check this computer): whether a GPU was found and its
memory, whether 4-bit training is available, what to do if not, and "Copy report" — shown once on
the first start, reachable from the Help menu, never blocking the window."""

from __future__ import annotations

import json
import time

from PySide6.QtCore import Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from studio.core.doctor import explain, report_text
from studio.ui import doctor_dialog as dd
from tests.core.test_doctor import CPU_ONLY
from tests.ui.conftest import close_window, pump, wait_until

# ---------------------------------------------------------------------------------------------
# The dialog
# ---------------------------------------------------------------------------------------------


def test_the_dialog_shows_this_computer_and_copy_puts_the_report_on_the_clipboard(qapp):
    dialog = dd.DoctorDialog()
    dialog.show()
    try:
        assert not dialog.copy_button.isEnabled()  # nothing to copy until the check is done
        wait_until(lambda: dialog.report is not None, 180, "the computer check")
        report = dialog.report
        assert report["studio"] and "torch" in report and "gpus" in report and report["frozen"] is False
        assert dialog.verdict == explain(report)
        assert dialog.headline.text() == dialog.verdict.headline
        if not report["gpus"]:  # this machine: CPU only
            assert "No NVIDIA GPU found" in dialog.findings_label.text()
            assert "4-bit training on the GPU: not available" in dialog.findings_label.text()
        assert "runs_folder" in dialog.details.toPlainText()
        QApplication.clipboard().clear()
        QTest.mouseClick(dialog.copy_button, Qt.MouseButton.LeftButton)
        copied = json.loads(QApplication.clipboard().text())
        assert copied == json.loads(report_text(report))
        assert copied["torch"] == report["torch"] and copied["bitsandbytes_backend"] == report["bitsandbytes_backend"]
        assert dialog.copy_button.text() == "Copied ✓"
    finally:
        dialog.close()
        dialog.deleteLater()
        pump(seconds=0.05)


def test_the_check_runs_in_the_background_and_never_blocks_the_window(qapp):
    def slow_report():
        time.sleep(1.0)
        return dict(CPU_ONLY)

    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start(20)
    dialog = dd.DoctorDialog(collect=slow_report)
    dialog.show()
    try:
        assert dialog.checking and dialog.report is None  # the constructor returned at once
        wait_until(lambda: dialog.report is not None, 30, "the slow check")
        assert len(ticks) >= 20  # the event loop kept running while the report was being made
        assert max(b - a for a, b in zip(ticks, ticks[1:], strict=False)) < 0.5
        assert dialog.headline.text().startswith("No NVIDIA GPU was found")
    finally:
        timer.stop()
        dialog.close()
        dialog.deleteLater()
        pump(seconds=0.05)


def test_a_failing_check_says_so_and_can_still_be_copied(qapp):
    def broken():
        raise RuntimeError("NVML exploded")

    dialog = dd.DoctorDialog(collect=broken)
    try:
        wait_until(lambda: dialog.report is not None, 30, "the failed check")
        assert dialog.headline.text() == "The check itself failed."
        assert "NVML exploded" in dialog.findings_label.text()
        assert dialog.copy_button.isEnabled()
    finally:
        dialog.deleteLater()
        pump(seconds=0.05)


# ---------------------------------------------------------------------------------------------
# In the window: once on the first start, and from the Help menu
# ---------------------------------------------------------------------------------------------


def _studio_window(*, first_run_check: bool):
    """The window as `studio` opens it (app.run turns the first-run check on before showing it)."""
    from studio.core.presets import first_run_config
    from studio.core.settings import Settings
    from studio.ui.main_window import MainWindow
    from studio.ui.state import StudioState

    window = MainWindow(StudioState(first_run_config("demo", "demo"), Settings()), model="demo", data="demo")
    window.close_policy = "stop"
    window.first_run_check = first_run_check
    window.show()
    return window


def test_the_first_start_shows_the_check_once_and_help_reaches_it_again(qapp):
    assert dd.first_run_pending()  # a new user: the settings folder is empty
    window = _studio_window(first_run_check=True)
    try:
        dialog = wait_until(lambda: window.doctor_dialog, 30, "the first-run check")
        assert dialog.isVisible() and not dialog.isModal()
        assert not dd.first_run_pending() and dd.first_run_marker().is_file()
        wait_until(lambda: dialog.report is not None, 180, "the computer check")
        dialog.close()
    finally:
        close_window(window)

    second = _studio_window(first_run_check=True)
    try:
        wait_until(lambda: second._painted, 30, "the first paint")
        pump(seconds=1.0)  # longer than the check's delay after the first paint
        assert second.doctor_dialog is None  # shown once, then not again

        help_menu = [a.menu() for a in second.menuBar().actions() if a.text() == "&Help"][0]
        action = [a for a in help_menu.actions() if a.text() == "&Check this computer…"][0]
        assert action is second.doctor_action and action.toolTip()
        action.trigger()
        dialog = second.doctor_dialog
        assert dialog is not None and dialog.isVisible()
        wait_until(lambda: dialog.report is not None, 180, "the computer check from the Help menu")
        assert "GPU" in dialog.findings_label.text()
        dialog.close()
        # opening it again runs a new check in the same dialog
        assert second.open_doctor() is dialog and dialog.checking
        wait_until(lambda: not dialog.checking, 180, "the second check")
        dialog.close()
    finally:
        close_window(second)


def test_the_studio_window_without_the_first_run_flag_shows_no_check(qapp):
    window = _studio_window(first_run_check=False)
    try:
        wait_until(lambda: window._painted, 30, "the first paint")
        pump(seconds=1.0)
        assert window.doctor_dialog is None and dd.first_run_pending()
    finally:
        close_window(window)


def test_details_open_with_room_to_read_the_report(qapp):
    dialog = dd.DoctorDialog(collect=lambda: dict(CPU_ONLY))
    dialog.show()
    try:
        wait_until(lambda: dialog.report is not None, 30, "the computer check")
        dialog.details_button.click()
        pump(seconds=0.2)
        lines = dialog.details.height() / dialog.details.fontMetrics().lineSpacing()
        assert lines >= dd.DETAILS_LINES - 1, lines  # not a sliver under the findings
        assert dialog.height() <= dialog.screen().availableGeometry().height()
    finally:
        dialog.close()
        dialog.deleteLater()
        pump(seconds=0.05)
