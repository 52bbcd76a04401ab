"""The preference row of the live curves (DPO, ORPO runs), under the loss: the reward margin — how much
more the model favours each chosen answer than its rejected one — on the training batches and on the
held-out pairs, the chosen and the rejected rewards as thinner lines, and the preference accuracy (the
share of pairs whose chosen answer wins, 0 to 1) on its own axis at the right. `LossPlot` makes it
with the first reward and takes it away when cleared: a supervised run never shows one.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QSizePolicy

from studio.core.runs.history import EVAL_REWARD_SERIES, REWARD_SERIES
from studio.ui.widgets.loss_plot import StepAxis, major_ticks_only

REWARDS = REWARD_SERIES + EVAL_REWARD_SERIES  # what `step` and `eval` events of a preference run carry
MARGIN = "#e15759"
CHOSEN = "#59a14f"
REJECTED = "#9c755f"
ACCURACY = "#76b7b2"
# the series drawn: (colour, width, dashed, symbol, legend words, on the accuracy axis)
CURVES = {
    "reward_margin": (MARGIN, 2.0, False, None, "margin", False),
    "eval_reward_margin": (MARGIN, 2.0, True, "o", "held out", False),
    "reward_chosen": (CHOSEN, 1.0, False, None, "chosen", False),
    "reward_rejected": (REJECTED, 1.0, False, None, "rejected", False),
    "reward_accuracy": (ACCURACY, 1.5, False, None, "accuracy →", True),
    "eval_reward_accuracy": (ACCURACY, 1.5, True, "t", "held out →", True),
}
TOOLTIP = ("Preference tuning: the reward margin — how much more the model favours each chosen answer than its "
           "rejected one — on the training batches (solid) and on the held-out pairs (dashed, dots); it should climb "
           "above 0. Thin lines: the chosen and the rejected answers' rewards. Right axis: the preference accuracy, "
           "the share of pairs whose chosen answer wins (0 to 1; higher is better).")


class RewardRow:
    """Two rows of a `pg.GraphicsLayoutWidget` from `row` on: a legend, then the plot, its steps linked
    to `steps_of` (the loss plot)."""

    def __init__(self, view: pg.GraphicsLayoutWidget, row: int, steps_of: pg.PlotItem):
        self.view = view
        self.header = view.addLayout(row=row, col=0)
        self.header.setContentsMargins(0, 0, 0, 0)
        self.header.setMaximumHeight(36)
        # two lines of three: one line of six would widen the plot past a 1024-pixel window's Train page
        self.legend = pg.LegendItem(colCount=3, labelTextSize="8pt", horSpacing=8)
        self.legend.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Maximum)
        self.header.addItem(self.legend, 0, 0)
        self.plot: pg.PlotItem = view.addPlot(row=row + 1, col=0, axisItems={"bottom": StepAxis("bottom")})
        self.plot.setLabel("left", "margin ↑")
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        major_ticks_only(self.plot)
        self.plot.setXLink(steps_of)
        self.plot.setToolTip(TOOLTIP)
        self.zero = pg.InfiniteLine(angle=0, pos=0.0, pen=pg.mkPen(MARGIN, width=1, style=Qt.PenStyle.DotLine))
        self.plot.addItem(self.zero)
        self.accuracy_box = self._accuracy_axis()
        self.curves = {name: self._curve(name, *style) for name, style in CURVES.items()}
        view.ci.layout.setRowStretchFactor(row + 1, 2)

    def _accuracy_axis(self) -> pg.ViewBox:
        """A second view box over the plot, its y axis at the right from 0 to 1 (pyqtgraph's MultiplePlotAxes)."""
        box = pg.ViewBox(enableMouse=False)
        self.plot.showAxis("right")
        axis = self.plot.getAxis("right")
        axis.setLabel("accuracy ↑")
        axis.enableAutoSIPrefix(False)
        axis.setStyle(maxTickLevel=0, maxTextLevel=0)
        axis.setTicks([[(0.0, "0"), (0.5, "0.5"), (1.0, "1")]])  # three marks stay readable in a short row
        self.plot.scene().addItem(box)
        axis.linkToView(box)
        box.setXLink(self.plot)
        box.setYRange(0.0, 1.0, padding=0.05)
        box.enableAutoRange(axis=pg.ViewBox.YAxis, enable=False)

        def fit() -> None:
            box.setGeometry(self.plot.vb.sceneBoundingRect())
            box.linkedViewChanged(self.plot.vb, box.XAxis)

        self.plot.vb.sigResized.connect(fit)
        fit()
        return box

    def _curve(self, name, colour, width, dashed, symbol, words, on_accuracy) -> pg.PlotDataItem:
        pen = pg.mkPen(colour, width=width, style=Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine)
        marks = {"symbol": symbol, "symbolSize": 6, "symbolBrush": colour, "symbolPen": None} if symbol else {}
        curve = pg.PlotDataItem([], [], pen=pen, **marks)
        curve.setClipToView(True)
        curve.setDownsampling(auto=True, method="peak")
        (self.accuracy_box if on_accuracy else self.plot).addItem(curve)
        self.legend.addItem(curve, words)
        return curve

    def set_points(self, points: dict[str, dict[int, float]]) -> None:
        """Each drawn series' (step → value)."""
        for name, curve in self.curves.items():
            shown = sorted(points.get(name, {}).items())
            curve.setData([s for s, _ in shown], [v for _, v in shown])

    def paint(self, text) -> None:
        """The right axis and the legend in the text colour (paint_plots does the left and bottom axes)."""
        axis = self.plot.getAxis("right")
        axis.setPen(pg.mkPen(text))
        axis.setTextPen(pg.mkPen(text))
        for _sample, label in self.legend.items:
            label.setAttr("color", text.name())
            label.setText(label.text)

    def remove(self) -> None:
        self.plot.scene().removeItem(self.accuracy_box)
        self.view.removeItem(self.plot)
        self.view.removeItem(self.header)
