"""Which column of the user's file holds what: a picker per role (prompt, answer, system, text,
conversation), listing the file's own columns, with the first row's value under each choice."""

from __future__ import annotations

from PySide6.QtCore import QRect, QSize, Qt, Signal
from PySide6.QtGui import QFontMetrics, QPalette
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QLabel,
    QSizePolicy,
    QStyle,
    QStyledItemDelegate,
    QWidget,
)

# role → (label, tooltip); the roles are the recipe's mapping keys (data/formats.py ROLES)
ROLE_TEXT = {
    "prompt": ("Prompt column:", "The column that holds what the user asks."),
    "response": ("Answer column:", "The column that holds the answer the model should learn to give."),
    "system": ("System column:", "Optional: a column with a system prompt for each row."),
    "text": ("Text column:", "The column that holds the text to train on."),
    "messages": ("Conversation column:", "The column that holds each row's conversation (a list of turns)."),
}
OPTIONAL = ("system",)
NOT_CHOSEN = None
PREVIEW_ROLE = Qt.ItemDataRole.UserRole + 1  # a choice's first-row value, drawn under its name in the list
POPUP_WIDTH = 340  # the open list is this wide at least, so the first-row values can be read


class _ChoiceWithPreview(QStyledItemDelegate):
    """A choice in the open list: the column's name, and under it, muted, its first row's value."""

    def sizeHint(self, option, index) -> QSize:
        hint = super().sizeHint(option, index)
        return QSize(hint.width(), hint.height() * 2) if index.data(PREVIEW_ROLE) is not None else hint

    def paint(self, painter, option, index) -> None:
        preview = index.data(PREVIEW_ROLE)
        if preview is None:
            super().paint(painter, option, index)
            return
        self.initStyleOption(option, index)
        name = option.text
        option.text = ""
        widget = option.widget
        style = widget.style() if widget else None
        if style:
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, option, painter, widget)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        top, bottom = _halves(option.rect.adjusted(6, 1, -6, -1))
        painter.save()
        painter.setPen(option.palette.color(QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text))
        painter.drawText(top, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, name)
        painter.setPen(option.palette.color(QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.PlaceholderText))
        text = option.fontMetrics.elidedText(preview or "(empty)", Qt.TextElideMode.ElideRight, bottom.width())
        painter.drawText(bottom, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, text)
        painter.restore()


def _halves(rect: QRect) -> tuple[QRect, QRect]:
    half = rect.height() // 2
    return QRect(rect.left(), rect.top(), rect.width(), half), QRect(rect.left(), rect.top() + half, rect.width(), half)


class ElidedLabel(QLabel):
    """One line of text cut with "…" to the width it gets, never widening its layout (the full text is
    its tooltip)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._full = ""
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.setTextFormat(Qt.TextFormat.PlainText)

    def set_full_text(self, text: str) -> None:
        self._full = text
        self.setToolTip(text)
        self._elide()

    def full_text(self) -> str:
        return self._full

    def minimumSizeHint(self):
        hint = super().minimumSizeHint()
        hint.setWidth(QFontMetrics(self.font()).horizontalAdvance("…") * 4)
        return hint

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        metrics = QFontMetrics(self.font())
        super().setText(metrics.elidedText(self._full, Qt.TextElideMode.ElideRight, max(self.width(), 20)))


class ColumnPickers(QWidget):
    """A labelled combo box per role, with the first row's value of the chosen column under it."""

    column_chosen = Signal(str, object)  # role, column (None: not chosen)

    def __init__(self, parent=None):
        super().__init__(parent)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(6)
        grid.setVerticalSpacing(2)
        self.labels: dict[str, QLabel] = {}
        self.combos: dict[str, QComboBox] = {}
        self.previews: dict[str, ElidedLabel] = {}
        self.first_row: dict[str, str] = {}
        for i, (role, (label, tip)) in enumerate(ROLE_TEXT.items()):
            self._add_role(grid, i, role, label, tip)

    def _add_role(self, grid: QGridLayout, i: int, role: str, label: str, tip: str) -> None:
        self.labels[role] = QLabel(label, self)
        combo = QComboBox(self)
        combo.setToolTip(tip)
        combo.setAccessibleName(label.rstrip(":"))
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        combo.setMinimumContentsLength(10)
        combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        combo.setItemDelegate(_ChoiceWithPreview(combo))
        combo.view().setMinimumWidth(POPUP_WIDTH)
        combo.activated.connect(lambda _index, r=role: self.column_chosen.emit(r, self.combos[r].currentData()))
        combo.currentIndexChanged.connect(lambda _index, r=role: self._show_preview(r))
        self.combos[role] = combo
        self.previews[role] = ElidedLabel(self)
        grid.addWidget(self.labels[role], 0, 2 * i)
        grid.addWidget(combo, 0, 2 * i + 1)
        grid.addWidget(self.previews[role], 1, 2 * i + 1)

    def show_columns(self, columns: list[str], first_row: dict[str, str], roles: list[str], chosen: dict) -> None:
        """List `columns` in the pickers of `roles` (the others are hidden), with `chosen` selected."""
        self.first_row = dict(first_row)
        grid = self.layout()
        for i, role in enumerate(ROLE_TEXT):
            shown = role in roles
            for widget in (self.labels[role], self.combos[role], self.previews[role]):
                widget.setVisible(shown)
            grid.setColumnStretch(2 * i + 1, 1 if shown else 0)  # the room goes to the pickers shown
            if shown:
                self._fill(role, columns, chosen.get(role))

    def _fill(self, role: str, columns: list[str], chosen: str | None) -> None:
        combo = self.combos[role]
        combo.blockSignals(True)
        combo.clear()
        combo.addItem("(none)" if role in OPTIONAL else "(choose)", NOT_CHOSEN)
        for column in columns:
            combo.addItem(column, column)
            combo.setItemData(combo.count() - 1, self._first_value(column), Qt.ItemDataRole.ToolTipRole)
            combo.setItemData(combo.count() - 1, self.first_row.get(column, ""), PREVIEW_ROLE)
        combo.setCurrentIndex(max(0, combo.findData(chosen)) if chosen else 0)
        combo.blockSignals(False)
        self._show_preview(role)

    def _first_value(self, column: str) -> str:
        value = self.first_row.get(column, "")
        return f"“{value}”" if value else "(empty in the first row)"

    def _show_preview(self, role: str) -> None:
        column = self.combos[role].currentData()
        if column is None:
            text = "" if role in OPTIONAL else "Choose the column."
        else:
            text = self._first_value(column)
        self.previews[role].set_full_text(text)

    def roles_shown(self) -> list[str]:
        return [role for role in ROLE_TEXT if not self.combos[role].isHidden()]

    def mapping(self) -> dict[str, str]:
        """The columns chosen, by role, among the pickers shown."""
        chosen = {role: self.combos[role].currentData() for role in self.roles_shown()}
        return {role: column for role, column in chosen.items() if column}

    def missing(self) -> list[str]:
        """The roles shown that need a column and have none yet."""
        return [role for role in self.roles_shown() if role not in OPTIONAL and self.combos[role].currentData() is None]
