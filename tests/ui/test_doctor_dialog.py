"""The computer check (first start, and Help ▸ Check this computer): whether a GPU was found and its
memory, whether 4-bit training is available, what to do if not, and "Copy report" — shown once on
the first start, reachable from the Help menu, never blocking the window."""

from __future__ import annotations

import json
import time

from PySide6.QtCore import Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from studio.ui import doctor_dialog as dd
from tests.ui.conftest import close_window, pump, wait_until

BASE = {"studio": "0.1.0", "python": "3.11.7", "platform": "Linux-6.1-x86_64", "transformers": "5.23.0",
        "peft": "0.21.2", "datasets": "5.2.0", "accelerate": "1.15.0", "qt": "PySide6 6.12.0, Qt 6.12.0",
        "qt_platform": "xcb", "runs_folder": "/home/u/.local/share/lora-studio/runs",
        "settings_folder": "/home/u/.config/lora-studio", "frozen": False}
CPU_ONLY = dict(BASE, torch="2.13.0+cpu", cuda_build="none (CPU build)", cuda_available=False, bitsandbytes="0.50.2",
                bitsandbytes_backend="cpu (4-bit works, slowly; no GPU found)", gpus=[])
RTX_4090 = {"name": "NVIDIA GeForce RTX 4090", "total_gib": 23.99, "free_gib": 23.5, "compute_capability": "8.9", "bf16": True}
GPU_READY = dict(BASE, torch="2.13.0+cu128", cuda_build="12.8", cuda_available=True, bitsandbytes="0.50.2",
                 bitsandbytes_backend="cuda (4-bit training on the GPU)", gpus=[RTX_4090], nvidia_driver="570.86",
                 cuda_driver="12.8", nvidia_smi="/usr/bin/nvidia-smi")


def _text(verdict: dd.Verdict) -> str:
    return verdict.headline + "\n" + "\n".join(f"{f.title}\n{f.text}\n" + "\n".join(f.fixes) for f in verdict.findings)


# ---------------------------------------------------------------------------------------------
# What the report means
# ---------------------------------------------------------------------------------------------


def test_a_computer_without_a_gpu_is_told_so_plainly():
    verdict = dd.explain(CPU_ONLY)
    assert not verdict.four_bit_ready
    assert verdict.headline.startswith("No NVIDIA GPU was found")
    gpu, training = verdict.findings[0], verdict.findings[1]
    assert (gpu.key, gpu.ok, gpu.title) == ("gpu", False, "No NVIDIA GPU found")
    assert "install its driver" in gpu.text and "nvidia-smi" in gpu.text
    assert gpu.fixes[0].endswith("-m pip install --force-reinstall torch==2.13.0 --index-url "
                                 "https://download.pytorch.org/whl/cu128")  # after the driver: the CUDA build
    assert training.key == "training" and not training.ok and "not available" in training.title
    assert len(verdict.findings) == 2  # bitsandbytes loads (CPU backend): nothing to fix there


def test_a_ready_gpu_shows_its_name_memory_and_4bit_training():
    verdict = dd.explain(GPU_READY)
    assert verdict.four_bit_ready
    assert verdict.headline == "This computer is ready for 4-bit training on the GPU."
    gpu, training = verdict.findings
    assert gpu.ok and gpu.title == "GPU: NVIDIA GeForce RTX 4090"
    assert "24.0 GiB of memory" in gpu.text and "Driver 570.86 (CUDA 12.8)" in gpu.text
    assert training.ok and training.title == "4-bit training (QLoRA) on the GPU: available"
    assert not gpu.fixes and not training.fixes


def test_a_gpu_with_the_cpu_build_of_pytorch_gets_the_exact_pip_command(monkeypatch):
    monkeypatch.setattr(dd.sys, "executable", "/home/u/.local/share/lora-studio/app/venv/bin/python")
    report = dict(GPU_READY, torch="2.13.0+cpu", cuda_build="none (CPU build)", cuda_available=False,
                  bitsandbytes_backend="cpu (4-bit works, slowly; no GPU found)")
    verdict = dd.explain(report)
    assert not verdict.four_bit_ready
    assert verdict.headline.startswith("A GPU was found, but 4-bit training on it is not available")
    training = verdict.findings[1]
    assert "PyTorch is a CPU build" in training.title
    assert training.fixes == ("/home/u/.local/share/lora-studio/app/venv/bin/python -m pip install --force-reinstall "
                              "torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128",)


def test_the_cuda_index_follows_the_driver():
    assert dd.torch_index_tag("12.2") == "cu126"  # CUDA 12 minor-version compatibility
    assert dd.torch_index_tag("12.6") == "cu126"
    assert dd.torch_index_tag("12.9") == "cu128"
    assert dd.torch_index_tag("13.0") == "cu130"
    assert dd.torch_index_tag(None) == "cu128"  # unknown driver: what a driver installed today supports


def test_a_driver_too_old_for_the_cuda_build_says_update_the_driver():
    report = dict(GPU_READY, cuda_available=False, nvidia_driver="470.82", cuda_driver="11.4",
                  bitsandbytes_backend="cpu (4-bit works, slowly; no GPU found)")
    training = dd.explain(report).findings[1]
    assert "PyTorch cannot reach the GPU" in training.title
    assert "Update the NVIDIA driver" in training.text and "470.82" in training.text


def test_a_broken_bitsandbytes_gets_the_reinstall_command():
    report = dict(GPU_READY, bitsandbytes="not importable: libcudart.so.12: cannot open shared object file",
                  bitsandbytes_backend="unavailable: libcudart.so.12")
    verdict = dd.explain(report)
    assert not verdict.four_bit_ready
    fix = [f for f in verdict.findings if f.key == "bitsandbytes"][0]
    assert "libcudart" in fix.text
    assert fix.fixes[0].endswith('-m pip install --force-reinstall "bitsandbytes>=0.45"')


def test_the_self_contained_app_points_to_the_installer_for_gpu_training():
    report = dict(GPU_READY, torch="2.13.0+cpu", cuda_build="none (CPU build)", cuda_available=False,
                  bitsandbytes_backend="cpu (4-bit works, slowly; no GPU found)", frozen=True)
    training = dd.explain(report).findings[1]
    assert "install.sh" in training.text and not training.fixes  # no pip inside a frozen app


# ---------------------------------------------------------------------------------------------
# The dialog
# ---------------------------------------------------------------------------------------------


def test_the_dialog_shows_this_computer_and_copy_puts_the_report_on_the_clipboard(qapp):
    dialog = dd.DoctorDialog()
    dialog.show()
    try:
        assert not dialog.copy_button.isEnabled()  # nothing to copy until the check is done
        wait_until(lambda: dialog.report is not None, 180, "the computer check")
        report = dialog.report
        assert report["studio"] and "torch" in report and "gpus" in report and report["frozen"] is False
        assert dialog.verdict == dd.explain(report)
        assert dialog.headline.text() == dialog.verdict.headline
        if not report["gpus"]:  # this machine: CPU only
            assert "No NVIDIA GPU found" in dialog.findings_label.text()
            assert "4-bit training on the GPU: not available" in dialog.findings_label.text()
        assert "runs_folder" in dialog.details.toPlainText()
        QApplication.clipboard().clear()
        QTest.mouseClick(dialog.copy_button, Qt.MouseButton.LeftButton)
        copied = json.loads(QApplication.clipboard().text())
        assert copied == json.loads(dd.report_text(report))
        assert copied["torch"] == report["torch"] and copied["bitsandbytes_backend"] == report["bitsandbytes_backend"]
        assert dialog.copy_button.text() == "Copied ✓"
    finally:
        dialog.close()
        dialog.deleteLater()
        pump(seconds=0.05)


def test_the_check_runs_in_the_background_and_never_blocks_the_window(qapp):
    def slow_report():
        time.sleep(1.0)
        return dict(CPU_ONLY)

    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start(20)
    dialog = dd.DoctorDialog(collect=slow_report)
    dialog.show()
    try:
        assert dialog.checking and dialog.report is None  # the constructor returned at once
        wait_until(lambda: dialog.report is not None, 30, "the slow check")
        assert len(ticks) >= 20  # the event loop kept running while the report was being made
        assert max(b - a for a, b in zip(ticks, ticks[1:])) < 0.5
        assert dialog.headline.text().startswith("No NVIDIA GPU was found")
    finally:
        timer.stop()
        dialog.close()
        dialog.deleteLater()
        pump(seconds=0.05)


def test_a_failing_check_says_so_and_can_still_be_copied(qapp):
    def broken():
        raise RuntimeError("NVML exploded")

    dialog = dd.DoctorDialog(collect=broken)
    try:
        wait_until(lambda: dialog.report is not None, 30, "the failed check")
        assert dialog.headline.text() == "The check itself failed."
        assert "NVML exploded" in dialog.findings_label.text()
        assert dialog.copy_button.isEnabled()
    finally:
        dialog.deleteLater()
        pump(seconds=0.05)


# ---------------------------------------------------------------------------------------------
# In the window: once on the first start, and from the Help menu
# ---------------------------------------------------------------------------------------------


def _studio_window(*, first_run_check: bool):
    """The window as `studio` opens it (app.run turns the first-run check on before showing it)."""
    from studio.core.settings import Settings
    from studio.ui.main_window import MainWindow
    from studio.ui.presets import first_run_config
    from studio.ui.state import StudioState

    window = MainWindow(StudioState(first_run_config("demo", "demo"), Settings()), model="demo", data="demo")
    window.close_policy = "stop"
    window.first_run_check = first_run_check
    window.show()
    return window


def test_the_first_start_shows_the_check_once_and_help_reaches_it_again(qapp):
    assert dd.first_run_pending()  # a new user: the settings folder is empty
    window = _studio_window(first_run_check=True)
    try:
        dialog = wait_until(lambda: window.doctor_dialog, 30, "the first-run check")
        assert dialog.isVisible() and not dialog.isModal()
        assert not dd.first_run_pending() and dd.first_run_marker().is_file()
        wait_until(lambda: dialog.report is not None, 180, "the computer check")
        dialog.close()
    finally:
        close_window(window)

    second = _studio_window(first_run_check=True)
    try:
        wait_until(lambda: second._painted, 30, "the first paint")
        pump(seconds=1.0)  # longer than the check's delay after the first paint
        assert second.doctor_dialog is None  # shown once, then not again

        help_menu = [a.menu() for a in second.menuBar().actions() if a.text() == "&Help"][0]
        action = [a for a in help_menu.actions() if a.text() == "&Check this computer…"][0]
        assert action is second.doctor_action and action.toolTip()
        action.trigger()
        dialog = second.doctor_dialog
        assert dialog is not None and dialog.isVisible()
        wait_until(lambda: dialog.report is not None, 180, "the computer check from the Help menu")
        assert "GPU" in dialog.findings_label.text()
        dialog.close()
        # opening it again runs a new check in the same dialog
        assert second.open_doctor() is dialog and dialog.checking
        wait_until(lambda: not dialog.checking, 180, "the second check")
        dialog.close()
    finally:
        close_window(second)


def test_the_studio_window_without_the_first_run_flag_shows_no_check(qapp):
    window = _studio_window(first_run_check=False)
    try:
        wait_until(lambda: window._painted, 30, "the first paint")
        pump(seconds=1.0)
        assert window.doctor_dialog is None and dd.first_run_pending()
    finally:
        close_window(window)
