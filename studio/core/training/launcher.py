"""Start, watch, cancel and resume a training worker, and tell how it ended. The window's
TrainingThread and `studio train` both use this one API.

The worker writes its events to the run folder; `watch` follows that file, so a window that is
closed and opened again can pick a running run back up with `attach`. Exactly one worker owns a run
folder at a time (ownership.py): the launcher takes the folder's lock before it starts one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from studio.core import runs
from studio.core.errors import StudioError
from studio.core.recipe import RunConfig
from studio.core.runs import RunHistory
from studio.core.training import distributed, ownership
from studio.core.training.events import EventTail, EventWriter, last_attempt_offset, size_of
from studio.core.training.failures import Failure


@dataclass
class RunProcess:
    """A worker this process started (or found running, with `attach`). `offset`: where this
    attempt's events begin in events.jsonl; what comes before belongs to earlier attempts."""

    run_dir: Path
    process: subprocess.Popen | None = None
    pid: int | None = None
    cancel_requests: int = 0
    offset: int = 0
    _tail: EventTail | None = field(default=None, repr=False)

    def alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        return ownership.is_held(self.run_dir)

    @property
    def returncode(self) -> int | None:
        return self.process.poll() if self.process is not None else None

    def poll_events(self) -> list[dict]:
        """New complete events since the last call (for a UI timer), the folder's earlier ones first."""
        if self._tail is None:
            self._tail = EventTail(self.run_dir / runs.EVENTS)
        return self._tail.poll()


def worker_command(run_dir: Path, *, resume: bool, training=None) -> list[str]:
    """The command that trains the run: the worker itself, or accelerate's launcher running it in one
    process per GPU when the recipe's `training` asks for several (distributed.py: DDP or FSDP)."""
    worker = ["-m", "studio.core.training.worker", str(run_dir)] + (["--resume"] if resume else [])
    if training is not None and distributed.launched(training):
        return distributed.launch_command(training, worker)
    return [sys.executable] + worker


def _worker_env() -> dict:
    """A worker's environment: its events unbuffered, the tokenizers' own threads off (the worker forks)."""
    return dict(os.environ, PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false")


def _take(run_dir: Path) -> ownership.RunLock:
    """The run's lock, before anything is started in it; refused while a worker owns the run."""
    lock = ownership.acquire(run_dir)
    if lock is None:
        raise StudioError(f"{run_dir.name} is already running: another training process owns this run folder.",
                          "Wait for it to finish, or cancel it first (in the window or with Ctrl-C where it was started).")
    return lock


def _spawn(run_dir: Path, lock: ownership.RunLock, *, resume: bool, training) -> RunProcess:
    """Start the worker and hand it the run's lock (POSIX: the locked file itself; Windows: the worker
    takes it as it starts). Our copy is let go either way."""
    offset = size_of(run_dir / runs.EVENTS)  # this attempt's events start here
    env = _worker_env()
    handed: tuple[int, ...] = ()
    if ownership.PASSES_LOCK:
        env[ownership.LOCK_FD_ENV] = str(lock.fd)
        handed = (lock.fd,)
    else:
        lock.release()
    stderr = (run_dir / runs.STDERR).open("ab")
    try:
        process = subprocess.Popen(
            worker_command(run_dir, resume=resume, training=training),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr, env=env, pass_fds=handed,
            start_new_session=True,  # Ctrl-C in a terminal reaches the launcher, which cancels politely
        )
    finally:
        stderr.close()
        lock.release()
    return RunProcess(run_dir, process, process.pid, offset=offset)


def start(config: RunConfig, run_dir: Path | None = None) -> RunProcess:
    """Create a run folder with the recipe and start training it."""
    config.validate()
    folder = runs.create_run_dir(config, run_dir)
    return _spawn(folder, _take(folder), resume=False, training=config.training)


def resume(run_dir: Path) -> RunProcess:
    """Continue a stopped run from its last complete checkpoint. Everything that can be refused is
    refused here, before a worker starts: a recipe edited into something invalid, a run another
    process owns, a run that has already finished, a run with nothing to resume from."""
    run_dir = Path(run_dir)
    config = runs.load_recipe(run_dir).validate()
    lock = _take(run_dir)
    try:
        _check_resumable(run_dir)
    except BaseException:
        lock.release()
        raise
    return _spawn(run_dir, lock, resume=True, training=config.training)


def _check_resumable(run_dir: Path) -> None:
    if runs.is_completed(run_dir):
        raise StudioError(f"{run_dir.name} has already finished: its adapter is in {run_dir / runs.ADAPTER}. Nothing is left to resume.",
                          f"To train more, start a new run with its recipe: studio train --recipe {run_dir / runs.RECIPE}")
    if runs.resume_point(run_dir) is None:
        raise StudioError(f"{run_dir.name} has no complete checkpoint to resume from.",
                          "Start it again with `studio train --recipe " + str(run_dir / runs.RECIPE) + "`.")


def join(run_dir: Path, machine_rank: int) -> RunProcess:
    """This machine's share of a run on several machines that the main machine (rank 0) started in
    `run_dir`, a folder every machine sees at the same path. The main machine holds the run's lock and
    writes its events; the processes here train their share and write their checkpoint shards. A run
    that already has a checkpoint is joined as a resume, as the main machine resumes it."""
    run_dir = Path(run_dir)
    config = runs.load_recipe(run_dir)
    t = config.training
    if t.machines < 2:
        raise StudioError(f"{run_dir.name} trains on one machine: there is nothing to join.",
                          "Start it with --machines N on the main machine first, then join it from the others.")
    if not 1 <= machine_rank < t.machines:
        raise StudioError(f"Machine rank {machine_rank} does not join a run on {t.machines} machines.",
                          f"Give each other machine its own number from 1 to {t.machines - 1} (the main machine is 0).")
    t.machine_rank = machine_rank
    resume = runs.resume_point(run_dir) is not None
    process = subprocess.Popen(worker_command(run_dir, resume=resume, training=t), stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, env=_worker_env(), start_new_session=True)
    return RunProcess(run_dir, process, process.pid, offset=size_of(run_dir / runs.EVENTS))


def attach(run_dir: Path) -> RunProcess:
    """A handle on a run started elsewhere (e.g. before the window was reopened)."""
    run_dir = Path(run_dir)
    worker = ownership.read_worker(run_dir)
    # worker.pid (left by a running or a killed worker) says where its attempt began; else the last start
    offset = worker.events_offset if worker is not None else last_attempt_offset(run_dir / runs.EVENTS)
    return RunProcess(run_dir, None, worker.pid if worker else None, offset=offset)


def watch(handle: RunProcess, interval: float = 0.2) -> Iterator[dict]:
    """Every event of this attempt as it arrives (not the earlier attempts' of a resumed run), until
    the worker has exited; then, if the worker died without saying how it ended, one `finished`
    event from `classify`."""
    tail = EventTail(handle.run_dir / runs.EVENTS, offset=handle.offset)
    history = RunHistory()
    for event in tail.follow(handle.alive, interval):
        history.add(event)
        yield event
    if history.finished is None:
        yield classify(handle)


def cancel(handle: RunProcess) -> str:
    """First call: stop at the end of the current step and save. Second call: end the worker now —
    only a process verified to be this run's worker is ever signalled."""
    handle.cancel_requests += 1
    if handle.cancel_requests == 1:
        (handle.run_dir / runs.CANCEL).touch()
        return "stopping after this step"
    if handle.process is not None:
        if handle.process.poll() is None:  # not yet reaped: its id cannot belong to anyone else
            _kill_group(handle.process.pid)
        handle.process.wait(timeout=30)
        return "stopped"
    return "stopped" if ownership.kill_worker(handle.run_dir) else "not running"


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, ownership.KILL)  # the worker leads its own session: this reaches DDP children too
    except (ProcessLookupError, PermissionError, AttributeError, OSError):
        try:
            os.kill(pid, ownership.KILL)
        except ProcessLookupError:
            pass


def classify(handle: RunProcess) -> dict:
    """How this attempt ended, as a `finished` event. If the worker wrote one, that one; otherwise (a
    kill, a crash in native code) one is derived from the exit status and the log — and written to
    the run's events, so the folder tells the same story later."""
    ended = RunHistory.read(handle.run_dir, handle.offset).last_ended  # this attempt's (or a later one's, since)
    if ended is not None:
        return ended
    return _record_failure(handle.run_dir, _failure(handle).as_dict())


def _failure(handle: RunProcess) -> Failure:
    """How a worker that said nothing ended, from its exit status and its log; each kind has its topic
    (failures.KIND_TOPICS: out of memory is about memory, a full disk about the disk, the others about nothing set)."""
    code = handle.returncode
    log_tail = _log_tail(handle.run_dir / runs.STDERR)
    if handle.cancel_requests >= 2:
        return Failure("cancelled_hard", "The run was stopped at once, mid-step.",
                       "Resume it to continue from the last checkpoint (studio train --resume).")
    if "OutOfMemoryError" in log_tail or "CUDA out of memory" in log_tail:
        return Failure("out_of_memory", "The GPU ran out of memory and the worker stopped.",
                       "Lower the micro-batch or the sequence length, or turn on gradient checkpointing; the Memory page shows what fits.")
    if "No space left on device" in log_tail:
        return Failure("disk_full", "The disk filled up while the run was saving.",
                       "Free some space, then resume the run: the last complete checkpoint is used.")
    if code is not None and code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        return Failure("killed", f"The worker was ended by {name} (by the system or another program).",
                       "If memory ran out, close other programs or lower the batch size. Resume the run to continue.")
    last = log_tail.strip().splitlines()[-1] if log_tail.strip() else "no message"
    return Failure("crash", f"The worker stopped unexpectedly (exit status {code}): {last[:300]}",
                   f"See {handle.run_dir / runs.STDERR} for details; resume the run to continue from the last checkpoint.")


def _record_failure(run_dir: Path, error: dict) -> dict:
    """Write the derived `finished` event — only while no other worker owns the folder (a resume may
    have started since this attempt ended: its events must not be interleaved with ours)."""
    try:
        lock = ownership.acquire(run_dir)
    except StudioError:
        lock = None  # a folder that cannot be written to: say how it ended without writing it down
    if lock is None:
        return {"type": "finished", "time": round(time.time(), 3), "status": "failed", "error": error}
    writer = EventWriter(run_dir / runs.EVENTS, echo=None)
    try:
        return writer.emit("finished", status="failed", error=error)
    finally:
        writer.close()
        ownership.forget_worker(run_dir)
        lock.release()


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
