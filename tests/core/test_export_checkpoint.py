"""Export a chosen checkpoint, not only the final adapter (#19): on one real 8-step QLoRA run of the demo
model (CPU) that kept checkpoints at steps 4 and 8."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch

from studio.core import export, paths, runs
from studio.core.errors import StudioError
from studio.core.recipe import RunConfig
from tests.demo_runs import finished_demo_run

pytestmark = pytest.mark.slow

PROMPT = [{"role": "user", "content": "The lower leaves on my rubber plant are turning yellow. What should I do?"}]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return finished_demo_run(tmp_path_factory.mktemp("ckpt-export-home"), "ckpt-export", steps=8, save_every=4, eval_every=3)


@pytest.fixture(scope="module")
def checkpoint_export(run_dir, tmp_path_factory) -> tuple[Path, export.ExportResult]:
    """The final adapter exported first; the user adds a file of theirs; then checkpoint 4 into the same folder."""
    target = tmp_path_factory.mktemp("exports") / "plant-doctor"
    export.export_run(run_dir, target)
    (target / "notes.txt").write_text("mine")
    return target, export.export_run(run_dir, target, checkpoint=4)


def _lora_weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


def _base(dtype=torch.float32):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(paths.demo_model_dir()), dtype=dtype)


def _checkpoint(run_dir: Path, step: int) -> Path:
    return run_dir / runs.CHECKPOINTS / f"checkpoint-{step}"


def test_the_run_lists_its_final_adapter_and_both_checkpoints(run_dir):
    assert runs.saved_weights(run_dir) == runs.SavedWeights(final_step=8, checkpoints=(4, 8))


def test_a_checkpoint_exported_as_an_adapter_holds_that_checkpoints_weights(run_dir, checkpoint_export):
    from peft import PeftModel
    from peft.utils import get_peft_model_state_dict

    target, result = checkpoint_export
    assert result.checkpoint == 4 and result.weights == "checkpoint-4, step 4 of 8" and result.replaced
    model = PeftModel.from_pretrained(_base(), str(target))
    loaded = get_peft_model_state_dict(model)
    saved, final = _lora_weights(_checkpoint(run_dir, 4)), _lora_weights(run_dir / runs.ADAPTER)
    assert loaded.keys() == saved.keys() and any("lora_A" in k for k in loaded)
    assert all(torch.equal(loaded[k], saved[k]) for k in saved)  # checkpoint-4's weights, bit for bit
    assert any(not torch.equal(saved[k], final[k]) for k in saved)  # and not the final adapter's
    # the adapter, the tokenizer training used, the run's studio.json; none of Trainer's state
    for name in ("adapter_config.json", "tokenizer.json", "tokenizer_config.json", "studio.json"):
        assert (target / name).is_file(), name
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json", "training_args.bin"):
        assert not (target / name).exists(), name
    tokenizer = __import__("transformers").AutoTokenizer.from_pretrained(str(target))
    assert tokenizer.apply_chat_template(PROMPT, tokenize=False)


def test_the_card_marker_and_recipe_say_which_checkpoint_and_a_users_file_stays(run_dir, checkpoint_export):
    target, result = checkpoint_export
    card = (target / "README.md").read_text(encoding="utf-8")
    assert "# ckpt-export: LoRA adapter for demo (checkpoint-4)" in card.splitlines()  # the title
    assert "checkpoint-4, step 4 of 8" in card and "not the run's final adapter" in card
    losses = dict(runs.RunHistory.read(run_dir).series["loss"])
    assert f"| training, at checkpoint-4 (step 4) | {losses[4]:.4f} |" in card
    assert f"{losses[8]:.4f}" not in card  # the steps after the checkpoint are not its results
    marker = json.loads((target / export.MARKER).read_text())
    assert marker["checkpoint"] == 4 and marker["step"] == 4 and marker["weights"] == "checkpoint-4, step 4 of 8"
    recipe = (target / runs.RECIPE).read_text()
    assert recipe.startswith("# Exported from the run ckpt-export: checkpoint-4, step 4 of 8")
    assert RunConfig.load(target / runs.RECIPE).training.steps == 8  # still the whole recipe
    assert (target / "notes.txt").read_text() == "mine" and "notes.txt" in result.kept


def test_a_missing_step_is_refused_with_the_steps_there_are(run_dir, tmp_path):
    target = tmp_path / "nothing"
    with pytest.raises(StudioError) as caught:
        export.export_run(run_dir, target, checkpoint=5)
    assert "no checkpoint at step 5" in caught.value.message and "steps 4 and 8" in caught.value.message
    assert "--checkpoint 8" in caught.value.advice
    assert not target.exists()


def test_a_damaged_checkpoint_is_refused_and_not_listed(run_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("worker.lock"))
    weights = _checkpoint(copy, 4) / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # cut short, as a full disk leaves it
    with pytest.raises(StudioError) as caught:
        export.export_run(copy, tmp_path / "out", checkpoint=4)
    message = caught.value.message
    assert "step 4" in message and "cut short" in message and "Its checkpoints are at step 8." in message
    assert runs.saved_weights(copy).checkpoints == (8,)
    assert not (tmp_path / "out").exists()


def test_a_merged_export_of_a_checkpoint_is_the_base_plus_that_checkpoint(run_dir, tmp_path, monkeypatch):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = tmp_path / "merged"
    result = export.export_run(run_dir, target, checkpoint=4, merged=True)
    assert result.kind == "merged" and result.checkpoint == 4
    assert "(checkpoint-4)" in (target / "README.md").read_text()
    tok = AutoTokenizer.from_pretrained(str(target))
    ids = tok(tok.apply_chat_template(PROMPT, tokenize=False), add_special_tokens=False, return_tensors="pt")["input_ids"]
    with monkeypatch.context() as mp:
        mp.setitem(sys.modules, "peft", None)
        merged = AutoModelForCausalLM.from_pretrained(str(target), dtype=torch.float32)

    def logits(model):
        with torch.no_grad():
            return model.eval()(input_ids=ids).logits.float()

    def with_adapter(folder: Path):
        return logits(PeftModel.from_pretrained(_base(torch.bfloat16).to(torch.float32), str(folder)))

    got, checkpoint, final = logits(merged), with_adapter(_checkpoint(run_dir, 4)), with_adapter(run_dir / runs.ADAPTER)
    tolerance = checkpoint.abs().max().item() * 2**-8  # one bf16 rounding of W + ΔW (see test_export)
    assert (got - checkpoint).abs().max().item() <= tolerance
    assert (got - final).abs().max().item() > 2 * tolerance  # the final adapter's would be told apart


def test_a_gguf_export_of_a_checkpoint_is_checked_in_llama_cpp_and_says_which(run_dir, tmp_path):
    """The GGUF file is made from the same merge as the merged export above, and checked against it."""
    result = export.export_run(run_dir, tmp_path / "gguf", checkpoint=4, gguf=("q8_0",), ollama=True)
    assert result.kind == "gguf" and result.checkpoint == 4 and result.checks_passed, result.notes
    assert (tmp_path / "gguf" / result.gguf[0].path).is_file()
    assert "(checkpoint-4)" in (tmp_path / "gguf" / "README.md").read_text()
    assert "(checkpoint-4, step 4 of 8)" in (tmp_path / "gguf" / "Modelfile").read_text().splitlines()[0]
