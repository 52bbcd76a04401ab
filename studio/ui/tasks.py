"""Long work off the UI thread (reading a model, inspecting data, loading a model to try, exporting,
downloading).

As in Orange3, the work is a plain function `fn(state)` that may call `state.report(value)` and
should check `state.cancelled()`; the window only sees done / progress / failed. Progress is
throttled and "last one wins", so a fast loop cannot flood the event loop. Every exception inside
the function becomes a `failed(message, advice)` signal, never a crash (napari's StatusChecker).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal, Slot

from studio.core.errors import StudioError

log = logging.getLogger(__name__)

_POOL: QThreadPool | None = None
_ALIVE: set[Task] = set()  # tasks keep themselves alive until they have finished


def pool() -> QThreadPool:
    global _POOL
    if _POOL is None:
        _POOL = QThreadPool()
        _POOL.setMaxThreadCount(4)
        _POOL.setExpiryTimeout(30_000)
    return _POOL


class TaskState:
    """What the function sees: report progress, and whether it should stop."""

    def __init__(self, task: Task, interval: float):
        self._task = task
        self._cancel = threading.Event()
        self._interval = interval
        self._last = 0.0
        self._pending: Any = None
        self._has_pending = False
        self._lock = threading.Lock()

    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def report(self, value: Any, *, force: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            if not force and now - self._last < self._interval:
                self._pending, self._has_pending = value, True
                return
            self._last = now
            self._pending, self._has_pending = None, False
        self._task._progress.emit(value)

    def flush(self) -> None:
        with self._lock:
            value, has = self._pending, self._has_pending
            self._pending, self._has_pending = None, False
        if has:
            self._task._progress.emit(value)


class _Runnable(QRunnable):
    def __init__(self, task: Task, fn: Callable[[TaskState], Any]):
        super().__init__()
        self.setAutoDelete(True)
        self._task = task
        self._fn = fn

    def run(self) -> None:
        task, state = self._task, self._task.state
        try:
            result = self._fn(state)
        except StudioError as exc:
            state.flush()
            task._failed.emit(exc.message, exc.advice)
        except BaseException as exc:  # noqa: BLE001 - a thread must never take the window down
            state.flush()
            log.error("task %s failed:\n%s", task.name, traceback.format_exc())
            task._failed.emit(f"{type(exc).__name__}: {exc}",
                              "This looks like a bug in LoRA Studio. Try again; if it repeats, report it with `studio doctor`.")
        else:
            state.flush()
            task._done.emit(result)


class Task(QObject):
    """One piece of background work. Callbacks run on the UI thread."""

    _progress = Signal(object)
    _done = Signal(object)
    _failed = Signal(str, str)

    progressed = Signal(object)
    succeeded = Signal(object)
    failed = Signal(str, str)
    finished = Signal()

    def __init__(self, name: str, interval: float = 0.05):
        super().__init__()
        self.name = name
        self.state = TaskState(self, interval)
        self.running = True
        # The worker thread emits the private signals; queued connections bring them to this
        # object's (the UI) thread, where the public signals and callbacks run.
        self._progress.connect(self._on_progress, Qt.ConnectionType.QueuedConnection)
        self._done.connect(self._on_done, Qt.ConnectionType.QueuedConnection)
        self._failed.connect(self._on_failed, Qt.ConnectionType.QueuedConnection)

    def cancel(self) -> None:
        self.state._cancel.set()

    @Slot(object)
    def _on_progress(self, value) -> None:
        if self.running:
            _safe(self.progressed.emit, value)

    @Slot(object)
    def _on_done(self, result) -> None:
        self.running = False
        _safe(self.succeeded.emit, result)
        self._end()

    @Slot(str, str)
    def _on_failed(self, message: str, advice: str) -> None:
        self.running = False
        _safe(self.failed.emit, message, advice)
        self._end()

    def _end(self) -> None:
        _safe(self.finished.emit)
        _ALIVE.discard(self)


def _safe(emit, *args) -> None:
    """A receiver that was closed while the task ran is no reason to crash."""
    try:
        emit(*args)
    except RuntimeError as exc:  # "Internal C++ object already deleted"
        log.debug("a task's receiver is gone: %s", exc)


def start_task(name: str, fn: Callable[[TaskState], Any], *, on_done: Callable | None = None,
               on_failed: Callable | None = None, on_progress: Callable | None = None,
               interval: float = 0.05) -> Task:
    """Run `fn(state)` in the studio's thread pool. Connect callbacks before it can finish."""
    task = Task(name, interval)
    if on_done is not None:
        task.succeeded.connect(on_done)
    if on_failed is not None:
        task.failed.connect(on_failed)
    if on_progress is not None:
        task.progressed.connect(on_progress)
    _ALIVE.add(task)
    pool().start(_Runnable(task, fn))
    return task


def settle_heap() -> None:
    """Move every object alive now out of the garbage collector's way.

    Once torch and transformers are imported, the process holds ~500k Python objects, and one full
    (generation 2) collection of them takes ~300 ms — on whichever thread happens to trigger it,
    often the UI thread: a frozen window. Freezing after the big imports (the advice in the gc docs)
    leaves later collections only the objects made since. Cheap: no collection happens here."""
    import gc

    gc.freeze()


@contextlib.contextmanager
def heavy_imports():
    """Around work that imports torch/transformers/datasets or loads a model: no collections while
    hundreds of thousands of objects are created (each would stop every thread, the UI's too),
    and the survivors frozen afterwards (see `settle_heap`)."""
    import gc

    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        settle_heap()
        if enabled:
            gc.enable()


def wait_for_all(timeout_ms: int = 5000) -> bool:
    """Cancel what runs and wait for the pool (used when the window closes and by tests)."""
    for task in list(_ALIVE):
        task.cancel()
    return pool().waitForDone(timeout_ms)
