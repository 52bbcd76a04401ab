"""The Data page with data as other tools export it (issue 18): the detected layout in words, the
problems with their lines (a note about the whole data with none), and the rendered example with the
trained text highlighted, tool calls included. Real window, real core: each test writes its file in
the layout the tool's documentation gives and loads it as a user would."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QTextCursor, QTextDocumentFragment

from studio.ui.widgets.token_view import TRAINED_DARK, TRAINED_LIGHT
from tests.ui.conftest import pump
from tests.ui.test_data_page import _overflow, load_and_wait, shown_texts

WEATHER = {"name": "get_weather", "description": "Das aktuelle Wetter einer Stadt",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def llamafactory_tools(path: Path) -> Path:
    """LLaMA-Factory's sharegpt tool layout: function_call / observation turns, the tools as a JSON string."""
    rows = [{"conversations": [
        {"from": "human", "value": f"Wie ist das Wetter in {city}?"},
        {"from": "function_call", "value": json.dumps({"name": "get_weather", "arguments": {"city": city}}, ensure_ascii=False)},
        {"from": "observation", "value": json.dumps({"temperature": temp, "sky": "bewölkt"}, ensure_ascii=False)},
        {"from": "gpt", "value": f"In {city} sind es {temp} Grad."},
    ], "system": "Du bist ein hilfreicher Assistent.", "tools": json.dumps([WEATHER], ensure_ascii=False)}
        for city, temp in (("Berlin", 12), ("München", 15), ("東京", 20))]
    return write_jsonl(path, rows)


def plain(label) -> str:
    """A rich-text label's text as the user reads it."""
    return QTextDocumentFragment.fromHtml(label.text()).toPlainText()


def highlighted(view) -> list[tuple[str, int]]:
    """The runs of text the example view shows highlighted as trained: (text, y in the viewport)."""
    runs = []
    block = view.document().begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            fragment = it.fragment()
            if fragment.charFormat().background().color().name() in (TRAINED_LIGHT, TRAINED_DARK):
                cursor = QTextCursor(view.document())
                cursor.setPosition(fragment.position())
                runs.append((fragment.text().replace("\u2028", "\n"), view.cursorRect(cursor).top()))
            it += 1
        block = block.next()
    return runs


def test_tool_calls_show_their_layout_the_highlighted_call_and_the_template_note(window, tmp_path):
    page = window.page("data")
    window.show_page("data")
    page.seq_len.setValue(1024)  # the tool schema makes these rows longer than the demo's 256 tokens
    load_and_wait(window, llamafactory_tools(tmp_path / "glaive.jsonl"))
    layout = window.state.data.report["layout"]
    assert layout["name"] == "tool calling"
    summary = plain(page.summary_label)
    assert summary.startswith("Layout: tool calling — ") and layout["words"] in summary  # a line of its own, first
    assert "3 rows kept" in summary

    # the example: the template's tags shown as written, the call highlighted as trained, the result not
    page.tabs.setCurrentIndex(0)
    view = page.example_views[0]
    assert page.example_tabs.currentWidget() is view
    pump(seconds=0.3)
    shown = view.toPlainText()
    assert "<tool_call>" in shown and "<tool_response>" in shown and '"temperature": 12' in shown
    runs = highlighted(view)
    trained = "".join(text for text, _ in runs)
    assert "<tool_call>" in trained and '"name": "get_weather"' in trained and '"city": "Berlin"' in trained
    assert "In Berlin sind es 12 Grad." in trained
    assert "temperature" not in trained and "<tool_response>" not in trained and "Wetter einer Stadt" not in trained
    first_y = runs[0][1]
    assert 0 <= first_y < view.viewport().height(), "the highlighted call is in view, below the long tool schema"

    # the note that the template has no tool support: a warning about the whole data, with no line
    rows = page.problems.rows()
    assert [p["kind"] for p in rows] == ["tools_as_text"]
    model = page.problems.model()
    assert model.index(0, 1).data() == "—"
    assert model.index(0, 0).data() == "warning"
    assert model.index(0, 0).data(Qt.ItemDataRole.ForegroundRole).name() == "#c98a00"
    assert not model.index(0, 0).data(Qt.ItemDataRole.DecorationRole).isNull()
    assert "no tool support" in shown_texts(page) and page.tabs.tabText(1) == "Problems (1)"

    for size in ((1024, 700), (1280, 800)):
        window.resize(*size)
        pump(seconds=0.2)
        assert not _overflow(page), _overflow(page)


def test_preference_pairs_show_their_layout_and_only_the_chosen_answer_highlighted(window, tmp_path):
    page = window.page("data")
    rows = [{"prompt": "Wie gieße ich einen Farn?", "chosen": "Gleichmäßig feucht halten.", "rejected": "Einmal im Jahr."},
            {"prompt": "Braucht ein Kaktus Dünger?", "chosen": "Im Sommer alle vier Wochen.", "rejected": "Jeden Tag viel."}]
    load_and_wait(window, write_jsonl(tmp_path / "dpo.jsonl", rows))
    layout = window.state.data.report["layout"]
    assert layout["name"] == "preference pairs" and layout["trained"] == "the chosen answer"
    summary = plain(page.summary_label)
    assert summary.startswith("Layout: preference pairs ('chosen' over 'rejected'): 2 rows; supervised training learns the chosen answer")
    assert layout["words"] in summary
    view = page.example_views[0]
    trained = "".join(text for text, _ in highlighted(view))
    assert "Gleichmäßig feucht halten." in trained and "Farn" not in trained
    assert "Einmal im Jahr" not in view.toPlainText()  # the rejected answer is never trained
    assert page.problems.rows() == [] and page.tabs.tabText(1) == "Problems (none)"


def test_kto_rows_left_out_are_warnings_with_their_lines(window, tmp_path):
    page = window.page("data")
    rows = [{"messages": [{"role": "user", "content": f"Frage {i}"}, {"role": "assistant", "content": f"Antwort {i}"}],
             "label": i != 2} for i in range(1, 5)]
    rows.append({"messages": [{"role": "user", "content": "Frage 5"}, {"role": "assistant", "content": ""}], "label": True})
    load_and_wait(window, write_jsonl(tmp_path / "kto.jsonl", rows))
    summary = plain(page.summary_label)
    assert summary.startswith("Layout: KTO-labelled answers — ") and window.state.data.report["layout"]["words"] in summary
    model = page.problems.model()
    shown = {model.index(r, 1).data(): (model.index(r, 0).data(), model.index(r, 0).data(Qt.ItemDataRole.ForegroundRole).name())
             for r in range(model.rowCount())}
    assert shown["2"][0] == "warning" and shown["5"][0] == "error"  # the undesirable row; the empty answer
    assert shown["2"][1] != shown["5"][1]  # warnings look different from errors
    assert page.problems.isColumnHidden(2) == (not any(p["field"] for p in page.problems.rows()))  # Field: only if named
