"""The Data page's "From documents…": the dialog runs `studio data from-docs` in a real child process and
shows its parse report; the review grid decides pairs by key, highlights each quote in its source, and
"Use as training data" puts the accepted pairs on the Data page with the golden questions."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from tests.documents import files
from tests.ui.conftest import close_window, make_window, pump, wait_until

pytest.importorskip("pdfplumber", reason="the documents extra: pip install 'lora-studio[docs]'")


@pytest.fixture
def window(qapp, tmp_path):
    w = make_window(runs_dir=tmp_path / "runs")
    w.show_page("data")
    yield w
    close_window(w)


def test_the_review_grid_decides_by_key_highlights_quotes_and_makes_the_dataset(window, tmp_path):
    from studio.core.documents.review import REJECTED
    from studio.ui.documents.dialog import DocumentsDialog

    out = files.generated_folder(tmp_path)
    used = []
    dialog = DocumentsDialog(lambda train, golden: used.append((train, golden)), window)
    dialog.out.setText(str(out))
    dialog.show_results(json.loads((out / "report.json").read_text()))
    grid = dialog.grid
    assert grid.table.rowCount() == 4 and "2 pass every check" in grid.counts.text()
    assert "#ffe082" in grid.chunk.toHtml() and "every 3 days in summer" in grid.chunk.toPlainText()
    assert "refers to the text" in grid.table.item(2, 4).text()
    assert not dialog.use_button.isEnabled()
    grid.table.setFocus()
    grid.table.setCurrentCell(0, 1)
    QTest.keyClick(grid.table, Qt.Key.Key_A)
    assert grid.table.item(0, 0).text() == "✓ accepted" and grid.table.currentRow() == 1  # on to the next
    QTest.keyClick(grid.table, Qt.Key.Key_R)
    assert grid.table.item(1, 0).text() == "✗ rejected"
    grid.table.setCurrentCell(3, 1)
    assert "not in this text" in grid.chunk.toPlainText()  # a quote the source does not have is said
    grid.accept_passing()
    assert dialog.use_button.isEnabled() and dialog.use_note.text() == "1 accepted pair for training."
    grid.review.rows[0].side = "eval"  # were it from a held-out document: a golden question, no training row
    dialog._say_use()
    assert not dialog.use_button.isEnabled() and "from held-out documents: golden questions" in dialog.use_note.text()
    grid.review.rows[0].side = "train"
    dialog._say_use()
    grid.toggle_sample()
    assert grid.table.rowCount() == 2 and grid.sample_button.text().startswith("Show all")
    assert "of 2 of the 2 drawn decided, 1 rejected: about 50%" in grid.counts.text()  # r0 accepted, r1 rejected
    grid.table.setCurrentCell([r.id for r in grid.shown].index("r1"), 1)
    grid.decide(None)
    assert "of 1 of the 2 drawn decided, 0 rejected: about 0%" in grid.counts.text()
    grid.table.setCurrentCell([r.id for r in grid.shown].index("r1"), 1)
    grid.decide(REJECTED)
    dialog.use_dataset()
    assert used == [(out / "train.jsonl", None)]
    assert len((out / "train.jsonl").read_text().splitlines()) == 1
    window.page("data")._use_documents(out / "train.jsonl", None)
    wait_until(lambda: window.state.data is not None and window.state.config.data.source == str(out / "train.jsonl"),
               60, "the pairs loaded as data")


def test_the_dialog_runs_the_command_in_a_child_and_shows_what_it_read(window, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    files.markdown_file(folder / "orchid.md")
    files.scanned_pdf(folder / "scan.pdf")
    (folder / "scan.png").unlink()
    window.page("data").documents_button.click()
    dialog = window.page("data").documents
    dialog.folder.setText(str(folder))
    assert dialog.out.text().endswith("docs")
    dialog.out.setText(str(tmp_path / "out"))
    dialog.model.setCurrentText("demo")
    dialog.preview_button.click()
    assert not dialog.run_button.isEnabled() and dialog.stop_button.isEnabled()
    wait_until(lambda: dialog.process.state() == dialog.process.ProcessState.NotRunning, 240, "the command")
    pump(seconds=0.2)
    assert dialog.report.rowCount() == 2
    verdicts = {dialog.report.item(r, 0).text(): dialog.report.item(r, 4).text() for r in range(2)}
    assert "scanned document" in verdicts["scan.pdf"] and verdicts["orchid.md"].startswith("1 page")
    assert "1 of 1 parts done" in dialog.status.text() or "parts done" in dialog.status.text()
    assert dialog.run_button.isEnabled()
    dialog.close()


def test_without_the_documents_extra_the_dialog_and_the_cli_say_how_to_add_it(window, monkeypatch, capsys):
    import importlib.util

    from studio.cli import main
    from studio.ui.documents.dialog import DocumentsDialog

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pdfplumber" else real(name, *a))
    dialog = DocumentsDialog(lambda *_: None, window)
    assert "pdfplumber missing" in dialog.status.text() and "lora-studio[docs]" in dialog.status.text()
    assert not dialog.run_button.isEnabled() and not dialog.preview_button.isEnabled()
    assert main(["data", "from-docs", "docs", "--model", "demo", "--out", "out"]) != 0
    assert "lora-studio[docs]" in capsys.readouterr().err
    dialog.close()


def test_find_servers_asks_in_the_background_and_says_what_answers(window):
    from studio.ui.documents.dialog import DocumentsDialog

    dialog = DocumentsDialog(lambda *_: None, window)
    dialog.find_button.click()
    assert not dialog.find_button.isEnabled()  # the window stays responsive while the addresses are asked
    wait_until(lambda: dialog.find_button.isEnabled(), 60, "the servers looked for")
    assert dialog.servers_note.text().startswith("No server answers on this computer")  # none runs here
    dialog.close()
