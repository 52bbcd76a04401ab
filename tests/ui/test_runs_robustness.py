"""The window with run folders that are not what they seem: a broken run among good ones on the Runs
page, and a run whose worker.pid names another program (a reboot, an OOM kill nobody watched)."""

from __future__ import annotations

import json
import subprocess
import sys

from studio.core import runs
from studio.ui.runner import TrainingThread
from tests.core.test_runs_listing import broken_runs_folder
from tests.ui.conftest import close_window, make_window, wait_until


def test_the_runs_page_lists_every_run_and_flags_the_broken_one(qapp, tmp_path):
    root = broken_runs_folder(tmp_path / "runs")
    w = make_window(model=None, data=None, wait=False, runs_dir=root)
    try:
        page = w.page("runs")
        w.show_page("runs")
        page.refresh()
        wait_until(lambda: page.table.rowCount() == 3, 30, "the three runs")
        rows = {page.table.item(r, 0).text(): r for r in range(page.table.rowCount())}
        assert set(rows) == {"good", "binary-recipe", "odd-events"}
        assert page.table.item(rows["good"], 1).text() == "completed"
        flagged = page.table.item(rows["binary-recipe"], 1)
        assert flagged.text() == "⚠ completed" and "run.toml" in flagged.toolTip()
        assert page.table.item(rows["odd-events"], 1).text() == "⚠ unreadable"
        page.table.selectRow(rows["binary-recipe"])
        wait_until(lambda: "run.toml" in page.title_label.text(), 30, "the problem in the run's title")
    finally:
        close_window(w)


def test_following_a_run_whose_pid_names_another_program_ends_at_once(qapp, tmp_path):
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    try:
        run_dir = tmp_path / "run"
        run_dir.mkdir()
        from studio.core.recipe import RunConfig

        RunConfig().save(run_dir / runs.RECIPE)
        (run_dir / runs.EVENTS).write_text(json.dumps({"type": "started", "time": 1.0, "total_steps": 10}) + "\n")
        (run_dir / runs.PID).write_text(str(stranger.pid))
        thread = TrainingThread(run_dir=run_dir, mode="attach", poll_interval=0.02)
        ended = []
        thread.run_finished.connect(ended.append)
        thread.request_cancel()
        thread.request_cancel()  # Cancel pressed twice: must not reach the other program
        thread.start()
        wait_until(lambda: thread.isFinished() and ended, 20, "the thread to see the run is not running")
        assert ended[0]["status"] == "failed" and runs.status_of(run_dir) == "failed"
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()
