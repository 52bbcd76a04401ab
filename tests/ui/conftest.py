"""Helpers for driving the real window: wait for background work, make a window with the demo."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QEventLoop
from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"


def pump(app: QApplication | None = None, seconds: float = 0.0) -> None:
    """Run the event loop for a while (signals from threads arrive, timers fire, widgets paint)."""
    app = app or QApplication.instance()
    end = time.monotonic() + seconds
    while True:
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
        if time.monotonic() >= end:
            return
        time.sleep(0.005)


def wait_until(condition, timeout: float = 60.0, what: str = "condition"):
    """Pump events until `condition()` is true; fail with `what` after `timeout` seconds."""
    app = QApplication.instance()
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
        time.sleep(0.005)
    value = condition()
    assert value, f"timed out after {timeout:.0f} s waiting for {what}"
    return value


def make_window(model: str | None = "demo", data: str | None = "demo", *, wait: bool = True, runs_dir: Path | None = None):
    """The studio window as `studio` opens it (demo model and data), shown offscreen."""
    from studio.core.presets import first_run_config
    from studio.core.settings import Settings
    from studio.ui.main_window import MainWindow
    from studio.ui.state import StudioState

    config = first_run_config(model or "demo", data or "demo")
    if data is None:
        config.data.source = ""  # no data chosen yet
    state = StudioState(config, Settings(runs_dir=str(runs_dir) if runs_dir else None))
    window = MainWindow(state, model=model, data=data)
    window.close_policy = "stop"  # never a modal question in a test
    window.show()
    if wait and model:
        wait_until(lambda: window.state.model is not None or window.state.model_error, 120, "the model card")
        assert window.state.model is not None, window.state.model_error
        if data:
            wait_until(lambda: window.state.data is not None or window.state.data_error, 120, "the data report")
            assert window.state.data is not None, window.state.data_error
    return window


def close_window(window) -> None:
    window.close()
    pump(seconds=0.05)
    window.deleteLater()
    pump(seconds=0.05)


def save_screenshot(window, key: str, folder: Path, name: str | None = None) -> Path:
    """Show a page, let it paint, and save the whole window as it looks (offscreen)."""
    window.show_page(key)
    pump(seconds=0.4)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name or key}.png"
    assert window.grab().save(str(path)), path
    return path


def update_screenshots() -> bool:
    """STUDIO_UPDATE_SCREENSHOTS=1 writes the README's screenshots (docs/screenshots/) too."""
    return os.environ.get("STUDIO_UPDATE_SCREENSHOTS", "") not in ("", "0")


@pytest.fixture
def window(qapp):
    w = make_window()
    yield w
    close_window(w)
