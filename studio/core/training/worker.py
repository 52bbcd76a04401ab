"""`python -m studio.core.training.worker RUN_DIR [--resume]`: the one place that trains.

It reads the run's recipe and trains it (session.py: setup → run_training → finish, with the model
from model.py, the data from dataset.py, Trainer's set-up from trainer.py and its progress as events
from callback.py), and reports how the run ended as the `finished` event (events.py, failures.py).
It runs as its own process, so an out-of-memory error or a crash in a CUDA kernel cannot take the
window down, and all GPU memory returns when it ends; the same command runs under `accelerate
launch` on several GPUs, where only the main process (rank 0) writes events.

Cancel: a `cancel.request` file in the run folder (or SIGINT/SIGTERM) stops training at the end of
the current step and saves a checkpoint and the adapter; a second signal ends the process at once.

Ownership: before anything else the worker takes (or is handed) the run folder's lock and keeps it
for its whole life (ownership.py). A worker that cannot take it writes nothing into the folder.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
import traceback
import warnings
from pathlib import Path

from studio.core import runs
from studio.core.errors import StudioError
from studio.core.training import ownership
from studio.core.training.distributed import tie_to_launcher, world_size
from studio.core.training.events import EventWriter, is_main_process, size_of
from studio.core.training.failures import Failure, RunFailure
from studio.core.training.session import Stop, train

EXIT_NOT_OWNER = 3  # another process owns the run folder: nothing was done


def _install_signal_handlers(stop: Stop) -> dict:
    """SIGINT/SIGTERM: the first cancels politely, the second ends the process. Returns the old handlers."""
    def handler(signum, frame):
        if stop.cancel_requested:  # the second request: end now
            os._exit(130)
        stop.cancel_requested = True

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, handler)
        except (ValueError, OSError):  # not the main thread: the cancel file still works
            pass
    return previous


def _quiet() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "warning")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    # Libraries' deprecation notices say nothing to the user and crowd the run's log.
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)


def run(run_dir: Path, *, resume: bool = False, echo=sys.stdout, quiet: bool = False) -> int:
    """Train the run and report how it ended; the exit status is 0 for completed and cancelled.
    `quiet`: turn the libraries' progress bars and notices off (the worker process does)."""
    run_dir = Path(run_dir)
    lock = None
    tie_to_launcher()
    if is_main_process():
        lock = ownership.claim(run_dir, one_of_several=world_size() > 1)
        if lock is None:
            _log_message(run_dir, "Another studio process is already training this run, so this one stopped without "
                                  "touching the run folder. Wait for that one to finish, or cancel it, before resuming.")
            return EXIT_NOT_OWNER
    if quiet:
        _quiet()
    try:
        if resume and is_main_process() and runs.is_completed(run_dir):
            _log_message(run_dir, "This run has already finished and its adapter is saved: nothing was resumed. "
                                  "To train more, start a new run with its recipe (studio train --recipe run.toml).")
            return 2
        return _run_owned(run_dir, resume=resume, echo=echo if is_main_process() else None)
    finally:
        if lock is not None:
            lock.release()


def _run_owned(run_dir: Path, *, resume: bool, echo) -> int:
    """The run, once this process owns its folder (or is a helper process of the one that does)."""
    events = EventWriter(run_dir / runs.EVENTS, echo=echo)
    stop = Stop()
    previous_handlers = _install_signal_handlers(stop)
    if is_main_process():
        ownership.record_worker(run_dir, events_offset=size_of(run_dir / runs.EVENTS))
        (run_dir / runs.CANCEL).unlink(missing_ok=True)
    try:
        events.emit("finished", **train(run_dir, _recipe(run_dir), events, stop, resume=resume))
        return 0
    except Exception as exc:  # every way a run fails becomes its `finished` event
        _log_traceback(run_dir)
        failure, code = _failure_of(exc, run_dir)
        events.emit("finished", status="failed", error=failure.as_dict())
        return code
    finally:
        events.close()
        if is_main_process():
            ownership.forget_worker(run_dir)
        for sig, old in previous_handlers.items():
            signal.signal(sig, old)


def _recipe(run_dir: Path):
    try:
        return runs.load_recipe(run_dir)
    except StudioError as exc:
        raise RunFailure("bad_input", exc.message, exc.advice, topic="settings") from exc


def _failure_of(exc: Exception, run_dir: Path) -> tuple[Failure, int]:
    """The `finished` event's error for an exception that ended the run, and the exit status: 2 when
    the inputs cannot be used, 1 for every other failure."""
    if isinstance(exc, RunFailure):
        return exc.failure, 2 if exc.kind == "bad_input" else 1
    if isinstance(exc, StudioError):
        return Failure("bad_input", exc.message, exc.advice), 2
    if isinstance(exc, MemoryError):
        return Failure("out_of_memory", "The computer ran out of memory (RAM).",
                       "Close other programs, or lower the batch size or the sequence length."), 1
    return Failure("crash", f"Training stopped on an unexpected error: {type(exc).__name__}: {exc}"[:500],
                   f"The full report is in {run_dir / runs.STDERR}. Resume the run to continue from the last "
                   "checkpoint; if it happens again, include that file in a bug report."), 1


def _log_message(run_dir: Path, message: str) -> None:
    """A line in the run's stderr.log (where the window's log panel and bug reports look)."""
    with (run_dir / runs.STDERR).open("a", encoding="utf-8") as fh:
        fh.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} --- {message}\n")


def _log_traceback(run_dir: Path) -> None:
    with (run_dir / runs.STDERR).open("a", encoding="utf-8") as fh:
        fh.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} ---\n")
        traceback.print_exc(file=fh)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m studio.core.training.worker")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--resume", action="store_true", help="continue from the last complete checkpoint")
    args = parser.parse_args(argv)
    return run(args.run_dir, resume=args.resume, quiet=True)


if __name__ == "__main__":
    raise SystemExit(main())
