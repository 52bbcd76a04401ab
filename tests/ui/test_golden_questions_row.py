"""The Data page's golden questions: typed into the window's table (one with no expected answer, which
is flagged, not scored) or chosen as a file, kept in the recipe the run is started with."""

from __future__ import annotations

import json

from studio.core.paths import demo_data_dir
from studio.ui.widgets.golden_questions import TypedQuestionsDialog, typed_folder
from tests.ui.conftest import close_window, make_window, wait_until


def test_typed_questions_are_saved_for_the_run_and_an_empty_answer_is_flagged(qapp):
    window = make_window()
    try:
        row = window.pages["data"].golden
        assert "none" in row.label.text() and not row.clear_button.isEnabled()
        dialog = TypedQuestionsDialog([], row)
        dialog.table.item(0, 0).setText("Wie oft gieße ich einen Farn?")
        dialog.table.item(0, 1).setText("Halten Sie die Erde gleichmäßig feucht.")
        dialog.table.item(1, 0).setText("Is a pothos safe for cats?")  # no expected answer
        dialog.save()
        row.set_source(str(dialog.saved))  # what Type… does once the dialog is accepted
        source = window.state.config.data.questions
        assert source == str(dialog.saved) and dialog.saved.parent == typed_folder()
        rows = [json.loads(line) for line in dialog.saved.read_text(encoding="utf-8").splitlines()]
        assert rows[0]["messages"][1]["content"] == "Halten Sie die Erde gleichmäßig feucht." and len(rows) == 2
        text = wait_until(lambda: "from" in row.label.text() and row.label.text(), 30, "the questions read")
        assert text.startswith("1 question from") and "1 row left out (line 2" in text
        assert [q.question for q in row.loaded] == ["Wie oft gieße ich einen Farn?"]
        again = TypedQuestionsDialog(row.loaded, row)  # typing more starts from what is there
        assert again.rows() == [("Wie oft gieße ich einen Farn?", "Halten Sie die Erde gleichmäßig feucht.")]
        row.set_source(str(demo_data_dir() / "golden.jsonl"))
        wait_until(lambda: row.label.text().startswith("15 questions"), 30, "the demo's golden questions")
        row.clear_button.click()
        assert window.state.config.data.questions is None and dialog.saved.is_file()  # the typed file is kept
    finally:
        close_window(window)
