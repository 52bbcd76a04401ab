"""Every page is usable at ordinary window sizes: at 1024 × 700 and 1280 × 800 no widget reaches past
the right edge of its page, no horizontal scroll bar appears, and no label, button or list is squeezed
below the width its text needs — also for a run that does not fit (the Memory page's fixes) and for
a CSV whose columns need mapping (the Data page)."""

from __future__ import annotations

import csv

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractScrollArea,
    QComboBox,
    QLabel,
    QScrollArea,
    QScrollBar,
    QWidget,
)

from studio.ui.widgets.gauges import MemoryGauge
from studio.ui.widgets.memory_bar import MemoryBar
from tests.ui.conftest import close_window, make_window, pump, wait_until

SIZES = ((1024, 700), (1280, 800))
PAGES = ("model", "data", "adapter", "memory", "train", "try", "runs")
# Squeezed below their text: a label or button narrower than its minimum size hint, a combo box
# narrower than its longest choice needs (Qt then clips "Prompt column" to "Prompt c").
CLIPPABLE = (QLabel, QAbstractButton, QComboBox)
PAINTED = (MemoryBar, MemoryGauge)  # draw their own words: cut off when shorter than their height for the width


def _name(widget: QWidget) -> str:
    text = widget.text() if hasattr(widget, "text") and callable(widget.text) else ""
    text = text if isinstance(text, str) else ""
    name = widget.objectName() or widget.accessibleName() or widget.toolTip()[:40]
    return f"{type(widget).__name__}({(text or name)[:60]!r})"


def _inside_compound(widget: QWidget, page: QWidget) -> bool:
    """A part of a combo box, spin box or item view (Qt sizes those itself)."""
    parent = widget.parentWidget()
    while parent is not None and parent is not page:
        if isinstance(parent, (QComboBox, QAbstractScrollArea)) and not isinstance(parent, QScrollArea):
            return True  # a QScrollArea holds part of a page: its widgets are the page's own
        parent = parent.parentWidget()
    return False


def overflow(page: QWidget) -> list[str]:
    """What does not fit the page's width: each as 'widget: why'."""
    width = page.width()
    found = []
    for widget in page.findChildren(QWidget):
        if not widget.isVisible():
            continue
        right = widget.mapTo(page, QPoint(0, 0)).x() + widget.width()
        if right > width + 1 and not _inside_compound(widget, page):
            found.append(f"{_name(widget)}: reaches x={right} on a page {width} px wide")
        if isinstance(widget, QScrollBar) and widget.orientation() == Qt.Orientation.Horizontal:
            found.append(f"{_name(widget.parentWidget().parentWidget() or widget)}: a horizontal scroll bar")
        if isinstance(widget, CLIPPABLE) and not _inside_compound(widget, page):
            need = widget.minimumSizeHint().width()
            if isinstance(widget, QLabel) and widget.wordWrap():
                need = 0  # wraps instead
            if widget.width() + 1 < need:
                found.append(f"{_name(widget)}: {widget.width()} px wide, its text needs {need}")
        if isinstance(widget, PAINTED) and widget.height() < widget.heightForWidth(widget.width()):
            found.append(f"{_name(widget)}: {widget.height()} px high, its words need {widget.heightForWidth(widget.width())}")
    return found


def _check(window, key: str, size: tuple[int, int]) -> list[str]:
    window.resize(*size)
    window.show_page(key)
    pump(seconds=0.15)
    page = window.page(key)
    problems = overflow(page)
    if (window.width(), window.height()) != size:
        problems.append(f"the window cannot be {size[0]} × {size[1]}: it is {window.width()} × {window.height()}")
    return problems


def _cases(pages):
    return [pytest.param(key, (w, h), id=f"{key}-{w}x{h}") for w, h in SIZES for key in pages]


@pytest.fixture(scope="module")
def demo_window(qapp, tmp_path_factory):
    w = make_window(runs_dir=tmp_path_factory.mktemp("runs"))
    yield w
    close_window(w)


@pytest.fixture(scope="module")
def too_large_window(qapp, tmp_path_factory):
    """Llama 3.1 8B planned for an 8 GB card: the Memory page lists its fixes, the Model page warns."""
    w = make_window(model="llama-3.1-8b", data=None, runs_dir=tmp_path_factory.mktemp("runs"))
    w.page("memory").choose_gpu_gb(8)
    assert not w.state.plan().fits(w.state.gpu.bytes)
    yield w
    close_window(w)


@pytest.fixture(scope="module")
def csv_window(qapp, tmp_path_factory):
    """A CSV of questions and answers: the Data page shows which column is the prompt, which the answer."""
    path = tmp_path_factory.mktemp("data") / "faq.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["question", "answer", "topic"])
        for i in range(20):
            writer.writerow([f"How do I reset device {i}?", f"Hold the button on device {i} for ten seconds.", "devices"])
    w = make_window(runs_dir=tmp_path_factory.mktemp("runs"))
    w.page("data").load(str(path))
    wait_until(lambda: w.state.data is not None and w.state.data.report["source"].endswith("faq.csv"), 60, "the CSV")
    yield w
    close_window(w)


@pytest.mark.parametrize("key,size", _cases(PAGES))
def test_every_page_fits_its_width(demo_window, key, size):
    problems = _check(demo_window, key, size)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("key,size", _cases(("memory", "model")))
def test_a_run_that_does_not_fit_shows_its_fixes_within_the_page(too_large_window, key, size):
    memory = too_large_window.page("memory")
    too_large_window.show_page("memory")
    pump(seconds=0.05)
    assert memory.suggestion_buttons(), "the fixes are shown"
    problems = _check(too_large_window, key, size)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("key,size", _cases(("data",)))
def test_the_csv_mapping_fits_the_data_page(csv_window, key, size):
    assert not csv_window.page("data").mapping_box.isHidden()
    problems = _check(csv_window, key, size)
    assert not problems, "\n".join(problems)


def test_the_train_gauge_wraps_its_words_in_a_narrow_column(qapp):
    """At 1024 px the Train page's gauge is ~280 px wide: "CPU run: nothing to measure" wraps, whole."""
    from PySide6.QtGui import QFontMetrics

    gauge = MemoryGauge()
    gauge.set_values(planned=11 * 1024**3, note="CPU run: nothing to measure")
    width = 280 - 2 * gauge.MARGIN
    lines = gauge.lines_below(width)
    assert " ".join(lines).replace("  ·  ", " ") == "planned 11.0 GB (dashed) CPU run: nothing to measure"
    assert len(lines) >= 2 and all(QFontMetrics(gauge.font()).horizontalAdvance(line) <= width for line in lines)
    assert gauge.heightForWidth(280) > gauge.heightForWidth(900)
    assert gauge.lines_below(900 - 2 * gauge.MARGIN) == ["planned 11.0 GB (dashed)  ·  CPU run: nothing to measure"]
    gauge.deleteLater()


def test_the_window_opens_within_a_small_screen(tmp_path):
    """On a 1024 × 700 screen the window's first size fits the screen (it used to open at 1280 × 820)."""
    import json
    import os
    import subprocess
    import sys

    screen = tmp_path / "screen.json"
    screen.write_text(json.dumps({"screens": [{"name": "small", "x": 0, "y": 0, "width": 1024, "height": 700,
                                               "logicalDpi": 96, "logicalBaseDpi": 96, "dpr": 1}]}))
    script = ("from studio.ui.app import create_app\nfrom studio.ui.main_window import MainWindow\n"
              "app = create_app()\nw = MainWindow(model=None, data=None)\nprint(w.width(), w.height())\n")
    env = dict(os.environ, QT_QPA_PLATFORM=f"offscreen:configfile={screen}", STUDIO_HOME=str(tmp_path / "home"))
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120, check=True)
    width, height = map(int, done.stdout.split()[-2:])
    assert width <= 1024 and height <= 700, (width, height)
