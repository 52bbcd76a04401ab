"""The token-length histogram of a dataset, with the sequence-length cut-off drawn on it.

The cut-off line can be dragged: it sets the recipe's sequence length, and the share of rows it
would truncate follows at once.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

from studio.ui.widgets.loss_plot import paint_plots

BARS = "#4e79a7"
CUT = "#d64541"


class TokenHistogram(QWidget):
    seq_len_dragged = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.view = pg.PlotWidget(self)
        self.view.setToolTip("How many rows have how many tokens. The red line is the sequence length: rows to its "
                             "right are cut. Drag the line to change the sequence length.")
        self.view.setAccessibleName("Token length histogram")
        self.plot = self.view.getPlotItem()
        self.plot.setLabel("bottom", "tokens per row")
        self.plot.setLabel("left", "rows")
        self.plot.showGrid(x=False, y=True, alpha=0.25)
        for name in ("left", "bottom"):
            self.plot.getAxis(name).setStyle(maxTickLevel=0, maxTextLevel=0)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.bars = pg.BarGraphItem(x=[], height=[], width=1, brush=BARS, pen=None)
        self.plot.addItem(self.bars)
        self.cut = pg.InfiniteLine(pos=0, angle=90, movable=True, pen=pg.mkPen(CUT, width=2.5),
                                   hoverPen=pg.mkPen(CUT, width=4), label="cut at {value:.0f}",
                                   labelOpts={"position": 0.92, "color": CUT, "movable": True, "anchors": [(1, 0), (1, 0)]})
        self.plot.addItem(self.cut)
        self.cut.sigPositionChangeFinished.connect(self._dragged)
        self.cut.sigPositionChanged.connect(self._place_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view)
        self.counts: list[int] = []
        self.edges: list[float] = []
        self._apply_palette()

    def set_lengths(self, lengths, seq_len: int, bins: int = 30) -> None:
        """Bins over the rows' own range, so short rows are not squeezed against a long sequence length."""
        if not len(lengths):
            self.set_histogram([], [], seq_len)
            return
        arr = np.asarray(lengths)
        lo, hi = int(arr.min()), int(arr.max()) + 1
        counts, edges = np.histogram(arr, bins=min(bins, max(1, hi - lo)), range=(lo, hi))
        self.set_histogram(counts.tolist(), edges.tolist(), seq_len)

    def set_histogram(self, counts: list[int], edges: list[float], seq_len: int) -> None:
        self.counts, self.edges = list(counts), list(edges)
        self.plot.getAxis("left").setStyle(showValues=bool(counts))  # no "0.2 rows" on an empty plot
        if counts:
            e = np.asarray(edges, dtype=float)
            centres = (e[:-1] + e[1:]) / 2
            widths = (e[1:] - e[:-1]) * 0.92
            self.bars.setOpts(x=centres, height=np.asarray(counts), width=widths)
            hi = max(e[-1], seq_len * 1.05)
            lo = min(e[0], seq_len * 0.95)
            self.plot.setXRange(lo, hi, padding=0.02)
            self.plot.setYRange(0, max(max(counts) * 1.15, 4), padding=0)  # whole rows on the axis, also for 1 or 2
        else:  # no data: no bars, and no axes left over from the last data's lengths
            self.bars.setOpts(x=[], height=[], width=1)
            self.plot.setXRange(0, seq_len * 1.25, padding=0.02)
            self.plot.setYRange(0, 1, padding=0)
        self.set_seq_len(seq_len)

    def set_chunked(self, chunked: bool) -> None:
        """Plain text is cut into sequence-length chunks that are all trained: the line marks chunks, not a cut."""
        self.cut.label.format = "chunks of {value:.0f}" if chunked else "cut at {value:.0f}"
        self.cut.label.valueChanged()
        self.view.setToolTip("How many rows have how many tokens. The red line is the sequence length: "
                             + ("longer documents are cut into chunks of that length, all trained." if chunked
                                else "rows to its right are cut.") + " Drag the line to change the sequence length.")

    def set_seq_len(self, seq_len: int) -> None:
        self.cut.setValue(seq_len)  # only a drag's end (sigPositionChangeFinished) writes back
        if self.edges:
            lo, hi = min(self.edges[0], seq_len * 0.95), max(self.edges[-1], seq_len * 1.05)
            self.plot.setXRange(lo, hi, padding=0.02)
        self._place_label()

    def _place_label(self) -> None:
        """"cut at N" on the side of the line with room: left of it, unless the line is in the left
        third of the plot (the label would be clipped at the axis)."""
        lo, hi = self.plot.viewRange()[0]
        left_side = self.cut.value() > lo + (hi - lo) / 3
        self.cut.label.anchors = [(1, 0), (1, 0)] if left_side else [(0, 0), (0, 0)]
        self.cut.label.updatePosition()

    def _dragged(self) -> None:
        value = int(round(self.cut.value() / 8) * 8) or 8
        self.seq_len_dragged.emit(max(16, value))

    def changeEvent(self, event) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_palette()
        super().changeEvent(event)

    def _apply_palette(self) -> None:
        paint_plots(self, self.view, [self.plot])
