"""The Data page with a plain text corpus: the text split it used, a choice to override it (shown for
text files only), and the chunks training makes instead of a truncation warning."""

from __future__ import annotations

from PySide6.QtCore import Qt

from studio.core.paths import demo_data_dir
from tests.ui.conftest import wait_until
from tests.ui.test_data_page import choose, load_and_wait


def test_text_files_show_their_split_and_the_chunks(window, tmp_path):
    page = window.page("data")
    window.show_page("data")
    assert not page.text_split.isVisible()  # the demo's conversations: no text split to choose
    path = tmp_path / "book.txt"
    path.write_text("Ein Absatz,\nüber zwei Zeilen.\n\nNoch einer,\nauch über zwei.\n", encoding="utf-8")
    load_and_wait(window, path)
    assert page.text_split.isVisible() and window.state.data.report["rows"] == 2
    assert not page.answers_only.isVisible()  # every token of a text is trained: no answers to choose
    assert page.histogram.cut.label.textItem.toPlainText().startswith("chunks of")
    assert page.text_split.combo.itemText(0) == "Auto (per paragraph)"
    assert "blank lines between paragraphs of several lines" in page.text_split.combo.itemData(0, Qt.ItemDataRole.ToolTipRole)
    assert window.state.data.report["layout"]["words"].startswith("plain text, one document per paragraph (auto: blank lines")
    assert "2 documents → 2 training chunks" in page.truncation.text() and page.truncated_share() == 0
    choose(page.text_split.combo, "line")
    wait_until(lambda: window.state.data is not None and window.state.data.report["text_split"] == "one document per line (chosen)",
               60, "the file read one document a line")
    assert window.state.config.data.text_split == "line" and window.state.data.report["rows"] == 4
    assert page.text_split.combo.currentData() == "line" and page.text_split.combo.itemText(0) == "Auto"
    load_and_wait(window, demo_data_dir() / "demo.jsonl")  # another file: auto again, and no choice for chat data
    assert window.state.config.data.text_split == "auto" and not page.text_split.isVisible()
    assert page.answers_only.isVisible() and page.histogram.cut.label.textItem.toPlainText().startswith("cut at")
