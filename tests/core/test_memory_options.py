"""The memory options of a run: each one's wiring, its planned effect, and that it trains as well."""

from __future__ import annotations

import pytest
import torch

from studio.core import runs
from studio.core.memory import LOGIT_BYTES, AdapterSpec, Precision, TrainShape, plan, suggest_changes
from studio.core.models import resolve_model
from studio.core.recipe import RunConfig
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
    model = worker.load_model(config, info, torch.device("cpu"), "float32")
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
    assert all(torch.allclose(a, b, atol=1e-6, rtol=1e-4) for a, b in zip(ref_grads, new_grads))
    # with Trainer's count of target tokens over the accumulated micro-batches
    n = int((labels[:, 1:] != -100).sum())
    torch.manual_seed(1)
    summed = chunked_causal_lm_loss(model, {"input_ids": ids, "labels": labels}, chunk_tokens=16, num_items_in_batch=2 * n)
    assert summed.item() == pytest.approx(reference.item() / 2, rel=1e-5)


def test_chunked_loss_trains_like_the_plain_loss(tmp_path):
    plain = losses(tmp_path, "plain", chunked_loss=False, packing=False)
    chunked = losses(tmp_path, "chunked", chunked_loss=True, loss_chunk_tokens=128, packing=False)
    assert chunked == pytest.approx(plain, rel=1e-4)


def test_planned_logits_follow_the_chunk():
    info = resolve_model("llama-3-8b")
    full = plan(info, AdapterSpec(), TrainShape(seq_len=8192), Precision())
    chunked = plan(info, AdapterSpec(), TrainShape(seq_len=8192, loss_chunk_tokens=1024), Precision())
    assert full.bytes_of("logits") == LOGIT_BYTES * 8192 * 128_256
    assert chunked.bytes_of("logits") == LOGIT_BYTES * 1024 * 128_256
    assert full.total_bytes - chunked.total_bytes > 10 * GiB


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
    padded = losses(tmp_path, "padded", packing=False, chunked_loss=False)
    packed = losses(tmp_path, "packed", packing=True, chunked_loss=False)
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
        model = worker.load_model(config, info, torch.device("cpu"), "bfloat16")
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
    assert worker.attention_for("flash_attention_2", torch.device("cpu")) == "sdpa"
    assert worker.attention_for("eager", torch.device("cpu")) == "eager"
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
