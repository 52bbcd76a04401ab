"""The "Check this computer" dialog: `studio doctor` in plain words.

Shown once, on the first start (a marker file in the settings folder remembers it), and at any time
from Help ▸ Check this computer. It says whether an NVIDIA GPU was found and how much memory it has,
whether 4-bit (QLoRA) training on the GPU is available, and if not, what to do: install the NVIDIA
driver, install the CUDA build of PyTorch (the exact pip command), reinstall bitsandbytes.
"Copy report" puts the full report (`studio doctor --json`, plus the driver's version) on the
clipboard for a bug report.

The report imports torch, transformers and bitsandbytes, which takes seconds: it runs in a
background task, and the dialog never blocks the window.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from PySide6.QtCore import Qt, QTimer, Signal
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

FIRST_RUN_MARKER = "first-run-check.done"
PYTORCH_INDEX = "https://download.pytorch.org/whl"
BNB_REQUIREMENT = "bitsandbytes>=0.45"
INSTALLER_HINT = ("packaging/install.sh on Linux, packaging/install.ps1 on Windows; see packaging/README.md")


# ---------------------------------------------------------------------------------------------
# The report and what it means (plain functions: tested without a window)
# ---------------------------------------------------------------------------------------------


def nvidia_smi_info() -> dict:
    """The driver version and the newest CUDA it supports, from nvidia-smi; {} when there is none."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return {}
    info: dict = {}
    try:
        header = subprocess.run([exe], capture_output=True, text=True, timeout=15).stdout
        query = subprocess.run([exe, "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True,
                               text=True, timeout=15).stdout
    except (OSError, subprocess.SubprocessError):
        return {"nvidia_smi": "found, but it did not answer"}
    match = re.search(r"CUDA Version:\s*([0-9][0-9.]*)", header)
    if match:
        info["cuda_driver"] = match.group(1)
    if query.strip():
        info["nvidia_driver"] = query.strip().splitlines()[0].strip()
    info["nvidia_smi"] = exe
    return info


def collect_report() -> dict:
    """`studio doctor --json`, plus what nvidia-smi says about the driver (what the advice needs)."""
    from studio.cli import doctor_report

    report = doctor_report()
    report.update(nvidia_smi_info())
    report["frozen"] = bool(getattr(sys, "frozen", False))
    return report


def torch_index_tag(cuda_driver: str | None) -> str:
    """The PyTorch wheel index for a driver that supports CUDA `cuda_driver` (as install.sh chooses it)."""
    try:
        major, minor = (int(x) for x in (cuda_driver or "").split(".")[:2])
    except ValueError:
        return "cu128"  # unknown: a driver installed today supports CUDA 12.8 or newer
    n = major * 10 + minor
    return "cu130" if n >= 130 else "cu128" if n >= 128 else "cu126"


def pip_command(args: str) -> str:
    """A pip command for the Python this studio runs in (quoted when its path has spaces)."""
    python = sys.executable
    if " " in python:
        python = f'"{python}"'
    return f"{python} -m pip install {args}"


@dataclass(frozen=True)
class Finding:
    """One line of the check: what was found, whether that is good, and what to do if not."""

    key: str  # "gpu", "training", "bitsandbytes"
    ok: bool
    title: str
    text: str
    fixes: tuple[str, ...] = ()  # commands to run, exactly


@dataclass
class Verdict:
    headline: str
    four_bit_ready: bool
    findings: list[Finding] = field(default_factory=list)


def explain(report: dict) -> Verdict:
    """What the doctor report means for this user, in plain words."""
    gpus = report.get("gpus") or []
    torch_version = str(report.get("torch", ""))
    torch_ok = not torch_version.startswith("not importable")
    cuda_build = str(report.get("cuda_build", ""))
    cpu_build = cuda_build.startswith("none") or not cuda_build
    cuda_ok = bool(report.get("cuda_available"))
    bnb = str(report.get("bitsandbytes", ""))
    bnb_ok = bool(bnb) and not bnb.startswith("not importable")
    backend = str(report.get("bitsandbytes_backend", ""))
    four_bit = torch_ok and cuda_ok and bnb_ok and backend.startswith("cuda")
    frozen = bool(report.get("frozen"))
    base_version = torch_version.split("+")[0] if torch_ok else "2.13.0"
    tag = torch_index_tag(report.get("cuda_driver"))
    cuda_torch = pip_command(f"--force-reinstall torch=={base_version} --index-url {PYTORCH_INDEX}/{tag}")
    findings: list[Finding] = []

    # ---- the GPU ----
    if gpus:
        g = gpus[0]
        more = f" (and {len(gpus) - 1} more)" if len(gpus) > 1 else ""
        findings.append(Finding("gpu", True, f"GPU: {g['name']}{more}",
                                f"{g['total_gib']:.1f} GiB of memory, {g['free_gib']:.1f} GiB free now."
                                + (f" Driver {report['nvidia_driver']} (CUDA {report.get('cuda_driver', '?')})."
                                   if report.get("nvidia_driver") else "")))
    elif sys.platform == "darwin":
        findings.append(Finding("gpu", False, "No NVIDIA GPU (this is a Mac)",
                                "Training runs on the processor: fine for the demo model, far too slow for real models. "
                                "You can still plan a run for any GPU on the Memory page."))
    elif report.get("nvidia_smi"):
        findings.append(Finding("gpu", False, "The NVIDIA driver found no working GPU",
                                "nvidia-smi is installed but lists no GPU. Restart the computer after a driver update; "
                                "run `nvidia-smi` in a terminal to see the driver's own message.",
                                ("nvidia-smi",)))
    else:
        then = ""
        fixes: tuple[str, ...] = ()
        if cpu_build and torch_ok:
            if frozen:
                then = f" Then install LoRA Studio with the installer ({INSTALLER_HINT}): this app carries no CUDA."
            else:
                then = " Then install the CUDA build of PyTorch (or run the installer again):"
                fixes = (cuda_torch,)
        findings.append(Finding("gpu", False, "No NVIDIA GPU found",
                                "Training runs on the processor: fine for the demo model, far too slow for real models "
                                "(you can still plan a run for any GPU on the Memory page). If this computer has an "
                                "NVIDIA card, install its driver (Linux: your distribution's nvidia-driver package, e.g. "
                                "`sudo ubuntu-drivers install`; Windows: nvidia.com/drivers) and restart: `nvidia-smi` "
                                "should then list it." + then, fixes))

    # ---- 4-bit training ----
    if four_bit:
        findings.append(Finding("training", True, "4-bit training (QLoRA) on the GPU: available",
                                f"PyTorch {torch_version} with CUDA {cuda_build}, bitsandbytes {bnb}."))
    elif not torch_ok and frozen:
        findings.append(Finding("training", False, "PyTorch does not load in this app",
                                f"{torch_version}. Download the app again, or install LoRA Studio with the installer "
                                f"({INSTALLER_HINT})."))
    elif not torch_ok:
        findings.append(Finding("training", False, "PyTorch is missing or broken",
                                f"{torch_version}. Install it again, then restart the studio:",
                                (pip_command(f"torch=={base_version}" + (f" --index-url {PYTORCH_INDEX}/{tag}" if gpus else "")),)))
    elif gpus and cpu_build:
        if frozen:
            findings.append(Finding("training", False, "4-bit training on the GPU: not available in this build",
                                    "This self-contained app carries the CPU build of PyTorch, so it cannot use the GPU. "
                                    f"Install LoRA Studio with the installer instead ({INSTALLER_HINT}): it picks the CUDA "
                                    "build of PyTorch that suits your driver."))
        else:
            findings.append(Finding("training", False, "4-bit training on the GPU: not available — PyTorch is a CPU build",
                                    f"PyTorch {torch_version} cannot use the GPU. Install its CUDA build (a download of "
                                    "2–3 GB), then restart the studio:", (cuda_torch,)))
    elif gpus and not cuda_ok:
        findings.append(Finding("training", False, "4-bit training on the GPU: not available — PyTorch cannot reach the GPU",
                                f"PyTorch {torch_version} is built for CUDA {cuda_build}, but the NVIDIA driver "
                                f"{report.get('nvidia_driver', '')} (CUDA {report.get('cuda_driver', '?')}) does not run it. "
                                "Update the NVIDIA driver (525 or newer for CUDA 12), restart, or install the PyTorch "
                                "build that matches this driver:", (cuda_torch,)))
    elif gpus and (not bnb_ok or not backend.startswith("cuda")):
        findings.append(Finding("training", False, "4-bit training on the GPU: not available — bitsandbytes does not load",
                                "PyTorch reaches the GPU, but bitsandbytes, which holds the 4-bit weights, does not work "
                                "(see below)."))
    else:
        findings.append(Finding("training", False, "4-bit training on the GPU: not available (no GPU)",
                                "The studio still trains on the processor (bitsandbytes' CPU backend): slowly, which is "
                                "fine for the demo model. 4-bit training of real models needs an NVIDIA GPU with its "
                                "driver and the CUDA build of PyTorch."))

    # ---- bitsandbytes ----
    if not bnb_ok or backend.startswith("unavailable"):
        problem = bnb if not bnb_ok else backend
        if frozen:
            findings.append(Finding("bitsandbytes", False, "bitsandbytes (4-bit and 8-bit) does not load",
                                    f"{problem}. Download the app again, or install LoRA Studio with the installer "
                                    f"({INSTALLER_HINT})."))
        else:
            findings.append(Finding("bitsandbytes", False, "bitsandbytes (4-bit and 8-bit) does not load",
                                    f"{problem}. Reinstall it, then restart the studio:",
                                    (pip_command(f'--force-reinstall "{BNB_REQUIREMENT}"'),)))

    if four_bit:
        headline = "This computer is ready for 4-bit training on the GPU."
    elif gpus:
        headline = "A GPU was found, but 4-bit training on it is not available yet: see below."
    else:
        headline = "No NVIDIA GPU was found: the studio will train on the processor (fine for the demo model)."
    return Verdict(headline, four_bit, findings)


def report_text(report: dict) -> str:
    """What "Copy report" puts on the clipboard: the doctor report as JSON."""
    return json.dumps(report, indent=2, default=str)


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


class DoctorDialog(QDialog):
    """Non-modal: the window stays usable while the check runs."""

    report_ready = Signal(dict)

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
        self.details.setPlainText(_details_text(report))
        self.copy_button.setEnabled(True)
        self.again_button.setEnabled(True)
        self.report_ready.emit(report)

    def _show_failure(self, message: str, advice: str) -> None:
        self.report = {"error": message, "advice": advice}
        self.verdict = None
        self.headline.setText("The check itself failed.")
        self.findings_label.setText(f"<p>{_escape(message)}</p><p>{_escape(advice)}</p>")
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
        self.details.setVisible(shown)
        self.details_button.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _inline_code(text: str) -> str:
    """`code` in a finding's text as monospace."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", _escape(text))


def _findings_html(findings: list[Finding]) -> str:
    parts = []
    for f in findings:
        mark = '<span style="color:#2e9d4f">✔</span>' if f.ok else '<span style="color:#d9822b">✘</span>'
        html = f"<p>{mark} <b>{_escape(f.title)}</b><br>{_inline_code(f.text)}"
        for command in f.fixes:
            html += f'<br><code style="white-space:pre-wrap">{_escape(command)}</code>'
        parts.append(html + "</p>")
    return "".join(parts)


def _details_text(report: dict) -> str:
    """The report as `studio doctor` prints it."""
    lines = []
    for key, value in report.items():
        if key == "gpus":
            if not value:
                lines.append(f"{'gpus':<22}none found")
            for i, g in enumerate(value):
                lines.append(f"{'gpu ' + str(i):<22}{g['name']}: {g['total_gib']} GiB ({g['free_gib']} free), "
                             f"compute {g['compute_capability']}, bf16 {'yes' if g['bf16'] else 'no'}")
        else:
            lines.append(f"{key:<22}{value}")
    return "\n".join(lines)


def show_on_first_run(parent: QWidget | None = None) -> DoctorDialog | None:
    """The check, the first time the studio starts for this user (then never again on its own)."""
    if not first_run_pending() or os.environ.get("STUDIO_STARTUP_EXIT"):
        return None
    dialog = DoctorDialog(parent)
    dialog.show()
    mark_first_run_done()
    return dialog
