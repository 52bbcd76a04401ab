"""Start, watch, cancel and resume a training worker, and tell how it ended. The window's
TrainingThread and `studio train` both use this one API.

The worker writes its events to the run folder; `watch` follows that file, so a window that is
closed and opened again can pick a running run back up with `attach`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from studio.core import runs
from studio.core.errors import StudioError
from studio.core.recipe import RunConfig
from studio.core.training.events import EventTail, EventWriter, read_events


@dataclass
class RunProcess:
    """A worker this process started (or found running, with `attach`)."""

    run_dir: Path
    process: subprocess.Popen | None = None
    pid: int | None = None
    cancel_requests: int = 0
    _tail: EventTail | None = field(default=None, repr=False)

    def alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        return runs.pid_alive(self.pid)

    @property
    def returncode(self) -> int | None:
        return self.process.poll() if self.process is not None else None

    def poll_events(self) -> list[dict]:
        """New complete events since the last call (for a UI timer)."""
        if self._tail is None:
            self._tail = EventTail(self.run_dir / runs.EVENTS)
        return self._tail.poll()


def worker_command(run_dir: Path, *, resume: bool, num_processes: int = 1) -> list[str]:
    worker = ["-m", "studio.core.training.worker", str(run_dir)] + (["--resume"] if resume else [])
    if num_processes > 1:
        # DDP: one process per GPU, all running the same worker. accelerate's --multi_gpu launcher is
        # torchrun underneath; on a machine without CUDA the processes talk over gloo on the CPU.
        return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(num_processes),
                "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"] + worker
    return [sys.executable] + worker


def _spawn(run_dir: Path, *, resume: bool, num_processes: int) -> RunProcess:
    run_dir = Path(run_dir)
    env = dict(os.environ, PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false")
    stderr = (run_dir / runs.STDERR).open("ab")
    try:
        process = subprocess.Popen(
            worker_command(run_dir, resume=resume, num_processes=num_processes),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr, env=env,
            start_new_session=True,  # Ctrl-C in a terminal reaches the launcher, which cancels politely
        )
    finally:
        stderr.close()
    return RunProcess(run_dir, process, process.pid)


def start(config: RunConfig, run_dir: Path | None = None) -> RunProcess:
    """Create a run folder with the recipe and start training it."""
    config.validate()
    folder = runs.create_run_dir(config, run_dir)
    return _spawn(folder, resume=False, num_processes=config.training.num_processes)


def resume(run_dir: Path) -> RunProcess:
    """Continue a stopped run from its last complete checkpoint."""
    run_dir = Path(run_dir)
    config = runs.load_recipe(run_dir)
    if runs.status_of(run_dir) == "running":
        raise StudioError(f"{run_dir.name} is still running.", "Wait for it to finish, or cancel it first.")
    if runs.resume_point(run_dir) is None:
        raise StudioError(f"{run_dir.name} has no complete checkpoint to resume from.",
                          "Start it again with `studio train --recipe " + str(run_dir / runs.RECIPE) + "`.")
    return _spawn(run_dir, resume=True, num_processes=config.training.num_processes)


def attach(run_dir: Path) -> RunProcess:
    """A handle on a run started elsewhere (e.g. before the window was reopened)."""
    return RunProcess(Path(run_dir), None, runs.worker_pid(run_dir))


def watch(handle: RunProcess, interval: float = 0.2) -> Iterator[dict]:
    """Every event of the run as it arrives, until the worker has exited; then, if the worker died
    without saying how it ended, one `finished` event from `classify`."""
    tail = EventTail(handle.run_dir / runs.EVENTS)
    finished = False
    for event in tail.follow(handle.alive, interval):
        finished = finished or event["type"] == "finished"
        if event["type"] == "started":
            finished = False
        yield event
    if not finished:
        yield classify(handle)


def cancel(handle: RunProcess) -> str:
    """First call: stop at the end of the current step and save. Second call: end the worker now."""
    handle.cancel_requests += 1
    if handle.cancel_requests == 1:
        (handle.run_dir / runs.CANCEL).touch()
        return "stopping after this step"
    if handle.process is not None:
        _kill_group(handle.process.pid)
        handle.process.wait(timeout=30)
    elif handle.pid:
        _kill_group(handle.pid)
    return "stopped"


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)  # the worker leads its own session: this reaches DDP children too
    except (ProcessLookupError, PermissionError, AttributeError, OSError):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def classify(handle: RunProcess) -> dict:
    """How a run ended, as a `finished` event. If the worker wrote one, that one; otherwise (a kill,
    a crash in native code) one is derived from the exit status and the log — and written to the
    run's events, so the folder tells the same story later."""
    events = read_events(handle.run_dir / runs.EVENTS)
    last_start = max((i for i, e in enumerate(events) if e["type"] == "started"), default=-1)
    for event in reversed(events[last_start + 1:] if last_start >= 0 else events):
        if event["type"] == "finished":
            return event
    code = handle.returncode
    log_tail = _log_tail(handle.run_dir / runs.STDERR)
    if handle.cancel_requests >= 2:
        error = {"kind": "cancelled_hard", "message": "The run was stopped at once, mid-step.",
                 "advice": "Resume it to continue from the last checkpoint (studio train --resume)."}
    elif "OutOfMemoryError" in log_tail or "CUDA out of memory" in log_tail:
        error = {"kind": "out_of_memory", "message": "The GPU ran out of memory and the worker stopped.",
                 "advice": "Lower the micro-batch or the sequence length, or turn on gradient checkpointing; the Memory page shows what fits."}
    elif "No space left on device" in log_tail:
        error = {"kind": "disk_full", "message": "The disk filled up while the run was saving.",
                 "advice": "Free some space, then resume the run: the last complete checkpoint is used."}
    elif code is not None and code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        error = {"kind": "killed", "message": f"The worker was ended by {name} (by the system or another program).",
                 "advice": "If memory ran out, close other programs or lower the batch size. Resume the run to continue."}
    else:
        last = log_tail.strip().splitlines()[-1] if log_tail.strip() else "no message"
        error = {"kind": "crash", "message": f"The worker stopped unexpectedly (exit status {code}): {last[:300]}",
                 "advice": f"See {handle.run_dir / runs.STDERR} for details; resume the run to continue from the last checkpoint."}
    writer = EventWriter(handle.run_dir / runs.EVENTS, echo=None)
    try:
        return writer.emit("finished", status="failed", error=error)
    finally:
        writer.close()
        (handle.run_dir / runs.PID).unlink(missing_ok=True)


def _log_tail(path: Path, size: int = 8000) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - size))
            return fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def wait(handle: RunProcess, timeout: float | None = None) -> dict:
    """Block until the run ends; the finished event."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while handle.alive():
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"{handle.run_dir.name} still running after {timeout} s")
        time.sleep(0.2)
    return classify(handle)
