"""The Export box's Weights choice (#19), with a real 8-step run of the demo model that kept checkpoints at
steps 4 and 8: the choice lists them, `choose_checkpoint` (the Scoreboard's "Export this checkpoint")
chooses one even before the list is read, and the export writes that checkpoint's weights."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from studio.core import runs
from tests.demo_runs import finished_demo_run
from tests.ui.conftest import close_window, make_window, pump, wait_until

pytestmark = pytest.mark.slow

LISTED = ["Final adapter (step 8)", "checkpoint-4 (step 4)", "checkpoint-8 (step 8)"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return finished_demo_run(tmp_path_factory.mktemp("export-ckpt-page-home"), "ckpt-page", steps=8, save_every=4)


@pytest.fixture
def window(qapp, run_dir):
    window = make_window(runs_dir=run_dir.parent)
    yield window
    close_window(window)


def _listed(panel) -> list[str]:
    combo = panel.weights.combo
    wait_until(lambda: combo.count() == 3, 30, "the run's weights")
    return [combo.itemText(i) for i in range(combo.count())]


def _weights(folder: Path) -> bytes:
    return (folder / "adapter_model.safetensors").read_bytes()


def test_the_weights_list_the_checkpoints_and_an_export_writes_the_chosen_one(window, run_dir, tmp_path):
    page = window.page("try")
    panel = page.exports
    window.state.select_run(run_dir)
    panel.choose_checkpoint(4)  # as the Scoreboard's button does: before the run's list is read
    window.show_page("try")
    assert _listed(panel) == LISTED
    assert panel.weights.chosen() == 4 and panel.weights.combo.currentText() == "checkpoint-4 (step 4)"
    assert "checkpoint" in panel.weights.combo.toolTip() and "final adapter" in panel.weights.combo.toolTip()
    assert panel.default_destination("adapter").name == "ckpt-page-checkpoint-4-adapter"

    target = tmp_path / "at-4"
    page.destination.setText(str(target))
    panel.export_buttons["adapter"].click()
    wait_until(lambda: not panel.exporting, 60, "the export")
    pump(seconds=0.05)
    assert "with checkpoint-4, step 4 of 8" in panel.export_status.text(), panel.export_status.text()
    assert _weights(target) == _weights(run_dir / runs.CHECKPOINTS / "checkpoint-4")
    assert _weights(target) != _weights(run_dir / runs.ADAPTER)

    window.state.select_run(run_dir)  # the same run chosen again keeps the choice
    wait_until(lambda: panel.weights.chosen() == 4 and panel.weights.combo.count() == 3, 30, "the list read again")
    panel.choose_checkpoint(None)
    assert panel.weights.chosen() is None and panel.default_destination("adapter").name == "ckpt-page-adapter"


def test_another_run_starts_on_its_final_adapter_and_a_checkpoint_gone_is_said(window, run_dir, tmp_path):
    panel = window.page("try").exports
    window.state.select_run(run_dir)
    window.show_page("try")
    assert _listed(panel) == LISTED
    panel.choose_checkpoint(8)
    other = run_dir.parent / "ckpt-page-copy"
    shutil.copytree(run_dir, other, ignore=shutil.ignore_patterns("worker.lock"))
    shutil.rmtree(other / runs.CHECKPOINTS / "checkpoint-4")
    try:
        window.state.select_run(other)
        wait_until(lambda: panel.weights.combo.count() == 2, 30, "the other run's weights")
        assert panel.weights.chosen() is None and panel.weights.note.isHidden()
        panel.choose_checkpoint(4)  # deleted since the Scoreboard was read
        assert panel.weights.chosen() is None and not panel.weights.note.isHidden()
        assert "no longer keeps checkpoint-4" in panel.weights.note.text()
    finally:
        window.state.select_run(run_dir)
        shutil.rmtree(other)
