"""The pages one by one: start-up time, the memory plan following every control, suggestions that
apply, the model card's warning, the data page (mapping, problems, export, drag and drop), downloads,
settings and the token, the GPU gauge, tooltips and the keyboard, light and dark, closing during a run."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QTimer, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QTextEdit,
)

from tests.ui.conftest import ROOT, close_window, make_window, pump, wait_until

GiB = 1024**3


# ---------------------------------------------------------------------------------------------
# Start-up
# ---------------------------------------------------------------------------------------------


def _startup_once(tmp_path: Path) -> tuple[float, dict]:
    probe = tmp_path / "probe.json"
    probe.unlink(missing_ok=True)
    env = dict(os.environ, STUDIO_STARTUP_PROBE=str(probe), STUDIO_STARTUP_EXIT="1")
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", "studio"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(probe.read_text())
    return data["painted_at"] - t0, data


def test_studio_without_arguments_paints_the_window_in_under_two_seconds(tmp_path):
    """`studio` (python -m studio) with no arguments opens the window; first paint before torch loads.
    The best of three starts (the machine is shared with other work)."""
    times = []
    for _ in range(3):
        elapsed, data = _startup_once(tmp_path)
        assert data["torch_loaded"] is False  # heavy imports are off the start-up path
        times.append(elapsed)
        if elapsed < 2.0:
            break
    print(f"process start → first paint: {', '.join(f'{t:.2f} s' for t in times)}")
    assert min(times) < 2.0, times


def test_the_window_starts_on_a_high_dpi_screen(tmp_path, monkeypatch):
    monkeypatch.setenv("QT_SCALE_FACTOR", "1.5")  # a 150% screen
    elapsed, data = _startup_once(tmp_path)
    assert data["painted_at"] > 0


# ---------------------------------------------------------------------------------------------
# Memory
# ---------------------------------------------------------------------------------------------


def _timed(action) -> float:
    t0 = time.perf_counter()
    action()
    return (time.perf_counter() - t0) * 1000


def test_every_control_updates_the_memory_plan_at_once(window):
    memory = window.page("memory")
    adapter = window.page("adapter")
    data = window.page("data")
    before = window.state.plan().total_bytes
    changes = {
        "rank": lambda: adapter.rank.setValue(64),
        "seq_len (data page)": lambda: data.seq_len.setValue(1024),
        "micro-batch": lambda: adapter.batch.setValue(16),
        "gradient checkpointing": lambda: adapter.grad_ckpt.setChecked(False),
        "precision": lambda: (adapter.precision.setCurrentIndex(adapter.precision.findData("16bit")),
                              adapter.precision.activated.emit(adapter.precision.currentIndex())),
        "all linear → attention only": lambda: adapter.attention_button.click(),
        "GPU size": lambda: memory.choose_gpu_gb(8),
    }
    totals = [before]
    for name, change in changes.items():
        elapsed = _timed(change)
        assert elapsed < 50, f"{name}: {elapsed:.1f} ms"
        assert memory.last_update_ms < 50
        total = window.state.plan().total_bytes
        bar_total = sum(c[1] for c in memory.bar.components)
        assert bar_total == total, name  # the bar shows the current plan, already
        totals.append(total)
    assert totals[1] > totals[0] and totals[2] > totals[1] and totals[3] > totals[2] and totals[4] > totals[3]
    assert window.state.config.training.seq_len == 1024 and adapter.adv_seq_len.value() == 1024  # both fields agree
    assert window.state.gpu.bytes == 8 * GiB and "8 GB" in memory.verdict_text()
    sizes = [memory.gpu.itemText(i) for i in range(memory.gpu.count())]
    expected = ["An 8 GB card", "A 12 GB card", "A 16 GB card", "A 24 GB card", "A 48 GB card", "An 80 GB card"]
    assert expected == [s for s in sizes if s in set(expected)]


def test_the_memory_options_reach_the_recipe_and_the_plan(window):
    adapter = window.page("adapter")
    state = window.state

    def frozen():
        return dict((c.name, c.bytes) for c in state.plan().components)["unquantized_weights"]

    # the loss in pieces and no fp32 copy are the defaults (the copy measured 4.9 GiB more at 1.0× the loss)
    assert adapter.chunked_loss.isChecked() and adapter.packing.isChecked() and not adapter.upcast_frozen.isChecked()
    needed, lean = state.plan().needed_bytes, frozen()
    adapter.chunked_loss.setChecked(False)
    assert not state.config.training.chunked_loss and state.plan().needed_bytes > needed
    adapter.upcast_frozen.setChecked(True)
    assert state.config.training.upcast_frozen and frozen() > lean
    adapter.packing.setChecked(False)
    assert state.config.training.packing == "off"
    adapter.packing.setChecked(True)
    assert state.config.training.packing == "auto"
    adapter.upcast_frozen.setChecked(False)
    adapter.chunked_loss.setChecked(True)
    assert state.config.training.chunked_loss and state.plan().needed_bytes == needed


def test_suggestions_are_buttons_that_make_it_fit(qapp, tmp_path):
    w = make_window(model="llama-3.1-8b", data=None, runs_dir=tmp_path / "runs")
    try:
        memory = w.page("memory")
        w.show_page("memory")
        memory.choose_gpu_gb(12)
        t = w.state.config.training
        t.batch_size, t.seq_len = 4, 4096
        w.state.changed()
        assert memory.verdict_text().startswith("Needs") and "more than a 12 GB card" in memory.verdict_text()
        buttons = memory.suggestion_buttons()
        assert buttons and all(b.toolTip() for b in buttons)
        first = w.state.suggestions()[0]
        rows = [memory.table.item(r, 0).text() for r in range(memory.table.rowCount())]
        assert rows[0].startswith("Full fine-tuning") and rows[1].startswith("LoRA, 16-bit") and "this run" in rows[3]
        assert memory.table.item(0, 2).text().startswith("no")  # full fine-tuning of 8B does not fit 12 GB
        buttons[0].click()
        pump(seconds=0.05)
        assert w.state.plan().total_bytes == first.total_bytes
        assert memory.verdict_text().startswith("Fits")
    finally:
        close_window(w)


def test_the_model_card_warns_when_the_model_cannot_fit_even_in_4bit(qapp, tmp_path):
    w = make_window(model="llama-3.1-70b", data=None, runs_dir=tmp_path / "runs")
    try:
        page = w.page("model")
        assert "Too large for a 24 GB card" in page.too_large_warning()
        assert "70" in page.card_title.text() and "Llama 3.1 Community License" in page.fields["license"].text()
        assert page.fields["size"].text().startswith("not downloaded")
        w.page("memory").choose_gpu_gb(80)
        assert page.too_large_warning() == ""
    finally:
        close_window(w)


def test_choosing_another_model_in_the_list_reads_its_card(window):
    page = window.page("model")
    page.search.setText("smollm2 135")
    visible = [page.tree.topLevelItem(i) for i in range(page.tree.topLevelItemCount()) if not page.tree.topLevelItem(i).isHidden()]
    assert [i.text(0) for i in visible] == ["SmolLM2 135M"]
    page.select_source("smollm2-135m")
    wait_until(lambda: window.state.model is not None and window.state.model.catalog_name == "smollm2-135m", 60, "the card")
    assert "134" in page.fields["parameters"].text()
    # leaving the demo swaps the CPU-sized training settings for the recipe's defaults
    assert window.state.config.training.seq_len == 2048 and window.state.config.training.batch_size == 1


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


def _drop(widget, path: Path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    widget.dropEvent(event)


def test_a_dropped_csv_gets_a_mapping_a_problems_table_and_an_export(window, tmp_path):
    path = tmp_path / "faq.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["question", "answer", "topic"])
        for i in range(30):
            writer.writerow([f"How often should I water plant number {i}?", f"Water plant {i} once a week.", "water"])
        writer.writerow(["What about this one?", "", "water"])  # an empty answer: dropped, with its line
    page = window.page("data")
    window.show_page("data")
    _drop(page, path)
    wait_until(lambda: window.state.data is not None and window.state.data.report["source"].endswith("faq.csv"), 60, "the CSV")
    report = window.state.data.report
    assert report["format"] == "prompt_completion" and report["rows"] == 30 and report["rows_dropped"] == 1
    assert not page.mapping_box.isHidden()
    assert page.mapping["prompt"].currentData() == "question" and page.mapping["response"].currentData() == "answer"
    assert "30 rows kept" in page.summary_label.text()
    rows = page.problems.rows()
    assert rows and any(p["line"] == 32 and "empty" in p["message"] for p in rows)
    assert all(p["fix"] for p in rows)
    page.problems.sortByColumn(1, Qt.SortOrder.DescendingOrder)
    lines = [p["line"] for p in page.problems.rows()]
    assert lines == sorted(lines, reverse=True)
    out = tmp_path / "problems.csv"
    assert page.problems.export_csv(out) == len(rows)
    with out.open(encoding="utf-8") as fh:
        exported = list(csv.DictReader(fh))
    assert exported[0].keys() >= {"line", "field", "message", "fix"} and len(exported) == len(rows)
    # map the columns by hand: the topic as the system prompt
    page.mapping["system"].setCurrentIndex(page.mapping["system"].findData("topic"))
    page.mapping["system"].activated.emit(page.mapping["system"].currentIndex())
    wait_until(lambda: window.state.data is not None and window.state.config.data.mapping
               and window.state.config.data.mapping.get("system") == "topic", 60, "the mapped data")
    assert window.state.config.data.mapping == {"prompt": "question", "response": "answer", "system": "topic"}


def test_the_sequence_length_moves_the_cut_and_the_share_it_truncates(window):
    page = window.page("data")
    view = window.state.data
    for seq in (128, 200, 1024):
        page.seq_len.setValue(seq)
        expected = sum(1 for n in view.lengths if n > seq) / len(view.lengths)
        assert page.truncated_share() == pytest.approx(expected)
        assert page.histogram.cut.value() == seq
        if expected:
            assert f"({100 * expected:.1f}%)" in page.truncation.text()
        else:
            assert "nothing is cut" in page.truncation.text()
    page.histogram.cut.setValue(300)
    page.histogram._dragged()  # what the end of a drag does
    assert window.state.config.training.seq_len == 304  # rounded to a multiple of 8


def test_the_cut_label_stays_inside_the_plot(window):
    """"cut at N" sits left of the line, except near the plot's left edge, where it would be clipped."""
    page = window.page("data")
    hist = page.histogram
    page.seq_len.setValue(128)  # the demo's rows are 100-300 tokens: 128 is in the left third
    assert hist.cut.label.anchors[0] == (0, 0)  # text to the right of the line
    page.seq_len.setValue(256)
    assert hist.cut.label.anchors[0] == (1, 0)  # text to the left of the line


def test_a_broken_file_lists_its_problems(window, tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"messages": [{"role": "user", "content": "hi"}]\n{not json}\n', encoding="utf-8")
    page = window.page("data")
    page.load(str(path))
    wait_until(lambda: window.state.data_error is not None or (window.state.data and "broken" in window.state.data.report["source"]),
               60, "the broken file")
    if window.state.data_error is not None:  # refused: the problems are still listed, with their lines
        assert page.summary_label.text().startswith(window.state.data_error[0][:20])
    assert page.problems.rows(), "the problems table lists what is wrong"
    assert any(p["line"] == 2 for p in page.problems.rows())


# ---------------------------------------------------------------------------------------------
# Model: drag and drop, download
# ---------------------------------------------------------------------------------------------


def test_a_dropped_model_folder_is_read(window):
    from studio.core.paths import demo_model_dir

    page = window.page("model")
    _drop(page, demo_model_dir())
    wait_until(lambda: window.state.config.model.source == str(demo_model_dir()) and window.state.model is not None
               and window.state.model.source == str(demo_model_dir()), 60, "the dropped folder")
    assert page.fields["where"].text() == str(demo_model_dir())


def test_download_shows_progress_and_can_be_cancelled(window, monkeypatch):
    from studio.core import download

    def fake_download(hub_id, *, on_progress=None, cancelled=lambda: False, include_pickle=False, **kw):
        total = 10_000_000
        for i in range(1, 200):
            if cancelled():
                raise download.DownloadCancelled(hub_id)
            on_progress(download.DownloadProgress(hub_id, i * 50_000, total, "model.safetensors", 2, 3))
            time.sleep(0.02)
        raise AssertionError("never cancelled")

    monkeypatch.setattr(download, "download_model", fake_download)
    page = window.page("model")
    window.show_page("model")
    assert not page.download_button.isEnabled() and "Offline" in page.download_button.toolTip()  # tests run offline
    monkeypatch.delenv("HF_HUB_OFFLINE")
    page.update_online()
    page.hub_id.setText("org/some-model")
    page.download_button.click()
    wait_until(lambda: page.download_bar.value() > 0, 10, "progress")
    assert not page.download_bar.isHidden() and not page.cancel_download_button.isHidden()
    assert "of 9.5 MB" in page.download_bar.format() or "MB" in page.download_bar.format()
    assert not page.download_button.isEnabled()
    page.cancel_download_button.click()
    wait_until(lambda: page.download_button.isEnabled(), 10, "the cancelled download to end")
    assert "cancelled" in page.download_label.text() and page.download_bar.isHidden()


# ---------------------------------------------------------------------------------------------
# Settings, token, GPU gauge
# ---------------------------------------------------------------------------------------------


def test_settings_keep_the_token_in_the_keyring_and_remote_code_off(window, monkeypatch, tmp_path):
    import keyring

    from studio.core import settings as st
    from studio.ui.settings_dialog import SettingsDialog
    from tests.core.test_settings import MemoryKeyring

    ring = MemoryKeyring()
    previous = keyring.get_keyring()
    keyring.set_keyring(ring)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(st, "_token_from_keyring_in_env", False)
    try:
        dialog = SettingsDialog(window.state, window)
        assert not dialog.trust.isChecked() and dialog.trust.toolTip() == st.TRUST_REMOTE_CODE_WARNING
        assert "runs that code on your computer" in dialog.trust_warning.text()
        dialog.token.setText("hf_test_secret_value")
        dialog.save_token_button.click()
        assert ring.store[(st.KEYRING_SERVICE, st.KEYRING_USER)] == "hf_test_secret_value"
        assert "hf_t…" in dialog.token_status.text() and dialog.token.text() == ""
        dialog.runs_dir.setText(str(tmp_path / "my-runs"))
        dialog.offline.setChecked(True)
        dialog.accept()
        assert window.state.settings.runs_dir == str(tmp_path / "my-runs") and window.state.settings.offline
        assert window.state.config.output.runs_dir == str(tmp_path / "my-runs")
        assert "hf_test" not in st.settings_path().read_text() and "hf_test" not in window.state.config.to_toml()
        assert os.environ.get("HF_HUB_OFFLINE")
    finally:
        os.environ.pop("HF_TOKEN", None)
        st.apply_offline(False)
        keyring.set_keyring(previous)


def test_the_status_bar_gauge_shows_a_gpu_and_hides_without_one(window):
    from studio.core.hardware import GPU

    gauge = window.gpu_gauge
    gauge.show_gpus([])
    assert gauge.isHidden()
    gauge.show_gpus([GPU(0, "NVIDIA RTX 4090", 24 * GiB, 20 * GiB, (8, 9), "nvml")])
    assert not gauge.isHidden() and gauge.label.text() == "NVIDIA RTX 4090: 4.0 GB / 24.0 GB"
    assert gauge.bar.value() == round(1000 * 4 / 24)


def test_detected_gpus_are_offered_for_the_plan(window):
    from studio.core.hardware import GPU

    window.state.set_gpus([GPU(0, "NVIDIA RTX 3090", 24 * GiB, 23 * GiB, (8, 6), "nvml")])
    memory = window.page("memory")
    assert memory.gpu.itemText(0).startswith("This computer: NVIDIA RTX 3090")
    assert window.state.gpu.detected and window.state.gpu.bytes == 23 * GiB
    assert "Found: NVIDIA RTX 3090" in memory.gpu_note.text()


# ---------------------------------------------------------------------------------------------
# Tooltips, keyboard, palettes, closing
# ---------------------------------------------------------------------------------------------

INTERACTIVE = (QAbstractButton, QLineEdit, QAbstractSpinBox, QComboBox, QAbstractItemView, QPlainTextEdit, QTextEdit)


def _part_of_another_control(widget) -> bool:
    """Qt's own sub-widgets: a combo box's popup and line edit, a spin box's editor, a tab bar's
    scroll arrows, a table's header and corner button."""
    from PySide6.QtWidgets import QHeaderView, QTabBar

    if isinstance(widget, QHeaderView):
        return True
    parent = widget.parent()
    if isinstance(widget, QAbstractButton) and isinstance(parent, (QAbstractItemView, QLineEdit)):
        return True
    while parent is not None:
        if isinstance(parent, (QComboBox, QAbstractSpinBox, QTabBar)):
            return True
        parent = parent.parent()
    return False


def test_every_control_has_a_tooltip(window):
    missing = []
    for key, page in window.pages.items():
        controls = [w for kind in INTERACTIVE for w in page.findChildren(kind)]
        for widget in controls:
            if _part_of_another_control(widget):
                continue
            if not widget.toolTip():
                text = widget.text() if hasattr(widget, "text") and callable(widget.text) else ""
                missing.append(f"{key}: {type(widget).__name__} {text!r}")
    assert not missing, missing
    assert all(window.steps.item(i).toolTip() for i in range(window.steps.count()) if window.steps.item(i).text())


def test_the_keyboard_reaches_every_page_and_control(window):
    for i, key in enumerate(("model", "data", "adapter", "memory", "train", "try", "runs")):
        QTest.keyClick(window, Qt.Key(Qt.Key.Key_1.value + i), Qt.KeyboardModifier.ControlModifier)
        pump(seconds=0.02)
        assert window.current_key() == key
    window.show_page("adapter")
    QTest.keyClick(window, Qt.Key.Key_Right, Qt.KeyboardModifier.AltModifier)
    pump(seconds=0.02)
    assert window.current_key() == "memory"
    # every enabled control on the adapter page takes the keyboard focus with Tab
    page = window.page("adapter")
    page.advanced.set_expanded(True)
    for widget in (page.rank, page.alpha, page.dropout, page.targets, page.lr, page.batch, page.preset_buttons["balanced"]):
        assert widget.focusPolicy() & Qt.FocusPolicy.TabFocus, widget
    assert window.steps.focusPolicy() & Qt.FocusPolicy.TabFocus


def test_dark_palette_when_the_system_is_dark(qapp, monkeypatch):
    from studio.ui.app import apply_theme
    from studio.ui.widgets.loss_plot import LossPlot

    monkeypatch.setenv("STUDIO_THEME", "dark")
    apply_theme(qapp)
    try:
        assert qapp.palette().color(qapp.palette().ColorRole.Window).lightness() < 80
        plot = LossPlot()
        pump(seconds=0.05)
        assert plot.view.backgroundBrush().color() == plot.palette().color(plot.palette().ColorRole.Base)
        plot.deleteLater()
    finally:
        monkeypatch.setenv("STUDIO_THEME", "light")
        apply_theme(qapp)
    assert qapp.palette().color(qapp.palette().ColorRole.Window).lightness() > 180


def test_closing_during_a_run_asks_whether_to_stop_or_leave_it(qapp, tmp_path, monkeypatch):
    from studio.ui.pages.train import TrainPage

    w = make_window(model=None, data=None, wait=False, runs_dir=tmp_path / "runs")
    w.close_policy = None
    monkeypatch.setattr(TrainPage, "running", property(lambda self: True))
    detached = []
    monkeypatch.setattr(TrainPage, "detach", lambda self: detached.append(True))

    def answer(text: str):
        def click():
            box = QApplication.activeModalWidget()
            assert isinstance(box, QMessageBox), box
            assert "still training" in box.text()
            next(b for b in box.buttons() if b.text() == text).click()
        QTimer.singleShot(100, click)

    answer("Cancel")
    w.close()
    assert w.isVisible() and not detached  # nothing happened: the window stays
    answer("Leave it running")
    w.close()
    assert not w.isVisible() and detached == [True]
    w.deleteLater()
    pump(seconds=0.05)


def test_the_adapter_page_counts_steps_as_the_worker_does(window):
    """15 rows with a tenth held out: the worker holds out round(1.5) = 2 rows and trains 13 steps of one row."""
    from studio.ui.state import DataView

    page = window.pages["adapter"]
    c = window.state.config
    c.data.eval_fraction = 0.1
    c.training.steps, c.training.epochs, c.training.batch_size, c.training.grad_accum = None, 1.0, 1, 1
    window.state.data = DataView({**window.state.data.report, "rows": 15})
    assert page.estimated_steps() == 13 == c.total_steps(15 - c.data.held_out_rows(15))
