"""The Runs page's comparison: two or more runs side by side — one curve of theirs overlaid (training
loss, eval loss or a score, one colour per run), the recipe settings that differ, and their best figures.

Everything shown comes from the core's Comparison (runs.compare_runs, read in the background); the only
arithmetic here is picking a score's best checkpoint, and a figure's best run, by the direction it is read in
(evaluation.metrics.MEASURES: lower or higher is better).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QColor, QFont, QIcon, QPalette, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSizePolicy,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.core import runs
from studio.core.evaluation.metrics import HIGHER, LOWER, MEASURES, best_point, measure
from studio.core.recipe.config import SECTIONS
from studio.core.recipe.fields import spec_of
from studio.core.wording import count
from studio.ui.tasks import start_task
from studio.ui.widgets.loss_plot import StepAxis, paint_plots, smooth
from studio.ui.widgets.text import help_label, set_state_style

# one colour per run, in the order they are compared: Tableau 10, its yellow last (faint on white)
COLOURS = ("#4e79a7", "#f28e2b", "#e15759", "#59a14f", "#b07aa1", "#76b7b2", "#9c755f", "#ff9da7", "#bab0ac", "#edc948")
ARROW = {LOWER: "↓", HIGHER: "↑"}
LEGEND_COLUMNS = 3  # run names side by side in the legend above the plot
VALUE_ROLE = Qt.ItemDataRole.UserRole  # a cell's value as the Comparison holds it (a setting's key in the first column)

@dataclass(frozen=True)
class CurveKind:
    key: str  # "loss", "eval_loss" or "score:<name>"
    words: str
    direction: str  # LOWER or HIGHER
    about: str  # what it is, for tooltips

    def points(self, run) -> list[tuple[int, float]]:
        """This curve of a runs.ComparedRun."""
        if self.key == "loss":
            return run.losses
        if self.key == "eval_loss":
            return run.eval_losses
        return run.scores.get(self.key.removeprefix("score:"), [])

    @property
    def label(self) -> str:
        return f"{self.words} — {self.direction}"


def score_kind(name: str) -> CurveKind:
    m = measure(name)
    return CurveKind(f"score:{name}", m.words, m.direction, m.about)


def curve_kinds(comparison) -> list[CurveKind]:
    """The training and eval loss, then each score any of the runs measured: the known ones in MEASURES' order
    (the golden-question score first), then the others in the order first met."""
    met = dict.fromkeys(name for run in comparison.runs for name in run.scores)
    names = [name for name in MEASURES if name in met] + [name for name in met if name not in MEASURES]
    return [CurveKind("loss", "Training loss", LOWER, "The loss of each training step (faint), smoothed (strong)."),
            CurveKind("eval_loss", "Eval loss", LOWER, "The loss on rows held out of training, at each measurement."),
            *(score_kind(name) for name in names)]


@dataclass(frozen=True)
class Figure:
    """A row of the best-figures table: each run's (value, step where it was measured, or None)."""

    title: str
    about: str
    direction: str  # LOWER or HIGHER
    values: list[tuple[object, int | None]]


def figures(comparison) -> list[Figure]:
    compared = comparison.runs
    rows = [Figure("Final training loss", "The loss of the last training step.", LOWER, [(r.final_loss, None) for r in compared]),
            Figure("Eval loss", "The lowest loss on the held-out rows, and (in brackets) the step where it was measured.",
                   LOWER, [(r.best_eval_loss, r.best_eval_step) for r in compared])]
    for kind in curve_kinds(comparison)[2:]:
        best = [best_point(kind.points(r), kind.direction) for r in compared]
        rows.append(Figure(kind.words, f"{kind.about} The best checkpoint's, and (in brackets) its step.", kind.direction,
                           [(b[1], b[0]) if b else (None, None) for b in best]))
    return rows


def setting_words(key: str) -> tuple[str, str]:
    """A "section.field" setting as the window names it (its label where the recipe gives one, else the key),
    and its help with the flag that sets it."""
    section, _, name = key.partition(".")
    try:
        meta = spec_of(SECTIONS[section], name).metadata
    except KeyError:
        return key, key
    label = meta.get("label")
    return (label[0].upper() + label[1:] if label else key), f"{key} ({meta['flag']}): {meta['help']}"


def setting_text(value) -> str:
    """A setting's value as run.toml writes it; "not set" where it leaves it out."""
    if value is None:
        return "not set"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(setting_text(v) for v in value) or "(none)"
    if isinstance(value, dict):
        return ", ".join(f"{k} = {setting_text(v)}" for k, v in value.items()) or "(none)"
    return str(value)


def figure_text(value, step: int | None) -> str:
    if value is None:
        return "–"
    text = f"{value:.4f}" if isinstance(value, float) else str(value)
    return f"{text} ({step})" if step is not None else text


def swatch(colour: str) -> QIcon:
    pixmap = QPixmap(12, 12)
    pixmap.fill(QColor(colour))
    return QIcon(pixmap)


def colour_of(index: int) -> str:
    return COLOURS[index % len(COLOURS)]


class CompareView(QWidget):
    """Runs side by side: `compare(run_dirs)` reads them in the background and shows them."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.comparison = None  # the runs.Comparison shown
        self.kinds: list[CurveKind] = []
        self.curves: list[pg.PlotDataItem] = []  # each run's curve of its points (the loss: the faint one), in the runs' order
        self._asked: list[Path] | None = None
        v = QVBoxLayout(self)
        v.setContentsMargins(0, 4, 0, 0)
        v.addLayout(self._build_controls())
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.setChildrenCollapsible(False)
        split.addWidget(self._build_plot(split))
        split.addWidget(self._build_tables(split))
        split.setStretchFactor(0, 11)
        split.setStretchFactor(1, 9)
        split.setSizes([5500, 4500])  # the plot the wider (the tables' columns would take all they can)
        v.addWidget(split, 1)
        self._apply_palette()

    # ---- building ----

    def _build_controls(self) -> QHBoxLayout:
        row = QHBoxLayout()
        label = QLabel("Cur&ve:", self)
        self.curve_choice = QComboBox(self)
        self.curve_choice.setToolTip("Which curve of the runs to overlay: the training loss, the eval loss, or a score "
                                     "measured on your golden questions (each says whether lower or higher is better).")
        self.curve_choice.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.curve_choice.currentIndexChanged.connect(self._draw)
        label.setBuddy(self.curve_choice)
        label.setToolTip(self.curve_choice.toolTip())
        self.status = help_label("", self)
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        row.addWidget(label)
        row.addWidget(self.curve_choice)
        row.addWidget(self.status, 1)
        return row

    def _build_plot(self, parent) -> pg.GraphicsLayoutWidget:
        """The legend (the runs' names) in a row above the curves, as on LossPlot, so it never hides one."""
        self.graph = pg.GraphicsLayoutWidget(parent)
        self.graph.setAccessibleName("Compared curves")
        self.graph.setToolTip("The chosen curve of each run, one colour per run (the same colours head the tables). "
                              "Scroll to zoom, drag to pan, right-click for options.")
        self.legend = pg.LegendItem(colCount=LEGEND_COLUMNS, labelTextSize="9pt", horSpacing=14)
        self.legend.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Maximum)
        self.graph.addItem(self.legend, row=0, col=0)
        self.plot: pg.PlotItem = self.graph.addPlot(row=1, col=0, axisItems={"bottom": StepAxis("bottom")})
        self.plot.setLabel("bottom", "step")
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        for name in ("left", "bottom"):
            self.plot.getAxis(name).setStyle(maxTickLevel=0, maxTextLevel=0)
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        self.placeholder = pg.LabelItem("", size="10pt")
        self.placeholder.setParentItem(self.plot.vb)
        self.placeholder.anchor(itemPos=(0.5, 0.5), parentPos=(0.5, 0.5))
        return self.graph

    def _build_tables(self, parent) -> QWidget:
        box = QWidget(parent)
        v = QVBoxLayout(box)
        v.setContentsMargins(0, 0, 0, 0)
        self.differences_title = QLabel("Settings that differ", box)
        self.differences = _table(box, "The recipe settings whose values differ between the runs (every other setting "
                                       "is the same in all of them). Hover a setting for what it does.")
        self.figures_title = QLabel("Best figures (the step where each was measured)", box)
        self.figures = _table(box, "Each run's final training loss, its best eval loss and the best of each score, with "
                                   "(in brackets) the step where it was measured; the best run of each row in bold.")
        for title in (self.differences_title, self.figures_title):
            font = QFont(title.font())
            font.setBold(True)
            title.setFont(font)
        self.caption = help_label("", box)  # how to read the chosen curve
        for widget in (self.differences_title, self.differences, self.figures_title, self.figures, self.caption):
            v.addWidget(widget)
        v.addStretch(1)  # the tables as tall as their rows, the room left below them
        return box

    # ---- the runs ----

    def compare(self, run_dirs: list[Path]) -> None:
        """Read the runs in the background; a StudioError (a run gone, not a run) is said on the page."""
        asked = [Path(d) for d in run_dirs]
        self._asked = asked
        self._say(f"Reading {count(len(asked), 'run')}…", "")

        def failed(message: str, advice: str) -> None:
            if self._asked == asked:
                self.show_comparison(None)
                self._say(f"{message} {advice}", "bad")

        start_task("compare runs", lambda _s: runs.compare_runs(asked),
                   on_done=lambda comparison: self._read(asked, comparison), on_failed=failed)

    def _read(self, asked: list[Path], comparison) -> None:
        if self._asked == asked:  # not another choice of runs since
            self.show_comparison(comparison)

    def show_comparison(self, comparison) -> None:
        self.comparison = comparison
        chosen = self.curve_choice.currentData()
        self.kinds = curve_kinds(comparison) if comparison else []
        self.curve_choice.blockSignals(True)
        self.curve_choice.clear()
        for kind in self.kinds:
            self.curve_choice.addItem(kind.label, kind.key)
            self.curve_choice.setItemData(self.curve_choice.count() - 1, kind.about, Qt.ItemDataRole.ToolTipRole)
        self.curve_choice.setCurrentIndex(max(0, self.curve_choice.findData(chosen)))
        self.curve_choice.blockSignals(False)
        self._fill_differences()
        self._fill_figures()
        self._draw()
        if comparison is not None:
            differ = len(comparison.differences)
            self._say((f"{count(differ, 'setting')} of their recipes {'differs' if differ == 1 else 'differ'}"
                       if differ else "Their recipes are the same") + "; the best run of each figure is in bold.", "")

    def _say(self, text: str, state: str) -> None:
        self.status.setText(text)
        set_state_style(self.status, state)

    def kind(self) -> CurveKind | None:
        index = self.curve_choice.currentIndex()
        return self.kinds[index] if 0 <= index < len(self.kinds) else None

    # ---- the plot ----

    def _draw(self) -> None:
        self.plot.clear()
        self.legend.clear()
        self.curves = []
        kind = self.kind()
        if kind is None or self.comparison is None:
            self.placeholder.setText("")
            self.caption.setText("")
            return
        self.caption.setText(f"The plot: {kind.words[0].lower()}{kind.words[1:]}, {kind.direction}. {kind.about}")
        for index, run in enumerate(self.comparison.runs):
            self.curves.append(self._curve(run.name, kind, kind.points(run), colour_of(index)))
        lines = -(-len(self.curves) // LEGEND_COLUMNS)
        self.legend.setMaximumHeight(22 * lines + 6)
        self.legend.setMinimumHeight(22 * lines + 6)
        self._apply_palette()
        self.plot.setLabel("left", f"{kind.words} {ARROW[kind.direction]}")
        self.plot.enableAutoRange()
        empty = not any(kind.points(run) for run in self.comparison.runs)
        self.placeholder.setText(f"None of these runs has a {kind.words[0].lower()}{kind.words[1:]} curve." if empty else "")

    def _curve(self, name: str, kind: CurveKind, points, colour: str) -> pg.PlotDataItem:
        """One run's curve; the training loss is noisy step by step, so it is drawn faint with its smoothed line strong."""
        x = np.asarray([s for s, _ in points], dtype=float)
        y = np.asarray([v for _, v in points], dtype=float)
        if kind.key != "loss":
            curve = self.plot.plot(x, y, pen=pg.mkPen(colour, width=2), symbol="o", symbolSize=6, symbolBrush=colour,
                                   symbolPen=None)
            self.legend.addItem(curve, name)
            return curve
        faint = QColor(colour)
        faint.setAlpha(90)
        raw = self.plot.plot(x, y, pen=pg.mkPen(faint, width=1))
        raw.setDownsampling(auto=True, method="peak")
        raw.setClipToView(True)
        self.legend.addItem(self.plot.plot(x, smooth(y), pen=pg.mkPen(colour, width=2.5)), name)
        return raw

    # ---- the tables ----

    def _run_columns(self, table: QTableWidget, first: str) -> None:
        compared = self.comparison.runs if self.comparison else []
        table.setColumnCount(1 + len(compared))
        table.setHorizontalHeaderItem(0, QTableWidgetItem(first))
        for c, run in enumerate(compared, start=1):
            header = QTableWidgetItem(swatch(colour_of(c - 1)), run.name)
            header.setToolTip(f"{run.name} ({run.status})\n{run.path}")
            table.setHorizontalHeaderItem(c, header)
        header = table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        for c in range(1, table.columnCount()):
            header.setSectionResizeMode(c, QHeaderView.ResizeMode.Stretch)

    def _fill_differences(self) -> None:
        table = self.differences
        differences = self.comparison.differences if self.comparison else {}
        self._run_columns(table, "Setting")
        table.setRowCount(len(differences))
        for r, (key, values) in enumerate(differences.items()):
            words, about = setting_words(key)
            first = QTableWidgetItem(words)
            first.setData(VALUE_ROLE, key)
            first.setToolTip(about)
            table.setItem(r, 0, first)
            for c, value in enumerate(values, start=1):
                cell = QTableWidgetItem(setting_text(value))
                cell.setData(VALUE_ROLE, value)
                cell.setToolTip(f"{key} = {setting_text(value)}")
                table.setItem(r, c, cell)
        _fit_height(table)
        same = self.comparison is not None and not differences
        self.differences_title.setText("Settings that differ" + (": none, the runs share one recipe" if same else ""))

    def _fill_figures(self) -> None:
        table = self.figures
        rows = figures(self.comparison) if self.comparison else []
        self._run_columns(table, "Figure")
        table.setRowCount(len(rows))
        for r, figure in enumerate(rows):
            first = QTableWidgetItem(f"{figure.title} {ARROW[figure.direction]}")
            first.setToolTip(f"{figure.about} ({figure.direction.capitalize()}.)")
            table.setItem(r, 0, first)
            best = _best_column(figure)
            for c, (value, step) in enumerate(figure.values, start=1):
                cell = QTableWidgetItem(figure_text(value, step))
                cell.setData(VALUE_ROLE, (value, step))
                cell.setToolTip(f"{figure.title}: {cell.text()}")
                if c - 1 == best:
                    font = QFont(cell.font())
                    font.setBold(True)
                    cell.setFont(font)
                    cell.setToolTip(f"{cell.toolTip()}, the best of these runs ({figure.direction}).")
                table.setItem(r, c, cell)
        _fit_height(table)

    # ---- light and dark ----

    def changeEvent(self, event) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_palette()
        super().changeEvent(event)

    def _apply_palette(self) -> None:
        pal = self.palette()
        text = paint_plots(self, self.graph, [self.plot])
        self.legend.setLabelTextColor(text)
        self.placeholder.setText(self.placeholder.text, color=pal.color(QPalette.ColorRole.PlaceholderText).name())


def _best_column(figure: Figure) -> int | None:
    """Which run is best on a figure: only where the runs' values differ."""
    numbers = [(value, i) for i, (value, _) in enumerate(figure.values) if isinstance(value, (int, float))]
    if len({value for value, _ in numbers}) < 2:
        return None
    pick = min if figure.direction == LOWER else max
    return pick(numbers, key=lambda pair: pair[0])[1]


def _fit_height(table: QTableWidget) -> None:
    """No taller than its rows (with scrolling where the room is less)."""
    rows = table.verticalHeader().length()
    table.setMaximumHeight(table.horizontalHeader().sizeHint().height() + rows + 2 * table.frameWidth() + 2)


def _table(parent, tooltip: str) -> QTableWidget:
    table = QTableWidget(0, 1, parent)
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setAlternatingRowColors(True)
    table.setWordWrap(False)
    # as tall as its rows where there is room (the room left goes below the tables), scrolling where there is not
    table.setSizeAdjustPolicy(QAbstractItemView.SizeAdjustPolicy.AdjustToContents)
    table.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Maximum)
    table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
    table.horizontalHeader().setTextElideMode(Qt.TextElideMode.ElideMiddle)
    table.setToolTip(tooltip)
    return table
