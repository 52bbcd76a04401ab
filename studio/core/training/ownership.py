"""Who owns a run folder. Exactly one worker may write into a run folder: it holds an exclusive lock
on `worker.lock` for its whole life, and the operating system lets go of the lock when the process
ends, however it ends (a crash, kill -9, the machine rebooting). So "is this run training?" means
"is its lock held?" — never "is the process id in worker.pid alive?": after a reboot or an OOM kill
that id may belong to any other program.

`worker.pid` names the worker for a forced stop: its process id, when that process started, and its
process group. A signal is sent only while the lock is held and a live process has both that id and
that start time.

On POSIX the launcher takes the lock before it starts the worker and hands the locked file over (an
inherited descriptor), so two launches in the same second cannot both be accepted. Windows cannot
hand a descriptor over: there the launcher checks the lock and the worker takes it itself.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from studio.core.errors import StudioError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
    import msvcrt

LOCK = "worker.lock"
PID = "worker.pid"
LOCK_FD_ENV = "STUDIO_RUN_LOCK_FD"  # the inherited, already locked descriptor (launcher → worker)
PASSES_LOCK = fcntl is not None
KILL = getattr(signal, "SIGKILL", signal.SIGTERM)  # on Windows SIGTERM is TerminateProcess


# ---------------------------------------------------------------------------------------------
# The lock
# ---------------------------------------------------------------------------------------------


def _try_lock(fd: int, exclusive: bool = True) -> bool:
    try:
        if fcntl is not None:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        else:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        return True
    except OSError:
        return False


def _unlock(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)
    else:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)


class RunLock:
    """A run folder's lock, held until `release` or until the process ends. `fd` is None when another
    process of the same run holds it (the `accelerate launch` parent of several worker processes)."""

    def __init__(self, run_dir: Path, fd: int | None):
        self.run_dir = Path(run_dir)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the last descriptor of the locked file lets go of the lock
            self.fd = None


def acquire(run_dir: Path, wait: float = 1.0) -> RunLock | None:
    """Take the run's lock, or None if another process holds it. `wait` covers the microseconds a
    reader's check holds it (see `is_held`), not a worker: a worker holds it for minutes."""
    try:
        fd = os.open(Path(run_dir) / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StudioError(f"The run folder {run_dir} cannot be written to: {exc.strerror}.",
                          "Check that the folder exists and that you may write to it (a read-only copy cannot be trained).") from exc
    deadline = time.monotonic() + wait
    while not _try_lock(fd):
        if time.monotonic() > deadline:
            os.close(fd)
            return None
        time.sleep(0.02)
    return RunLock(run_dir, fd)


def is_held(run_dir: Path) -> bool:
    """Whether a worker owns the run now (shared check on POSIX: readers never block each other)."""
    try:
        fd = os.open(Path(run_dir) / LOCK, os.O_RDONLY)
    except OSError:
        return False  # no lock file: no worker ever started here (or a folder from an older studio)
    try:
        if not _try_lock(fd, exclusive=fcntl is None):
            return True
        _unlock(fd)
        return False
    finally:
        os.close(fd)


def claim(run_dir: Path, *, one_of_several: bool = False) -> RunLock | None:
    """The worker's lock on its run: the one the launcher handed over, else its own; None if another
    process owns the run. `one_of_several`: this is the main process of a multi-process run, whose
    launcher process holds the lock for all of them."""
    handed = os.environ.pop(LOCK_FD_ENV, None)
    if handed is not None:
        lock = _handed_over(run_dir, handed)
        if lock is not None:
            return lock
        if one_of_several and is_held(run_dir):
            return RunLock(run_dir, None)
    return acquire(run_dir)


def _handed_over(run_dir: Path, value: str) -> RunLock | None:
    try:
        fd = int(value)
        mine, expected = os.fstat(fd), os.stat(Path(run_dir) / LOCK)
    except (ValueError, OSError):
        return None
    if (mine.st_dev, mine.st_ino) != (expected.st_dev, expected.st_ino) or not _try_lock(fd):
        return None  # that number is some other file in this process: not ours to close
    os.set_inheritable(fd, False)  # the worker's own helper processes must not keep the run locked
    return RunLock(run_dir, fd)


# ---------------------------------------------------------------------------------------------
# The worker's identity, for a forced stop
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerIdentity:
    pid: int
    start_time: float | None  # when the process started (seconds since the epoch), None if unknown
    group: int | None = None  # its own process group (a session the launcher started), if it leads one
    events_offset: int = 0  # where this worker's events begin in events.jsonl


def process_start_time(pid: int) -> float | None:
    """When the process started, or None if there is no such process (a zombie counts as none)."""
    import psutil  # a dependency of accelerate

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return process.create_time()
    except (psutil.Error, OSError):
        return None


def pid_alive(pid: int | None) -> bool:
    """Whether a process with this id runs now (any process: the id may have been reused since)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (exited, not yet reaped by its parent) is not running
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _own_group() -> int | None:
    if not hasattr(os, "getpgid"):
        return None
    group = os.getpgid(0)
    return group if group == os.getsid(0) else None  # a terminal's job group is not ours to end


def record_worker(run_dir: Path, events_offset: int) -> WorkerIdentity:
    """Write this process into worker.pid (whole or not at all: readers never see half)."""
    me = WorkerIdentity(os.getpid(), process_start_time(os.getpid()), _own_group(), events_offset)
    from studio.core.atomic import write_text  # (atomic imports this module)

    write_text(Path(run_dir) / PID, json.dumps(asdict(me)))
    return me


def read_worker(run_dir: Path) -> WorkerIdentity | None:
    """The identity in worker.pid; a bare process id (an older studio's file) has no start time."""
    try:
        text = (Path(run_dir) / PID).read_text(encoding="utf-8").strip()
        data = json.loads(text)
        if isinstance(data, int):
            return WorkerIdentity(data, None)
        return WorkerIdentity(int(data["pid"]), data.get("start_time"), data.get("group"), int(data.get("events_offset") or 0))
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def forget_worker(run_dir: Path) -> None:
    (Path(run_dir) / PID).unlink(missing_ok=True)


def is_that_process(identity: WorkerIdentity) -> bool:
    """Whether the process with that id is the one that wrote the identity (same start time)."""
    if identity.start_time is None:
        return False  # cannot be told apart from a process that took the id over
    started = process_start_time(identity.pid)
    return started is not None and abs(started - identity.start_time) < 0.05


def live_worker(run_dir: Path) -> WorkerIdentity | None:
    """The run's worker, if it runs now and worker.pid really names it."""
    identity = read_worker(run_dir)
    if identity is None or not is_held(run_dir) or not is_that_process(identity):
        return None
    return identity


def kill_worker(run_dir: Path) -> bool:
    """End the run's worker at once (its whole group: several processes in a multi-GPU run). Nothing
    is signalled unless the worker is verified (`live_worker`); returns whether a signal was sent."""
    identity = live_worker(run_dir)
    if identity is None:
        return False
    try:
        if identity.group and os.getpgid(identity.pid) == identity.group:
            os.killpg(identity.group, KILL)
        else:
            os.kill(identity.pid, KILL)
    except (ProcessLookupError, PermissionError):
        return False
    return True
