"""The Model page: the highlighted model is the chosen one (arrow keys read its card), its "does it
fit" agrees with the Memory page's fixes, and the keyboard lands on a sensible first control after
moving between pages."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from studio.ui.units import gb
from tests.ui.conftest import close_window, make_window, pump, wait_until

GiB = 1024**3


def _source(item) -> str:
    return item.data(0, Qt.ItemDataRole.UserRole)


def test_arrow_keys_choose_the_highlighted_model(window):
    page = window.page("model")
    window.show_page("model")
    tree = page.tree
    tree.setFocus()
    below = tree.itemBelow(tree.currentItem())
    QTest.keyClick(tree, Qt.Key.Key_Down)
    assert tree.currentItem() is below
    wait_until(lambda: window.state.model is not None and window.state.model.catalog_name == _source(below), 60,
               "the highlighted model's card")
    assert window.state.config.model.source == _source(below)
    assert page.card_title.text() == window.state.model.name
    # quick presses through the list read only the model the highlight rests on
    QTest.keyClick(tree, Qt.Key.Key_Down)
    QTest.keyClick(tree, Qt.Key.Key_Down)
    rest = tree.currentItem()
    wait_until(lambda: window.state.model is not None and window.state.model.catalog_name == _source(rest), 60,
               "the card of the model the highlight rests on")


@pytest.fixture
def llama_window(qapp, tmp_path):
    w = make_window(model="llama-3.1-8b", data=None, runs_dir=tmp_path / "runs")
    yield w
    close_window(w)


def test_the_model_page_and_the_memory_page_give_one_answer(llama_window):
    """On an 8 GB card Qwen2.5 7B fits with leaner settings on both pages (the Model page said it
    could not, the Memory page's fix made it fit); Llama 3.1 70B is too large on both."""
    w = llama_window
    model, memory = w.page("model"), w.page("memory")
    model.select_source("qwen2.5-7b")
    wait_until(lambda: w.state.model is not None and w.state.model.catalog_name == "qwen2.5-7b", 60, "Qwen2.5 7B")
    memory.choose_gpu_gb(8)
    assert model.too_large_warning() == ""
    assert model.warning.text() == ("Fits an 8 GB card only with leaner settings: the Memory page lists the changes "
                                    "(the run needs 9.9 GB as it is set now).")
    fixes = w.state.suggestions()
    assert fixes and fixes[0].total_bytes <= 8 * GiB and "model" not in fixes[0].changes
    assert w.state.leanest_plan().fits(8 * GiB)

    model.select_source("llama-3.1-70b")
    wait_until(lambda: w.state.model is not None and w.state.model.catalog_name == "llama-3.1-70b", 60, "Llama 3.1 70B")
    lean = w.state.leanest_plan()
    assert not lean.fits(8 * GiB)
    assert model.too_large_warning().startswith(
        "Too large for an 8 GB card: even the leanest run the studio can offer (4-bit, rank 4, examples cut at 256 "
        "tokens, one at a time) needs ")
    fixes = w.state.suggestions()
    assert fixes and all(set(fix.changes) == {"model"} for fix in fixes)  # no change of settings fits: a smaller model
    assert [text.split(" (")[0] for text in memory.fix_texts()] == ["Use the smaller Llama 3.2 3B"]
    needs = f"needs {gb(lean.plan.total_bytes)}."  # the same leanest run on both pages
    assert needs in model.too_large_warning()
    assert memory.suggest_empty.text() == (f"No change to these settings makes it fit: even the leanest run the studio "
                                           f"can offer {needs} Choose a smaller model, or plan for a larger GPU.")


def test_the_keyboard_starts_on_the_pages_first_control(window):
    for key, shortcut in (("memory", Qt.Key.Key_4), ("adapter", Qt.Key.Key_3), ("model", Qt.Key.Key_1)):
        QTest.keyClick(window, shortcut, Qt.KeyboardModifier.ControlModifier)
        pump(seconds=0.02)
        assert window.current_key() == key
        assert window.focusWidget() is window.page(key).first_control(), key
    assert window.page("adapter").first_control() is window.page("adapter").preset_buttons["balanced"]
    window.next_button.click()  # Next: the Data page's first control in Tab order
    pump(seconds=0.02)
    data = window.page("data")
    assert window.current_key() == "data" and data.isAncestorOf(window.focusWidget())
    QTest.keyClick(window, Qt.Key.Key_Right, Qt.KeyboardModifier.AltModifier)
    pump(seconds=0.02)
    assert window.page("adapter").isAncestorOf(window.focusWidget())
    # moving through the step list leaves the keyboard there
    window.steps.setFocus()
    QTest.keyClick(window.steps, Qt.Key.Key_Down)
    pump(seconds=0.02)
    assert window.current_key() == "memory" and window.focusWidget() is window.steps
