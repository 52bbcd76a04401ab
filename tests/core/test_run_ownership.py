"""Exactly one worker owns a run folder, and only that worker is ever signalled: a stale worker.pid
whose id now names another program, two resumes in the same second, a resume killed before it said
anything, an events file that ends in a cut line, an edited recipe. Real worker processes on the demo
model where a worker is involved."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from studio.cli import main
from studio.core import runs
from studio.core.errors import StudioError
from studio.core.training import launcher, ownership, worker
from studio.core.training.events import EventWriter, read_events
from tests.core.test_training import recipe, wait_for_event


@pytest.fixture
def stranger():
    """Another program, in a session of its own (as a worker would be): what a reused process id names."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    yield process
    process.kill()
    process.wait()


def _interrupted_run(folder: Path) -> Path:
    """The folder a worker leaves when the machine reboots mid-run: it started, trained a step, said no more."""
    folder = runs.create_run_dir(recipe(steps=4), folder)
    (folder / runs.EVENTS).write_text(json.dumps({"type": "started", "time": 1.0, "total_steps": 4}) + "\n"
                                      + json.dumps({"type": "step", "time": 2.0, "step": 1, "loss": 2.0}) + "\n")
    return folder


@pytest.mark.parametrize("pid_file", ["bare", "wrong start time"])
def test_a_stale_pid_file_never_keeps_a_run_running_or_gets_a_stranger_killed(tmp_path, stranger, pid_file):
    run_dir = _interrupted_run(tmp_path / "run")
    if pid_file == "bare":  # as an older studio wrote it
        (run_dir / runs.PID).write_text(str(stranger.pid))
    else:
        started = ownership.process_start_time(stranger.pid)
        (run_dir / runs.PID).write_text(json.dumps({"pid": stranger.pid, "start_time": started - 3600,
                                                    "group": stranger.pid, "events_offset": 0}))

    assert runs.status_of(run_dir) == "interrupted"
    handle = launcher.attach(run_dir)
    assert not handle.alive()
    assert launcher.cancel(handle) == "stopping after this step"
    assert launcher.cancel(handle) == "not running"
    assert stranger.poll() is None  # the other program lives on

    # Even while some process owns the run (here: this test), a pid file that does not name a live
    # process with the recorded start time is never signalled.
    lock = ownership.acquire(run_dir)
    try:
        assert runs.status_of(run_dir) == "running" and launcher.attach(run_dir).alive()
        handle = launcher.attach(run_dir)
        launcher.cancel(handle)
        assert launcher.cancel(handle) == "not running"
        time.sleep(0.2)
        assert stranger.poll() is None
    finally:
        lock.release()
    assert runs.status_of(run_dir) == "interrupted"


def test_a_worker_that_cannot_own_the_folder_touches_nothing(tmp_path):
    run_dir = runs.create_run_dir(recipe(steps=2), tmp_path / "run")
    lock = ownership.acquire(run_dir)  # some other process owns the run
    try:
        assert worker.run(run_dir, echo=None) == worker.EXIT_NOT_OWNER
    finally:
        lock.release()
    assert not (run_dir / runs.EVENTS).exists() and not (run_dir / runs.PID).exists()
    assert "already training this run" in (run_dir / runs.STDERR).read_text()


def _killed_after_first_checkpoint(run_dir: Path, **training) -> Path:
    handle = launcher.start(recipe(steps=training.pop("steps", 200), save_every=1, eval_every=0, preflight=False, **training),
                            run_dir)
    wait_for_event(handle.run_dir, lambda e: e["type"] == "checkpoint")
    os.kill(handle.pid, signal.SIGKILL)
    handle.process.wait(timeout=30)
    assert launcher.classify(handle)["error"]["kind"] == "killed"
    return handle.run_dir


def test_exactly_one_worker_owns_a_run(tmp_path):
    run_dir = _killed_after_first_checkpoint(tmp_path / "run")
    offset = os.path.getsize(run_dir / runs.EVENTS)

    # Two resumes in the same second: the second is refused, before it starts anything.
    first = launcher.resume(run_dir)
    with pytest.raises(StudioError) as refused:
        launcher.resume(run_dir)
    assert "already running" in refused.value.message and refused.value.advice
    assert runs.status_of(run_dir) == "running"

    # A worker started behind the launcher's back exits at once and writes nothing into the folder.
    rogue = subprocess.run([sys.executable, "-m", "studio.core.training.worker", str(run_dir), "--resume"],
                           capture_output=True, timeout=120, check=False)
    assert rogue.returncode == worker.EXIT_NOT_OWNER
    wait_for_event(run_dir, lambda e: e["type"] == "step" and e["step"] >= 3)
    launcher.cancel(first)
    assert launcher.cancel(first) == "stopped"
    new = read_events(run_dir / runs.EVENTS, offset=offset)
    assert [e["type"] for e in new].count("started") == 1  # one attempt's events, not two interleaved
    assert launcher.classify(first)["error"]["kind"] == "cancelled_hard"
    assert "already training this run" in (run_dir / runs.STDERR).read_text()


def test_two_workers_started_together_one_trains(tmp_path):
    """Without the launcher, straight from two shells: the lock alone decides."""
    run_dir = _killed_after_first_checkpoint(tmp_path / "run")
    offset = os.path.getsize(run_dir / runs.EVENTS)
    command = [sys.executable, "-m", "studio.core.training.worker", str(run_dir), "--resume"]
    both = [subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            for _ in range(2)]
    try:
        wait_for_event(run_dir, lambda e: e["type"] == "step" and e["step"] >= 2)
        codes = [p.poll() for p in both]
        assert sorted(codes, key=str) == [worker.EXIT_NOT_OWNER, None]
        owner = both[codes.index(None)]
        assert ownership.live_worker(run_dir).pid == owner.pid
        assert launcher.cancel(launcher.attach(run_dir)) == "stopping after this step"
        assert launcher.wait(launcher.attach(run_dir), timeout=120)["status"] == "cancelled"
    finally:
        for p in both:
            p.kill()
            p.wait()
    assert [e["type"] for e in read_events(run_dir / runs.EVENTS, offset=offset)].count("started") == 1


def test_a_resume_reports_its_own_attempt_only(tmp_path, capsys):
    run_dir = _killed_after_first_checkpoint(tmp_path / "run", steps=5)

    # Killed before its first event: the end reported is this attempt's, not the earlier one's.
    handle = launcher.resume(run_dir)
    os.kill(handle.pid, signal.SIGKILL)
    seen = list(launcher.watch(handle))
    assert [e["type"] for e in seen] == ["finished"]
    assert seen[0]["error"]["kind"] == "killed" and "SIGKILL" in seen[0]["error"]["message"]

    # The same through `studio train --resume`, killed as soon as the new worker has written worker.pid.
    killed = []

    def kill_the_new_worker():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            found = ownership.read_worker(run_dir)
            if found is not None:
                os.kill(found.pid, signal.SIGKILL)
                killed.append(found.pid)
            time.sleep(0.005)

    import threading

    killer = threading.Thread(target=kill_the_new_worker)
    killer.start()
    code = main(["train", "--resume", str(run_dir), "--quiet"])
    killer.join()
    err = capsys.readouterr().err
    assert killed and code != 0 and "Error (killed)" in err, err

    # A resume that runs: its output starts with its own `started`, none of the old attempts' events.
    handle = launcher.resume(run_dir)
    seen = list(launcher.watch(handle))
    assert seen[0]["type"] == "started" and seen[0]["resumed_from_step"] >= 1
    assert [e["type"] for e in seen].count("finished") == 1 and seen[-1]["status"] == "completed"
    assert [e["step"] for e in seen if e["type"] == "step"] == list(range(seen[0]["resumed_from_step"] + 1, 6))


def test_an_event_after_a_cut_line_starts_its_own_line(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps({"type": "step", "time": 1.0, "step": 1, "loss": 2.0}) + "\n" + '{"type": "step", "ti')
    writer = EventWriter(path, echo=None)
    writer.emit("started", total_steps=4, resumed_from_step=0)
    writer.close()
    assert [e["type"] for e in read_events(path)] == ["step", "started"]


def test_an_edited_recipe_fails_the_resume_before_a_worker_starts(tmp_path):
    run_dir = runs.create_run_dir(recipe(steps=4), tmp_path / "run")
    text = (run_dir / runs.RECIPE).read_text()
    (run_dir / runs.RECIPE).write_text(text.replace("learning_rate = 0.001", "learning_rate = 7.0"))
    with pytest.raises(StudioError) as err:
        launcher.resume(run_dir)
    assert "learning rate" in err.value.message.lower() and "7.0" in err.value.message and "--lr" in err.value.advice
    assert not (run_dir / runs.EVENTS).exists() and not (run_dir / runs.STDERR).exists()
    assert not ownership.is_held(run_dir)
