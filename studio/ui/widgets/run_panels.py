"""The Train page's panels about a run that cannot go on: why it failed (and a button that applies the
advice), why it cannot start (and a button to the page that fixes it), and the figures of a run."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.training.failures import title_of
from studio.ui.open_path import path_note
from studio.ui.widgets.text import set_state_style, subheading

STATS = (("step", "Step", "Optimizer steps done / in all."),
         ("loss", "Loss", "Training loss of the last step (lower is better)."),
         ("eval", "Eval loss", "Loss on held-out rows, measured every few steps."),
         ("speed", "Tokens/s", "Training throughput."),
         ("elapsed", "Elapsed", "Time since the run started."),
         ("eta", "Time left", "Estimated from the speed so far."))


def _selectable_label(parent) -> QLabel:
    label = QLabel("", parent)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


class FailurePanel(QFrame):
    """What went wrong, what to do, and a button that does it."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("failurePanel")
        self.setStyleSheet("#failurePanel { border: 2px solid #d64541; border-radius: 6px; }")
        self.setToolTip("Why the run stopped and what to do about it.")
        layout = QVBoxLayout(self)
        self.title = subheading("", self)
        set_state_style(self.title, "bad")
        self.message = _selectable_label(self)
        self.advice = _selectable_label(self)
        row = QHBoxLayout()
        self.action = QPushButton("", self)
        self.action.setToolTip("Apply the advice above to your settings and start a new run.")
        self.log_button = QPushButton("Open the full log", self)
        self.log_button.setToolTip("The worker's complete output (stderr.log in the run folder), with the technical details.")
        row.addWidget(self.action)
        row.addWidget(self.log_button)
        row.addStretch(1)
        layout.addWidget(self.title)
        layout.addWidget(self.message)
        self.log_path = path_note(self)  # where the log is, when nothing could open it
        layout.addWidget(self.advice)
        layout.addLayout(row)
        layout.addWidget(self.log_path)
        self.kind = ""

    def show_error(self, kind: str, message: str, advice: str, action: str | None) -> None:
        self.kind = kind
        self.title.setText(title_of(kind))
        self.message.setText(message)
        self.advice.setText(f"What to do: {advice}" if advice else "")
        self.action.setText(action or "")
        self.action.setVisible(bool(action))
        self.log_path.setVisible(False)
        self.setVisible(True)


class StartBlockedPanel(QFrame):
    """Why Start is refused (the data or the model cannot be used), and a button to the page that fixes it."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("startBlocked")
        self.setStyleSheet("#startBlocked { border: 1px solid #c98a00; border-radius: 4px; }")
        self.setToolTip("Training cannot start until this is fixed.")
        row = QHBoxLayout(self)
        row.setContentsMargins(6, 3, 6, 3)
        self.reason = _selectable_label(self)
        self.button = QPushButton("", self)
        self.button.setToolTip("Show the page where this is fixed.")
        row.addWidget(self.reason, 1)
        row.addWidget(self.button)
        self.page = ""
        self.setVisible(False)

    def show_blocker(self, blocker) -> None:
        """`blocker`: a state.StartBlocker, or None when Start may go ahead."""
        self.setVisible(blocker is not None)
        if blocker is None:
            return
        self.page = blocker.page
        self.reason.setText(f"Training cannot start. {blocker.message} {blocker.advice}".strip())
        self.button.setText(f"Go to the {blocker.page.capitalize()} page")


def stats_grid(parent: QWidget) -> tuple[QGridLayout, dict[str, QLabel]]:
    """The run's figures in a row (step, loss, eval loss, speed, elapsed, time left): the grid, and
    each figure's value label by key."""
    grid = QGridLayout()
    values: dict[str, QLabel] = {}
    for col, (key, name, tip) in enumerate(STATS):
        title = QLabel(name, parent)
        title.setToolTip(tip)
        title.setForegroundRole(title.foregroundRole())
        value = QLabel("–", parent)
        value.setToolTip(tip)
        vf = QFont(value.font())
        vf.setPointSizeF(vf.pointSizeF() * 1.25)
        vf.setBold(True)
        value.setFont(vf)
        grid.addWidget(title, 0, col)
        grid.addWidget(value, 1, col)
        values[key] = value
    return grid, values
