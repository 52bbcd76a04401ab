"""Opening a folder or file in the system's own program — and, where nothing can open it (a desktop
without a file manager), saying where it is, with the path copied, instead of doing nothing."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QApplication, QLabel, QWidget


def path_note(parent: QWidget) -> QLabel:
    """The (hidden) label where `open_or_say_where` says where a path is: selectable, wrapped."""
    note = QLabel("", parent)
    note.setWordWrap(True)
    note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    note.setToolTip("Select the path to copy it; it is on the clipboard already.")
    note.setVisible(False)
    return note


def open_or_say_where(path: Path, note: QLabel, *, what: str = "the folder",
                      paste_into: str = "your file manager") -> bool:
    """Open `path`; when the system cannot, show where it is in `note` and put the path on the clipboard."""
    if QDesktopServices.openUrl(QUrl.fromLocalFile(str(path))):
        return True
    QApplication.clipboard().setText(str(path))
    note.setText(f"Nothing on this computer could open {what}. It is {path} (the path is copied: paste it into "
                 f"{paste_into}).")
    note.setVisible(True)
    return False
