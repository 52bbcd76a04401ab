"""The window's export, with a real run of the demo model. It keeps the user's files: when files of
theirs are in the way it names them and lets the user choose to overwrite them; everything else in the
folder stays. GGUF through the panel (issue #16): the q8_0 file is written and checked in llama.cpp,
with a progress bar; Cancel leaves no GGUF file behind; the Try page's third column asks the exported
file; without the optional packages the GGUF controls are off and say what to install."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication

from studio.core.export.to_gguf import INSTALL
from tests.demo_runs import finished_demo_run
from tests.ui.conftest import close_window, make_window, pump, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """One finished QLoRA run of the demo model, trained in-process by the worker (6 steps on the CPU)."""
    return finished_demo_run(tmp_path_factory.mktemp("export-page-home"), "export-page")


def _export(page, target: Path, *, button=None) -> None:
    if button is None:
        page.destination.setText(str(target))
        page.export_buttons["adapter"].click()
    else:
        button.click()
    wait_until(lambda: page._export_task is not None and not page._export_task.running, 120, "the export")
    pump(seconds=0.05)


def test_files_in_the_way_are_named_and_overwritten_only_when_the_user_says_so(qapp, finished_run, tmp_path):
    window = make_window(runs_dir=finished_run.parent)
    try:
        page = window.page("try")
        window.state.select_run(finished_run)
        window.show_page("try")
        target = tmp_path / "plant-doctor"
        _export(page, target)
        assert (target / "adapter_model.safetensors").is_file(), page.export_status.text()
        (target / "README.md").write_text("my own words about this model")  # the model card, rewritten by the user
        (target / "notes.txt").write_text("mine")

        _export(page, target)  # again, into the same folder
        status = page.export_status.text()
        assert "README.md" in status and "changed since the earlier export" in status, status
        assert "Overwrite and export" in status and not page.overwrite_button.isHidden()
        assert (target / "README.md").read_text() == "my own words about this model"  # nothing was written

        _export(page, target, button=page.overwrite_button)  # the user chooses to overwrite it
        status = page.export_status.text()
        assert "LoRA Studio" in (target / "README.md").read_text(), status
        assert (target / "notes.txt").read_text() == "mine"
        assert "Kept 1 file of yours" in status and "notes.txt" in status and "README.md" in status
        assert page.overwrite_button.isHidden() and page.last_export == target
    finally:
        close_window(window)


# ---- GGUF (#16) ----


@pytest.fixture(scope="module")
def gguf_window(qapp, finished_run):
    """The window on the Try page with the finished run chosen."""
    window = make_window(runs_dir=finished_run.parent)
    window.state.select_run(finished_run)
    window.show_page("try")
    pump(seconds=0.05)
    yield window
    close_window(window)


@pytest.fixture(scope="module")
def q8_export(gguf_window, tmp_path_factory):
    """q8_0 exported through the panel, as a user does it: (the folder, the progress the bar was fed)."""
    page = gguf_window.page("try")
    panel = page.exports
    wait_until(lambda: "·" in panel.gguf_boxes["q8_0"].text(), 30, "the GGUF sizes")
    assert panel.gguf_boxes["q4_k_m"].isChecked() and not panel.gguf_boxes["q8_0"].isChecked()  # the default
    panel.gguf_boxes["q4_k_m"].setChecked(False)
    panel.gguf_boxes["q8_0"].setChecked(True)
    target = tmp_path_factory.mktemp("gguf") / "plant-doctor-gguf"
    page.destination.setText(str(target))
    panel.export_buttons["gguf"].click()
    assert not panel.export_progress.isHidden() and not panel.cancel_button.isHidden() and panel.cancel_button.isEnabled()
    seen: list[tuple[str, float]] = []
    panel.export_task.progressed.connect(seen.append)
    wait_until(lambda: not panel.exporting, 180, "the GGUF export")
    pump(seconds=0.05)
    return target, seen


def test_a_q8_0_export_through_the_panel_is_written_and_checked_in_llama_cpp(gguf_window, q8_export):
    target, seen = q8_export
    panel = gguf_window.page("try").exports
    assert (target / "export-page-q8_0.gguf").is_file(), panel.export_status.text()
    assert "Checked in llama.cpp" in panel.gguf_checks.text() and "CHECK FAILED" not in panel.gguf_checks.text()
    assert not panel.gguf_checks.isHidden() and "export-page-q8_0.gguf" in panel.gguf_checks.text()
    assert [f for _, f in seen] == sorted(f for _, f in seen) and seen[-1][1] == 1.0  # the bar only moves forward
    assert any("llama.cpp" in message for message, _ in seen)
    assert panel.export_progress.isHidden() and panel.cancel_button.isHidden()
    assert panel.export_buttons["gguf"].isEnabled()
    size = panel.gguf_boxes["q8_0"].text().split("·")[1].strip()
    assert size.endswith(("KB", "MB", "GB")), panel.gguf_boxes["q8_0"].text()


def test_the_third_column_answers_with_the_exported_gguf_file(gguf_window, q8_export):
    page = gguf_window.page("try")
    column = page.gguf_column
    target, _ = q8_export
    assert column.combo.currentText() == "export-page-q8_0.gguf"  # handed over by the export
    assert "q8_0" in column.title() and page.ask_button.text() == "&Ask all three"
    assert column.chosen().path == target / "export-page-q8_0.gguf"
    page.prompt.setPlainText("How much water does a prayer plant need?")
    page.max_tokens.setValue(12)
    page.ask_button.click()
    wait_until(lambda: not page._asking(), 120, "the three answers")
    pump(seconds=0.05)
    assert page.base_view.toPlainText().strip() and page.adapter_view.toPlainText().strip()
    assert column.view.toPlainText().strip(), column.status.text()
    assert column.view.toPlainText() == column.answer
    assert column.status.text().startswith("llama.cpp answered in "), column.status.text()

    column.choose_file(target / "export-page-q8_0.gguf")  # what the file dialog hands over: the same file, once
    assert column.combo.count() == 1 and column.chosen().quant == "q8_0"
    wait_until(lambda: not page._asking(), 60, "the file's answer to the question on screen")
    assert column.view.toPlainText().strip()


def test_cancel_during_a_gguf_export_leaves_no_gguf_file(gguf_window, tmp_path):
    page = gguf_window.page("try")
    panel = page.exports
    for name, check in panel.gguf_boxes.items():
        check.setChecked(name == "q4_k_m")
    target = tmp_path / "cancelled"
    page.destination.setText(str(target))
    panel.export_buttons["gguf"].click()
    # the files are written and llama.cpp is checking them (a child process) when the user cancels
    wait_until(lambda: panel.export_progress.value() >= 75 or not panel.exporting, 120, "the check in llama.cpp")
    assert panel.exporting, panel.export_status.text()
    panel.cancel_button.click()
    assert not panel.cancel_button.isEnabled() and "Cancelling" in panel.export_status.text()
    wait_until(lambda: not panel.exporting, 30, "the export to stop")
    pump(seconds=0.05)
    assert "Export cancelled: nothing was written" in panel.export_status.text(), panel.export_status.text()
    assert not target.exists() or not list(target.rglob("*.gguf")), sorted(target.rglob("*"))
    assert not (target / "studio-export.json").exists()
    assert panel.cancel_button.isHidden() and panel.export_buttons["gguf"].isEnabled()


def test_without_the_gguf_packages_the_controls_are_off_and_say_what_to_install(gguf_window, monkeypatch):
    """llama-cpp-python "not installed": the core's own missing_dependency() says so."""
    from studio.ui.pages.export_panel import ExportPanel

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llama_cpp" else find_spec(name, *a))
    panel = ExportPanel(gguf_window.state)
    try:
        panel.enable(True)
        panel.show()
        pump(seconds=0.05)
        assert not panel.gguf_missing.isHidden() and INSTALL in panel.gguf_missing.text()
        assert "llama-cpp-python" in panel.gguf_missing.text()
        assert panel.gguf_missing.textInteractionFlags() & panel.gguf_missing.textInteractionFlags().TextSelectableByMouse
        assert not panel.export_buttons["gguf"].isEnabled() and panel.export_buttons["adapter"].isEnabled()
        assert not any(c.isEnabled() for c in (*panel.gguf_boxes.values(), panel.lmstudio_box, panel.ollama_box))
        panel.copy_install_button.click()
        assert QApplication.clipboard().text() == INSTALL
    finally:
        panel.deleteLater()
        pump(seconds=0.05)
