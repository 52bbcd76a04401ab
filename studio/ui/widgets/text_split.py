"""How plain text files become documents (the recipe's data.text_split), as a labelled choice: the
first item says what "auto" chose for the file on screen and why."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QWidget

# What auto chose, in the combo's few words (the report's words start with these).
SHORT = {"one document per line": "per line", "one document per paragraph": "per paragraph",
         "one document per file": "whole file", "by file": "by file"}
CHOICES = (("auto", "Auto"), ("line", "One per line"), ("paragraph", "Paragraphs"), ("file", "Whole file"))


class TextSplitBox(QWidget):
    """"Text split: [auto / one per line / paragraphs / whole file]"; `chosen` carries the recipe's value."""

    chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Text split:", self))
        self.combo = QComboBox(self)
        self.combo.setToolTip("How a plain text file becomes documents: one per line, one per paragraph (lines between "
                              "blank lines), or the whole file. Auto decides from the file's shape. Long documents are cut "
                              "into sequence-length chunks that are all trained.")
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)  # the first item's text changes
        for value, text in CHOICES:
            self.combo.addItem(text, value)
        self.combo.activated.connect(lambda _index: self.chosen.emit(self.combo.currentData()))
        row.addWidget(self.combo)

    def show_split(self, setting: str, used: str | None) -> None:
        """The recipe's `setting`, and how the data on screen was split (the report's words), if it was."""
        self.combo.blockSignals(True)
        short = next((words for key, words in SHORT.items() if (used or "").startswith(key)), "")
        self.combo.setItemText(0, f"Auto ({short})" if setting == "auto" and short else "Auto")
        self.combo.setItemData(0, used or "", Qt.ItemDataRole.ToolTipRole)  # the whole reason, on hover
        self.combo.setCurrentIndex(max(0, self.combo.findData(setting)))
        self.combo.blockSignals(False)
