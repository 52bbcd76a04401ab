"""An answer column's text on the Try & export page (the base model's, the fine-tuned model's, the GGUF file's)."""

from __future__ import annotations

from PySide6.QtCore import QSize
from PySide6.QtWidgets import QTextBrowser


class AnswerView(QTextBrowser):
    """An answer: a few lines high by default (the page gives it what the Export box leaves; a short window scrolls)."""

    def sizeHint(self) -> QSize:
        return QSize(super().sizeHint().width(), 110)
