"""The data's problems as a sortable table (severity, line, field, message, fix) that can be exported as CSV.

Errors and warnings look different (a red or amber severity with the style's icon); a problem about the
whole data, not one line (e.g. how the model's template writes tool calls), shows "—" for its line."""

from __future__ import annotations

import csv
from pathlib import Path

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QAbstractItemView, QApplication, QHeaderView, QStyle, QTableView

COLUMNS = (("severity", "Severity"), ("line", "Line"), ("field", "Field"), ("message", "Problem"), ("fix", "How to fix it"))
SEVERITY_ORDER = {"fatal": 0, "error": 1, "warning": 2}
SEVERITY_COLOURS = {"fatal": "#d64541", "error": "#d64541", "warning": "#c98a00"}  # as set_state_style: light and dark
SEVERITY_ICONS = {"fatal": QStyle.StandardPixmap.SP_MessageBoxCritical, "error": QStyle.StandardPixmap.SP_MessageBoxCritical,
                  "warning": QStyle.StandardPixmap.SP_MessageBoxWarning}
NO_LINE = "—"  # the problem is about the whole data


class ProblemsModel(QAbstractTableModel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.problems: list[dict] = []

    def set_problems(self, problems: list[dict]) -> None:
        self.beginResetModel()
        self.problems = list(problems)
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.problems)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section][1]
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        problem = self.problems[index.row()]
        key = COLUMNS[index.column()][0]
        value = problem.get(key)
        if key == "line":
            line = NO_LINE if value is None else value
            value = f"{problem['file']}:{line}" if problem.get("file") else line
        if role == Qt.ItemDataRole.DisplayRole:
            return "" if value is None else str(value)
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{problem.get('message', '')}\nFix: {problem.get('fix', '')}"
        if key == "severity" and role == Qt.ItemDataRole.ForegroundRole and value in SEVERITY_COLOURS:
            return QColor(SEVERITY_COLOURS[value])
        if key == "severity" and role == Qt.ItemDataRole.DecorationRole and value in SEVERITY_ICONS:
            return QApplication.style().standardIcon(SEVERITY_ICONS[value])
        if role == Qt.ItemDataRole.UserRole:  # the sort key
            if key == "line":
                return (problem.get("file") or "", problem.get("line") or 0)
            if key == "severity":
                return SEVERITY_ORDER.get(problem.get("severity", ""), 9)
            return "" if value is None else str(value)
        return None


class _SortProxy(QSortFilterProxyModel):
    def lessThan(self, left, right) -> bool:
        a = self.sourceModel().data(left, Qt.ItemDataRole.UserRole)
        b = self.sourceModel().data(right, Qt.ItemDataRole.UserRole)
        try:
            return a < b
        except TypeError:
            return str(a) < str(b)


class ProblemsTable(QTableView):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.source_model = ProblemsModel(self)
        self.proxy = _SortProxy(self)
        self.proxy.setSourceModel(self.source_model)
        self.setModel(self.proxy)
        self.setSortingEnabled(True)
        self.sortByColumn(1, Qt.SortOrder.AscendingOrder)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setWordWrap(True)
        self.setAlternatingRowColors(True)
        header = self.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        self.verticalHeader().setVisible(False)
        self.verticalScrollBar().valueChanged.connect(self._fit_rows)
        self.proxy.layoutChanged.connect(self._fit_rows)  # sorted: other words in each row
        self.setToolTip("Problems found in the data, with where they are and how to fix them. Click a column to sort.")

    def set_problems(self, problems: list[dict]) -> None:
        self.source_model.set_problems(problems)
        self.setColumnHidden(2, not any(p.get("field") for p in problems))  # no field named: room for the words
        self._fit_rows()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_rows()  # the wrapped words take more or fewer lines

    def _fit_rows(self, *_args) -> None:
        """The rows in view as tall as their wrapped words (fitting all 5,000 a report can hold takes seconds)."""
        height = self.viewport().height()
        row = max(0, self.rowAt(0))
        while row < self.proxy.rowCount() and self.rowViewportPosition(row) <= height:
            self.resizeRowToContents(row)
            row += 1

    def rows(self) -> list[dict]:
        """The problems in the order shown (after sorting)."""
        out = []
        for r in range(self.proxy.rowCount()):
            out.append(self.source_model.problems[self.proxy.mapToSource(self.proxy.index(r, 0)).row()])
        return out

    def export_csv(self, path: Path) -> int:
        rows = self.rows()
        with Path(path).open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["severity", "file", "line", "field", "message", "fix"])
            for p in rows:
                writer.writerow([p.get("severity"), p.get("file") or "", p.get("line") if p.get("line") is not None else "",
                                 p.get("field") or "", p.get("message"), p.get("fix")])
        return len(rows)
