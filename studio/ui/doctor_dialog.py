"""The "Check this computer" dialog: `studio doctor` in plain words.

Shown once, on the first start (a marker file in the settings folder remembers it), and at any time
from Help ▸ Check this computer. It says whether an NVIDIA GPU was found and how much memory it has,
whether 4-bit (QLoRA) training on the GPU is available, and if not, what to do: install the NVIDIA
driver, install the CUDA build of PyTorch (the exact pip command), reinstall bitsandbytes.
"Copy report" puts the full report (`studio doctor --json`) on the clipboard for a bug report.
What the report means is decided in the core (studio/core/doctor.py), which `studio doctor` shares.

The report imports torch, transformers and bitsandbytes, which takes seconds: it runs in a
background task, and the dialog never blocks the window.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from html import escape
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QFont, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core import paths
from studio.core.doctor import Finding, Verdict, collect_report, details_text, explain, report_text

FIRST_RUN_MARKER = "first-run-check.done"


# ---------------------------------------------------------------------------------------------
# Shown once
# ---------------------------------------------------------------------------------------------


def first_run_marker() -> Path:
    return paths.user_config_dir() / FIRST_RUN_MARKER


def first_run_pending() -> bool:
    return not first_run_marker().exists()


def mark_first_run_done() -> None:
    marker = first_run_marker()
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("The first-run check was shown. Delete this file to see it again at the next start.\n",
                          encoding="utf-8")
    except OSError:
        pass  # a read-only settings folder: the check shows again next time, which is harmless


# ---------------------------------------------------------------------------------------------
# The dialog
# ---------------------------------------------------------------------------------------------


DETAILS_LINES = 16  # of the full report, when Details is open


class DoctorDialog(QDialog):
    """Non-modal: the window stays usable while the check runs."""


    def __init__(self, parent: QWidget | None = None, *, collect: Callable[[], dict] = collect_report):
        super().__init__(parent)
        self.setWindowTitle("Check this computer")
        self.setModal(False)
        self.resize(640, 400)
        self._collect = collect
        self.report: dict | None = None
        self.verdict: Verdict | None = None
        self._task = None

        self.headline = QLabel("Checking this computer… (the first time takes a few seconds: it loads PyTorch)", self)
        self.headline.setWordWrap(True)
        font = self.headline.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.15)
        self.headline.setFont(font)
        self.headline.setAccessibleName("Result")

        self.findings_label = QLabel("", self)
        self.findings_label.setWordWrap(True)
        self.findings_label.setTextFormat(Qt.TextFormat.RichText)
        self.findings_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                                    | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        self.findings_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.findings_label.setAccessibleName("What was found, and what to do")

        self.details_button = QToolButton(self)
        self.details_button.setText("Details")
        self.details_button.setCheckable(True)
        self.details_button.setArrowType(Qt.ArrowType.RightArrow)
        self.details_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.details_button.setToolTip("The full report: versions, GPUs, folders (what `studio doctor` prints).")
        self.details_button.toggled.connect(self._toggle_details)
        self.details = QPlainTextEdit(self)
        self.details.setReadOnly(True)
        self.details.setFont(QFont("monospace"))
        self.details.setVisible(False)
        self.details.setAccessibleName("Full report")

        buttons = QDialogButtonBox(self)
        self.copy_button = QPushButton("&Copy report", self)
        self.copy_button.setToolTip("Copy the full report to the clipboard, to paste into a bug report or a question.")
        self.copy_button.setEnabled(False)
        self.copy_button.clicked.connect(self.copy_report)
        self.again_button = QPushButton("Check &again", self)
        self.again_button.setToolTip("Run the check again, e.g. after installing a driver or PyTorch (restart the "
                                     "studio first: a running program keeps the PyTorch it started with).")
        self.again_button.clicked.connect(self.refresh)
        close = buttons.addButton(QDialogButtonBox.StandardButton.Close)
        close.clicked.connect(self.close)
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.again_button, QDialogButtonBox.ButtonRole.ActionRole)

        layout = QVBoxLayout(self)
        layout.addWidget(self.headline)
        layout.addWidget(self.findings_label, 1)
        layout.addWidget(self.details_button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.details, 2)
        layout.addWidget(buttons)
        self.refresh()

    # ---- the check ----

    def refresh(self) -> None:
        from studio.ui.tasks import heavy_imports, start_task

        if self._task is not None and self._task.running:
            return
        self.copy_button.setEnabled(False)
        self.again_button.setEnabled(False)
        collect = self._collect

        def work(_state):
            with heavy_imports():
                return collect()

        self._task = start_task("check this computer", work, on_done=self._show_report, on_failed=self._show_failure)

    @property
    def checking(self) -> bool:
        return self._task is not None and self._task.running

    def _show_report(self, report: dict) -> None:
        self.report = report
        self.verdict = explain(report)
        self.headline.setText(self.verdict.headline)
        self.findings_label.setText(_findings_html(self.verdict.findings))
        self.details.setPlainText(details_text(report))
        self.copy_button.setEnabled(True)
        self.again_button.setEnabled(True)

    def _show_failure(self, message: str, advice: str) -> None:
        self.report = {"error": message, "advice": advice}
        self.verdict = None
        self.headline.setText("The check itself failed.")
        self.findings_label.setText(f"<p>{escape(message, quote=False)}</p><p>{escape(advice, quote=False)}</p>")
        self.details.setPlainText(report_text(self.report))
        self.copy_button.setEnabled(True)
        self.again_button.setEnabled(True)

    # ---- buttons ----

    def copy_report(self) -> None:
        if self.report is None:
            return
        QGuiApplication.clipboard().setText(report_text(self.report))
        self.copy_button.setText("Copied ✓")
        QTimer.singleShot(2000, lambda: self.copy_button.setText("&Copy report"))

    def _toggle_details(self, shown: bool) -> None:
        """The report gets room for about 16 lines: the dialog grows (within the screen) rather than
        squeezing it into a sliver under the findings."""
        self.details.setVisible(shown)
        self.details_button.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)
        lines = self.details.fontMetrics().lineSpacing() * DETAILS_LINES + 2 * self.details.frameWidth() + 8
        self.details.setMinimumHeight(lines if shown else 0)
        if shown:
            screen = self.screen().availableGeometry() if self.screen() else None
            height = max(self.height(), self.sizeHint().height())
            self.resize(self.width(), min(height, screen.height() - 40) if screen else height)


def _inline_code(text: str) -> str:
    """`code` in a finding's text as monospace."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escape(text, quote=False))


def _findings_html(findings: list[Finding]) -> str:
    parts = []
    for f in findings:
        mark = '<span style="color:#2e9d4f">✔</span>' if f.ok else '<span style="color:#d9822b">✘</span>'
        part = f"<p>{mark} <b>{escape(f.title, quote=False)}</b><br>{_inline_code(f.text)}"
        for command in f.fixes:
            part += f'<br><code style="white-space:pre-wrap">{escape(command, quote=False)}</code>'
        parts.append(part + "</p>")
    return "".join(parts)


def show_on_first_run(parent: QWidget | None = None) -> DoctorDialog | None:
    """The check, the first time the studio starts for this user (then never again on its own)."""
    if not first_run_pending() or os.environ.get("STUDIO_STARTUP_EXIT"):
        return None
    dialog = DoctorDialog(parent)
    dialog.show()
    mark_first_run_done()
    return dialog
