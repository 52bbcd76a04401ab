"""What every page has: the shared state, a title, and a one-line summary for the step list."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QScrollArea, QVBoxLayout, QWidget

from studio.ui.state import StudioState
from studio.ui.widgets.text import heading, help_label


class Page(QWidget):
    title = ""
    intro = ""
    summary_changed = Signal()
    go_to = Signal(str)  # ask the window to show another page ("data", "train", ...)

    def __init__(self, state: StudioState, parent=None, *, scroll: bool = False):
        super().__init__(parent)
        self.state = state
        outer = QVBoxLayout(self)
        outer.setContentsMargins(18, 14, 18, 10)
        outer.setSpacing(8)
        self.heading = heading(self.title, self)
        outer.addWidget(self.heading)
        if self.intro:
            self.intro_label = help_label(self.intro, self)
            outer.addWidget(self.intro_label)
        if scroll:
            area = QScrollArea(self)
            area.setWidgetResizable(True)
            area.setFrameShape(QFrame.Shape.NoFrame)
            inner = QWidget(area)
            area.setWidget(inner)
            outer.addWidget(area, 1)
            self.body = QVBoxLayout(inner)
            self.body.setContentsMargins(0, 0, 6, 0)
        else:
            self.body = QVBoxLayout()
            self.body.setContentsMargins(0, 0, 0, 0)
            outer.addLayout(self.body, 1)
        self.body.setSpacing(8)

    def summary(self) -> str:
        """A few words for the step list ("demo, 2.4 M", "fits, 3 GB spare")."""
        return ""

    def on_shown(self) -> None:
        """Called when the page becomes visible."""
