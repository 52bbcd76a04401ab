"""Headings and help text: the same look on every page."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QPalette
from PySide6.QtWidgets import QLabel, QWidget


def heading(text: str, parent: QWidget | None = None, size: float = 1.45) -> QLabel:
    label = QLabel(text, parent)
    font = QFont(label.font())
    font.setPointSizeF(font.pointSizeF() * size)
    font.setBold(True)
    label.setFont(font)
    label.setAccessibleName(text)
    return label


def subheading(text: str, parent: QWidget | None = None) -> QLabel:
    label = heading(text, parent, 1.1)
    return label


def help_label(text: str, parent: QWidget | None = None) -> QLabel:
    """A wrapped, slightly muted paragraph that explains a control in plain words."""
    label = QLabel(text, parent)
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.RichText if "<" in text else Qt.TextFormat.PlainText)
    label.setOpenExternalLinks(True)
    label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
    return label


def set_state_style(label: QLabel, state: str) -> None:
    """Colour a verdict label: "good", "bad", "warn" or "" (plain). Colours work on light and dark."""
    colours = {"good": "#2e9d48", "bad": "#d64541", "warn": "#c98a00"}
    colour = colours.get(state)
    label.setStyleSheet(f"color: {colour}; font-weight: bold;" if colour else "")
