"""The Data page with the user's own files: columns it does not recognise are mapped in the window,
a file that fails leaves nothing of the previous one on screen, messages use the window's words,
counts read as English, file dialogs open in the last data folder, and the mapping fits at 1024 px.
Each test writes its own files (CSV with the csv module, Parquet with pyarrow, JSON Lines by hand)."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QComboBox,
    QFileDialog,
    QLabel,
    QWidget,
)

from studio.core.recipe import RunConfig
from studio.core.settings import load_settings
from tests.ui.conftest import pump, wait_until

ROWS = [("Wie gieße ich einen Farn? シダの水やり", "Keep the soil moist, not wet."),
        ("How much light does a cactus need?", "Full sun, at least six hours a day."),
        ("When should I repot a monstera?", "In spring, when roots circle the pot.")]


def write_csv(path: Path, header, rows) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def load_and_wait(window, path) -> None:
    """Load `path` on the Data page and wait until the page shows its report or its failure."""
    done = []
    window.state.data_changed.connect(lambda: done.append(1))
    window.page("data").load(str(path))
    wait_until(lambda: done and window.state.config.data.source == str(path), 60, f"{Path(path).name} to load")


def choose(combo: QComboBox, column: str | None) -> None:
    """What a click on a choice does: select it and emit `activated`."""
    combo.setCurrentIndex(combo.findData(column))
    combo.activated.emit(combo.currentIndex())


def items(combo: QComboBox) -> list:
    return [combo.itemData(i) for i in range(combo.count())]


def shown_texts(page: QWidget) -> str:
    """Every text the page shows: labels, tab titles, and the problems table's cells."""
    texts = [w.text() for w in page.findChildren(QLabel) if w.isVisible()]
    texts += [page.tabs.tabText(i) for i in range(page.tabs.count())]
    texts += [f"{p['message']} {p['fix']}" for p in page.problems.rows()]
    return "\n".join(texts)


# ---------------------------------------------------------------------------------------------
# 1. Column mapping in the window
# ---------------------------------------------------------------------------------------------


def test_a_csv_with_unknown_columns_is_mapped_with_pickers_of_its_own_columns(window, tmp_path):
    page = window.page("data")
    window.show_page("data")
    load_and_wait(window, write_csv(tmp_path / "pflege.csv", ["foo", "bar"], ROWS))
    assert window.state.data is None  # not readable until the columns are said
    assert not page.mapping_box.isHidden()
    for role in ("prompt", "response", "system"):
        assert items(page.mapping[role]) == [None, "foo", "bar"], role  # this file's columns, not the demo's
    assert page.pickers.previews["prompt"].full_text() == "Choose the column."
    assert page.mapping["prompt"].itemData(1, Qt.ItemDataRole.ToolTipRole) == f"“{ROWS[0][0]}”"
    assert "column pickers" in page.advice_label.text() and "--map" not in shown_texts(page)

    choose(page.mapping["prompt"], "foo")
    assert page.pickers.previews["prompt"].full_text() == f"“{ROWS[0][0]}”"
    assert window.state.config.data.mapping is None  # the answer column is still missing: nothing reloads

    started = time.monotonic()
    choose(page.mapping["response"], "bar")
    assert time.monotonic() - started < 0.5 and page.busy.isVisible()  # read again in the background
    wait_until(lambda: window.state.data is not None, 60, "the mapped CSV")
    assert page.advice_label.isHidden()  # the advice was for the file before it was mapped
    assert window.state.config.data.mapping == {"prompt": "foo", "response": "bar"}
    window.state.snapshot().save(tmp_path / "run.toml")  # what a run keeps and trains with
    assert RunConfig.load(tmp_path / "run.toml").data.mapping == {"prompt": "foo", "response": "bar"}
    view = page.example_views[0]
    assert ROWS[0][0] in view.toPlainText() and view.trained_text().startswith(ROWS[0][1])
    assert page.mapping["prompt"].currentData() == "foo" and page.mapping["response"].currentData() == "bar"

    # another choice renders the example again: the question becomes the answer to learn
    choose(page.mapping["prompt"], "bar")
    choose(page.mapping["response"], "foo")
    wait_until(lambda: window.state.config.data.mapping == {"prompt": "bar", "response": "foo"} and window.state.data
               and window.state.data.report["mapping"] == {"prompt": "bar", "response": "foo"}, 60, "the swapped mapping")
    assert page.example_views[0].trained_text().startswith(ROWS[0][0])


def test_a_parquet_file_with_unknown_columns_offers_its_columns_and_first_row(window, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist([{"frage": q, "antwort": a, "nummer": i + 7} for i, (q, a) in enumerate(ROWS)])
    pq.write_table(table, tmp_path / "pflege.parquet")
    page = window.page("data")
    load_and_wait(window, tmp_path / "pflege.parquet")
    assert items(page.mapping["response"]) == [None, "frage", "antwort", "nummer"]
    choose(page.mapping["system"], "nummer")
    assert page.pickers.previews["system"].full_text() == "“7”"
    choose(page.mapping["prompt"], "frage")
    choose(page.mapping["response"], "antwort")
    wait_until(lambda: window.state.data is not None, 60, "the mapped Parquet file")
    assert window.state.data.report["rows"] == 3
    assert window.state.config.data.mapping == {"prompt": "frage", "response": "antwort", "system": "nummer"}


def test_pickers_follow_the_file_and_the_format(window, tmp_path):
    page = window.page("data")
    load_and_wait(window, write_csv(tmp_path / "faq.csv", ["question", "answer", "topic"], [(q, a, "care") for q, a in ROWS]))
    assert items(page.mapping["prompt"]) == [None, "question", "answer", "topic"]
    assert page.mapping["prompt"].currentData() == "question" and page.mapping["response"].currentData() == "answer"
    notes = [(f"{q} {a}", i) for i, (q, a) in enumerate(ROWS)]
    load_and_wait(window, write_csv(tmp_path / "notes.csv", ["notiz", "nr"], notes))
    assert items(page.mapping["prompt"]) == [None, "notiz", "nr"]  # this file's columns, not the last file's
    assert page.mapping["prompt"].currentData() is None
    # plain text to continue pretraining on: the format asks for one column, the text
    page.format.setCurrentIndex(page.format.findData("text"))
    page.format.activated.emit(page.format.currentIndex())
    wait_until(lambda: window.state.data_failure is not None and page.pickers.roles_shown() == ["text"], 60, "the text picker")
    assert "which column holds the text" in page.advice_label.text()
    choose(page.mapping["text"], "notiz")
    wait_until(lambda: window.state.data is not None, 60, "the notes as text")
    assert window.state.data.report["format"] == "text" and window.state.config.data.mapping == {"text": "notiz"}
    assert page.example_views[0].trained_text().startswith(notes[0][0])


# ---------------------------------------------------------------------------------------------
# 2. Nothing stale after a failed load
# ---------------------------------------------------------------------------------------------


def test_a_file_that_fails_leaves_nothing_of_the_previous_file(window, tmp_path):
    page = window.page("data")
    assert page.example_tabs.count() and page.histogram.counts and page.problem_counts.text() == "No problems found."
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"prompt": "a", "completion": "b"}\n{"prompt": "x" "completion": "y"}\n', encoding="utf-8")
    page.load(str(broken))
    # at once, while the new file is read: the demo's report is gone
    assert page.example_tabs.count() == 0 and page.histogram.counts == [] and page.truncation.text() == ""
    wait_until(lambda: window.state.data_failure is not None, 60, "the broken file")
    assert page.format.itemText(0) == "Detected automatically"  # not the demo's "Detected: messages"
    assert page.problem_counts.text() == "1 broken line"  # not "No problems found." under a fatal problem
    assert [p["line"] for p in page.problems.rows()] == [2]
    assert page.summary() == "problem with the data"

    load_and_wait(window, write_csv(tmp_path / "cols.csv", ["foo", "bar"], ROWS))
    assert not page.mapping_box.isHidden()
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    load_and_wait(window, empty)
    assert page.mapping_box.isHidden()  # the CSV's pickers belong to the CSV
    assert page.problem_counts.text() == "1 empty file"  # not the broken file's "1 broken line"
    assert [p["kind"] for p in page.problems.rows()] == ["empty_file"]
    assert page.example_tabs.count() == 0 and page.histogram.counts == []
    assert "empty.jsonl is empty" in page.summary_label.text()

    noise = tmp_path / "noise.jsonl"
    noise.write_bytes(bytes(range(128, 256)) * 40 + b"\x00\x81\xfe")  # neither UTF-8 nor any encoding
    load_and_wait(window, noise)
    assert [p["kind"] for p in page.problems.rows()] == ["encoding"]
    assert page.problem_counts.text() == "1 encoding problem"


# ---------------------------------------------------------------------------------------------
# 10. The window's own words
# ---------------------------------------------------------------------------------------------


def test_messages_name_the_windows_controls_and_json_errors_in_plain_words(window, tmp_path):
    page = window.page("data")
    path = tmp_path / "faq.jsonl"
    good = [json.dumps({"prompt": q, "completion": a}, ensure_ascii=False) for q, a in ROWS]
    path.write_text("\n".join([good[0], '{"prompt": "Why do leaves yellow?" "completion": "Too much water."}', good[1]]) + "\n",
                    encoding="utf-8")
    load_and_wait(window, path)
    text = shown_texts(page)
    assert "Line 2 is cut off or has a missing comma (at character 36)" in page.summary_label.text()
    assert page.advice_label.text() == "Fix or delete this line, or turn on Skip broken lines to leave it out."
    assert page.problems.rows()[0]["fix"] == "Fix or delete this line, or turn on Skip broken lines to leave it out."
    assert "--" not in text and "delimiter" not in text and "JSONDecodeError" not in text

    page.skip_bad.setChecked(True)  # what the message says to do
    wait_until(lambda: window.state.data is not None, 60, "the file without its broken line")
    assert window.state.data.report["rows_skipped"] == 1
    assert "1 broken line skipped" in page.summary_label.text()


# ---------------------------------------------------------------------------------------------
# Polish: plurals, the last data folder, 1024 px
# ---------------------------------------------------------------------------------------------


def test_one_row_is_one_row(window, tmp_path):
    page = window.page("data")
    load_and_wait(window, write_csv(tmp_path / "one.csv", ["question", "answer"], ROWS[:1]))
    assert "1 row kept" in page.summary_label.text() and "1 rows" not in page.summary_label.text()
    assert page.summary() == "1 row, prompt_completion"
    page.seq_len.setValue(16)
    assert page.truncation.text().startswith("1 row (100.0%) is longer than 16 tokens")


def _dialog_folder(open_dialog) -> str:
    """Open a real file dialog, read the folder it shows, and close it."""
    seen = []

    def look():
        dialog = QApplication.activeModalWidget()
        if isinstance(dialog, QFileDialog):
            seen.append(Path(dialog.directory().absolutePath()))
            dialog.reject()
        else:
            QTimer.singleShot(50, look)

    QTimer.singleShot(50, look)
    open_dialog()
    return seen[0]


def test_file_dialogs_open_in_the_last_data_folder(window, tmp_path):
    folder = tmp_path / "meine daten"
    folder.mkdir()
    page = window.page("data")
    load_and_wait(window, write_csv(folder / "faq.csv", ["question", "answer"], ROWS + [("No answer yet?", "")]))
    assert load_settings().data_dir == str(folder.resolve())  # kept for the next session too
    assert _dialog_folder(page.open_button.click) == folder.resolve()
    assert _dialog_folder(page.export_problems_button.click) == folder.resolve()


def _overflow(page: QWidget) -> list[str]:
    found = []
    for widget in page.findChildren(QWidget):
        if not widget.isVisible() or isinstance(widget.parentWidget(), QComboBox):
            continue
        right = widget.mapTo(page, QPoint(0, 0)).x() + widget.width()
        if right > page.width() + 1:
            found.append(f"{type(widget).__name__} {getattr(widget, 'text', lambda: '')()!r} reaches x={right}")
        wraps = isinstance(widget, QLabel) and widget.wordWrap()
        clippable = isinstance(widget, (QLabel, QAbstractButton, QComboBox)) and not wraps
        if clippable and widget.width() + 1 < widget.minimumSizeHint().width():
            found.append(f"{type(widget).__name__} {getattr(widget, 'text', lambda: '')()!r} is clipped")
    return found


def test_the_column_pickers_fit_a_1024_by_700_window(window, tmp_path):
    page = window.page("data")
    window.show_page("data")
    rows = [(q, a, "houseplants and succulents") for q, a in ROWS]
    load_and_wait(window, write_csv(tmp_path / "known.csv", ["question", "answer", "product_category_name"], rows))
    _fits(window, page)  # read: the pickers show the columns in effect
    load_and_wait(window, write_csv(tmp_path / "wide.csv", ["customer_question_text", "agent_answer_text", "category"], rows))
    _fits(window, page)  # not read: the pickers wait for a choice


def _fits(window, page) -> None:
    for size in ((1024, 700), (1280, 800)):
        window.resize(*size)
        pump(seconds=0.2)
        assert (window.width(), window.height()) == size
        assert not page.mapping_box.isHidden()
        assert not _overflow(page), _overflow(page)
        for role in ("prompt", "response", "system"):
            label = page.pickers.labels[role]
            assert label.width() >= label.sizeHint().width(), role  # "Prompt column:" in full
