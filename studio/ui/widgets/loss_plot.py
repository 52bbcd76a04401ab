"""Live training curves (pyqtgraph): the loss (raw and smoothed) with the eval loss, the learning rate
below it, — when the run has golden questions — their score at each checkpoint (the base model at
step 0) in a third row that appears with the first score, and — for a preference run (DPO, ORPO) —
its rewards in a row that appears with the first reward (reward_plot.py), against steps.

As pyqtgraph's examples advise, each curve is created once and fed with `setData` from a timer
(only when new points arrived), with peak downsampling and clip-to-view, so a long run stays smooth.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QTimer
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QSizePolicy, QVBoxLayout, QWidget

from studio.core.evaluation.metrics import SCORE as SCORE_KEY  # the golden-question score `eval` events carry
from studio.core.runs.history import EVAL_REWARD_SERIES, REWARD_SERIES  # a preference run's rewards

LOSS = "#4e79a7"
SMOOTH = "#1f4e79"
EVAL = "#f28e2b"
LR = "#59a14f"
SCORE = "#b07aa1"
LEFT_AXIS, RIGHT_AXIS = 72, 52  # the axes' widths in pixels when a row has a right axis (a preference run's)


def smooth(values: np.ndarray, weight: float | None = None) -> np.ndarray:
    """TensorBoard's debiased exponential moving average; NaNs are skipped."""
    n = len(values)
    if n == 0:
        return values
    if weight is None:  # light smoothing for a short run, stronger for a long one
        weight = min(0.95, max(0.3, 1 - 5 / max(n, 8)))
    out = np.empty(n)
    acc, count = 0.0, 0
    for i, v in enumerate(values):
        if not math.isfinite(v):
            out[i] = np.nan
            continue
        acc = weight * acc + (1 - weight) * v
        count += 1
        out[i] = acc / (1 - weight**count)
    return out


class StepAxis(pg.AxisItem):
    """An axis of optimizer steps: whole numbers only (no 1.5 or 2.5 steps), however far it is zoomed in."""

    def tickValues(self, minVal, maxVal, size):
        levels = [(spacing, values) for spacing, values in super().tickValues(minVal, maxVal, size) if spacing >= 1]
        if levels:
            return levels
        return [(1, list(range(math.ceil(minVal), math.floor(maxVal) + 1)))]


def paint_plots(widget: QWidget, view: pg.GraphicsLayoutWidget, plots) -> QColor:
    """A plot area in the widget's palette (light or dark): the background, and each plot's axes in the
    text colour, which is returned for the labels."""
    pal = widget.palette()
    view.setBackground(pal.color(QPalette.ColorRole.Base))
    text = pal.color(QPalette.ColorRole.WindowText)
    for plot in plots:
        for name in ("left", "bottom"):
            axis = plot.getAxis(name)
            axis.setPen(pg.mkPen(text))
            axis.setTextPen(pg.mkPen(text))
    return text


def major_ticks_only(plot: pg.PlotItem) -> None:
    """Minor ticks and their grid lines cost paint time on every update and add little."""
    for name in ("left", "bottom"):
        plot.getAxis(name).setStyle(maxTickLevel=0, maxTextLevel=0)


class LossPlot(QWidget):
    def __init__(self, parent=None, *, show_lr: bool = True, title: str = "Training loss"):
        super().__init__(parent)
        self.title = title
        self.view = pg.GraphicsLayoutWidget(self)
        self.view.setToolTip("Training loss (light: each step; dark: smoothed), eval loss on held-out rows (orange), "
                             "and the learning rate below. Scroll to zoom, drag to pan, right-click for options.")
        self.view.setAccessibleName("Loss plot")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view)

        # the title and the legend share a row above the curves, so the legend never hides one
        top = self.view.addLayout(row=0, col=0)
        top.setContentsMargins(0, 0, 0, 0)
        top.setMaximumHeight(26)
        self.title_label = pg.LabelItem(title, size="11pt", justify="left")
        self.title_label.setMaximumHeight(26)
        self.legend = pg.LegendItem(colCount=3, labelTextSize="9pt", horSpacing=12)
        self.legend.setMaximumHeight(26)
        self.legend.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Maximum)  # its entries side by side, not spread out
        top.addItem(self.title_label, 0, 0)
        top.addItem(self.legend, 0, 1)
        top.layout.setColumnStretchFactor(0, 1)
        self.loss_plot: pg.PlotItem = self.view.addPlot(row=1, col=0, axisItems={"bottom": StepAxis("bottom")})
        self.loss_plot.setLabel("left", "loss")
        self.loss_plot.getAxis("left").enableAutoSIPrefix(False)  # a DPO loss under 1 read "(x0.001)" and 600
        self.loss_plot.showGrid(x=True, y=True, alpha=0.25)
        major_ticks_only(self.loss_plot)
        self.placeholder = pg.LabelItem("The curves appear with the first step.", size="10pt")
        self.placeholder.setParentItem(self.loss_plot.vb)  # centred on the plot area, whatever its range
        self.placeholder.anchor(itemPos=(0.5, 0.5), parentPos=(0.5, 0.5))
        self.raw_curve = self.loss_plot.plot([], [], name="loss", pen=pg.mkPen(QColor(LOSS).lighter(140), width=1))
        self.smooth_curve = self.loss_plot.plot([], [], name="smoothed", pen=pg.mkPen(SMOOTH, width=2.5))
        self.eval_curve = self.loss_plot.plot([], [], name="eval loss", pen=pg.mkPen(EVAL, width=2, style=pg.QtCore.Qt.PenStyle.DashLine),
                                              symbol="o", symbolSize=7, symbolBrush=EVAL, symbolPen=None)
        for curve, name in ((self.raw_curve, "loss"), (self.smooth_curve, "smoothed"), (self.eval_curve, "eval loss")):
            curve.setDownsampling(auto=True, method="peak")
            curve.setClipToView(True)
            self.legend.addItem(curve, name)
        self.lr_plot: pg.PlotItem | None = None
        self.lr_curve = None
        self.score_plot: pg.PlotItem | None = None  # made with the first golden-question score
        self.score_curve = self.base_line = None
        self.rewards = None  # a RewardRow (reward_plot.py), made with the first reward of a preference run
        if show_lr:
            self.lr_plot = self.view.addPlot(row=2, col=0, axisItems={"bottom": StepAxis("bottom")})
            self.lr_plot.setLabel("left", "learning rate")
            self.lr_plot.setLabel("bottom", "step")
            self.lr_plot.showGrid(x=True, y=True, alpha=0.25)
            major_ticks_only(self.lr_plot)
            self.lr_plot.setXLink(self.loss_plot)
            self.lr_plot.getAxis("left").enableAutoSIPrefix(False)
            self.lr_curve = self.lr_plot.plot([], [], pen=pg.mkPen(LR, width=2))
            self.lr_curve.setDownsampling(auto=True, method="peak")
            self.lr_curve.setClipToView(True)
            self.view.ci.layout.setRowStretchFactor(1, 3)
            self.view.ci.layout.setRowStretchFactor(2, 1)
        else:
            self.loss_plot.setLabel("bottom", "step")
        self.clear()
        self._timer = QTimer(self)
        self._timer.setInterval(200)
        self._timer.timeout.connect(self._redraw)
        self._timer.start()
        self._apply_palette()

    # ---- data in ----

    def clear(self) -> None:
        self._steps: list[int] = []
        self._loss: list[float] = []
        self._lr: list[float] = []
        self._eval: dict[int, float] = {}
        self._score: dict[int, float] = {}
        self._rewards: dict[str, dict[int, float]] = {name: {} for name in REWARD_SERIES + EVAL_REWARD_SERIES}
        if self.rewards is not None:  # the next run may be supervised: no empty reward row
            self.rewards.remove()
            self.rewards = None
            self._show_lr(True)
            self._arrange_rows()
        self._dirty = True
        self.placeholder.setVisible(True)
        self._redraw()

    def _forget_after(self, step: int) -> None:
        """A resumed run restarts at its checkpoint: later points of the earlier attempt go."""
        while self._steps and self._steps[-1] >= step:
            self._steps.pop()
            self._loss.pop()
            self._lr.pop()
        for points in (self._eval, self._score, *self._rewards.values()):
            for s in [s for s in points if s >= step and s > 0]:
                del points[s]

    def add_steps(self, events: list[dict]) -> None:
        for e in events:
            step = int(e["step"])
            if self._steps and step <= self._steps[-1]:
                self._forget_after(step)
            loss = e.get("loss")
            lr = e.get("lr")
            self._steps.append(step)
            self._loss.append(float(loss) if loss is not None else math.nan)
            self._lr.append(float(lr) if lr is not None else math.nan)
            self._keep_rewards(e, REWARD_SERIES)
        self._dirty = True

    def _keep_rewards(self, event: dict, names) -> None:
        for name in names:
            if event.get(name) is not None:
                self._rewards[name][int(event["step"])] = float(event[name])

    def add_eval(self, event: dict) -> None:
        """An eval loss, or a model scored on the golden questions (the base at step 0)."""
        if event.get("eval_loss") is not None:
            self._eval[int(event["step"])] = float(event["eval_loss"])
            self._dirty = True
        if event.get(SCORE_KEY) is not None:
            self._score[int(event["step"])] = float(event[SCORE_KEY])
            self._dirty = True
        self._keep_rewards(event, EVAL_REWARD_SERIES)
        self._dirty = True

    def set_history(self, loss: list[tuple[int, float]], eval_loss: list[tuple[int, float]] = (),
                    lr: list[tuple[int, float]] = (), scores: list[tuple[int, float]] = (),
                    rewards: dict[str, list[tuple[int, float]]] | None = None) -> None:
        """A whole run at once (a past run, opened from its folder); `scores`: its golden-question score;
        `rewards`: RunHistory.series (a preference run's rewards are taken from it)."""
        self.clear()
        lrs = dict(lr)
        self.add_steps([{"step": s, "loss": v, "lr": lrs.get(s)} for s, v in loss])
        for s, v in eval_loss:
            self._eval[int(s)] = float(v)
        for s, v in scores:
            self._score[int(s)] = float(v)
        for name, points in self._rewards.items():
            points.update((int(s), float(v)) for s, v in (rewards or {}).get(name, ()))
        self._redraw()

    # ---- what is shown ----

    def point_count(self) -> int:
        return len(self._steps)

    def losses(self) -> list[float]:
        return list(self._loss)

    def steps(self) -> list[int]:
        return list(self._steps)

    def eval_points(self) -> list[tuple[int, float]]:
        return sorted(self._eval.items())

    def score_points(self) -> list[tuple[int, float]]:
        return sorted(self._score.items())

    def reward_points(self, name: str) -> list[tuple[int, float]]:
        """A reward series ("reward_margin", "eval_reward_accuracy", …) as (step, value)."""
        return sorted(self._rewards[name].items())

    def _show_lr(self, shown: bool) -> None:
        """The learning-rate row in view, or folded away (its row takes no height)."""
        if self.lr_plot is None:
            return
        self.lr_plot.setVisible(shown)
        self.view.ci.layout.setRowMaximumHeight(2, 1e6 if shown else 0)

    def _arrange_rows(self) -> None:
        """The lowest row carries the steps' label. With the reward row (its accuracy axis at the right),
        every row gets axes of the same widths, so that a step is at the same x in each."""
        reward_plot = self.rewards.plot if self.rewards is not None else None
        rows = [p for p in (self.loss_plot, self.lr_plot, self.score_plot, reward_plot) if p is not None]
        shown = [p for p in rows if p.isVisible()]
        for plot in rows:
            plot.setLabel("bottom", "step" if plot is shown[-1] else "")
            plot.getAxis("left").setWidth(LEFT_AXIS if reward_plot else None)
            if plot is not reward_plot:
                plot.showAxis("right", reward_plot is not None)
                plot.getAxis("right").setStyle(showValues=False, tickLength=0)
                plot.getAxis("right").setPen(None)
            plot.getAxis("right").setWidth(RIGHT_AXIS)

    def _score_row(self) -> pg.PlotDataItem:
        """The golden-question score's plot, made when the first score arrives (most runs have none)."""
        if self.score_curve is None:
            plot = self.view.addPlot(row=3, col=0, axisItems={"bottom": StepAxis("bottom")})
            plot.setLabel("left", "score ↑")
            plot.getAxis("left").enableAutoSIPrefix(False)
            plot.showGrid(x=True, y=True, alpha=0.25)
            major_ticks_only(plot)
            plot.setXLink(self.loss_plot)
            plot.setToolTip("How well each checkpoint answers your golden questions (ROUGE-L against the answers you "
                            "expect, 0 to 1; higher is better). Step 0 and the dashed line: the base model.")
            self.score_plot = plot
            self.score_curve = plot.plot([], [], pen=pg.mkPen(SCORE, width=2), symbol="s", symbolSize=7,
                                         symbolBrush=SCORE, symbolPen=None)
            self.base_line = pg.InfiniteLine(angle=0, pen=pg.mkPen(SCORE, width=1, style=pg.QtCore.Qt.PenStyle.DashLine))
            plot.addItem(self.base_line)
            self.view.ci.layout.setRowStretchFactor(3, 1)
            self._arrange_rows()
            self._apply_palette()
        return self.score_curve

    def _reward_row(self):
        """A preference run's rewards, under the other rows (made with the first reward)."""
        if self.rewards is None:
            from studio.ui.widgets.reward_plot import RewardRow  # it builds on this module's axis

            self.rewards = RewardRow(self.view, 4, self.loss_plot)
            self._show_lr(False)  # a preference run's rewards tell more than its schedule, in the room there is
            self._arrange_rows()
            self._apply_palette()
        return self.rewards

    def _redraw(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        x = np.asarray(self._steps, dtype=float)
        y = np.asarray(self._loss, dtype=float)
        self.raw_curve.setData(x, y, connect="finite")
        self.smooth_curve.setData(x, smooth(y), connect="finite")
        ev = sorted(self._eval.items())
        self.eval_curve.setData([s for s, _ in ev], [v for _, v in ev])
        if self.lr_curve is not None:
            self.lr_curve.setData(x, np.asarray(self._lr, dtype=float), connect="finite")
        if self._score or self.score_curve is not None:
            scored = sorted(self._score.items())
            self._score_row().setData([s for s, _ in scored], [v for _, v in scored])
            self.base_line.setVisible(0 in self._score)
            self.base_line.setValue(self._score.get(0, 0.0))
        if any(self._rewards.values()):
            self._reward_row().set_points(self._rewards)
        if self._steps:
            self.placeholder.setVisible(False)

    # ---- light and dark ----

    def changeEvent(self, event) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_palette()
        super().changeEvent(event)

    def _apply_palette(self) -> None:
        pal = self.palette()
        text = paint_plots(self, self.view, [p for p in (self.loss_plot, self.lr_plot, self.score_plot,
                                                         self.rewards and self.rewards.plot) if p is not None])
        if self.rewards is not None:
            self.rewards.paint(text)
        dark = pal.color(QPalette.ColorRole.Base).lightness() < 128
        # the raw loss is the faint line and the smoothed one the strong line, on light and on dark
        self.raw_curve.setPen(pg.mkPen(QColor(LOSS).darker(130) if dark else QColor(LOSS).lighter(140), width=1))
        self.smooth_curve.setPen(pg.mkPen("#9cc3f0" if dark else SMOOTH, width=2.5))
        self.title_label.setText(self.title, color=text.name())
        self.placeholder.setText(self.placeholder.text, color=pal.color(QPalette.ColorRole.PlaceholderText).name())
        for _sample, label in self.legend.items:
            label.setAttr("color", text.name())
            label.setText(label.text)
