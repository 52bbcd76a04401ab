"""The Memory page: a run that does not fit gets its fixes one a row, in the user's words, each with
its new total; fixes made for one model do not silently stay when another is chosen; a plan for a
card this computer does not have says so."""

from __future__ import annotations

import pytest

from tests.ui.conftest import close_window, make_window, pump, wait_until

GiB = 1024**3
JARGON = ("lm_head", "fp32", "bfloat16", "LoRA rank", "Micro-batch", "Sequence length")


@pytest.fixture
def llama_on_8gb(qapp, tmp_path):
    """Qwen2.5 7B with the studio's settings for a real model, planned for an 8 GB card (no single
    change makes it fit: the fixes need two together, or a smaller model)."""
    w = make_window(model="qwen2.5-7b", data=None, runs_dir=tmp_path / "runs")
    w.show_page("memory")
    w.page("memory").choose_gpu_gb(8)
    yield w
    close_window(w)


def _choose_model(window, source: str) -> None:
    window.page("model").select_source(source)
    wait_until(lambda: window.state.model is not None and window.state.model.catalog_name == source, 60, source)
    pump(seconds=0.05)


def test_each_fix_is_a_row_in_plain_words_with_its_new_total(llama_on_8gb):
    w = llama_on_8gb
    memory = w.page("memory")
    assert memory.gpu.currentText() == "An 8 GB card"
    assert "more than an 8 GB card (assumed) has" in memory.verdict_text()
    texts = memory.fix_texts()
    assert texts[0] == ("These 2 changes together  →  7.9 GB:\n"
                        "• Smaller adapter: rank 4 instead of 16 (it can change the model less)\n"
                        "• Shorter examples: cut at 256 tokens instead of 2048")
    assert texts[1] == "Use the smaller Qwen2.5 3B (3.1 B parameters)  →  6.4 GB"
    assert not any(word in text for text in texts for word in JARGON)
    buttons = memory.suggestion_buttons()
    suggestions = w.state.suggestions()
    assert len(buttons) == len(texts) == len(suggestions)
    assert [b.accessibleName() for b in buttons] == [f"Apply: {s.change}" for s in suggestions]
    buttons[0].click()
    pump(seconds=0.05)
    assert w.state.plan().total_bytes == suggestions[0].total_bytes <= 8 * GiB
    assert memory.verdict_text().startswith("Fits an 8 GB card (assumed)")
    assert w.state.config.training.seq_len == 256 and w.state.config.adapter.rank == 4


def test_fixes_made_for_one_model_are_undone_for_another_and_come_back_with_it(llama_on_8gb):
    w = llama_on_8gb
    memory, model = w.page("memory"), w.page("model")
    memory.suggestion_buttons()[0].click()  # Qwen2.5 7B fits 8 GB: rank 4, examples cut at 256
    pump(seconds=0.05)
    t, a = w.state.config.training, w.state.config.adapter
    assert (t.seq_len, a.rank) == (256, 4)

    _choose_model(w, "smollm2-135m")
    assert (t.seq_len, a.rank) == (2048, 16)  # what they were before the fix
    w.show_page("memory")
    pump(seconds=0.05)
    assert memory.fixes_note.isVisible() and model.fixes_note.isVisibleTo(model)  # on both pages
    for label in (memory.fixes_note, model.fixes_note):
        assert label.text() == ("The 2 changes made so Qwen2.5 7B would fit are undone for this model: smaller adapter: "
                                "rank 4 instead of 16 (it can change the model less); shorter examples: cut at 256 tokens "
                                "instead of 2048. They come back if you choose Qwen2.5 7B again.")

    _choose_model(w, "qwen2.5-7b")
    t, a = w.state.config.training, w.state.config.adapter
    assert (t.seq_len, a.rank) == (256, 4)
    assert w.state.plan().fits(8 * GiB) and memory.verdict_text().startswith("Fits")
    assert memory.fixes_note.text().startswith("The 2 changes made earlier so Qwen2.5 7B fits are back: ")

    w.page("data").seq_len.setValue(768)  # changed by hand after the fix: the user's now
    _choose_model(w, "smollm2-135m")
    t, a = w.state.config.training, w.state.config.adapter
    assert (t.seq_len, a.rank) == (768, 16)


def test_a_plan_without_a_gpu_says_the_card_is_assumed(window):
    window.state.set_gpus([])  # the check found no GPU on this computer
    pump(seconds=0.05)
    memory = window.page("memory")
    assert memory.summary() == "fits an assumed 24 GB card"
    step = next(window.steps.item(i).text() for i in range(window.steps.count()) if "Memory" in window.steps.item(i).text())
    assert step.endswith("fits an assumed 24 GB card")
    assert memory.verdict_text().startswith("Fits a 24 GB card (assumed) with ")
    assert "No GPU found on this computer" in memory.gpu_note.text()
    memory.choose_gpu_gb(8)
    assert memory.summary() == "fits an assumed 8 GB card"
    from studio.core.hardware import GPU

    window.state.set_gpus([GPU(0, "NVIDIA RTX 3090", 24 * GiB, 23 * GiB, (8, 6), "nvml")])
    memory.gpu.setCurrentIndex(0)
    memory.gpu.activated.emit(0)
    assert memory.summary().startswith("fits, ") and memory.summary().endswith(" spare")
    assert "assumed" not in memory.verdict_text()


def test_several_gpus_are_planned_per_gpu_for_the_smallest_card(window):
    """Two cards of different kinds: the plan is for the one with the least free memory, said plainly; a
    run on 2 GPUs with FSDP is planned as one GPU's share, and the verdict says so."""
    from studio.core.hardware import GPU

    big = GPU(0, "NVIDIA RTX 4090", 24 * GiB, 23 * GiB, (8, 9), "nvml")
    small = GPU(1, "NVIDIA RTX 3060", 12 * GiB, 11 * GiB, (8, 6), "nvml")
    window.state.set_gpus([big, small])
    pump(seconds=0.05)
    assert window.state.gpu.bytes == small.free_bytes and window.state.gpu.label.startswith("NVIDIA RTX 3060")
    assert "different kinds" in window.page("memory").gpu_note.text()
    one = window.state.plan()
    t = window.state.config.training
    t.num_processes, t.strategy = 2, "fsdp"
    window.state.changed()
    pump(seconds=0.05)
    memory = window.page("memory")
    memory.refresh()
    assert window.state.plan().bytes_of("quantized_weights") < one.bytes_of("quantized_weights")
    assert "on each of 2 GPUs (FSDP)" in memory.verdict_text()


def test_more_gpus_are_advice_on_one_gpu_and_a_choice_on_two(qapp, tmp_path):
    """Llama 3.1 70B on a 40 GB card: no setting makes it fit, FSDP on 2 such GPUs does. With one GPU that is
    advice (no Apply button); with two, the Adapter page offers them (DDP or FSDP) and Apply takes FSDP."""
    from studio.core.hardware import GPU

    w = make_window(model="llama-3.1-70b", data=None, runs_dir=tmp_path / "runs")
    try:
        card = GPU(0, "NVIDIA A100-SXM4-40GB", 40 * GiB, 40 * GiB, (8, 0), "nvml")
        w.state.set_gpus([card])
        w.show_page("memory")
        pump(seconds=0.05)
        memory, options = w.page("memory"), w.page("adapter").options
        assert any(t.startswith("Train on 2 GPUs like this one with FSDP") for t in memory.fix_texts())
        assert not any("GPUs" in b.accessibleName() for b in memory.suggestion_buttons())
        assert not options._form.isRowVisible(options.gpus)

        w.state.set_gpus([card, GPU(1, card.name, card.total_bytes, card.free_bytes, (8, 0), "nvml")])
        pump(seconds=0.05)
        assert options._form.isRowVisible(options.gpus)
        assert [options.gpus.itemData(i) for i in range(options.gpus.count())] == [(1, "ddp"), (2, "ddp"), (2, "fsdp")]
        memory.refresh()
        button = next(b for b in memory.suggestion_buttons() if "2 GPUs" in b.accessibleName())
        button.click()
        pump(seconds=0.05)
        t = w.state.config.training
        assert (t.num_processes, t.strategy, t.optimizer) == (2, "fsdp", "adamw")
        assert options.gpus.currentData() == (2, "fsdp")
        assert "on each of 2 GPUs (FSDP)" in memory.verdict_text() and w.state.plan().fits(card.free_bytes)
        options.gpus.setCurrentIndex(0)
        options.gpus.activated.emit(0)
        pump(seconds=0.05)
        assert w.state.config.training.num_processes == 1
    finally:
        close_window(w)
