"""`TrainingThread`: supervises one training worker process and turns its events into Qt signals.

The worker is a separate process (see ARCHITECTURE.md): this thread starts it (or resumes, or
attaches to one left running by an earlier window), follows `events.jsonl` and the tail of
`stderr.log`, and emits typed signals. Plots and labels update from these signals only. Every
exception in the thread becomes a `report(message, advice)` signal, never a crash.

Cancel is asked of the thread, which calls `launcher.cancel` itself: the second, forcing cancel
waits for the process to end, and that wait must not happen on the UI thread.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from pathlib import Path

from PySide6.QtCore import QThread, Signal

from studio.core import runs
from studio.core.errors import StudioError
from studio.core.recipe import RunConfig
from studio.core.runs import RunHistory
from studio.core.training.events import size_of

log = logging.getLogger(__name__)

LOG_LINES = 200  # lines of stderr.log kept for the log panel
TRACEBACK_NOTE = "[studio] (Technical details for a bug report are in stderr.log, in the run folder: “Open the full log”.)"
CHAINED = ("The above exception was the direct cause of the following exception:",
           "During handling of the above exception, another exception occurred:")


class TracebackFilter:
    """Keeps Python tracebacks out of the log panel: each one (with its chained causes) becomes one
    line that says where the details are. They stay in stderr.log; the panel shows the failure's
    message and advice instead. Lines arrive in pieces, so where it is in a traceback is kept:
    "frames" (File … lines), "message" (the exception's text, up to a blank line), "between" (after
    it, where a chained cause may follow) or "out"."""

    def __init__(self) -> None:
        self.where = "out"

    def lines(self, lines: list[str]) -> list[str]:
        return [line for line in (self._line(line) for line in lines) if line is not None]

    def _line(self, line: str) -> str | None:
        if line.startswith("Traceback (most recent call last):"):
            note = TRACEBACK_NOTE if self.where == "out" else None
            self.where = "frames"
            return note
        blank = not line.strip()
        if self.where == "frames":
            self.where = "frames" if blank or line[0].isspace() else "message"
        elif self.where == "message":
            self.where = "between" if blank else "out" if line.startswith("--- ") else "message"
        elif self.where == "between" and not blank and line not in CHAINED:
            self.where = "out"
        return line if self.where == "out" else None


class TrainingThread(QThread):
    run_folder = Signal(object)  # Path: the run's folder, as soon as it exists
    run_started = Signal(dict)  # the worker's "started" event (total steps, device, planned memory)
    preflighted = Signal(dict)  # the longest batch was run once before training: the memory it took
    steps = Signal(list)  # new "step" events, batched per poll so a fast run cannot flood the UI
    evaluated = Signal(dict)
    sampled = Signal(dict)
    checkpointed = Signal(dict)
    logged = Signal(list)  # new log lines (the worker's stderr and its "log" events)
    cancelling = Signal(str)  # what a cancel did: "stopping after this step" / "stopped"
    run_finished = Signal(dict)  # the "finished" event, from the worker or from `launcher.classify`
    report = Signal(str, str, object)  # an error in this thread or in starting the run: message, advice, topic (or None)

    def __init__(self, *, config: RunConfig | None = None, run_dir: Path | None = None, mode: str = "start",
                 poll_interval: float = 0.2, parent=None):
        super().__init__(parent)
        if mode not in ("start", "resume", "attach"):
            raise ValueError(mode)
        if mode == "start" and config is None:
            raise ValueError("starting a run needs a config")
        if mode != "start" and run_dir is None:
            raise ValueError(f"{mode} needs a run folder")
        self.mode = mode
        self.config = config
        self.run_dir: Path | None = Path(run_dir) if run_dir else None
        self.poll_interval = poll_interval
        self.handle = None
        self._lock = threading.Lock()
        self._cancels_wanted = 0
        self._cancels_done = 0
        self._detached = False
        self._log_offset = 0
        self._log_partial = b""
        self._tracebacks = TracebackFilter()
        self.history = RunHistory()  # every event this thread has read, the folder's earlier ones first
        self._replayed = 0  # events already in the folder before this thread began: replayed, never "the end"

    # ---- called from the UI thread ----

    def request_cancel(self) -> int:
        """First call: the worker stops after this step and saves. Second call: it is ended at once."""
        with self._lock:
            self._cancels_wanted += 1
            return self._cancels_wanted

    @property
    def cancel_requests(self) -> int:
        return self._cancels_wanted

    def detach(self) -> None:
        """Stop following the run and leave the worker running (the window is closing)."""
        self._detached = True

    # ---- the thread ----

    def run(self) -> None:  # noqa: C901 - one loop, read top to bottom
        try:
            from studio.core.training import launcher

            if self.mode != "start":
                self._replayed = RunHistory.read(self.run_dir).count
            if self.mode == "start":
                self.handle = launcher.start(self.config)
            elif self.mode == "resume":
                self.handle = launcher.resume(self.run_dir)
            else:
                self.handle = launcher.attach(self.run_dir)
            self.run_dir = self.handle.run_dir
            if self.mode == "attach":
                # the log panel shows the end of what was written before the window opened
                self._log_offset = max(0, size_of(self.run_dir / runs.STDERR) - 16_000)
            self.run_folder.emit(self.run_dir)
            handle = self.handle
            while True:
                self._do_cancels(launcher, handle)
                finished = self._dispatch(handle.poll_events())
                self._read_log()
                if finished is not None:
                    self._reap(handle)
                    self._end(finished)
                    return
                if self._detached:
                    return
                if not handle.alive():
                    finished = self._dispatch(handle.poll_events())  # what it wrote just before it ended
                    self._read_log()
                    self._end(finished or launcher.classify(handle))
                    return
                time.sleep(self.poll_interval)
        except StudioError as exc:
            self.report.emit(exc.message, exc.advice, exc.topic)
        except Exception as exc:  # noqa: BLE001 - never a crash in the window
            log.error("training thread failed:\n%s", traceback.format_exc())
            self.report.emit(f"The run could not be followed: {type(exc).__name__}: {exc}",
                             "The worker may still be running: see the Runs list. If this repeats, report it with `studio doctor`.",
                             None)

    def _end(self, finished: dict) -> None:
        self.run_finished.emit(finished)

    def _do_cancels(self, launcher, handle) -> None:
        while True:
            with self._lock:
                if self._cancels_done >= self._cancels_wanted:
                    return
                self._cancels_done += 1
            self.cancelling.emit(launcher.cancel(handle))

    def _dispatch(self, events: list[dict]) -> dict | None:
        """Emit the events; the `finished` event that ends this attempt, if it came (self.history says).

        After a resume (or when attaching) the folder's earlier events are replayed first, so the
        curves show the whole run; their `finished` events belong to earlier attempts and are skipped."""
        batch: list[dict] = []
        logs: list[str] = []
        for event in events:
            replayed = self.history.count < self._replayed
            self.history.add(event)
            if event["type"] == "step":
                batch.append(event)
            elif not (event["type"] == "finished" and replayed):
                batch = self._emit_steps(batch)
                self._emit(event, logs)
        self._emit_steps(batch)
        if logs:
            self.logged.emit(logs)
        return self.history.finished if self.history.ended_after(self._replayed) else None

    # the signal each kind of event goes out on (steps and log lines are batched; `finished` ends the run)
    _SIGNALS = {"started": "run_started", "preflight": "preflighted", "eval": "evaluated", "sample": "sampled",
                "checkpoint": "checkpointed"}

    def _emit(self, event: dict, logs: list[str]) -> None:
        if event["type"] == "log":
            logs.append(f"[studio] {event.get('message', '')}")
        elif event["type"] in self._SIGNALS:
            getattr(self, self._SIGNALS[event["type"]]).emit(event)

    def _emit_steps(self, batch: list[dict]) -> list[dict]:
        """Send the step events gathered so far, in one signal; the empty batch that follows."""
        if batch:
            self.steps.emit(batch)
        return []

    def _read_log(self) -> None:
        path = self.run_dir / runs.STDERR
        try:
            with path.open("rb") as fh:
                fh.seek(self._log_offset)
                chunk = fh.read(256_000)
                self._log_offset = fh.tell()
        except OSError:
            return
        if not chunk:
            return
        data = self._log_partial + chunk
        lines = data.split(b"\n")
        self._log_partial = lines.pop()
        text = self._tracebacks.lines([line.decode("utf-8", errors="replace").rstrip("\r") for line in lines])
        text = [t for t in text if t.strip()]
        if text:
            self.logged.emit(text[-LOG_LINES:])

    def _reap(self, handle, timeout: float = 15.0) -> None:
        """After `finished`, give the worker a moment to exit so no zombie is left behind."""
        deadline = time.monotonic() + timeout
        while handle.alive() and time.monotonic() < deadline and not self._detached:
            time.sleep(0.05)
