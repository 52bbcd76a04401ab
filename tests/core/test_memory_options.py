"""The memory options of a run: each one's wiring, its planned effect, and that it trains as well."""

from __future__ import annotations

import pytest
import torch

from studio.core import runs
from studio.core.memory import LOGIT_BYTES, AdapterSpec, Precision, TrainShape, plan, suggest_changes
from studio.core.models import resolve_model
from studio.core.recipe import RunConfig
from studio.core.training import model as training_model
from studio.core.training import worker
from studio.core.training.chunked_loss import chunked_causal_lm_loss
from studio.core.training.events import read_events

GiB = 1024**3


def recipe(**training) -> RunConfig:
    config = RunConfig()
    config.model.source = config.data.source = "demo"
    config.data.eval_fraction = 0.0
    t = config.training
    t.steps, t.epochs, t.batch_size, t.grad_accum, t.seq_len, t.learning_rate = 6, None, 4, 1, 256, 2e-3
    t.eval_every, t.save_every, t.sample_every, t.preflight = 0, 0, 0, False
    for key, value in training.items():
        setattr(t, key, value)
    return config.validate()


def losses(tmp_path, name, **training) -> list[float]:
    run_dir = runs.create_run_dir(recipe(**training), tmp_path / name)
    assert worker.run(run_dir, echo=None) == 0
    return [e["loss"] for e in read_events(run_dir / runs.EVENTS) if e["type"] == "step"]


# ---------------------------------------------------------------------------------------------
# Chunked cross-entropy
# ---------------------------------------------------------------------------------------------


def test_chunked_loss_equals_transformers_loss_and_gradients():
    config = RunConfig()
    info = resolve_model("demo")
    model = training_model.load_model(config, info, torch.device("cpu"), "float32")
    model.train()
    torch.manual_seed(0)
    ids = torch.randint(5, info.vocab_size, (3, 50))
    labels = ids.clone()
    labels[:, :20] = -100  # the prompt is not trained
    labels[2, 40:] = -100  # padding
    trainable = [p for p in model.parameters() if p.requires_grad]

    def grads_of(loss):
        for p in trainable:
            p.grad = None
        loss.backward()
        return [p.grad.clone() for p in trainable]

    torch.manual_seed(1)
    reference = model(input_ids=ids, labels=labels).loss
    ref_grads = grads_of(reference)
    torch.manual_seed(1)  # LoRA dropout draws the same masks
    chunked = chunked_causal_lm_loss(model, {"input_ids": ids, "labels": labels}, chunk_tokens=16)
    new_grads = grads_of(chunked)
    assert chunked.item() == pytest.approx(reference.item(), rel=1e-5)
    assert all(torch.allclose(a, b, atol=1e-6, rtol=1e-4) for a, b in zip(ref_grads, new_grads, strict=False))
    # with Trainer's count of target tokens over the accumulated micro-batches
    n = int((labels[:, 1:] != -100).sum())
    torch.manual_seed(1)
    summed = chunked_causal_lm_loss(model, {"input_ids": ids, "labels": labels}, chunk_tokens=16, num_items_in_batch=2 * n)
    assert summed.item() == pytest.approx(reference.item() / 2, rel=1e-5)


def _tiny(kind: str):
    """A random-weight model of an architecture whose logits need more than lm_head, with LoRA on it."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, Gemma2Config, GraniteConfig, Phi3Config, Qwen2Config

    torch.manual_seed(0)
    common = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                  max_position_embeddings=256, vocab_size=300)
    config = {
        "gemma2": lambda: Gemma2Config(head_dim=16, final_logit_softcapping=5.0, **common),  # soft-capped logits
        "granite": lambda: GraniteConfig(logits_scaling=4.0, **common),  # logits divided by 4
        "qwen2": lambda: Qwen2Config(tie_word_embeddings=True, **common),  # lm_head is the embedding
        "phi3": lambda: Phi3Config(pad_token_id=0, **common),
    }[kind]()
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    return get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", lora_dropout=0.0))


@pytest.mark.parametrize("kind", ["gemma2", "granite", "qwen2", "phi3"])
def test_chunked_loss_matches_each_architectures_own_logits(kind):
    from studio.core.training.chunked_loss import usable_for

    model = _tiny(kind)
    assert usable_for(model)
    model.train()
    ids = torch.randint(3, 300, (2, 40))
    labels = ids.clone()
    labels[:, :10] = -100
    trainable = [p for p in model.parameters() if p.requires_grad]
    reference = model(input_ids=ids, labels=labels).loss
    ref_grads = torch.autograd.grad(reference, trainable)
    chunked = chunked_causal_lm_loss(model, {"input_ids": ids, "labels": labels}, chunk_tokens=16)
    new_grads = torch.autograd.grad(chunked, trainable)
    assert chunked.item() == pytest.approx(reference.item(), rel=1e-5)
    assert all(torch.allclose(a, b, atol=1e-6, rtol=1e-4) for a, b in zip(ref_grads, new_grads, strict=False))


def test_chunked_loss_runs_lm_head_under_the_trainers_autocast():
    """bf16 mixed precision: lm_head multiplies in bf16 as it would inside the model's forward,
    even when prepare_model_for_kbit_training kept an fp32 copy of it."""
    model = _tiny("qwen2")
    ids = torch.randint(3, 300, (2, 40))
    inputs = {"input_ids": ids, "labels": ids.clone()}
    seen = []
    head = model.get_base_model().get_output_embeddings()
    hook = head.register_forward_hook(lambda _m, args, out: seen.append((args[0].dim(), out.dtype)))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        reference = model(**inputs).loss
    chunked = chunked_causal_lm_loss(model, inputs, chunk_tokens=16, autocast_dtype=torch.bfloat16)
    hook.remove()
    assert head.weight.dtype == torch.float32
    chunks = [dtype for dim, dtype in seen if dim == 2]  # the chunks' calls (the model's own take 3-d input)
    assert len(chunks) == 5 and all(dtype == torch.bfloat16 for dtype in chunks)
    assert chunked.item() == pytest.approx(reference.item(), rel=2e-2)  # bf16 rounding, chunk by chunk


def test_evaluation_uses_the_chunked_loss_too(tmp_path, monkeypatch):
    from studio.core.training import chunked_loss

    calls = []
    real = chunked_loss.chunked_causal_lm_loss

    def counted(*args, **kwargs):  # the real loss, counted
        calls.append(kwargs.get("chunk_tokens"))
        return real(*args, **kwargs)

    monkeypatch.setattr(chunked_loss, "chunked_causal_lm_loss", counted)

    def eval_losses(name, chunked):
        calls.clear()
        config = recipe(steps=2, eval_every=1, chunked_loss=chunked, loss_chunk_tokens=64)
        config.data.eval_fraction = 0.1
        run_dir = runs.create_run_dir(config.validate(), tmp_path / name)
        assert worker.run(run_dir, echo=None) == 0
        return [e["eval_loss"] for e in read_events(run_dir / runs.EVENTS) if e["type"] == "eval"], len(calls)

    plain, plain_calls = eval_losses("plain", False)
    chunked, chunked_calls = eval_losses("chunked", True)
    eval_batches = -(-20 // 4)  # 10% of 200 rows in batches of 4
    assert plain_calls == 0 and chunked_calls >= 2 + 2 * eval_batches  # train steps and every eval batch
    assert len(chunked) == len(plain) == 2 and chunked == pytest.approx(plain, rel=1e-4)


def test_chunked_loss_trains_like_the_plain_loss(tmp_path):
    plain = losses(tmp_path, "plain", chunked_loss=False, packing="off")
    chunked = losses(tmp_path, "chunked", chunked_loss=True, loss_chunk_tokens=128, packing="off")
    assert chunked == pytest.approx(plain, rel=1e-4)


def test_planned_logits_follow_the_chunk():
    info = resolve_model("llama-3-8b")
    full = plan(info, AdapterSpec(), TrainShape(seq_len=8192), Precision(upcast_frozen=False))
    chunked = plan(info, AdapterSpec(), TrainShape(seq_len=8192, loss_chunk_tokens=1024), Precision(upcast_frozen=False))
    assert full.peak_phase.name == "loss_backward" and full.bytes_of("logits") == LOGIT_BYTES * 8192 * 128_256
    # in pieces, the loss's 1024-token chunk is no longer the peak: backward through a recomputed layer is
    backward_start = next(p for p in chunked.phases if p.name == "loss_backward")
    assert sum(c.bytes for c in backward_start.live if c.name == "logits") == LOGIT_BYTES * 1024 * 128_256
    assert chunked.peak_phase.name == "layer_backward"
    assert full.total_bytes - chunked.total_bytes > 8 * GiB


def test_chunked_loss_only_where_the_worker_can_use_it():
    config = RunConfig()
    assert config.train_shape(True, "llama").loss_chunk_tokens == 1024
    assert config.train_shape(True, "gpt_neox").loss_chunk_tokens == 0  # not in chunked_loss.SUPPORTED
    config.training.chunked_loss = False
    assert config.train_shape(True, "llama").loss_chunk_tokens == 0


# ---------------------------------------------------------------------------------------------
# Padding-free packing
# ---------------------------------------------------------------------------------------------


def test_packing_trains_like_padding(tmp_path):
    padded = losses(tmp_path, "padded", packing="off", chunked_loss=False)
    packed = losses(tmp_path, "packed", packing="on", chunked_loss=False)
    assert packed == pytest.approx(padded, rel=2e-3)


def test_packed_attention_keeps_examples_apart():
    """Two examples joined in one row see only themselves: their logits equal separate runs."""
    from transformers import AutoModelForCausalLM, DataCollatorWithFlattening

    from studio.core.paths import demo_model_dir

    model = AutoModelForCausalLM.from_pretrained(demo_model_dir(), attn_implementation="sdpa")
    model.config.use_cache = False
    a, b = torch.randint(5, 2000, (1, 37)), torch.randint(5, 2000, (1, 21))
    batch = DataCollatorWithFlattening(return_position_ids=True, separator_id=-100)(
        [{"input_ids": a[0].tolist(), "labels": a[0].tolist()}, {"input_ids": b[0].tolist(), "labels": b[0].tolist()}])
    with torch.no_grad():
        joined = model(**batch).logits[0]
        alone = model(input_ids=b).logits[0]
    assert torch.allclose(joined[37:], alone, atol=1e-4)


# ---------------------------------------------------------------------------------------------
# No fp32 copy of the frozen weights
# ---------------------------------------------------------------------------------------------


def test_frozen_weights_stay_in_the_compute_dtype_and_the_plan_knows_it():
    info = resolve_model("demo")
    measured = {}
    for upcast in (True, False):
        config = RunConfig()
        config.training.upcast_frozen = upcast
        model = training_model.load_model(config, info, torch.device("cpu"), "bfloat16")
        frozen = [p for p in model.parameters() if not p.requires_grad and p.__class__.__name__ != "Params4bit"]
        measured[upcast] = sum(p.numel() * p.element_size() for p in frozen)
        assert model.get_input_embeddings().weight.dtype == (torch.float32 if upcast else torch.bfloat16)
        planned = plan(info, config.adapter_spec(), config.train_shape(False, info.model_type), config.precision_for("bfloat16"))
        assert planned.bytes_of("unquantized_weights") == measured[upcast]
    assert measured[False] * 2 == measured[True]


def test_bf16_without_the_fp32_copy_trains_as_well(tmp_path):
    """bf16 compute (autocast) on the CPU: the same curve within noise, with or without the fp32 copy."""
    upcast = losses(tmp_path, "upcast", compute_dtype="bfloat16", upcast_frozen=True, steps=12)
    lean = losses(tmp_path, "lean", compute_dtype="bfloat16", upcast_frozen=False, steps=12)
    assert sum(lean[-4:]) / 4 == pytest.approx(sum(upcast[-4:]) / 4, rel=0.15)
    assert sum(lean[-4:]) < sum(lean[:4]) and sum(upcast[-4:]) < sum(upcast[:4])


def test_suggestions_offer_the_options_when_a_run_does_not_fit():
    info = resolve_model("llama-3-8b")
    suggestions = suggest_changes(info, AdapterSpec(), TrainShape(seq_len=8192), Precision(), 20 * GiB)
    changes = [s.changes for s in suggestions]
    assert {"shape.loss_chunk_tokens": 1024} in changes
    config = RunConfig().with_changes({"shape.loss_chunk_tokens": 1024, "precision.upcast_frozen": False})
    assert config.training.chunked_loss and config.training.loss_chunk_tokens == 1024 and not config.training.upcast_frozen


# ---------------------------------------------------------------------------------------------
# Flash attention where it exists, SDPA otherwise
# ---------------------------------------------------------------------------------------------


def test_flash_attention_falls_back_to_sdpa_without_cuda_and_says_so(tmp_path):
    assert training_model.attention_for("flash_attention_2", torch.device("cpu")) == "sdpa"
    assert training_model.attention_for("eager", torch.device("cpu")) == "eager"
    info = resolve_model("demo")
    shape = dict(seq_len=4096, batch_size=2)
    flash = plan(info, AdapterSpec(), TrainShape(attention="flash_attention_2", **shape), Precision())
    sdpa = plan(info, AdapterSpec(), TrainShape(attention="sdpa", **shape), Precision())
    assert flash.total_bytes == sdpa.total_bytes  # no s×s matrix in either
    run_dir = runs.create_run_dir(recipe(steps=2, attention="flash_attention_2"), tmp_path / "flash")
    assert worker.run(run_dir, echo=None) == 0
    events = read_events(run_dir / runs.EVENTS)
    assert any(e["type"] == "log" and "uses SDPA attention instead" in e["message"] for e in events)
    assert events[-1]["type"] == "finished" and events[-1].get("status") == "completed"


def test_packing_follows_the_attention_and_the_plan_counts_its_mask():
    config = RunConfig()
    t = config.training
    assert t.packing == "auto"
    assert not config.train_shape(True, "llama").packing  # SDPA: padded batches, no batch-wide mask
    assert config.train_shape(True, "llama", attention="flash_attention_2").packing
    t.attention = "flash_attention_2"
    assert config.train_shape(True, "llama").packing
    assert not config.train_shape(True, "llama", attention="sdpa").packing  # flash-attn missing: the worker's SDPA
    t.attention, t.packing = "sdpa", "on"
    assert config.train_shape(True, "llama").packing
    info = resolve_model("llama-3-8b")
    shape = dict(batch_size=4, seq_len=1024)
    padded = plan(info, AdapterSpec(), TrainShape(**shape), Precision())
    masked = plan(info, AdapterSpec(), TrainShape(packing=True, **shape), Precision())
    flash = plan(info, AdapterSpec(), TrainShape(packing=True, attention="flash_attention_2", **shape), Precision())
    assert masked.bytes_of("activations") - padded.bytes_of("activations") == 3 * 4096 * 4096
    assert flash.bytes_of("activations") == padded.bytes_of("activations")
    one = dict(batch_size=1, seq_len=1024)  # one example per batch: nothing joined, no mask
    assert plan(info, AdapterSpec(), TrainShape(packing=True, **one), Precision()).total_bytes == \
        plan(info, AdapterSpec(), TrainShape(**one), Precision()).total_bytes


def test_recipes_from_before_the_packing_modes_still_load(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('[model]\nsource = "demo"\n[data]\nsource = "demo"\n[training]\npacking = true\n')
    assert RunConfig.load(path).validate().training.packing == "auto"
    path.write_text('[model]\nsource = "demo"\n[data]\nsource = "demo"\n[training]\npacking = false\n')
    assert RunConfig.load(path).validate().training.packing == "off"
    path.write_text('[model]\nsource = "demo"\n[data]\nsource = "demo"\n[training]\npacking = "sometimes"\n')
    with pytest.raises(Exception, match="Packing"):
        RunConfig.load(path).validate()
