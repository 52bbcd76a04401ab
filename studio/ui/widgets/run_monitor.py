"""What the Train page shows of a run as it trains: the loss curves beside the GPU memory gauge and
the sample answers, above the training process's log."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QGroupBox,
    QPlainTextEdit,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from studio.core.wording import count
from studio.ui.widgets.gauges import MemoryGauge
from studio.ui.widgets.loss_plot import LossPlot
from studio.ui.widgets.text import help_label


class RunMonitor(QSplitter):
    def __init__(self, parent=None):
        super().__init__(Qt.Orientation.Vertical, parent)
        self.setChildrenCollapsible(False)
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.setChildrenCollapsible(False)
        self.plot = LossPlot(split)
        self.plot.setMinimumHeight(260)
        split.addWidget(self.plot)
        split.addWidget(self._gauge_and_samples(split))
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([640, 420])
        self.addWidget(split)
        self.addWidget(self._log_panel())
        self.setStretchFactor(0, 4)
        self.setStretchFactor(1, 1)
        self.setSizes([420, 120])

    def _gauge_and_samples(self, parent: QWidget) -> QWidget:
        right = QWidget(parent)
        rv = QVBoxLayout(right)
        rv.setContentsMargins(6, 0, 0, 0)
        self.gauge = MemoryGauge(right)
        rv.addWidget(self.gauge)
        samples_box = QGroupBox("Sample answers during training", right)
        samples_box.setToolTip("The model answers the same prompts every few steps: watch its answers change.")
        sv = QVBoxLayout(samples_box)
        self.samples = QTextBrowser(samples_box)
        self._sample_blocks: list[str] = []  # the HTML of each sample answer, oldest first
        self.samples.setToolTip("Answers to the sample prompts, newest first.")
        self.samples.setPlaceholderText("Sample answers appear here every few steps.")
        sv.addWidget(self.samples)
        rv.addWidget(samples_box, 1)
        return right

    def _log_panel(self) -> QWidget:
        log_box = QWidget(self)
        lv = QVBoxLayout(log_box)
        lv.setContentsMargins(0, 0, 0, 0)
        self.log = QPlainTextEdit(log_box)
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(400)
        self.log.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.log.setToolTip("The last lines the training process wrote (its full log is stderr.log in the run folder).")
        self.log.setPlaceholderText("The training process's messages appear here.")
        lv.addWidget(help_label("Log", log_box))
        lv.addWidget(self.log)
        return log_box

    def reset(self) -> None:
        self.plot.clear()
        self.show_samples([])
        self.log.clear()
        self.gauge.reset()

    # ---- sample answers ----

    def add_sample(self, event: dict) -> None:
        from studio.ui.run_view import sample_html

        self.show_samples([*self._sample_blocks, sample_html(event)])

    def show_samples(self, blocks: list[str]) -> None:
        """The sample answers, newest first, set at once (no round trip through the document's HTML)."""
        self._sample_blocks = blocks
        self.samples.setHtml("".join(reversed(blocks)))

    # ---- the log ----

    def add_lines(self, lines: list[str]) -> None:
        self.log.appendPlainText("\n".join(lines))

    def note(self, text: str) -> None:
        """A line of the studio's own in the log."""
        self.log.appendPlainText(f"[studio] {text}")

    def preflighted(self, e: dict) -> None:
        """The longest batch ran once before training: the memory it took, on the gauge and in the log."""
        from studio.ui.units import gb

        measured = e.get("measured_nvml_bytes") or e.get("measured_reserved_bytes") or e.get("measured_allocated_bytes")
        batch = f"the longest batch ({count(e.get('tokens') or 0, 'token')})"
        if measured:
            self.gauge.set_values(measured=measured, peak=measured, planned=e.get("planned_bytes"))
            self.note(f"preflight: {batch} took {gb(measured, 2)} of GPU memory (planned {gb(e.get('planned_bytes'), 2)}).")
        else:
            self.note(f"preflight: {batch} ran.")
