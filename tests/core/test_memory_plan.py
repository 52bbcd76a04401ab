"""The planner's behaviour: components, what changes them, whether a run fits and what to change."""

from __future__ import annotations

from dataclasses import replace

import pytest

from studio.core.errors import StudioError
from studio.core.memory import (
    GiB,
    AdapterSpec,
    Precision,
    TrainShape,
    apply_changes,
    compare_precisions,
    plan,
    suggest_changes,
)
from studio.core.models import resolve_model

COMPONENTS_QLORA = ["quantized_weights", "unquantized_weights", "lora_weights", "lora_gradients",
                    "optimizer_states", "activations", "logits", "cuda_overhead"]


@pytest.fixture(scope="module")
def llama8b():
    return resolve_model("llama-3-8b")


def test_qlora_plan_has_every_component_explained(llama8b):
    p = plan(llama8b, AdapterSpec(), TrainShape(), Precision())
    assert [c.name for c in p.components] == COMPONENTS_QLORA
    assert all(c.bytes > 0 and len(c.why) > 20 for c in p.components)
    assert p.total_bytes == sum(c.bytes for c in p.components)
    # rank 16 on all 224 Linear layers of Llama 3 8B: r·(in+out) summed
    assert p.trainable_params == 41_943_040


def test_precisions_rank_as_expected(llama8b):
    plans = compare_precisions(llama8b, AdapterSpec(), TrainShape(), Precision())
    totals = {k: v.total_bytes for k, v in plans.items()}
    assert totals["4bit"] < totals["8bit"] < totals["16bit"] < totals["full"]
    # full fine-tuning with AdamW: 16 bytes per parameter before activations (fp32 weights, gradients, two states)
    full = plan(llama8b, AdapterSpec(), TrainShape(optimizer="adamw"), Precision("full"))
    weights_and_states = sum(full.bytes_of(n) for n in ("unquantized_weights", "gradients", "optimizer_states"))
    assert weights_and_states == 16 * llama8b.total_params
    # 16-bit LoRA holds the frozen base in bf16: 2 bytes per parameter
    assert plans["16bit"].bytes_of("unquantized_weights") == 2 * llama8b.total_params


def test_activations_and_logits_scale_with_tokens(llama8b):
    base = plan(llama8b, AdapterSpec(), TrainShape(batch_size=1, seq_len=1024), Precision())
    double = plan(llama8b, AdapterSpec(), TrainShape(batch_size=2, seq_len=1024), Precision())
    assert double.bytes_of("logits") == 2 * base.bytes_of("logits")
    assert double.bytes_of("activations") == pytest.approx(2 * base.bytes_of("activations"), rel=0.01)
    # the logits term is 12 bytes per (token × vocabulary entry)
    assert base.bytes_of("logits") == 12 * 1024 * 128_256
    no_ckpt = plan(llama8b, AdapterSpec(), TrainShape(batch_size=1, seq_len=1024, gradient_checkpointing=False), Precision())
    assert no_ckpt.bytes_of("activations") > 5 * base.bytes_of("activations")
    eager = plan(llama8b, AdapterSpec(), TrainShape(seq_len=4096, attention="eager"), Precision())
    sdpa = plan(llama8b, AdapterSpec(), TrainShape(seq_len=4096), Precision())
    assert eager.bytes_of("activations") > sdpa.bytes_of("activations")


def test_adapter_choices_change_trainable_params(llama8b):
    r16 = plan(llama8b, AdapterSpec(rank=16), TrainShape(), Precision())
    r32 = plan(llama8b, AdapterSpec(rank=32), TrainShape(), Precision())
    assert r32.trainable_params == 2 * r16.trainable_params
    qv = plan(llama8b, AdapterSpec(rank=16, targets=("q_proj", "v_proj")), TrainShape(), Precision())
    assert qv.trainable_params == 32 * 16 * ((4096 + 4096) + (4096 + 1024))
    dora = plan(llama8b, AdapterSpec(rank=16, use_dora=True), TrainShape(), Precision())
    assert dora.trainable_params - r16.trainable_params == 32 * (3 * 4096 + 2 * 1024 + 2 * 14336)  # one magnitude per output
    with pytest.raises(StudioError):
        plan(llama8b, AdapterSpec(targets=("not_a_layer",)), TrainShape(), Precision())


def test_8bit_optimizer_is_a_quarter_of_adamw(llama8b):
    adamw = plan(llama8b, AdapterSpec(), TrainShape(optimizer="adamw"), Precision()).bytes_of("optimizer_states")
    eight = plan(llama8b, AdapterSpec(), TrainShape(optimizer="adamw-8bit"), Precision()).bytes_of("optimizer_states")
    assert eight == pytest.approx(adamw / 4, rel=0.03)


def test_fits_and_suggestions(llama8b):
    adapter, shape, precision = AdapterSpec(), TrainShape(batch_size=4, seq_len=4096, grad_accum=4), Precision()
    p = plan(llama8b, adapter, shape, precision)
    assert p.fits(80 * GiB) and not p.fits(16 * GiB)
    assert p.headroom(80 * GiB) == 80 * GiB - p.total_bytes
    assert suggest_changes(llama8b, adapter, shape, precision, 80 * GiB) == []
    suggestions = suggest_changes(llama8b, adapter, shape, precision, 24 * GiB)
    assert suggestions
    for s in suggestions:
        assert s.total_bytes <= 24 * GiB
        a, sh, pr = apply_changes(s.changes, adapter, shape, precision)
        assert plan(llama8b, a, sh, pr).total_bytes == s.total_bytes  # the button does what the text says
        assert sh.effective_batch >= shape.effective_batch  # smaller micro-batches keep the effective batch
    assert any("Micro-batch 4 →" in s.change for s in suggestions)


def test_combined_suggestion_when_no_single_change_fits(llama8b):
    adapter, shape = AdapterSpec(rank=64), TrainShape(batch_size=8, seq_len=8192, gradient_checkpointing=False, optimizer="adamw")
    suggestions = suggest_changes(llama8b, adapter, shape, Precision(), 12 * GiB)
    assert len(suggestions) >= 1 and ";" in suggestions[0].change
    assert suggestions[0].total_bytes <= 12 * GiB


def test_smaller_model_of_the_family_is_offered():
    big, small = resolve_model("qwen2.5-7b"), resolve_model("qwen2.5-1.5b")
    suggestions = suggest_changes(big, AdapterSpec(), TrainShape(seq_len=512), Precision(), 5 * GiB, [small])
    assert suggestions[-1].changes == {"model": "qwen2.5-1.5b"}
    assert suggestions[-1].total_bytes <= 5 * GiB


def test_long_sequence_is_noted(llama8b):
    p = plan(llama8b, AdapterSpec(), TrainShape(seq_len=16384), Precision())
    assert any("longer than the model's context" in n for n in p.notes)


@pytest.mark.parametrize("bad", [dict(rank=0), dict(dropout=1.5), dict(targets=())])
def test_bad_adapter_values_say_what_to_change(bad):
    with pytest.raises(StudioError) as err:
        AdapterSpec(**bad)
    assert err.value.advice


@pytest.mark.parametrize("bad", [dict(batch_size=0), dict(optimizer="sgd"), dict(attention="flash9")])
def test_bad_shapes_say_what_to_change(bad):
    with pytest.raises(StudioError) as err:
        TrainShape(**bad)
    assert err.value.advice


def test_plan_is_pure(llama8b):
    a = plan(llama8b, AdapterSpec(), TrainShape(), Precision())
    b = plan(llama8b, replace(AdapterSpec(), rank=16), TrainShape(), Precision())
    assert a.components == b.components
