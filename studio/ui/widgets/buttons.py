"""A row of push buttons, each with its tooltip and its action, kept on the owner by name (the tests and the
walkthroughs reach them as `page.load_button`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from PySide6.QtWidgets import QBoxLayout, QPushButton, QWidget


def add_buttons(owner: QWidget, row: QBoxLayout, specs: Iterable[tuple[str, str, str, Callable]]) -> None:
    """For each (attribute, text, tooltip, action): a button in `row`, set as `owner.<attribute>`."""
    for attr, text, tip, action in specs:
        button = QPushButton(text, owner)
        button.setToolTip(tip)
        button.clicked.connect(action)
        row.addWidget(button)
        setattr(owner, attr, button)
