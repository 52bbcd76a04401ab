"""The window's export keeps the user's files: when files of theirs are in the way it names them and
lets the user choose to overwrite them; everything else in the folder stays (a real run of the demo model)."""

from __future__ import annotations

from pathlib import Path

import pytest

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
