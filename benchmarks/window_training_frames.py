"""How responsive the window is while it trains: the longest time the UI thread is busy.

Run by hand (never by CI):  python benchmarks/window_training_frames.py [STEPS]

Opens the real window offscreen with the demo model and data, starts a STEPS-step run (default 20)
from the Train page and, until the run ends, measures two things on the UI thread:
  * every event Qt dispatches, timed (a QApplication whose `notify` is wrapped): the UI's own work;
  * a 10 ms heartbeat timer: the gaps between its ticks are what a user feels, including the time the
    OS gives the CPU to the training process.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from collections import Counter

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from PySide6.QtCore import QEventLoop  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402


class TimedApplication(QApplication):
    def __init__(self, argv):
        super().__init__(argv)
        self.durations: list[tuple[float, str]] = []
        self.recording = False

    def notify(self, receiver, event):
        if not self.recording:
            return super().notify(receiver, event)
        t0 = time.perf_counter()
        try:
            return super().notify(receiver, event)
        finally:
            self.durations.append(((time.perf_counter() - t0) * 1000, f"{type(receiver).__name__}/{event.type().name}"))


def main() -> None:
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    os.environ.setdefault("STUDIO_HOME", tempfile.mkdtemp(prefix="studio-frames-"))
    app = TimedApplication([sys.argv[0]])
    from studio.ui.app import apply_theme
    from studio.ui.frame_monitor import FrameMonitor
    from studio.ui.main_window import MainWindow

    apply_theme(app)
    window = MainWindow(model="demo", data="demo")
    window.close_policy = "stop"
    window.show()

    def wait(condition, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end and not condition():
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
            time.sleep(0.002)
        return condition()

    assert wait(lambda: window.state.data is not None, 180), "the demo did not load"
    window.page("adapter").apply_preset("balanced")
    window.page("adapter").set_steps(steps)
    window.show_page("train")
    train = window.page("train")
    wait(lambda: False, 1.0)  # let start-up work settle
    monitor = FrameMonitor()
    app.recording = True
    monitor.start()
    t0 = time.monotonic()
    train.start_button.click()
    assert wait(lambda: train.last_finished is not None, 900), "the run did not end"
    monitor.stop()
    app.recording = False
    wall = time.monotonic() - t0
    print(f"command: {sys.executable} {' '.join(sys.argv)}")
    print(f"device: {platform.machine()}, {os.cpu_count()} CPUs (shared with the training process), Qt platform "
          f"{os.environ['QT_QPA_PLATFORM']}; run: {steps} steps of the demo model, {train.last_finished.get('status')}, {wall:.1f} s")
    events = sorted(app.durations, reverse=True)
    print(f"UI-thread events dispatched: {len(events)}; longest {events[0][0]:.1f} ms ({events[0][1]}); "
          f"over 50 ms: {sum(1 for d, _ in events if d > 50)}; over 16 ms: {sum(1 for d, _ in events if d > 16)}")
    slow = Counter(name for d, name in events if d > 16)
    if slow:
        print("  kinds of events over 16 ms: " + ", ".join(f"{name} ×{n}" for name, n in slow.most_common(5)))
    print(f"heartbeat (10 ms timer): worst gap {monitor.worst_ms:.1f} ms, p99 {monitor.percentile(99):.1f} ms, "
          f"gaps over 50 ms: {monitor.over(50)} of {len(monitor.gaps_ms)}")
    window.close()


if __name__ == "__main__":
    main()
