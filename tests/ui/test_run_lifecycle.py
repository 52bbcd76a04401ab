"""A run's life outside the happy path, in the real window with real worker processes: cancel (and
a second, forcing cancel), closing the window while it trains and finding it again, resuming it,
and a run that fails showing its advice with a button that acts on it."""

from __future__ import annotations

import pytest

from studio.core import runs
from tests.ui.conftest import close_window, make_window, pump, wait_until

pytestmark = pytest.mark.slow


def _long_run(window, steps: int = 400) -> None:
    t = window.state.config.training
    t.steps, t.epochs = steps, None
    t.save_every, t.eval_every, t.sample_every = 2, 0, 0
    t.preflight = False  # the happy path checks it; here every second counts
    window.state.changed()


def _step(window) -> int:
    steps = window.page("train").plot.steps()
    return steps[-1] if steps else 0


def test_close_leave_running_reopen_cancel_and_resume(qapp, tmp_path):
    runs_dir = tmp_path / "runs"
    first = make_window(runs_dir=runs_dir)
    _long_run(first)
    train = first.page("train")
    train.start_button.click()
    wait_until(lambda: _step(first) >= 3, 180, "three steps")
    run_dir = train.run_dir
    assert train.running and train.cancel_button.isEnabled() and not train.start_button.isEnabled()

    # Close the window and leave the run going: the worker keeps training.
    first.close_policy = "leave"
    first.close()
    pump(seconds=0.2)
    assert runs.status_of(run_dir) == "running"
    first.deleteLater()

    # A new window finds the run still going, follows it (with its curve so far), and can cancel it.
    second = make_window(model=None, data=None, wait=False, runs_dir=runs_dir)
    try:
        page = second.page("train")
        wait_until(lambda: page.running, 30, "the window to follow the running run")
        assert second.current_key() == "train"
        assert "still training" in page.banner.text() and not page.banner.isHidden()
        wait_until(lambda: page.plot.point_count() >= 3, 60, "the earlier steps to be replayed")
        page.cancel_button.click()
        assert "Stopping after this step" in page.status.text()
        wait_until(lambda: page.last_finished is not None, 120, "the cancelled run to end")
        assert page.last_finished["status"] == "cancelled"
        assert (run_dir / "adapter" / "adapter_model.safetensors").is_file()
        assert "Cancelled" in page.status.text() and page.resume_button.isEnabled()
        stopped_at = page.last_finished["step"]
    finally:
        close_window(second)

    # A third window offers to resume it; Resume continues from the checkpoint; Cancel twice stops it at once.
    third = make_window(model=None, data=None, wait=False, runs_dir=runs_dir)
    try:
        page = third.page("train")
        wait_until(lambda: not page.banner.isHidden(), 30, "the resume offer")
        assert "can be resumed" in third.status_label.text() or "Resume" in page.banner.text()
        assert page.resume_button.isEnabled()
        wait_until(lambda: page.plot.point_count() >= stopped_at, 30, "the stopped run's curve")
        page.resume_button.click()
        wait_until(lambda: _step(third) > stopped_at, 180, "the resumed run's first new step")
        page.cancel_button.click()
        page.cancel_button.click()  # the second press forces
        wait_until(lambda: page.last_finished is not None, 60, "the forced stop")
        assert page.last_finished["status"] == "failed"
        assert page.last_finished["error"]["kind"] == "cancelled_hard"
        assert not page.failure.isHidden() and page.failure.advice.text().startswith("What to do:")
        assert page.failure.action.text() == "Resume from the last checkpoint"
        started = [e for e in runs.read_events(run_dir / runs.EVENTS) if e["type"] == "started"]
        assert [s["resumed_from_step"] for s in started][:2] == [0, stopped_at]
    finally:
        close_window(third)


def test_a_failed_run_shows_what_to_do_and_the_button_does_it(qapp, tmp_path):
    w = make_window(runs_dir=tmp_path / "runs")
    try:
        w.state.config.data.source = str(tmp_path / "no-such-data.jsonl")
        w.state.config.training.steps, w.state.config.training.epochs = 2, None
        w.state.changed()
        page = w.page("train")
        w.show_page("train")
        page.start_button.click()
        wait_until(lambda: page.last_finished is not None, 120, "the run to fail")
        error = page.last_finished["error"]
        assert page.last_finished["status"] == "failed" and error["kind"] == "bad_input"
        assert not page.failure.isHidden()
        assert page.failure.title.text() == "The model or the data cannot be used"
        assert error["message"] in page.failure.message.text() and error["advice"] in page.failure.advice.text()
        assert page.failure.action.text() == "Go to the Data page"
        page.failure.action.click()
        pump(seconds=0.1)
        assert w.current_key() == "data"
        assert not page.failure.log_button.isHidden()  # the full log is one click away
    finally:
        close_window(w)


def _fake_failure(page, kind: str, message: str = "boom", advice: str = "do something") -> None:
    page.last_finished = None
    page._on_finished({"type": "finished", "status": "failed", "error": {"kind": kind, "message": message, "advice": advice}})


def test_out_of_memory_advice_applies_the_planners_first_suggestion(qapp, tmp_path, monkeypatch):
    w = make_window(model="llama-3.1-8b", data=None, runs_dir=tmp_path / "runs")
    try:
        page = w.page("train")
        started = []
        monkeypatch.setattr(page, "start_run", lambda: started.append(w.state.snapshot()))
        w.page("memory").choose_gpu_gb(12)
        w.state.config.training.batch_size, w.state.config.training.seq_len = 4, 4096
        w.state.changed()
        expected = w.state.suggestions()[0]
        _fake_failure(page, "out_of_memory", "CUDA out of memory", "Lower the micro-batch")
        assert page.failure.title.text() == "The GPU ran out of memory"
        assert page.failure.action.text() == "Use less memory and start again"
        page.failure.action.click()
        assert len(started) == 1
        after = started[0]
        for key, value in expected.changes.items():
            group, _, name = key.partition(".")
            section = {"shape": after.training, "adapter": after.adapter, "precision": after.training}[group]
            assert getattr(section, {"mode": "precision"}.get(name, name)) == value, key
        assert w.state.plan().total_bytes == expected.total_bytes
    finally:
        close_window(w)


def test_nan_and_disk_full_advice(qapp, tmp_path, monkeypatch):
    w = make_window(model=None, data=None, wait=False, runs_dir=tmp_path / "runs")
    try:
        page = w.page("train")
        started, resumed = [], []
        monkeypatch.setattr(page, "start_run", lambda: started.append(w.state.config.training.learning_rate))
        monkeypatch.setattr(page, "resume_run", lambda run_dir=None: resumed.append(True))
        w.state.config.training.learning_rate = 1e-3
        _fake_failure(page, "nan_loss", "The loss became nan", "Lower the learning rate")
        assert page.failure.action.text() == "Lower the learning rate to 0.00025 and start again"
        page.failure.action.click()
        assert started == [pytest.approx(2.5e-4)]
        _fake_failure(page, "disk_full", "Only 10 MB free", "Free some space, then resume")
        assert page.failure.title.text() == "The disk is full"
        page.failure.action.click()
        assert resumed == [True]
    finally:
        close_window(w)
