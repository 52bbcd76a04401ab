"""How responsive the UI thread is: the longest time it could not run anything.

A 10 ms heartbeat timer on the UI thread notes how late each tick fires; a tick that comes more
than 10 ms after the previous one means the event loop was busy (or the OS gave the CPU to
someone else) for that long. `worst_ms` is the longest such gap: the worst frame a user would see.
Used by the tests and the benchmark, not by the window itself.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, Qt, QTimer


class FrameMonitor(QObject):
    def __init__(self, interval_ms: int = 10, parent=None):
        super().__init__(parent)
        self.interval_ms = interval_ms
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)
        self._last: float | None = None
        self.gaps_ms: list[float] = []

    def start(self) -> None:
        self._last = None
        self.gaps_ms = []
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.gaps_ms.append((now - self._last) * 1000)
        self._last = now

    @property
    def worst_ms(self) -> float:
        return max(self.gaps_ms, default=0.0)

    def percentile(self, q: float) -> float:
        if not self.gaps_ms:
            return 0.0
        ordered = sorted(self.gaps_ms)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]

    def over(self, limit_ms: float) -> int:
        return sum(1 for g in self.gaps_ms if g > limit_ms)
