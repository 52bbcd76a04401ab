"""Runs: every run in the runs folder, and any one of them opened from its folder alone — its recipe,
curves and sample answers — to resume it, try and export it, or train again with its recipe; two or more
selected, compared side by side (runs_compare.CompareView in place of the one run's tabs)."""

from __future__ import annotations

import datetime as dt
import html
import math
from pathlib import Path

from PySide6.QtCore import QItemSelection, QItemSelectionModel, Qt, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from studio.core import runs
from studio.core.errors import StudioError
from studio.core.wording import count
from studio.ui.open_path import open_or_say_where, path_note
from studio.ui.pages.base import Page
from studio.ui.pages.runs_compare import CompareView
from studio.ui.pages.scoreboard_view import ScoreboardView
from studio.ui.tasks import start_task
from studio.ui.units import gb
from studio.ui.widgets.loss_plot import LossPlot
from studio.ui.widgets.text import help_label, set_state_style

COLUMNS = ("Run", "Status", "Steps", "Loss", "Eval loss", "Model", "Started", "Size")
PATH_ROLE = Qt.ItemDataRole.UserRole
# The sorted column's arrow, drawn in its title: Qt's own indicator points up for "newest first" in
# some styles (it maps descending order to SortUp), which reads as the opposite.
ARROWS = {Qt.SortOrder.AscendingOrder: "▲", Qt.SortOrder.DescendingOrder: "▼"}


class _Cell(QTableWidgetItem):
    """A cell that sorts by its value (a time, a number), not by its text ("12 MB" before "6 MB")."""

    def __init__(self, text: str, key) -> None:
        super().__init__(text)
        self.key = key

    def __lt__(self, other) -> bool:
        return self.key < other.key


def _cells(s, newness: int) -> list[_Cell]:
    """One run's row. `newness`: its place in the list, newest highest (a run that never started has
    no start time; the list placed it by its folder's age)."""
    started = dt.datetime.fromtimestamp(s.started).strftime("%Y-%m-%d %H:%M") if s.started else "–"
    steps = f"{s.step}/{s.total_steps}" if s.total_steps else f"{s.step}"
    missing = math.inf  # no loss yet: after every number
    cells = [_Cell(s.name, s.name), _Cell(f"⚠ {s.status}" if s.problem else s.status, s.status), _Cell(steps, s.step),
             _Cell(f"{s.final_loss:.4f}" if s.final_loss is not None else "–", s.final_loss if s.final_loss is not None else missing),
             _Cell(f"{s.eval_loss:.4f}" if s.eval_loss is not None else "–", s.eval_loss if s.eval_loss is not None else missing),
             _Cell(s.model, s.model), _Cell(started, newness), _Cell(gb(s.size_bytes), s.size_bytes)]
    for c, cell in enumerate(cells):
        cell.setData(PATH_ROLE, str(s.path))
        if s.problem:
            cell.setToolTip(s.problem)
        elif s.error and c == 1:
            cell.setToolTip(f"{s.error.get('message', '')}\n{s.error.get('advice', '')}")
        elif c in (0, COLUMNS.index("Model")):
            cell.setToolTip(cell.text())
    return cells


class RunsPage(Page):
    title = "Runs"
    intro = ("Every run keeps its recipe, events, checkpoints and adapter in its own folder; open one to see it again, "
             "or select several to compare them.")
    resume_requested = Signal(object)  # run folder
    export_requested = Signal(object, object)  # run folder, checkpoint step: the Scores tab's "Export this checkpoint"

    def __init__(self, state, parent=None):
        super().__init__(state, parent)
        self.summaries: list = []
        self.opened: Path | None = None
        self._opening: Path | None = None
        self.body.addLayout(self._build_toolbar())
        split = QSplitter(Qt.Orientation.Vertical, self)
        split.setChildrenCollapsible(False)
        split.addWidget(self._build_table(split))
        split.addWidget(self._build_detail(split))
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        self.body.addWidget(split, 1)
        state.settings_changed.connect(self.refresh)

    def _build_toolbar(self) -> QHBoxLayout:
        """The runs folder, Refresh, and opening a run folder from anywhere."""
        row = QHBoxLayout()
        self.folder_label = help_label("", self)
        row.addWidget(self.folder_label, 1)
        self.refresh_button = QPushButton("&Refresh", self)
        self.refresh_button.setToolTip("Read the runs folder again.")
        self.refresh_button.clicked.connect(self.refresh)
        row.addWidget(self.refresh_button)
        self.open_other_button = QPushButton("Open a run folder…", self)
        self.open_other_button.setToolTip("Open a run folder from anywhere (e.g. copied from another computer).")
        self.open_other_button.clicked.connect(self._open_other)
        row.addWidget(self.open_other_button)
        return row

    def _build_table(self, parent) -> QTableWidget:
        """The runs, one row each, sortable by any column."""
        self.table = QTableWidget(0, len(COLUMNS), parent)
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSortingEnabled(True)
        self.table.setAlternatingRowColors(True)
        self.table.setToolTip("Your runs, newest first. Select one to see its recipe, curves and samples; select two or "
                              "more (Ctrl-click, Shift-click) to compare them.")
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        for column in ("Run", "Model"):  # the long ones share the room left, shortened with "…" (full text as tooltip)
            header.setSectionResizeMode(COLUMNS.index(column), QHeaderView.ResizeMode.Stretch)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        header.setSortIndicatorShown(False)
        header.sortIndicatorChanged.connect(self._show_sort_arrow)
        self.table.itemSelectionChanged.connect(self._selected)
        return self.table

    def _build_detail(self, parent) -> QWidget:
        """The selected run: what can be done with it, and its curves, samples and recipe; or the selected runs compared."""
        detail = QWidget(parent)
        dv = QVBoxLayout(detail)
        dv.setContentsMargins(0, 4, 0, 0)
        dv.addLayout(self._build_run_buttons(detail))
        self.folder_note = path_note(detail)  # where the run is, when nothing could open it
        dv.addWidget(self.folder_note)
        self.detail_stack = QStackedWidget(detail)
        self.detail_stack.addWidget(self._build_tabs(self.detail_stack))
        self.compare_view = CompareView(self.detail_stack)
        self.detail_stack.addWidget(self.compare_view)
        dv.addWidget(self.detail_stack, 1)
        return detail

    def _build_run_buttons(self, detail: QWidget) -> QHBoxLayout:
        buttons = QHBoxLayout()
        self.title_label = help_label("Select a run above.", detail)
        self.title_label.setTextFormat(Qt.TextFormat.RichText)
        self.title_label.setOpenExternalLinks(False)
        self.title_label.linkActivated.connect(self.compare_selected)
        buttons.addWidget(self.title_label, 1)
        self.compare_button = QPushButton("&Compare runs", detail)
        self.compare_button.setToolTip("Select two or more runs above (Ctrl-click, Shift-click), then compare them: their "
                                       "curves overlaid, the recipe settings that differ and their best figures.")
        self.compare_button.setEnabled(False)
        self.compare_button.clicked.connect(self.compare_selected)
        buttons.addWidget(self.compare_button)
        self.resume_button = QPushButton("Res&ume", detail)
        self.resume_button.setToolTip("Continue this run from its last checkpoint (on the Train page).")
        self.resume_button.clicked.connect(lambda: self.resume_requested.emit(self.opened))
        self.try_button = QPushButton("&Try and export", detail)
        self.try_button.setToolTip("Try this run's adapter and export it.")
        self.try_button.clicked.connect(self._try)
        self.recipe_button = QPushButton("Train again with this recipe", detail)
        self.recipe_button.setToolTip("Load this run's settings (model, data, adapter, training) into the pages, "
                                      "to change and start again.")
        self.recipe_button.clicked.connect(self._use_recipe)
        self.folder_button = QPushButton("Open folder", detail)
        self.folder_button.setToolTip("Show the run folder in your file manager.")
        self.folder_button.clicked.connect(self._open_folder)
        for b in (self.resume_button, self.try_button, self.recipe_button, self.folder_button):
            b.setEnabled(False)
            buttons.addWidget(b)
        return buttons

    def _build_tabs(self, detail: QWidget) -> QTabWidget:
        self.tabs = QTabWidget(detail)
        self.tabs.setToolTip("The selected run, read from its folder.")
        self.plot = LossPlot(self.tabs, title="Loss")
        self.tabs.addTab(self.plot, "Curves")
        self.samples = QTextBrowser(self.tabs)
        self.samples.setToolTip("The sample answers the run wrote while training.")
        self.tabs.addTab(self.samples, "Samples")
        self.scoreboard = ScoreboardView(self.tabs)
        self.scoreboard.export_requested.connect(self.export_requested)
        self.tabs.addTab(self.scoreboard, "Scores")
        self.recipe = QPlainTextEdit(self.tabs)
        self.recipe.setReadOnly(True)
        self.recipe.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.recipe.setToolTip("The run's recipe (run.toml): `studio train --recipe run.toml` runs it again.")
        self.tabs.addTab(self.recipe, "Recipe")
        return self.tabs

    def on_shown(self) -> None:
        self.refresh()

    # ---- the list ----

    def refresh(self) -> None:
        root = self.state.runs_folder()
        self.folder_label.setText(f"Runs folder: {root} (change it in Settings)")

        def work(_state):
            return runs.list_runs(root)

        start_task("list runs", work, on_done=self._fill)

    def _fill(self, summaries) -> None:
        self.summaries = list(summaries)
        selected, several = self.opened, self.selected_runs()
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(self.summaries))
        for r, s in enumerate(self.summaries):
            for c, item in enumerate(_cells(s, newness=len(self.summaries) - r)):
                self.table.setItem(r, c, item)
        self.table.setSortingEnabled(True)
        self.table.horizontalHeader().setSortIndicatorShown(False)  # turned on again with sorting: the title has the arrow
        self.table.sortItems(COLUMNS.index("Started"), Qt.SortOrder.DescendingOrder)  # newest first
        if len(several) > 1:
            self._select_rows(several)
        elif selected is not None:
            self.select(selected)
        self.summary_changed.emit()

    def _show_sort_arrow(self, column: int, order: Qt.SortOrder) -> None:
        for c, title in enumerate(COLUMNS):
            item = self.table.horizontalHeaderItem(c)
            item.setText(f"{title} {ARROWS[order]}" if c == column else title)

    def select(self, run_dir: Path) -> None:
        for r in range(self.table.rowCount()):
            if self.table.item(r, 0).data(PATH_ROLE) == str(run_dir):
                self.table.selectRow(r)
                return
        self.open_run(run_dir)

    def selected_runs(self) -> list[Path]:
        """The selected runs' folders, top to bottom as the table shows them."""
        rows = sorted(index.row() for index in self.table.selectionModel().selectedRows())
        items = [self.table.item(r, 0) for r in rows]
        return [Path(item.data(PATH_ROLE)) for item in items if item is not None]  # None: a row being filled

    def _select_rows(self, run_dirs: list[Path]) -> None:
        wanted = {str(d) for d in run_dirs}
        model, selection = self.table.model(), QItemSelection()
        for r in range(self.table.rowCount()):
            if self.table.item(r, 0).data(PATH_ROLE) in wanted:
                selection.select(model.index(r, 0), model.index(r, len(COLUMNS) - 1))
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        self.table.selectionModel().select(selection, flags)

    def _selected(self) -> None:
        chosen = self.selected_runs()
        several = len(chosen) > 1
        self.compare_button.setEnabled(several)
        self.compare_button.setText(f"&Compare {len(chosen)} runs" if several else "&Compare runs")
        if len(chosen) == 1:
            self.open_run(chosen[0])
        elif several:
            self._several(chosen)

    def _several(self, chosen: list[Path]) -> None:
        """Two or more runs selected: the one-run buttons rest, and the comparison is offered (or follows, when shown)."""
        self._opening = None  # a run still being read is no longer wanted
        self.folder_note.setVisible(False)
        for b in (self.resume_button, self.try_button, self.recipe_button, self.folder_button):
            b.setEnabled(False)
        set_state_style(self.title_label, "")
        if self.detail_stack.currentWidget() is self.compare_view:
            self.compare_selected()
        else:
            below = f" — below, still {html.escape(self.opened.name)} alone" if self.opened is not None else ""
            self.title_label.setText(f"<b>{len(chosen)} runs selected</b>: <a href='compare'>Compare them</a>{below}.")

    def compare_selected(self) -> None:
        """The selected runs side by side, in place of the one run's tabs."""
        chosen = self.selected_runs()
        if len(chosen) < 2:
            return
        self.detail_stack.setCurrentWidget(self.compare_view)
        self.title_label.setText(f"<b>{len(chosen)} runs compared</b>: select one of them to open it alone.")
        self.compare_view.compare(chosen)

    def _open_other(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a run folder (it holds run.toml)", str(self.state.runs_folder()))
        if folder:
            self.open_run(Path(folder))

    # ---- one run ----

    def open_run(self, run_dir: Path) -> None:
        """Show a run from its folder alone (read in the background)."""
        from studio.ui.run_view import read_run_view

        run_dir = Path(run_dir)
        self.detail_stack.setCurrentWidget(self.tabs)
        self.title_label.setText(f"Reading {run_dir.name}…")
        self._opening = run_dir

        def failed(message: str, advice: str) -> None:
            if self._opening == run_dir:
                listed = next((s for s in self.summaries if s.path == run_dir and s.problem), None)
                self.title_label.setText(f"<b>{html.escape(run_dir.name)}</b>: {html.escape(listed.problem)}" if listed
                                         else f"{run_dir} is not a run folder: {message} {advice}")
                set_state_style(self.title_label, "bad")

        start_task("open run", lambda _s: read_run_view(run_dir), on_done=self._show_run, on_failed=failed)

    def _show_run(self, view) -> None:
        from studio.ui.run_view import sample_html

        if view.run_dir != self._opening:
            return  # another run was chosen meanwhile
        summary = view.summary
        self.opened = view.run_dir
        self.folder_note.setVisible(False)
        series = view.series
        self.plot.set_history(series["loss"], series["eval_loss"], series["lr"], view.golden_scores, rewards=series)
        self.recipe.setPlainText(view.recipe_text)
        if self.scoreboard.run_dir != view.run_dir or not self.scoreboard.scoring():
            self.scoreboard.show_run(view.run_dir)  # read again: a run scored from the command line shows its scores
        blocks = [sample_html(e) for e in view.samples]
        self.samples.setHtml("".join(reversed(blocks)) or "<p>This run wrote no sample answers.</p>")
        error = f" — {summary.error.get('message', '')}" if summary.error else ""
        error += f" — {html.escape(summary.problem)}" if summary.problem else ""
        total = f"/{summary.total_steps}" if summary.total_steps else ""
        self.title_label.setText(f"<b>{summary.name}</b>: {summary.status}, step {summary.step}{total}{error}")
        set_state_style(self.title_label, "bad" if summary.status == "failed" or summary.problem else "")
        resumable = summary.status not in ("running", "completed") and runs.resume_point(view.run_dir) is not None
        self.resume_button.setEnabled(resumable)
        self.try_button.setEnabled(summary.adapter is not None)
        self.recipe_button.setEnabled(True)
        self.folder_button.setEnabled(True)

    def _open_folder(self) -> None:
        if self.opened is not None:
            open_or_say_where(self.opened, self.folder_note)

    def _try(self) -> None:
        if self.opened is not None:
            self.state.select_run(self.opened)
            self.go_to.emit("try")

    def _use_recipe(self) -> None:
        if self.opened is None:
            return
        try:
            config = runs.load_recipe(self.opened)
        except StudioError as exc:
            self.title_label.setText(f"{exc.message} {exc.advice}")
            return
        config.output.runs_dir = self.state.settings.runs_dir
        self.state.set_config(config)
        self.go_to.emit("adapter")

    def summary(self) -> str:
        return count(len(self.summaries), "run") if self.summaries else ""
