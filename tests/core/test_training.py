"""The QLoRA worker on the demo model, on this CPU: learning, events, resume, cancel and faults."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import torch

from studio.core import runs
from studio.core.recipe import RunConfig
from studio.core.training import callback, launcher, session, worker
from studio.core.training.events import EVENT_TYPES, read_events


def recipe(**training) -> RunConfig:
    config = RunConfig()
    config.model.source = "demo"
    config.data.source = "demo"
    t = config.training
    t.steps, t.epochs = training.pop("steps", 30), None
    t.batch_size, t.grad_accum, t.seq_len, t.learning_rate = 4, 1, 256, 1e-3
    t.eval_every, t.save_every, t.sample_every, t.sample_max_tokens = 10, 10, 0, 24
    for key, value in training.items():
        setattr(t, key, value)
    return config.validate()


def events_of(run_dir: Path, kind: str) -> list[dict]:
    return [e for e in read_events(run_dir / runs.EVENTS) if e["type"] == kind]


def wait_for_event(run_dir: Path, predicate, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in read_events(run_dir / runs.EVENTS):
            if predicate(event):
                return event
        time.sleep(0.1)
    raise TimeoutError(f"no such event in {run_dir}")


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """A 30-step QLoRA run of the demo model on the demo data, in a real worker process."""
    handle = launcher.start(recipe(steps=30, sample_every=30), tmp_path_factory.mktemp("runs") / "thirty")
    events = list(launcher.watch(handle))
    return handle.run_dir, events


# ---------------------------------------------------------------------------------------------
# A whole run
# ---------------------------------------------------------------------------------------------


def test_thirty_steps_lower_the_loss(full_run):
    run_dir, events = full_run
    assert events[-1]["type"] == "finished" and events[-1]["status"] == "completed", events[-1]
    losses = [e["loss"] for e in events if e["type"] == "step"]
    assert [e["step"] for e in events if e["type"] == "step"] == list(range(1, 31))
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < 0.7 * first, (first, last)
    evals = [e["eval_loss"] for e in events if e["type"] == "eval"]
    assert len(evals) >= 2 and evals[-1] < evals[0]


def test_events_are_complete_and_well_formed(full_run):
    run_dir, events = full_run
    assert all(e["type"] in EVENT_TYPES and isinstance(e["time"], float) for e in events)
    started = events[0]
    assert started["type"] == "started" and started["total_steps"] == 30 and started["planned_bytes"] > 0
    assert started["device"] == "CPU" and started["precision"] == "4bit" and started["trainable_params"] > 0
    for step in (e for e in events if e["type"] == "step"):
        assert {"loss", "lr", "grad_norm", "tokens_per_s", "elapsed_s", "eta_s", "total_steps"} <= set(step)
    assert [e["step"] for e in events if e["type"] == "checkpoint"] == [10, 20, 30]
    samples = [e for e in events if e["type"] == "sample"]
    assert samples and all(s["prompt"] and isinstance(s["text"], str) for s in samples)
    # what the watcher saw is exactly what the folder holds
    assert read_events(run_dir / runs.EVENTS) == events


def test_the_run_folder_alone_reproduces_the_curve(full_run):
    run_dir, events = full_run
    summary = runs.summarize_run(run_dir)
    assert summary.status == "completed" and summary.step == 30 and summary.total_steps == 30
    assert summary.losses == [(e["step"], e["loss"]) for e in events if e["type"] == "step"]
    assert summary.adapter == run_dir / "adapter"
    assert runs.load_recipe(run_dir).training.steps == 30
    assert [r.name for r in runs.list_runs(run_dir.parent)] == [run_dir.name]


def test_adapter_changes_the_answers(full_run):
    from studio.core.generate import GenerationSettings, TryModel

    run_dir, _ = full_run
    meta = json.loads((run_dir / "adapter" / "studio.json").read_text())
    assert meta["precision"] == "4bit" and meta["recipe"]["training"]["steps"] == 30
    tried = TryModel.load(run_dir / "adapter")
    from studio.core.data import load_data

    row = load_data("demo").dataset[0]["messages"]
    answers = tried.compare(row[:2] if row[0]["role"] != "system" else row[:3], GenerationSettings(max_new_tokens=24))
    assert answers["base"] != answers["adapter"]


def test_adapter_logits_equal_the_trained_model(tmp_path, monkeypatch):
    """Reload the saved adapter onto a fresh 4-bit base: the logits are those of the model that trained."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    from studio.core.paths import demo_model_dir

    probe = torch.tensor([[5, 17, 99, 250, 31, 7, 64, 128]])
    captured = {}
    original = session.save_adapter

    def capture(model, *args, **kwargs):
        model.eval()
        with torch.no_grad():
            captured["logits"] = model(input_ids=probe).logits.float()
        return original(model, *args, **kwargs)

    monkeypatch.setattr(session, "save_adapter", capture)
    run_dir = runs.create_run_dir(recipe(steps=4, eval_every=0, save_every=0), tmp_path / "run")
    assert worker.run(run_dir, echo=None) == 0
    qc = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                            bnb_4bit_compute_dtype=torch.float32)
    base = AutoModelForCausalLM.from_pretrained(demo_model_dir(), quantization_config=qc, dtype=torch.float32)
    for module in base.modules():  # the layout training used (see training.model.load_model), not bnb's bf16 CPU repack
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False
    with torch.no_grad():
        base_logits = base(input_ids=probe).logits.float()
    model = PeftModel.from_pretrained(base, run_dir / "adapter").eval()
    with torch.no_grad():
        reloaded = model(input_ids=probe).logits.float()
    assert torch.allclose(reloaded, captured["logits"], atol=1e-4, rtol=1e-4)
    assert not torch.allclose(reloaded, base_logits, atol=1e-3)


# ---------------------------------------------------------------------------------------------
# Resume, cancel
# ---------------------------------------------------------------------------------------------


def test_resume_after_kill_9_continues_the_curve(tmp_path):
    config = recipe(steps=8, save_every=3, eval_every=0)
    reference = launcher.start(config, tmp_path / "reference")
    launcher.wait(reference, timeout=300)
    expected = dict(runs.metrics(read_events(reference.run_dir / runs.EVENTS))["loss"])

    handle = launcher.start(config, tmp_path / "killed")
    wait_for_event(handle.run_dir, lambda e: e["type"] == "step" and e["step"] >= 4)
    os.kill(handle.pid, signal.SIGKILL)  # no warning, no chance to save
    handle.process.wait(timeout=30)
    ended = launcher.classify(handle)
    assert ended["status"] == "failed" and ended["error"]["kind"] == "killed"
    assert runs.resume_point(handle.run_dir).name == "checkpoint-3"

    resumed = launcher.resume(handle.run_dir)
    finished = launcher.wait(resumed, timeout=300)
    assert finished["status"] == "completed"
    events = read_events(handle.run_dir / runs.EVENTS)
    starts = [e for e in events if e["type"] == "started"]
    assert [s["resumed_from_step"] for s in starts] == [0, 3]
    curve = dict(runs.metrics(events)["loss"])
    assert sorted(curve) == list(range(1, 9))
    for step in range(4, 9):  # steps after the checkpoint match an uninterrupted run
        assert curve[step] == pytest.approx(expected[step], rel=0.02, abs=1e-3), step
    assert runs.summarize_run(handle.run_dir).status == "completed"


def _tensors(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path))


def test_a_completed_run_resumes_to_nothing(full_run):
    from studio.core.errors import StudioError

    run_dir, _ = full_run
    adapter = (run_dir / "adapter" / "adapter_model.safetensors").read_bytes()
    events = (run_dir / runs.EVENTS).read_bytes()
    with pytest.raises(StudioError) as refused:
        launcher.resume(run_dir)
    assert "already finished" in refused.value.message and "--recipe" in refused.value.advice
    # the worker refuses too, should it be started by hand
    assert worker.run(run_dir, resume=True, echo=None) == 2
    assert "already finished" in (run_dir / runs.STDERR).read_text()
    assert (run_dir / "adapter" / "adapter_model.safetensors").read_bytes() == adapter
    assert (run_dir / runs.EVENTS).read_bytes() == events


def test_killed_in_the_final_save_resume_writes_the_adapter_and_stops(tmp_path):
    config = recipe(steps=4, save_every=2, eval_every=0, sample_every=3, sample_max_tokens=96, preflight=False)
    handle = launcher.start(config, tmp_path / "run")
    # after the last checkpoint come the final samples, evaluation and the adapter save (a second or so)
    while not events_of(handle.run_dir, "checkpoint") or events_of(handle.run_dir, "checkpoint")[-1]["step"] < 4:
        assert handle.alive(), (handle.run_dir / runs.STDERR).read_text()[-2000:]
        time.sleep(0.005)
    os.kill(handle.pid, signal.SIGKILL)
    handle.process.wait(timeout=30)
    assert not (handle.run_dir / "adapter").exists() and launcher.classify(handle)["error"]["kind"] == "killed"
    offset = os.path.getsize(handle.run_dir / runs.EVENTS)

    finished = launcher.wait(launcher.resume(handle.run_dir), timeout=300)
    assert finished["status"] == "completed" and finished["step"] == 4
    new = read_events(handle.run_dir / runs.EVENTS, offset=offset)
    assert not [e for e in new if e["type"] == "step"]  # no step past the recipe's last
    assert [e["resumed_from_step"] for e in new if e["type"] == "started"] == [4]
    saved = _tensors(handle.run_dir / "adapter" / "adapter_model.safetensors")
    trained = _tensors(handle.run_dir / "checkpoints" / "checkpoint-4" / "adapter_model.safetensors")
    assert saved.keys() == trained.keys() and all(torch.equal(saved[k], trained[k]) for k in saved)
    assert runs.summarize_run(handle.run_dir).status == "completed"


def test_a_truncated_checkpoint_is_skipped_on_resume(tmp_path):
    import shutil

    handle = launcher.start(recipe(steps=6, save_every=2, eval_every=0, keep_checkpoints=3, preflight=False), tmp_path / "run")
    wait_for_event(handle.run_dir, lambda e: e["type"] == "checkpoint" and e["step"] == 4)
    os.kill(handle.pid, signal.SIGKILL)
    handle.process.wait(timeout=30)
    launcher.classify(handle)
    newest = runs.resume_point(handle.run_dir)  # checkpoint-4 (or -6, had the kill come late)
    step = runs.checkpoint_step(newest)

    # each file cut short (as by a full disk or an interrupted copy) is found, without unpickling anything
    for name in ("adapter_model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth"):
        copy = tmp_path / "copies" / name / newest.name
        shutil.copytree(newest, copy)
        data = (copy / name).read_bytes()
        (copy / name).write_bytes(data[: len(data) - 100])
        assert name in runs.checkpoint_problem(copy)
    assert runs.checkpoint_problem(newest) is None

    optimizer = newest / "optimizer.pt"
    optimizer.write_bytes(optimizer.read_bytes()[: optimizer.stat().st_size // 2])
    previous = f"checkpoint-{step - 2}"
    assert runs.resume_point(handle.run_dir).name == previous
    offset = os.path.getsize(handle.run_dir / runs.EVENTS)
    finished = launcher.wait(launcher.resume(handle.run_dir), timeout=300)
    assert finished["status"] == "completed", finished
    new = read_events(handle.run_dir / runs.EVENTS, offset=offset)
    logs = [e["message"] for e in new if e["type"] == "log"]
    assert any(newest.name in m and "optimizer.pt" in m and previous in m for m in logs), logs
    assert [e["resumed_from_step"] for e in new if e["type"] == "started"] == [step - 2]
    assert [e["step"] for e in new if e["type"] == "step"] == list(range(step - 1, 7))


def test_first_cancel_stops_at_the_step_and_saves(tmp_path):
    handle = launcher.start(recipe(steps=500, save_every=0, eval_every=0), tmp_path / "cancel")
    wait_for_event(handle.run_dir, lambda e: e["type"] == "step" and e["step"] >= 2)
    assert launcher.cancel(handle) == "stopping after this step"
    finished = launcher.wait(handle, timeout=120)
    assert finished["status"] == "cancelled"
    step = finished["step"]
    assert 2 <= step < 500
    assert (handle.run_dir / "adapter" / "adapter_model.safetensors").is_file()
    assert runs.resume_point(handle.run_dir).name == f"checkpoint-{step}"
    assert runs.summarize_run(handle.run_dir).status == "cancelled"


def test_second_cancel_ends_the_worker_at_once(tmp_path):
    handle = launcher.start(recipe(steps=500, save_every=0, eval_every=0), tmp_path / "hard")
    wait_for_event(handle.run_dir, lambda e: e["type"] == "started")
    launcher.cancel(handle)
    started = time.monotonic()
    assert launcher.cancel(handle) == "stopped"
    assert time.monotonic() - started < 10
    finished = launcher.classify(handle)
    assert finished["status"] == "failed" and finished["error"]["kind"] == "cancelled_hard"
    assert not handle.alive()


# ---------------------------------------------------------------------------------------------
# Faults, injected at the framework boundary; the classification path is the real one
# ---------------------------------------------------------------------------------------------


def _finished(run_dir: Path) -> dict:
    return events_of(run_dir, "finished")[-1]


def test_out_of_memory_is_classified_with_advice(tmp_path, monkeypatch):
    from transformers import Trainer

    calls = {"n": 0}
    real_step = Trainer.training_step

    def step(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "training_step", step)
    run_dir = runs.create_run_dir(recipe(steps=5, eval_every=0, save_every=0), tmp_path / "oom")
    assert worker.run(run_dir, echo=None) == 1
    error = _finished(run_dir)["error"]
    assert error["kind"] == "out_of_memory" and "2.00 GiB" in error["message"] and error["advice"]
    assert "OutOfMemoryError" in (run_dir / runs.STDERR).read_text()


def test_nan_loss_stops_the_run_with_advice(tmp_path, monkeypatch):
    from transformers import Trainer

    real_step = Trainer.training_step

    def step(self, model, inputs, *args, **kwargs):
        loss = real_step(self, model, inputs, *args, **kwargs)
        return loss * float("nan") if self.state.global_step >= 2 else loss

    monkeypatch.setattr(Trainer, "training_step", step)
    run_dir = runs.create_run_dir(recipe(steps=10, eval_every=0, save_every=2), tmp_path / "nan")
    assert worker.run(run_dir, echo=None) == 1
    error = _finished(run_dir)["error"]
    assert error["kind"] == "nan_loss" and "learning rate" in error["advice"]
    steps = events_of(run_dir, "step")
    assert steps[-1]["step"] == 3 and steps[-1]["loss"] is None  # stopped at the first bad step
    assert runs.resume_point(run_dir).name == "checkpoint-2"  # no checkpoint of the broken state


def test_full_disk_is_caught_before_a_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setattr(callback, "free_bytes", lambda path: 10 * 1024**2)
    run_dir = runs.create_run_dir(recipe(steps=6, eval_every=0, save_every=2), tmp_path / "disk")
    assert worker.run(run_dir, echo=None) == 1
    error = _finished(run_dir)["error"]
    assert error["kind"] == "disk_full" and "resume" in error["advice"]
    assert not (run_dir / runs.CHECKPOINTS).exists() or not any((run_dir / runs.CHECKPOINTS).iterdir())
    assert [e["step"] for e in events_of(run_dir, "step")] == [1, 2]


@pytest.mark.parametrize("change,kind,text", [
    ({"model": "/no/such/model"}, "bad_input", "no file or folder"),
    ({"data": "/no/such/data.jsonl"}, "bad_input", "no file or folder"),
])
def test_missing_inputs_fail_before_the_model_loads(tmp_path, change, kind, text):
    config = recipe(steps=2)
    config.model.source = change.get("model", config.model.source)
    config.data.source = change.get("data", config.data.source)
    run_dir = runs.create_run_dir(config, tmp_path / "bad")
    t0 = time.monotonic()
    assert worker.run(run_dir, echo=None) == 2
    error = _finished(run_dir)["error"]
    assert error["kind"] == kind and text in error["message"].lower() and error["advice"]
    assert not events_of(run_dir, "started") and time.monotonic() - t0 < 30


def test_model_folder_without_weights(tmp_path):
    from studio.core.paths import demo_model_dir

    folder = tmp_path / "noweights"
    folder.mkdir()
    for f in demo_model_dir().iterdir():
        if f.is_file() and not f.name.endswith(".safetensors"):
            (folder / f.name).write_bytes(f.read_bytes())
    config = recipe(steps=2)
    config.model.source = str(folder)
    run_dir = runs.create_run_dir(config, tmp_path / "run")
    assert worker.run(run_dir, echo=None) == 2
    assert "no weights" in _finished(run_dir)["error"]["message"]


@pytest.mark.parametrize("field,value,flag", [
    ("learning_rate", 5.0, "--lr"), ("batch_size", 0, "--batch-size"), ("seq_len", 4, "--seq-len"),
    ("scheduler", "wavy", "--scheduler"), ("precision", "3bit", "--precision"), ("steps", 0, "--steps"),
])
def test_bad_recipe_values_name_the_flag(field, value, flag):
    from studio.core.errors import StudioError

    config = recipe(steps=2)
    setattr(config.training, field, value)
    with pytest.raises(StudioError) as err:
        config.validate()
    assert flag in err.value.advice and repr(value) in err.value.message


def test_recipe_round_trips_through_toml(tmp_path):
    config = recipe(steps=7, sample_prompts=["Why yellow?"])
    config.data.mapping = {"prompt": "q", "response": "a"}
    config.adapter.targets = ["q_proj", "v_proj"]
    config.save(tmp_path / "run.toml")
    again = RunConfig.load(tmp_path / "run.toml")
    assert again == config
    assert "steps = 7" in (tmp_path / "run.toml").read_text()


def test_two_processes_train_the_same_adapter_format(tmp_path):
    """DDP through accelerate (gloo on this CPU): the same worker, the same adapter format."""
    from safetensors import safe_open

    def tensors(run_dir):
        with safe_open(str(run_dir / "adapter" / "adapter_model.safetensors"), "pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}

    single = launcher.start(recipe(steps=2, eval_every=0, save_every=0), tmp_path / "one")
    assert launcher.wait(single, timeout=300)["status"] == "completed"
    double = launcher.start(recipe(steps=2, eval_every=0, save_every=0, num_processes=2), tmp_path / "two")
    assert launcher.wait(double, timeout=300)["status"] == "completed"
    started = events_of(double.run_dir, "started")[0]
    assert started["processes"] == 2
    first = events_of(double.run_dir, "step")[0]
    assert first["tokens_seen"] > events_of(single.run_dir, "step")[0]["tokens_seen"]  # both processes' batches
    assert tensors(double.run_dir) == tensors(single.run_dir)


def test_generation_stops_when_asked(full_run):
    """A stop request ends generation at the next token (the Try page's Stop button)."""
    from studio.core.generate import GenerationSettings, TryModel

    run_dir, _ = full_run
    tried = TryModel.load(run_dir / "adapter")
    pieces = []
    text = tried.answer("Why are my fern's tips brown?", GenerationSettings(max_new_tokens=200),
                        on_text=pieces.append, should_stop=lambda: len(pieces) >= 3)
    full = tried.answer("Why are my fern's tips brown?", GenerationSettings(max_new_tokens=200))
    assert len(tried.tokenizer(text)["input_ids"]) < len(tried.tokenizer(full)["input_ids"])
    assert full.strip().startswith(text.strip()[:10])


def test_an_answer_cut_by_the_length_limit_says_so(full_run):
    """Samples and Try answers that hit the length limit end with a note, never mid-sentence unsaid."""
    from studio.core.generate import GenerationSettings, TryModel

    run_dir, _ = full_run
    tried = TryModel.load(run_dir / "adapter")
    question = "Why are my fern's tips brown?"
    cut = tried.answer(question, GenerationSettings(max_new_tokens=6))
    assert cut.endswith(" … (cut at 6 tokens)"), cut
    pieces: list[str] = []
    streamed = tried.answer(question, GenerationSettings(max_new_tokens=6), on_text=pieces.append)
    assert streamed == cut and "".join(pieces) == cut  # the window shows the note as it streams
    whole = tried.answer(question, GenerationSettings(max_new_tokens=400))
    assert "cut at" not in whole and len(tried.tokenizer(whole)["input_ids"]) < 400  # it ended by itself


def test_training_arguments_follow_the_recipe(tmp_path):
    """Trainer's arguments as a pure function of the recipe: steps, warmup, saving, evaluation, optimizer, dtype."""
    from studio.core.training.trainer import training_arguments

    config = recipe(steps=45, warmup_ratio=0.1, save_every=0, eval_every=10, seed=7)
    shape = config.train_shape(False, "llama")
    args = training_arguments(config, shape, run_dir=tmp_path, total_steps=45, compute_dtype="float32", on_gpu=False,
                              has_eval=True)
    assert (args.max_steps, args.warmup_steps, args.save_steps, args.eval_steps) == (45, 5, 45, 10)
    assert args.eval_strategy == "steps" and args.optim == "adamw_torch" and args.use_cpu and not (args.bf16 or args.fp16)
    assert args.output_dir == str(tmp_path / runs.CHECKPOINTS) and args.seed == args.data_seed == 7
    config.training.optimizer = "adamw-8bit"
    args = training_arguments(config, config.train_shape(False, "llama"), run_dir=tmp_path, total_steps=45,
                              compute_dtype="bfloat16", on_gpu=False, has_eval=False)
    assert args.eval_strategy == "no" and args.optim == "adamw_bnb_8bit" and args.bf16 and not args.fp16
