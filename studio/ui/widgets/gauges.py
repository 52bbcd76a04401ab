"""Memory gauges: the status bar's live GPU gauge, and the Train page's measured-vs-planned gauge."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, QTimer
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPalette, QPen
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QSizePolicy, QWidget

from studio.ui.units import gb


class GpuStatusGauge(QWidget):
    """Name, used / total, refreshed every second (NVML, in a background task). Hidden without a GPU."""

    def __init__(self, parent=None, interval_ms: int = 1000):
        super().__init__(parent)
        self.label = QLabel(self)
        self.bar = QProgressBar(self)
        self.bar.setMaximumWidth(110)
        self.bar.setMaximumHeight(14)
        self.bar.setTextVisible(False)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        layout.addWidget(self.label)
        layout.addWidget(self.bar)
        self.setToolTip("GPU memory in use on this computer (all programs), refreshed every second.")
        self.setVisible(False)
        self.gpus: list = []
        self._task = None
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.refresh)

    def start(self) -> None:
        self.refresh()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def refresh(self) -> None:
        from studio.ui.tasks import start_task

        if self._task is not None and self._task.running:
            return
        self._task = start_task("gpu gauge", lambda state: _poll_gpus(), on_done=self.show_gpus)

    def show_gpus(self, gpus: list) -> None:
        self.gpus = list(gpus or [])
        if not self.gpus:
            self.setVisible(False)
            self._timer.stop()  # no GPU now, none later: stop asking
            return
        g = self.gpus[0]
        used = g.total_bytes - g.free_bytes
        self.label.setText(f"{g.name}: {gb(used)} / {gb(g.total_bytes)}")
        self.bar.setRange(0, 1000)
        self.bar.setValue(round(1000 * used / max(1, g.total_bytes)))
        self.setToolTip(f"{g.name}: {gb(used, 2)} of {gb(g.total_bytes, 2)} in use (all programs), refreshed every second.")
        self.setVisible(True)


def _poll_gpus() -> list:
    """NVML only: asking torch.cuda would create a CUDA context in the window's process."""
    try:
        from studio.core.hardware import nvml_gpus

        return nvml_gpus()
    except Exception:
        return []


class MemoryGauge(QWidget):
    """Measured GPU memory of the run against the GPU's size, with the planned figure marked. The
    words under the bar wrap onto more lines in a narrow column instead of being cut."""

    MARGIN = 6
    BAR_HEIGHT = 18
    SEPARATOR = "  ·  "

    def __init__(self, parent=None):
        super().__init__(parent)
        self.total: int | None = None
        self.planned: int | None = None
        self.measured: int | None = None
        self.peak: int | None = None
        self.note = "Waiting for the run to start."
        self.setMinimumHeight(74)
        policy = QSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)
        self.setToolTip("GPU memory the run uses (bar, with its peak as a thin mark) against the plan (dashed line) "
                        "and the card's size (the full width).")
        self.setAccessibleName("GPU memory gauge")

    def sizeHint(self) -> QSize:
        return QSize(280, self.heightForWidth(max(self.width(), 280)))

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        fm = QFontMetrics(self.font())
        lines = max(1, len(self.lines_below(width - 2 * self.MARGIN)))
        return max(74, self.MARGIN + fm.height() + 4 + self.BAR_HEIGHT + 4 + lines * (fm.height() + 2) + self.MARGIN)

    def lines_below(self, width: int) -> list[str]:
        """The words under the bar (planned, peak, the note) in lines no wider than `width`."""
        fm = QFontMetrics(self.font())
        lines: list[str] = []
        for part in self._parts_below():
            joined = f"{lines[-1]}{self.SEPARATOR}{part}" if lines else part
            if lines and fm.horizontalAdvance(joined) <= width:
                lines[-1] = joined
            else:
                lines.extend(_wrapped(part, fm, width))
        return lines

    def _parts_below(self) -> list[str]:
        parts = []
        if self.planned:
            parts.append(f"planned {gb(self.planned)} (dashed)")
        if self.peak:
            parts.append(f"peak {gb(self.peak)}")
        if self.measured is None and self.note:
            parts.append(self.note)
        return parts

    def set_values(self, *, total: int | None = None, planned: int | None = None, measured: int | None = None,
                   peak: int | None = None, note: str | None = None) -> None:
        if total is not None:
            self.total = total
        if planned is not None:
            self.planned = planned
        if measured is not None:
            self.measured = measured
        if peak is not None:
            self.peak = peak
        if note is not None:
            self.note = note
        self.updateGeometry()
        self.update()

    def reset(self) -> None:
        self.total = self.planned = self.measured = self.peak = None
        self.note = "Waiting for the run to start."
        self.updateGeometry()
        self.update()

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        fm = QFontMetrics(self.font())
        text = pal.color(QPalette.ColorRole.WindowText)
        m = self.MARGIN
        width = self.width() - 2 * m
        top = m + fm.height() + 4
        h = self.BAR_HEIGHT
        scale = max(self.total or 0, self.planned or 0, self.peak or 0, self.measured or 0) * (1.0 if self.total else 1.1) or 1
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(pal.color(QPalette.ColorRole.AlternateBase))
        p.drawRoundedRect(QRectF(m, top, width, h), 4, 4)
        if self.measured:
            over = self.planned is not None and self.measured > self.planned * 1.1
            p.setBrush(QColor("#e15759") if over else QColor("#4e79a7"))
            p.drawRoundedRect(QRectF(m, top, width * self.measured / scale, h), 4, 4)
        if self.peak:
            x = m + width * self.peak / scale
            p.setPen(QPen(text, 1.5))
            p.drawLine(QPointF(x, top), QPointF(x, top + h))
        if self.planned:
            x = m + width * self.planned / scale
            pen = QPen(QColor("#f28e2b"), 2.5)
            pen.setStyle(Qt.PenStyle.DashLine)
            p.setPen(pen)
            p.drawLine(QPointF(x, top - 4), QPointF(x, top + h + 4))
        p.setPen(text)
        head = "GPU memory"
        if self.measured is not None:
            head += f": {gb(self.measured)} in use"
        if self.total:
            head += f" of {gb(self.total)}"
        p.drawText(QPointF(m, m + fm.ascent()), head)
        y = top + h + 4
        for line in self.lines_below(width):
            p.drawText(QPointF(m, y + fm.ascent()), line)
            y += fm.height() + 2
        p.end()


def _wrapped(text: str, fm: QFontMetrics, width: int) -> list[str]:
    """`text` in lines no wider than `width`, broken between words (a single longer word keeps its line)."""
    lines: list[str] = []
    for word in text.split():
        if lines and fm.horizontalAdvance(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines
