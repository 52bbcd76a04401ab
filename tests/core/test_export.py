"""Export: the adapter with its model card, the merged 16-bit model, the Ollama Modelfile, atomic
writes and the errors a user can act on — all on one real 6-step QLoRA run of the demo model (CPU)."""

from __future__ import annotations

import json
import re
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch

from studio.core import export, paths, runs
from studio.core.data.tokens import DEFAULT_CHAT_TEMPLATE
from studio.core.errors import StudioError
from studio.core.recipe import DataSection, ModelSection, OutputSection, RunConfig, TrainingSection

pytestmark = pytest.mark.slow

PROMPT = [{"role": "user", "content": "The lower leaves on my rubber plant are turning yellow. What should I do?"},
          {"role": "assistant", "content": "Plant doctor says: water less."}]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """One finished QLoRA run of the demo model, trained in-process by the worker."""
    from studio.core.training import worker

    home = tmp_path_factory.mktemp("export-home")
    config = RunConfig(
        model=ModelSection(source="demo"), data=DataSection(source="demo"), output=OutputSection(name="export-test"),
        training=TrainingSection(steps=6, epochs=None, batch_size=4, grad_accum=1, seq_len=256, learning_rate=1e-3,
                                 eval_every=3, save_every=3, sample_every=0, gradient_checkpointing=False,
                                 sample_max_tokens=1))  # the worker answers its sample prompts once at the end
    if hasattr(config.training, "preflight"):
        config.training.preflight = False  # its trial batch costs seconds on a CPU and is tested elsewhere
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STUDIO_HOME", str(home))  # the data cache goes here, not to the developer's own folder
        run_dir = runs.create_run_dir(config, home / "run")
        assert worker.run(run_dir, echo=None) == 0, (run_dir / runs.STDERR).read_text() if (run_dir / runs.STDERR).exists() else ""
    assert runs.status_of(run_dir) == "completed"
    return run_dir


@pytest.fixture(scope="module")
def adapter_export(finished_run, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("exports") / "plant-doctor"
    result = export.export_run(finished_run, target)
    assert result.path == target and result.kind == "adapter" and not result.replaced
    return target


def _tokenizer(folder: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder))


def _ids(folder: Path):
    tok = _tokenizer(folder)
    text = tok.apply_chat_template(PROMPT, tokenize=False)
    return tok(text, add_special_tokens=False, return_tensors="pt")["input_ids"]


def _logits(model, ids) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(input_ids=ids).logits.float()


def _base(dtype=torch.float32):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(paths.demo_model_dir()), dtype=dtype)


def _copy_run(run_dir: Path, to: Path) -> Path:
    """The run folder without its checkpoints (all an export reads)."""
    to.mkdir(parents=True)
    for name in (runs.RECIPE, runs.EVENTS):
        shutil.copy2(run_dir / name, to / name)
    shutil.copytree(run_dir / runs.ADAPTER, to / runs.ADAPTER)
    return to


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# ---------------------------------------------------------------------------------------------
# The adapter
# ---------------------------------------------------------------------------------------------


def test_exported_adapter_loads_with_peft_and_gives_the_runs_logits(finished_run, adapter_export):
    from peft import PeftModel

    for name in ("adapter_model.safetensors", "adapter_config.json", "tokenizer.json", "README.md", "loss.svg", "run.toml"):
        assert (adapter_export / name).is_file(), name
    assert (adapter_export / "run.toml").read_text() == (finished_run / "run.toml").read_text()
    # the chat template training used travels with the adapter
    assert _tokenizer(adapter_export).chat_template == _tokenizer(finished_run / runs.ADAPTER).chat_template

    ids = _ids(adapter_export)
    base_logits = _logits(_base(), ids)
    exported = _logits(PeftModel.from_pretrained(_base(), str(adapter_export)), ids)
    own = _logits(PeftModel.from_pretrained(_base(), str(finished_run / runs.ADAPTER)), ids)
    assert torch.equal(exported, own)  # the same weights, bit for bit
    assert (exported - base_logits).abs().max() > 0.1  # and they do change the model


def test_model_card_names_base_license_data_loss_and_plot(finished_run, adapter_export):
    card = (adapter_export / "README.md").read_text(encoding="utf-8")
    summary = runs.summarize_run(finished_run)
    assert "demo" in card
    assert "license: cc0-1.0" in card and "**License:** cc0-1.0" in card  # from the demo model's own card
    assert f"{summary.final_loss:.4f}" in card and f"{summary.eval_loss:.4f}" in card
    started = next(e for e in runs.read_events(finished_run / runs.EVENTS) if e["type"] == "started")
    assert f"{started['train_rows']} for training" in card
    assert "PeftModel.from_pretrained" in card and "](loss.svg)" in card
    assert 'steps = 6' in card  # the recipe

    svg = ET.parse(adapter_export / "loss.svg").getroot()
    ns = {"svg": "http://www.w3.org/2000/svg"}
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    train = svg.find("svg:polyline[@class='train']", ns)
    assert len(train.get("points").split()) == len(summary.losses) == 6
    evals = svg.findall("svg:circle[@class='eval']", ns)
    assert len(evals) == len(runs.metrics(runs.read_events(finished_run / runs.EVENTS))["eval_loss"]) == 2
    ys = [float(p.split(",")[1]) for p in train.get("points").split()]
    assert ys[-1] > ys[0]  # the loss went down: lower values are drawn lower (larger y)


def test_loss_svg_without_points_is_still_valid_xml():
    ET.fromstring(export.loss_svg([], []))
    ET.fromstring(export.loss_svg([(1, 2.0)], [], title="a <title> & more"))


# ---------------------------------------------------------------------------------------------
# The merged model
# ---------------------------------------------------------------------------------------------


def test_merged_export_loads_without_peft_and_matches_base_plus_adapter(finished_run, tmp_path, monkeypatch):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    target = tmp_path / "merged"
    result = export.export_run(finished_run, target, merged=True, dtype="bf16", max_shard_size="2MB")
    assert result.kind == "merged"
    shards = sorted(target.glob("model-*.safetensors"))
    assert len(shards) >= 2 and (target / "model.safetensors.index.json").is_file()
    assert not (target / "adapter_config.json").exists() and not (target / "adapter_model.safetensors").exists()
    config = json.loads((target / "config.json").read_text())
    assert config["dtype"] == "bfloat16" and "quantization_config" not in config
    assert "library_name: transformers" in (target / "README.md").read_text()

    ids = _ids(target)
    with monkeypatch.context() as mp:
        mp.setitem(sys.modules, "peft", None)  # `import peft` fails: the merged model must not need it
        # bf16 weights upcast exactly to fp32, so the comparison sees only what the merge did
        merged = AutoModelForCausalLM.from_pretrained(str(target), dtype=torch.float32)
    assert not any("lora" in name for name, _ in merged.named_parameters())
    merged_logits = _logits(merged, ids)
    # The reference: the same 16-bit base weights (unquantized, as the merge used) with the adapter on top,
    # unmerged, computed in fp32.
    reference = _logits(PeftModel.from_pretrained(_base(torch.bfloat16).to(torch.float32), str(finished_run / runs.ADAPTER)), ids)
    base_logits = _logits(_base(torch.bfloat16).to(torch.float32), ids)
    # Merging rounds each W + ΔW to bf16 once (relative error ≤ 2^-9), so logits may move by about
    # |logit| · 2^-8 (measured: 0.026 for logits up to ~20, i.e. about a third of this bound); the
    # adapter itself moves them by several units.
    tolerance = reference.abs().max().item() * 2**-8
    error = (merged_logits - reference).abs().max().item()
    effect = (reference - base_logits).abs().max().item()
    assert error <= tolerance, (error, tolerance)
    assert error < 0.05 * effect, (error, effect)
    assert torch.equal(merged_logits.argmax(-1), reference.argmax(-1))


# ---------------------------------------------------------------------------------------------
# Ollama
# ---------------------------------------------------------------------------------------------


def _modelfile_template(text: str) -> str:
    m = re.search(r'^TEMPLATE """(.*?)"""', text, re.S | re.M)
    assert m, text
    return m.group(1)


def test_modelfile_template_renders_the_chat_template(finished_run, adapter_export):
    # llama: one of the architectures Ollama takes adapters for, so the Modelfile comes without --ollama
    text = (adapter_export / "Modelfile").read_text(encoding="utf-8")
    lines = text.splitlines()
    assert f"FROM {paths.demo_model_dir()}" in lines and "ADAPTER ." in lines
    assert 'PARAMETER stop "<|im_end|>"' in lines
    assert any(line.startswith("#") and "the very base model this adapter was trained on" in line for line in lines)
    template = _modelfile_template(text)

    tok = _tokenizer(adapter_export)
    with open(paths.demo_data_dir() / "demo.jsonl", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    conversation = next(r["messages"] for r in rows if r["messages"][0]["role"] == "system" and len(r["messages"]) >= 5)
    prompt = conversation[:-1]  # up to the last question: what the model answers
    expected = tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    assert expected.startswith(tok.bos_token)  # Ollama adds the BOS token itself
    assert export.render_go_template(template, prompt) == expected[len(tok.bos_token):]
    # and literally, for one fixed conversation
    assert export.render_go_template(template, [{"role": "user", "content": "Hi"}]) == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"


def test_modelfile_for_the_default_template_and_for_an_unknown_one(finished_run, adapter_export):
    tok = _tokenizer(adapter_export)
    default = export.ollama_template(tok, DEFAULT_CHAT_TEMPLATE)
    assert default.kind == "studio-default" and set(default.stops) == {tok.eos_token, "### User:"}
    conversation = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Q1"},
                    {"role": "assistant", "content": "A1"}, {"role": "user", "content": "Q2"}]
    rendered = tok.apply_chat_template(conversation, chat_template=DEFAULT_CHAT_TEMPLATE, tokenize=False, add_generation_prompt=True)
    assert export.render_go_template(default.template, conversation) == rendered[len(tok.bos_token):]

    llama3 = ("{{ bos_token }}{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\n\n' + "
              "m['content'] + '<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}"
              "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")
    unknown = export.ollama_template(tok, llama3)
    assert unknown.kind is None and unknown.template is None
    facts = export.read_run(finished_run)
    text = export.modelfile_text(facts, unknown, merged=False)
    assert "TEMPLATE \"\"\"" not in text.replace('# To be sure, add a TEMPLATE """..."""', "")
    assert "No TEMPLATE" in text and "ADAPTER ." in text


# ---------------------------------------------------------------------------------------------
# Atomic writes
# ---------------------------------------------------------------------------------------------


def test_a_failed_export_leaves_the_earlier_one_intact(finished_run, tmp_path, monkeypatch):
    target = tmp_path / "out"
    export.export_run(finished_run, target)
    before = _snapshot(target)

    def broken(*args, **kwargs):
        raise RuntimeError("disk pulled out mid-export")

    monkeypatch.setattr(export, "_write_card", broken)  # after the weights and tokenizer were written
    with pytest.raises(RuntimeError):
        export.export_run(finished_run, target)
    assert _snapshot(target) == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no partial folder left behind

    monkeypatch.undo()
    result = export.export_run(finished_run, target)
    assert result.replaced and [p.name for p in tmp_path.iterdir()] == ["out"]
    assert _snapshot(target)["adapter_model.safetensors"] == before["adapter_model.safetensors"]


# ---------------------------------------------------------------------------------------------
# Errors for people
# ---------------------------------------------------------------------------------------------


def test_a_run_without_an_adapter_is_refused(finished_run, tmp_path):
    run = _copy_run(finished_run, tmp_path / "failed-run")
    shutil.rmtree(run / runs.ADAPTER)
    with open(run / runs.EVENTS, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"type": "started", "time": 1.0, "total_steps": 6}) + "\n")
        fh.write(json.dumps({"type": "finished", "time": 2.0, "status": "failed",
                             "error": {"kind": "out_of_memory", "message": "The GPU ran out of memory."}}) + "\n")
    with pytest.raises(StudioError) as err:
        export.export_run(run, tmp_path / "out")
    assert "no trained adapter" in err.value.message and "ran out of memory" in err.value.message
    assert err.value.advice
    assert not (tmp_path / "out").exists()


def test_a_folder_that_is_not_an_export_is_replaced_only_with_force(finished_run, tmp_path):
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("precious")
    with pytest.raises(StudioError) as err:
        export.export_run(finished_run, target)
    assert "--force" in err.value.advice
    assert (target / "notes.txt").read_text() == "precious"
    export.export_run(finished_run, target, force=True)
    assert not (target / "notes.txt").exists() and (target / "adapter_model.safetensors").is_file()
    with pytest.raises(StudioError):  # nor inside the run folder itself
        export.export_run(finished_run, finished_run / runs.ADAPTER / "x")


def test_merging_needs_the_base_model_on_disk(finished_run, tmp_path):
    run = _copy_run(finished_run, tmp_path / "moved-run")
    gone = str(tmp_path / "models" / "my-base")  # deleted since the run
    meta = json.loads((run / "adapter" / "studio.json").read_text())
    meta.update(base_model=gone, base_model_path=gone)
    (run / "adapter" / "studio.json").write_text(json.dumps(meta))
    config = RunConfig.load(run / runs.RECIPE)
    config.model.source = gone
    config.save(run / runs.RECIPE)
    with pytest.raises(StudioError) as err:
        export.export_run(run, tmp_path / "merged", merged=True)
    assert "no longer on this computer" in err.value.message and "without --merged" in err.value.advice
    assert not (tmp_path / "merged").exists()
    # the adapter alone needs no base
    assert export.export_run(run, tmp_path / "adapter-only").kind == "adapter"


def test_not_enough_disk_space_is_refused_before_writing(finished_run, tmp_path, monkeypatch):
    monkeypatch.setattr(export, "free_bytes", lambda path: 10 * 1024**2)
    with pytest.raises(StudioError) as err:
        export.export_run(finished_run, tmp_path / "out", merged=True)
    assert "MB are free" in err.value.message
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------------------------


def test_studio_export_command(finished_run, tmp_path, capsys):
    from studio.cli import main

    target = tmp_path / "cli-merged"
    code = main(["export", str(finished_run), "--to", str(target), "--merged", "--dtype", "fp16", "--ollama"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert str(target) in out and "Modelfile" in out
    assert json.loads((target / "config.json").read_text())["dtype"] == "float16"
    assert "FROM ." in (target / "Modelfile").read_text().splitlines()

    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x.txt").write_text("x")
    code = main(["export", str(finished_run), "--to", str(tmp_path / "taken")])
    err = capsys.readouterr().err
    assert code == 2 and "Error:" in err and "--force" in err
