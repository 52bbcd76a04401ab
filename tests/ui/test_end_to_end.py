"""The whole path a newcomer takes, in the real window with the demo model on this CPU:
pick the model → the data → a preset → the plan says it fits → train 20 steps → the loss plot
holds 20 points and the loss fell → Try shows two different answers → export an adapter that PEFT
loads → the run reopens from its folder alone. Screenshots of every page are taken on the way."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtGui import QImage

from tests.ui.conftest import SCREENSHOTS, close_window, make_window, pump, save_screenshot, update_screenshots, wait_until

pytestmark = pytest.mark.slow

STEPS = 30


@pytest.fixture(scope="module")
def journey(qapp, tmp_path_factory):
    """Drive the window once through every step; the tests below check what each step left behind."""
    from studio.ui.frame_monitor import FrameMonitor

    home = tmp_path_factory.mktemp("studio-home")
    shots = tmp_path_factory.mktemp("screenshots")
    facts: dict = {"shots": {}}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STUDIO_HOME", str(home))
        w = make_window(runs_dir=home / "runs")
        try:
            # 1. Model: the demo is preselected; pick it in the list as a user would
            model_page = w.page("model")
            model_page.select_source("demo")
            pump(seconds=0.2)
            facts["card"] = {k: v.text() for k, v in model_page.fields.items()}
            facts["card_title"] = model_page.card_title.text()
            facts["too_large"] = model_page.too_large_warning()
            facts["shots"]["model"] = save_screenshot(w, "model", shots)
            # 2. Data: the demo data, inspected with the demo's tokenizer
            data_page = w.page("data")
            facts["data_summary"] = data_page.summary_label.text()
            facts["histogram"] = (list(data_page.histogram.counts), data_page.histogram.cut.value())
            facts["truncation"] = data_page.truncation.text()
            facts["examples"] = [v.trained_text() for v in data_page.example_views[:data_page.example_tabs.count()]]
            facts["shots"]["data"] = save_screenshot(w, "data", shots)
            # 3. Adapter: the Balanced preset, then a short run for this CPU ("Stop after 20 steps")
            adapter_page = w.page("adapter")
            adapter_page.preset_buttons["balanced"].click()
            facts["preset"] = (w.state.config.adapter.rank, w.state.config.adapter.alpha, w.state.config.training.epochs)
            facts["trainable"] = adapter_page.trainable.text()
            adapter_page.set_steps(STEPS)
            w.state.config.training.sample_max_tokens = 24  # short sample answers: the run stays quick on this CPU
            facts["shots"]["adapter"] = save_screenshot(w, "adapter", shots)
            # 4. Memory: the plan fits the (assumed) 24 GB card
            memory_page = w.page("memory")
            facts["verdict"] = memory_page.verdict_text()
            facts["gpu_note"] = memory_page.gpu_note.text()
            facts["shots"]["memory"] = save_screenshot(w, "memory", shots)
            facts["bar"] = [(s.name, s.why) for s in memory_page.bar.segments()]  # as painted
            # 5. Train, watching how long the UI thread is ever busy
            train_page = w.page("train")
            w.show_page("train")
            monitor = FrameMonitor()
            monitor.start()
            train_page.start_button.click()
            wait_until(lambda: train_page.last_finished is not None, 300, "the run to finish")
            monitor.stop()
            pump(seconds=0.5)
            facts["finished"] = train_page.last_finished
            facts["points"] = train_page.plot.point_count()
            facts["losses"] = train_page.plot.losses()
            facts["evals"] = train_page.plot.eval_points()
            facts["run_dir"] = train_page.run_dir
            facts["status"] = train_page.status.text()
            facts["frames"] = {"worst_ms": monitor.worst_ms, "p99_ms": monitor.percentile(99), "over_50": monitor.over(50),
                               "ticks": len(monitor.gaps_ms)}
            facts["samples"] = train_page.samples.toPlainText()
            facts["log"] = train_page.log.toPlainText()
            facts["shots"]["train"] = save_screenshot(w, "train", shots)
            facts["shots"]["train_dark"] = _dark_shot(w, shots, mp)
            # 6. Try: both models answer the data's first question
            try_page = w.page("try")
            w.show_page("try")
            wait_until(lambda: try_page.prompt.toPlainText().strip(), 10, "a prompt from the data")
            try_page.max_tokens.setValue(48)
            try_page.ask_button.click()
            wait_until(lambda: try_page._ask_task is not None and not try_page._ask_task.running, 180, "both answers")
            facts["answers"] = dict(try_page.answers)
            facts["shown_answers"] = (try_page.base_view.toPlainText(), try_page.adapter_view.toPlainText())
            facts["try_status"] = try_page.try_status.text()
            # export the adapter
            target = home / "exports" / "plant-doctor"
            try_page.destination.setText(str(target))
            try_page.export_buttons["adapter"].click()
            wait_until(lambda: try_page._export_task is not None and not try_page._export_task.running, 180, "the export")
            facts["export"] = try_page.last_export
            facts["export_status"] = try_page.export_status.text()
            facts["open_enabled"] = try_page.open_button.isEnabled()
            facts["shots"]["try_export"] = save_screenshot(w, "try", shots, "try_export")
            # Runs: the list, and the run opened from its folder
            runs_page = w.page("runs")
            w.show_page("runs")
            wait_until(lambda: runs_page.summaries, 30, "the runs list")
            runs_page.select(facts["run_dir"])
            wait_until(lambda: runs_page.opened == facts["run_dir"], 30, "the run to open")
            facts["shots"]["runs"] = save_screenshot(w, "runs", shots)
            # Settings
            facts["shots"]["settings"] = _settings_shot(w, shots)
            facts["steps_list"] = [w.steps.item(i).text() for i in range(w.steps.count())]
        finally:
            close_window(w)
        if update_screenshots():  # the pages themselves come from benchmarks/walkthrough.py, on a real display
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copy(facts["shots"]["settings"], SCREENSHOTS / facts["shots"]["settings"].name)
        yield facts


def _dark_shot(window, folder: Path, mp) -> Path:
    """The same page when the system is dark (the palette follows it)."""
    from PySide6.QtWidgets import QApplication

    from studio.ui.app import apply_theme

    app = QApplication.instance()
    mp.setenv("STUDIO_THEME", "dark")
    apply_theme(app)
    try:
        return save_screenshot(window, "train", folder, "train_dark")
    finally:
        mp.setenv("STUDIO_THEME", "light")
        apply_theme(app)


def _settings_shot(window, folder: Path) -> Path:
    from studio.ui.settings_dialog import SettingsDialog

    dialog = SettingsDialog(window.state, window)
    dialog.show()
    pump(seconds=0.3)
    path = folder / "settings.png"
    assert dialog.grab().save(str(path))
    dialog.reject()
    return path


def test_the_model_card_describes_the_demo(journey):
    card = journey["card"]
    assert journey["card_title"].startswith("Demo")
    assert "LlamaForCausalLM" in card["architecture"]
    assert "2,410,176" in card["parameters"] or "M (" in card["parameters"]
    assert "tokens" in card["context"] and "safetensors" in card["size"] and card["template"].startswith("yes")
    assert "q_proj" in card["targets"]
    assert journey["too_large"] == ""  # the demo fits any GPU


def test_the_data_page_shows_format_rows_examples_and_lengths(journey):
    assert "messages" in journey["data_summary"] and "200 rows kept" in journey["data_summary"]
    counts, cut = journey["histogram"]
    assert sum(counts) == 200 and cut == 256  # the demo's sequence length, drawn on the histogram
    assert "256 tokens" in journey["truncation"]
    assert 2 <= len(journey["examples"]) <= 3
    assert all(text.strip() for text in journey["examples"])  # every example has trained (highlighted) text
    assert any("Plant doctor says" in text for text in journey["examples"])


def test_the_preset_sets_the_adapter_and_the_plan_fits(journey):
    assert journey["preset"] == (16, 32, 2.0)
    assert "Trainable:" in journey["trainable"] and "% of the model" in journey["trainable"]
    assert journey["verdict"].startswith("Fits") and "to spare" in journey["verdict"]
    assert "No GPU found on this computer, so the plan assumes a card" in journey["gpu_note"]
    names = [name for name, _ in journey["bar"]]
    assert "quantized_weights" in names and "lora_weights" in names
    assert all(why for _, why in journey["bar"])  # every segment explains itself (its tooltip)


def test_training_fills_the_plot_and_the_loss_falls(journey):
    finished = journey["finished"]
    assert finished["status"] == "completed", finished
    assert journey["points"] == STEPS
    losses = journey["losses"]
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    assert last < 0.8 * first, (first, last)
    assert journey["evals"] and journey["evals"][-1][1] < losses[0]
    assert "Done" in journey["status"]
    assert (journey["run_dir"] / "adapter" / "adapter_model.safetensors").is_file()
    assert journey["samples"].strip()  # sample answers arrived during training
    assert journey["log"].strip()


def test_the_window_stays_responsive_while_training(journey):
    """A 10 ms heartbeat on the UI thread during the whole run. The worst gap also counts time the OS
    gave the CPU to the training process (2 cores, shared), so it gets some slack; 99% of frames
    must stay under 50 ms."""
    frames = journey["frames"]
    print(f"UI heartbeat during training: {frames}")
    assert frames["ticks"] > 500
    assert frames["p99_ms"] < 50, frames
    assert frames["worst_ms"] < 150, frames


def test_try_shows_two_different_answers(journey):
    answers = journey["answers"]
    assert answers["base"].strip() and answers["adapter"].strip()
    assert answers["base"] != answers["adapter"]
    assert journey["shown_answers"] == (answers["base"], answers["adapter"])
    assert journey["try_status"].startswith("Both answered")


def test_the_exported_adapter_loads_with_peft(journey):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from studio.core.paths import demo_model_dir

    folder = journey["export"]
    assert folder is not None and (folder / "adapter_model.safetensors").is_file(), journey["export_status"]
    assert journey["open_enabled"] and "Exported to" in journey["export_status"]
    marker = json.loads((folder / "studio-export.json").read_text())
    assert marker["kind"] == "adapter"
    base = AutoModelForCausalLM.from_pretrained(str(demo_model_dir()), dtype=torch.float32)
    ids = torch.tensor([[5, 17, 99, 250, 31, 7]])
    with torch.no_grad():
        before = base(input_ids=ids).logits
    model = PeftModel.from_pretrained(base, str(folder)).eval()
    with torch.no_grad():
        after = model(input_ids=ids).logits
    assert not torch.allclose(before, after, atol=1e-4)


def test_a_past_run_reopens_from_its_folder_alone(journey, qapp, tmp_path):
    """Copy the run folder elsewhere (no window state, no runs list): the Runs page shows its recipe,
    curve and samples, and offers to try and export it."""
    copy = tmp_path / "copied-run"
    shutil.copytree(journey["run_dir"], copy, ignore=shutil.ignore_patterns("checkpoints"))
    w = make_window(model=None, data=None, wait=False, runs_dir=tmp_path / "empty-runs")
    try:
        page = w.page("runs")
        w.show_page("runs")
        page.open_run(copy)
        wait_until(lambda: page.opened == copy, 30, "the copied run to open")
        assert f"steps = {STEPS}" in page.recipe.toPlainText()
        assert page.plot.point_count() == STEPS and page.plot.losses() == pytest.approx(journey["losses"])
        assert page.samples.toPlainText().strip() and "no sample" not in page.samples.toPlainText()
        assert "completed" in page.title_label.text()
        assert page.try_button.isEnabled() and not page.resume_button.isEnabled()
        page.try_button.click()
        pump(seconds=0.2)
        assert w.current_key() == "try" and w.state.current_run == copy
        page.recipe_button.click()
        pump(seconds=0.1)
        assert w.state.config.training.steps == STEPS and w.current_key() == "adapter"
    finally:
        close_window(w)


def test_every_page_has_a_screenshot_that_shows_it(journey):
    expected = {"model": "1. Base model", "data": "2. Training data", "adapter": "3. Adapter", "memory": "4. GPU memory",
                "train": "5. Train", "train_dark": "5. Train", "try_export": "6. Try and export", "runs": "Runs",
                "settings": None}
    assert set(journey["shots"]) == set(expected)
    for key, path in journey["shots"].items():
        image = QImage(str(path))
        least = (500, 250) if key == "settings" else (900, 600)
        assert image.width() >= least[0] and image.height() >= least[1], (key, image.size())
        pixels = np.frombuffer(image.convertToFormat(QImage.Format.Format_Grayscale8).constBits(), dtype=np.uint8)
        assert pixels.std() > 10, f"{key} looks blank"
    steps = journey["steps_list"]
    assert steps[0].startswith("1. Model") and "demo" in steps[0]
    assert any(s.startswith("4. Memory") and "fits" in s for s in steps)
