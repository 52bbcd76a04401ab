"""Export: the adapter with its model card, the merged 16-bit model, the Ollama Modelfile, atomic
writes and the errors a user can act on — all on one real 6-step QLoRA run of the demo model (CPU)."""

from __future__ import annotations

import hashlib
import json
import os
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
from studio.core.export import contents, exporting
from studio.core.recipe import RunConfig
from tests.demo_runs import finished_demo_run

pytestmark = pytest.mark.slow

PROMPT = [{"role": "user", "content": "The lower leaves on my rubber plant are turning yellow. What should I do?"},
          {"role": "assistant", "content": "Plant doctor says: water less."}]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """One finished QLoRA run of the demo model, trained in-process by the worker; the worker answers
    its sample prompts once at the end."""
    return finished_demo_run(tmp_path_factory.mktemp("export-home"), "export-test", eval_every=3, save_every=3)


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


def _state(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under `folder`, hidden ones included: its bytes and when it was last written."""
    return {p.relative_to(folder).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


USERS_FILES = {"notes.txt": b"what I tried, and what worked", "model.gguf": b"GGUF\x03" + bytes(range(256)) * 4,
               "ggufs/model-q4_k_m.gguf": b"GGUF\x03 quantized"}


def _add_users_files(folder: Path) -> dict[str, tuple[bytes, int]]:
    """What a user puts into an export folder afterwards: notes, a GGUF converted from it, a subfolder."""
    for name, data in USERS_FILES.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return {name: state for name, state in _state(folder).items() if name in USERS_FILES}


def _complete_export(folder: Path) -> dict:
    """The folder holds one complete export: every file its manifest lists, byte for byte, and no half-written
    leftovers; returns the marker."""
    marker = json.loads((folder / export.MARKER).read_text())
    for entry in marker["files"]:
        data = (folder / entry["path"]).read_bytes()
        assert len(data) == entry["size"] and hashlib.sha256(data).hexdigest() == entry["sha256"], entry["path"]
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")]
    return marker


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


def test_no_modelfile_with_adapter_unless_asked_and_the_adapter_route_says_which_ollama(finished_run, adapter_export, tmp_path):
    # Ollama 0.34.1 and later refuse ADAPTER: an adapter export writes no Modelfile unless asked for that route
    assert not (adapter_export / "Modelfile").exists()
    with pytest.raises(StudioError, match="take no adapters") as err:
        export.export_run(finished_run, tmp_path / "no", ollama=True)
    assert "--gguf q4_k_m" in err.value.advice and not (tmp_path / "no").exists()
    target = tmp_path / "old-ollama"
    assert export.export_run(finished_run, target, ollama_adapter=True).modelfile
    text = (target / "Modelfile").read_text(encoding="utf-8")
    assert "before 0.34.1" in text and "ADAPTER ." in text.splitlines()


def test_modelfile_template_renders_the_chat_template(finished_run, tmp_path):
    adapter_export = tmp_path / "ollama-adapter"
    export.export_run(finished_run, adapter_export, ollama_adapter=True)
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
    expected = "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    assert export.render_go_template(template, [{"role": "user", "content": "Hi"}]) == expected


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
    facts = runs.read_run(finished_run)
    text = export.modelfile_text(facts, unknown, merged=False)
    assert "TEMPLATE \"\"\"" not in text.replace('# To be sure, add a TEMPLATE """..."""', "")
    assert "No TEMPLATE" in text and "ADAPTER ." in text
    gguf = export.modelfile_text(facts, unknown, merged=False, gguf_file="x-q4_k_m.gguf")
    assert "FROM ./x-q4_k_m.gguf" in gguf.splitlines() and "ADAPTER" not in gguf


# ---------------------------------------------------------------------------------------------
# Atomic writes
# ---------------------------------------------------------------------------------------------


def test_a_failed_export_leaves_the_earlier_one_intact(finished_run, tmp_path, monkeypatch):
    target = tmp_path / "out"
    export.export_run(finished_run, target)
    before = _snapshot(target)

    def broken(*args, **kwargs):
        raise RuntimeError("disk pulled out mid-export")

    monkeypatch.setattr(contents, "model_card", broken)  # after the weights and tokenizer were written
    with pytest.raises(RuntimeError):
        export.export_run(finished_run, target)
    assert _snapshot(target) == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no partial folder left behind

    monkeypatch.undo()
    result = export.export_run(finished_run, target)
    assert result.replaced and [p.name for p in tmp_path.iterdir()] == ["out"]
    assert _snapshot(target)["adapter_model.safetensors"] == before["adapter_model.safetensors"]


# ---------------------------------------------------------------------------------------------
# The user's files in an export folder
# ---------------------------------------------------------------------------------------------


def test_a_new_export_replaces_only_the_earlier_exports_files_and_keeps_the_users(finished_run, tmp_path):
    target = tmp_path / "plant-doctor"
    export.export_run(finished_run, target, merged=True, max_shard_size="2MB")
    merged_files = {entry["path"] for entry in _complete_export(target)["files"]}
    assert "config.json" in merged_files and len([n for n in merged_files if n.startswith("model-")]) >= 2
    users = _add_users_files(target)

    result = export.export_run(finished_run, target)  # the adapter, into the folder of the merged model
    after = _state(target)
    assert {name: after[name] for name in USERS_FILES} == users  # the same bytes, not even rewritten
    assert not list(target.glob("model*.safetensors")) and not (target / "config.json").exists()  # the merge's own files
    marker = _complete_export(target)
    listed = {entry["path"] for entry in marker["files"]}
    assert "adapter_model.safetensors" in listed and marker["kind"] == "adapter"
    assert set(after) == listed | {export.MARKER} | set(USERS_FILES)  # nothing else is left over
    assert set(result.files) == listed | {export.MARKER} and result.replaced
    assert set(result.kept) == set(USERS_FILES) and any("Kept 3 files of yours" in note for note in result.notes)
    assert result.size_bytes == sum(entry["size"] for entry in marker["files"]) + (target / export.MARKER).stat().st_size


def test_a_users_file_with_a_name_the_export_writes_is_in_the_way(finished_run, tmp_path):
    target = tmp_path / "out"
    export.export_run(finished_run, target)
    (target / "README.md").write_text("# What this adapter is for (my words)\n")  # the model card, edited by the user
    (target / "notes.txt").write_text("mine")
    before = _state(target)
    with pytest.raises(export.FilesInTheWay) as err:
        export.export_run(finished_run, target)
    assert err.value.files == ("README.md",) and "README.md" in err.value.message
    assert "changed since the earlier export" in err.value.message and "Nothing was written" in err.value.message
    assert "--force to overwrite just these files" in err.value.advice
    assert _state(target) == before

    result = export.export_run(finished_run, target, force=True)
    assert result.overwritten == ("README.md",) and "LoRA Studio" in (target / "README.md").read_text()
    assert (target / "notes.txt").read_text() == "mine" and result.kept == ("notes.txt",)
    _complete_export(target)


def test_an_export_from_before_the_manifest_is_updated_without_losing_the_users_files(finished_run, tmp_path):
    target = tmp_path / "older"
    export.export_run(finished_run, target)
    marker = json.loads((target / export.MARKER).read_text())
    del marker["files"]  # what exports wrote before they listed their files
    (target / export.MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    written = (target / export.MARKER).stat().st_mtime_ns
    users = _add_users_files(target)
    os.utime(target / "run.toml", ns=(written + 10**9, written + 10**9))  # the user edited the recipe afterwards
    with pytest.raises(export.FilesInTheWay) as err:
        export.export_run(finished_run, target)
    assert err.value.files == ("run.toml",)
    result = export.export_run(finished_run, target, force=True)
    after = _state(target)
    assert {name: after[name] for name in USERS_FILES} == users
    assert set(result.kept) == set(USERS_FILES) and result.overwritten == ("run.toml",)
    _complete_export(target)


class _Killed(BaseException):
    """The process ends here (a BaseException: no `except Exception` on the way stops it)."""


def test_an_export_killed_at_any_step_leaves_the_users_files_and_the_next_one_finds_a_complete_export(
        finished_run, tmp_path, monkeypatch):
    second = _copy_run(finished_run, tmp_path / "second-run")  # another run: its card, plot and marker differ
    template = tmp_path / "template"
    export.export_run(finished_run, template)
    _add_users_files(template)
    steps = {"count": 0, "crash_at": 0}

    def counted(fn):
        def step(*args, **kwargs):
            steps["count"] += 1
            if steps["count"] == steps["crash_at"]:
                raise _Killed()
            return fn(*args, **kwargs)
        return step

    def export_killed_at(k: int, target: Path) -> None:
        steps.update(count=0, crash_at=k)
        with monkeypatch.context() as mp:
            for module, name in ((os, "replace"), (os, "rename"), (os, "unlink"), (shutil, "rmtree")):
                mp.setattr(module, name, counted(getattr(module, name)))
            if k:
                with pytest.raises(_Killed):
                    export.export_run(second, target)
            else:
                export.export_run(second, target)

    shutil.copytree(template, tmp_path / "count")
    export_killed_at(0, tmp_path / "count")
    total = steps["count"]
    assert total >= 10  # the journal, a dozen files moved into place, the staging folder, the journal again
    for k in range(1, total + 1):
        target = tmp_path / f"killed-{k}"
        shutil.copytree(template, target)
        users = {name: state for name, state in _state(target).items() if name in USERS_FILES}
        export_killed_at(k, target)
        after = _state(target)
        assert {name: after[name] for name in USERS_FILES} == users, k
        export.recover(target)  # what the next export does first
        marker = _complete_export(target)
        assert marker["run"] in (str(finished_run), str(second)), k
        after = _state(target)
        assert set(after) == {e["path"] for e in marker["files"]} | {export.MARKER} | set(USERS_FILES), k
        assert {name: after[name] for name in USERS_FILES} == users, k


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


def test_a_folder_that_is_not_an_export_gets_one_only_with_force_and_keeps_its_files(finished_run, tmp_path):
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("precious")
    (target / "README.md").write_text("my own readme")
    before = _state(target)
    with pytest.raises(export.FilesInTheWay) as err:
        export.export_run(finished_run, target)
    assert "notes.txt" in err.value.message and "--force" in err.value.advice
    assert "README.md" in err.value.advice and err.value.files == ("README.md",)  # what --force would overwrite
    assert _state(target) == before
    # --force writes the export into it: the export's names are overwritten, nothing else is deleted
    result = export.export_run(finished_run, target, force=True)
    assert (target / "notes.txt").read_text() == "precious" and (target / "adapter_model.safetensors").is_file()
    assert result.overwritten == ("README.md",) and result.kept == ("notes.txt",)
    assert "LoRA Studio" in (target / "README.md").read_text()
    assert any("README.md" in note for note in result.notes) and any("notes.txt" in note for note in result.notes)
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
    monkeypatch.setattr(exporting, "free_bytes", lambda path: 10 * 1024**2)
    with pytest.raises(StudioError) as err:
        export.export_run(finished_run, tmp_path / "out", merged=True)
    assert "MB are free" in err.value.message
    assert list(tmp_path.iterdir()) == []


def test_a_shard_size_that_is_not_a_size_is_refused_before_any_model_loads(finished_run, tmp_path, monkeypatch):
    def merge(*args, **kwargs):
        raise AssertionError("the base model was loaded before the shard size was checked")

    monkeypatch.setattr(contents, "write_merged", merge)
    for bad in ("banana", "4", "1.5GB", "0MB", "-1GB", "GB"):
        with pytest.raises(StudioError) as err:
            export.export_run(finished_run, tmp_path / "merged", merged=True, max_shard_size=bad)
        assert repr(bad) in err.value.message and "4GB" in err.value.advice and "500MB" in err.value.advice, bad
    assert not (tmp_path / "merged").exists()
    # transformers' own reading of sizes, with a lowercase unit meaning bytes (not bits)
    assert export.shard_size_bytes("500mb") == 500 * 10**6 and export.shard_size_bytes("2GiB") == 2 * 2**30
    assert export.shard_size_bytes("4 GB") == 4 * 10**9 and export.shard_size_bytes(123) == 123


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a file size limit (RLIMIT_FSIZE) as Linux sets it")
@pytest.mark.parametrize("merged", [False, True], ids=["adapter", "merged"])
def test_a_write_that_fails_mid_export_keeps_the_earlier_export_and_says_so(finished_run, tmp_path, merged):
    import resource
    import signal

    target = tmp_path / "out"
    export.export_run(finished_run, target)
    (target / "notes.txt").write_text("mine")
    before = _state(target)
    # The system refuses to let a file grow past the limit (EFBIG), as a full disk refuses (ENOSPC): a real
    # write error from the kernel, in the middle of writing the weights.
    limit = 1_000_000 if merged else (finished_run / runs.ADAPTER / "adapter_model.safetensors").stat().st_size // 2
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        with pytest.raises(StudioError) as err:
            export.export_run(finished_run, target, merged=merged, max_shard_size="2MB")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)
    assert "File too large" in err.value.message
    assert f"Nothing in {target} changed: the earlier export there is still complete" in err.value.message
    assert "another disk" in err.value.advice
    assert _state(target) == before  # no staging folder left, nothing replaced


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


def test_studio_export_force_keeps_the_users_files_and_a_bad_size_is_a_plain_error(finished_run, tmp_path, capsys):
    from studio.cli import main

    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "x.txt").write_text("x")
    code = main(["export", str(finished_run), "--to", str(taken), "--force"])
    out = capsys.readouterr().out
    assert code == 0 and (taken / "x.txt").read_text() == "x" and (taken / "adapter_model.safetensors").is_file()
    assert "Kept 1 file of yours" in out and "x.txt" in out

    code = main(["export", str(finished_run), "--to", str(tmp_path / "m"), "--merged", "--max-shard-size", "banana"])
    err = capsys.readouterr().err
    assert code == 2 and "'banana'" in err and "500MB" in err and "bug" not in err.lower()
    assert not (tmp_path / "m").exists()



@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
def test_exported_files_are_readable_like_any_other_file(adapter_export):
    """safetensors writes its files 0600; an export is meant to be shared, so all its files get the
    user's usual permissions."""
    import os
    import stat

    mask = os.umask(0)
    os.umask(mask)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in adapter_export.iterdir() if p.is_file()}
    assert "adapter_model.safetensors" in modes
    assert set(modes.values()) == {0o666 & ~mask}, modes
