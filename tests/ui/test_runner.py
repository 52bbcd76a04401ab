"""The two ways work leaves the UI thread: `TrainingThread` (a worker process's events → signals) and
background tasks (done / progress / failed). Errors become signals, never crashes."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from studio.core import runs
from studio.core.errors import StudioError
from studio.core.recipe import RunConfig
from studio.ui.runner import TrainingThread
from studio.ui.tasks import start_task
from tests.ui.conftest import wait_until


def _fake_run(folder: Path, events: list[dict], log: str = "") -> Path:
    folder.mkdir(parents=True)
    RunConfig().save(folder / runs.RECIPE)
    (folder / runs.EVENTS).write_text("".join(json.dumps(dict(e, time=1.0)) + "\n" for e in events), encoding="utf-8")
    (folder / runs.STDERR).write_text(log, encoding="utf-8")
    return folder


def _collect(thread: TrainingThread) -> dict:
    got: dict = {"steps": [], "evals": [], "samples": [], "logs": [], "finished": [], "reports": [], "started": []}
    thread.steps.connect(lambda batch: got["steps"].extend(batch))
    thread.evaluated.connect(got["evals"].append)
    thread.sampled.connect(got["samples"].append)
    thread.logged.connect(got["logs"].extend)
    thread.run_finished.connect(got["finished"].append)
    thread.report.connect(lambda m, a: got["reports"].append((m, a)))
    thread.run_started.connect(got["started"].append)
    return got


def test_attaching_to_a_finished_run_replays_it_and_ends(qapp, tmp_path):
    """An earlier attempt's `finished` (before a resume) is history; the latest one ends the story."""
    events = [{"type": "started", "total_steps": 4, "resumed_from_step": 0},
              {"type": "step", "step": 1, "loss": 2.0}, {"type": "step", "step": 2, "loss": 1.5},
              {"type": "finished", "status": "cancelled", "step": 2},
              {"type": "started", "total_steps": 4, "resumed_from_step": 2},
              {"type": "step", "step": 3, "loss": 1.2}, {"type": "eval", "step": 3, "eval_loss": 1.3},
              {"type": "sample", "step": 3, "prompt": "q", "text": "a"}, {"type": "step", "step": 4, "loss": 1.0},
              {"type": "log", "message": "saving"},
              {"type": "finished", "status": "completed", "step": 4}]
    run_dir = _fake_run(tmp_path / "run", events, "line one\nline two\n")
    thread = TrainingThread(run_dir=run_dir, mode="attach", poll_interval=0.02)
    got = _collect(thread)
    thread.start()
    wait_until(lambda: thread.isFinished() and got["finished"], 20, "the thread to end")
    assert [e["step"] for e in got["steps"]] == [1, 2, 3, 4]
    assert len(got["started"]) == 2 and got["evals"][0]["eval_loss"] == 1.3 and got["samples"][0]["text"] == "a"
    assert got["finished"] == [dict(events[-1], time=1.0)]
    assert "line two" in got["logs"] and "[studio] saving" in got["logs"]
    assert not got["reports"]


def test_a_worker_that_died_without_a_word_is_classified(qapp, tmp_path):
    events = [{"type": "started", "total_steps": 10, "resumed_from_step": 0}, {"type": "step", "step": 1, "loss": 2.0}]
    run_dir = _fake_run(tmp_path / "run", events, "Traceback ...\ntorch.OutOfMemoryError: CUDA out of memory.\n")
    thread = TrainingThread(run_dir=run_dir, mode="attach", poll_interval=0.02)
    got = _collect(thread)
    thread.start()
    wait_until(lambda: thread.isFinished() and got["finished"], 20, "the thread to end")
    finished = got["finished"][0]
    assert finished["status"] == "failed" and finished["error"]["kind"] == "out_of_memory" and finished["error"]["advice"]
    assert runs.status_of(run_dir) == "failed"  # written to the folder, which now tells the same story


@pytest.mark.parametrize("mode,make", [("resume", lambda p: p / "nowhere"), ("start", None)])
def test_errors_in_the_thread_become_a_report(qapp, tmp_path, mode, make):
    if mode == "start":
        config = RunConfig()
        config.training.learning_rate = 7.0  # refused by validate()
        thread = TrainingThread(config=config, mode="start")
    else:
        thread = TrainingThread(run_dir=make(tmp_path), mode="resume")
    got = _collect(thread)
    thread.start()
    wait_until(lambda: thread.isFinished() and got["reports"], 20, "the report")
    message, advice = got["reports"][0]
    assert message and advice and not got["finished"]


def test_tasks_report_done_progress_and_failures(qapp):
    seen: dict = {"progress": [], "done": [], "failed": []}
    main_thread = threading.get_ident()
    on_ui_thread = []

    def work(state):
        for i in range(200):
            state.report(i)
        time.sleep(0.05)
        state.report(999)
        return "result"

    def done(value):
        on_ui_thread.append(threading.get_ident() == main_thread)
        seen["done"].append(value)

    task = start_task("test", work, on_done=done, on_progress=seen["progress"].append)
    wait_until(lambda: not task.running, 10, "the task")
    assert seen["done"] == ["result"] and on_ui_thread == [True]
    assert seen["progress"][-1] == 999 and len(seen["progress"]) < 20  # throttled: the last value always arrives

    def fails(state):
        raise StudioError("It broke.", "Fix it.")

    task = start_task("test", fails, on_failed=lambda m, a: seen["failed"].append((m, a)))
    wait_until(lambda: not task.running, 10, "the failing task")
    assert seen["failed"] == [("It broke.", "Fix it.")]

    def crashes(state):
        return 1 / 0

    task = start_task("test", crashes, on_failed=lambda m, a: seen["failed"].append((m, a)))
    wait_until(lambda: not task.running, 10, "the crashing task")
    assert seen["failed"][-1][0].startswith("ZeroDivisionError") and "bug" in seen["failed"][-1][1]

    def cancellable(state):
        while not state.cancelled():
            time.sleep(0.01)
        return "stopped"

    task = start_task("test", cancellable, on_done=seen["done"].append)
    task.cancel()
    wait_until(lambda: not task.running, 10, "the cancelled task")
    assert seen["done"][-1] == "stopped"
