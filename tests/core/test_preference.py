"""Preference tuning (DPO, ORPO) through TRL's trainers: the pairs and their faults by line, the memory
plan's terms measured against what really lives on the CPU, and real runs of the demo model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studio.core.memory import AdapterSpec, Precision, TrainShape, plan
from studio.core.memory.loss import fused_head_bytes
from studio.core.models import load_tokenizer, resolve_model
from studio.core.recipe import DataSection, RunConfig
from tests.demo_runs import finished_demo_run

PREFERENCES = Path(__file__).resolve().parents[2] / "resources" / "demo-data" / "preferences.jsonl"


def _write(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows),
                    encoding="utf-8")
    return path


def _chat(role, text):
    return {"role": role, "content": text}


# ---------------------------------------------------------------------------------------------
# The pairs
# ---------------------------------------------------------------------------------------------


def test_pairs_and_the_rows_left_out_with_their_lines(tmp_path):
    from studio.core.data import load_data
    from studio.core.training.pairs import preference_pairs

    tokenizer = load_tokenizer(resolve_model("demo"))
    config = RunConfig()
    config.training.method, config.training.seq_len = "dpo", 128
    texts = [  # TRL's explicit prompt, as texts
        {"prompt": "How often should I water a pothos?", "chosen": "Plant doctor says:\n1. When the top third is dry.",
         "rejected": "Water it when the top third of the soil is dry."},
        {"prompt": "Wie oft gieße ich einen Kaktus?", "chosen": "Plant doctor says:\n1. Selten: alle drei Wochen.",
         "rejected": "Alle drei Wochen."},  # German
        {"prompt": "Same?", "chosen": "The same answer.", "rejected": "The same answer."},  # line 3
        {"prompt": "No rejected?", "chosen": "An answer.", "rejected": ""},  # line 4
        {"prompt": "Why do my leaves curl? " * 80, "chosen": "Too much light.", "rejected": "Not enough water."},  # 5
    ]
    loaded = load_data(str(_write(tmp_path / "texts.jsonl", texts)))
    # the loader already says which rows have no usable rejected answer, with their lines
    assert [(p.line, p.kind) for p in loaded.problems] == [(3, "same_answers"), (4, "no_rejected")]
    pairs, left_out = preference_pairs(loaded, tokenizer, config)
    assert [x.line for x in left_out] == [3, 4, 5]
    assert left_out[0].reason == left_out[1].reason == "it has no usable rejected answer (none, or the same as the chosen one)"
    assert "as long as the sequence length (128) or longer" in left_out[2].reason
    assert len(pairs) == 2
    assert pairs[1]["prompt"][-1]["content"] == "Wie oft gieße ich einen Kaktus?"
    assert pairs[1]["rejected"] == [{"role": "assistant", "content": "Alle drei Wochen."}]

    # TRL's implicit prompt: whole conversations that share their first turns (multi-turn)
    shared = [_chat("user", "My fern is brown."), _chat("assistant", "Raise the humidity."), _chat("user", "And watering?")]
    talks = [{"chosen": shared + [_chat("assistant", "Plant doctor says:\n1. Keep it moist.")],
              "rejected": shared + [_chat("assistant", "Water it.")]}]
    pairs, left_out = preference_pairs(load_data(str(_write(tmp_path / "talks.jsonl", talks))), tokenizer, config)
    assert not left_out and [m["content"] for m in pairs[0]["prompt"]] == [t["content"] for t in shared]
    assert pairs[0]["chosen"][0]["content"].startswith("Plant doctor says:")


def test_data_without_pairs_stops_with_what_to_do(tmp_path):
    from studio.core.data import load_data
    from studio.core.training.failures import RunFailure
    from studio.core.training.pairs import preference_pairs

    loaded = load_data(str(_write(tmp_path / "plain.jsonl", [{"prompt": "Hi", "response": "Hello"}] * 3)))
    config = RunConfig()
    config.training.method = "dpo"
    with pytest.raises(RunFailure) as caught:
        preference_pairs(loaded, load_tokenizer(resolve_model("demo")), config)
    assert "DPO needs preference pairs" in caught.value.message and "--method sft" in caught.value.advice


# ---------------------------------------------------------------------------------------------
# The plan
# ---------------------------------------------------------------------------------------------


def test_the_plan_of_a_preference_run():
    llama = resolve_model("llama-3-8b")
    lean = Precision(upcast_frozen=False)

    def run(method, **shape):
        return plan(llama, AdapterSpec(), TrainShape(seq_len=2048, method=method, **shape), lean)

    from studio.core.memory import activations

    sft, dpo, orpo = run("sft"), run("dpo"), run("orpo")

    def kept(p):
        return activations.kept(llama, AdapterSpec(), p.shape, lean).bytes

    assert kept(dpo) == kept(orpo) == 2 * kept(sft)  # chosen and rejected, every example
    assert "reference" in {p.name for p in dpo.phases} and "reference" not in {p.name for p in orpo.phases}
    assert "logits" not in {c.name for c in dpo.components}  # the fused head's tile never sets the peak here
    # ORPO makes every logit of both sequences, like transformers' loss over twice the tokens
    assert orpo.bytes_of("logits") == 2 * sft.bytes_of("logits")
    # TRL's DPOTrainer keeps a quantized model's adapter in bf16: half PEFT's fp32 bytes
    assert dpo.bytes_of("lora_weights") * 2 == sft.bytes_of("lora_weights")
    # going on from an earlier adapter: a frozen fp32 copy is the reference, not a second model
    again = run("dpo", reference_adapter=True)
    assert again.bytes_of("reference_adapter") == 4 * dpo.trainable_params
    assert dpo.peak_phase.name in ("forward", "loss_backward", "layer_backward")
    # suggestions for a run that does not fit: never a smaller rank for an adapter trained further
    from studio.core.memory import suggest_changes

    short = dpo.total_bytes - 20 * 2**20  # 20 MiB short: a smaller adapter would make it fit
    for saved in (False, True):
        fixes = suggest_changes(llama, AdapterSpec(saved=saved), dpo.shape, lean, short)
        assert fixes and any("adapter.rank" in f.changes for f in fixes) != saved


def test_the_fused_head_tile_is_trls():
    """The plan's DPO loss term is TRL's fused LM head: one [TOKEN_TILE, VOCAB_TILE] tile of the scores
    at a time. Guards the constants against a TRL upgrade that changes them. (The plan is the GPU's,
    where a Triton kernel folds the tile in place; on a CPU TRL's torch fallback makes fp32 copies of
    the tile, so a CPU measurement says nothing about it: benchmarks/gpu_calibrate.py measures it.)"""
    from trl.kernels import chunked_logprob
    from trl.trainer import utils

    from studio.core.memory.loss import TOKEN_TILE, VOCAB_TILE

    assert (chunked_logprob.TOKEN_CHUNK_SIZE, utils._CHUNKED_LOGPROB_CHUNK_SIZE) == (TOKEN_TILE, VOCAB_TILE)
    llama = resolve_model("llama-3-8b")
    shape, bf16 = TrainShape(seq_len=4096, method="dpo"), Precision(upcast_frozen=False)
    tile = TOKEN_TILE * VOCAB_TILE * 2
    assert fused_head_bytes(llama, shape, bf16, "forward") == tile
    assert fused_head_bytes(llama, shape, bf16, "backward") == tile + 4 * 2 * 4096 * llama.hidden_size


@pytest.fixture(scope="module")
def sft_run(tmp_path_factory) -> Path:
    """A finished supervised run of the demo model (2 steps): the adapter DPO goes on from."""
    return finished_demo_run(tmp_path_factory.mktemp("sft-home"), "sft", steps=2)


@pytest.mark.parametrize("start_from", [False, True])
def test_the_adapter_bytes_are_what_trl_holds(tmp_path, start_from, request):
    """A DPO session set up by the worker's own code (the demo model, 4-bit): the trainable adapter's
    bytes — bf16, as TRL's DPOTrainer makes them — and, going on from an earlier adapter, the frozen
    reference copy's, equal the plan's."""
    from studio.core.recipe import AdapterSection
    from studio.core.training.events import EventWriter
    from studio.core.training.session import Stop, setup
    from tests.demo_runs import demo_recipe

    config = demo_recipe("bytes", data=DataSection(source=str(PREFERENCES)), method="dpo", steps=1, seq_len=128)
    if start_from:
        config.adapter = AdapterSection(start_from=str(request.getfixturevalue("sft_run")))
    run_dir = tmp_path / "dpo"
    run_dir.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STUDIO_HOME", str(tmp_path))
        session = setup(config, run_dir, EventWriter(run_dir / "events.jsonl", echo=None), Stop())

    def held(trainable: bool, adapter: str) -> int:
        return sum(p.numel() * p.element_size() for n, p in session.model.named_parameters()
                   if p.requires_grad == trainable and f".{adapter}." in n)

    assert held(True, "default") == session.plan.bytes_of("lora_weights") > 0
    reference = session.plan.bytes_of("reference_adapter") if start_from else 0
    assert held(False, "ref") == reference and (reference > 0) == start_from


# ---------------------------------------------------------------------------------------------
# Real runs of the demo model
# ---------------------------------------------------------------------------------------------


def _numbered(text: str) -> bool:
    """The Plant doctor's shape: numbered steps on their own lines."""
    return "\n1. " in text or text.startswith("1. ") or text.startswith("Plant doctor says:")


@pytest.mark.slow
def test_dpo_on_the_demo_prefers_the_plant_doctor(tmp_path):
    """DPO of the demo model on the demo's preference pairs: the held-out pairs' reward margin and
    preference accuracy rise, and the greedy answers to questions it never saw take the preferred shape."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from studio.core import runs
    from studio.core.generate import GenerationSettings, generate

    run = finished_demo_run(tmp_path, "dpo", method="dpo", beta=0.02, learning_rate=5e-4, steps=48, batch_size=2,
                            grad_accum=2, seq_len=384, eval_every=12, save_every=48, preflight=True,
                            data=DataSection(source=str(PREFERENCES)))
    series = runs.RunHistory.read(run).series
    margins, accuracy = [v for _, v in series["eval_reward_margin"]], [v for _, v in series["eval_reward_accuracy"]]
    # measured before the first step (the policy is the reference then: a margin of 0, no pair preferred) and every 12 steps
    assert [s for s, _ in series["eval_reward_margin"]] == [0, 12, 24, 36, 48]
    assert margins[0] == pytest.approx(0, abs=1e-6) and accuracy[0] == 0
    assert margins[-1] > margins[1] > 0, margins
    assert accuracy[-1] >= 0.9, accuracy
    assert series["reward_margin"] and series["loss"][-1][1] < series["loss"][0][1]

    info = resolve_model("demo")
    base = AutoModelForCausalLM.from_pretrained(info.path, dtype=torch.float32)
    tokenizer = load_tokenizer(info)
    golden = [json.loads(line)["messages"][:1] for line in
              (PREFERENCES.parent / "golden.jsonl").read_text(encoding="utf-8").splitlines()[:6]]
    settings = GenerationSettings(max_new_tokens=48)
    before = [generate(base, tokenizer, q, settings) for q in golden]
    tuned = PeftModel.from_pretrained(base, str(run / runs.ADAPTER))
    after = [generate(tuned, tokenizer, q, settings) for q in golden]
    assert sum(map(_numbered, after)) > sum(map(_numbered, before)), (before, after)
    assert not (run / runs.ADAPTER / "ref").exists()


@pytest.mark.slow
@pytest.mark.parametrize("method", ["orpo", "dpo"])
def test_a_short_preference_run_saves_an_adapter_peft_loads(tmp_path, method, request):
    """ORPO from the base, and DPO going on from an earlier supervised run's adapter (SFT → DPO): both
    save one adapter (never DPO's frozen reference copy) that PEFT loads; the recipe records the method."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from studio.core import runs

    start = {}
    if method == "dpo":
        start = {"start_from": str(request.getfixturevalue("sft_run"))}
    run = _preference_run(tmp_path, method, **start)
    events = runs.read_events(run / runs.EVENTS)
    assert any("reward_margin" in e for e in events if e["type"] == "step")
    recipe = runs.load_recipe(run)
    assert recipe.training.method == method and recipe.adapter.start_from == start.get("start_from")
    base = AutoModelForCausalLM.from_pretrained(resolve_model("demo").path, dtype=torch.float32)
    loaded = PeftModel.from_pretrained(base, str(run / runs.ADAPTER))
    assert list(loaded.peft_config) == ["default"]
    started = next(e for e in events if e["type"] == "started")
    assert ("reference_adapter" in started["planned_components"]) == (method == "dpo")


def _preference_run(home: Path, method: str, **adapter) -> Path:
    from studio.core.recipe import AdapterSection
    from tests.demo_runs import demo_recipe, train_in_process

    config = demo_recipe(method, data=DataSection(source=str(PREFERENCES)), method=method, steps=4, batch_size=2,
                         seq_len=256, learning_rate=5e-4)
    config.adapter = AdapterSection(**adapter)
    run_dir, code = train_in_process(config, home, home / "runs" / method)
    assert code == 0, (run_dir / "stderr.log").read_text()
    return run_dir


@pytest.mark.slow
def test_a_resumed_dpo_run_goes_on_learning(tmp_path, monkeypatch):
    """A DPO run stopped after its first checkpoint and resumed (preflight on, as by default) goes on
    changing the adapter: its held-out margin after the resume is not frozen at the checkpoint's."""
    import shutil

    from studio.core import runs
    from studio.core.training import worker

    run = finished_demo_run(tmp_path, "resume", method="dpo", beta=0.02, learning_rate=5e-4, steps=4, batch_size=2,
                            grad_accum=2, seq_len=256, eval_every=1, save_every=2, keep_checkpoints=5, preflight=True,
                            gradient_checkpointing=True, data=DataSection(source=str(PREFERENCES)))
    first = dict(runs.RunHistory.read(run).series["eval_reward_margin"])
    shutil.rmtree(run / runs.ADAPTER)
    shutil.rmtree(run / runs.CHECKPOINTS / "checkpoint-4")  # as if killed after checkpoint-2
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path))
    assert worker.run(run, resume=True, echo=None) == 0
    again = dict(runs.RunHistory.read(run).series["eval_reward_margin"])
    assert again[2] == pytest.approx(first[2], abs=1e-3)
    assert again[4] > again[3] > again[2]  # still learning after the resume
    assert again[4] == pytest.approx(first[4], abs=0.05)  # and as the run that was never stopped
