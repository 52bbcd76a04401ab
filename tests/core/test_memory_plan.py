"""The planner's behaviour: components, what changes them, whether a run fits and what to change."""

from __future__ import annotations

from dataclasses import replace

import pytest

from studio.core.errors import StudioError
from studio.core.memory import (
    AdapterSpec,
    GiB,
    Precision,
    TrainShape,
    apply_changes,
    compare_precisions,
    leanest,
    plan,
    suggest_changes,
)
from studio.core.models import resolve_model

# the peak phase's live set (the start of backward, with transformers' loss) and the held margin
COMPONENTS_QLORA = ["quantized_weights", "unquantized_weights", "lora_weights", "lora_gradients",
                    "optimizer_states", "runtime", "activations", "logits", "cuda_overhead"]


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
    assert totals["4bit"] < totals["16bit"] < totals["full"]
    # LLM.int8 training keeps every Linear's input (8- and 16-bit copies) through checkpointing
    # (measured on an H100): above 4-bit, about as large as 16-bit LoRA
    assert totals["4bit"] < totals["8bit"]
    # full fine-tuning with AdamW: 16 bytes per parameter before activations (fp32 weights, gradients, two states)
    full = plan(llama8b, AdapterSpec(), TrainShape(optimizer="adamw"), Precision("full"))
    weights_and_states = sum(full.bytes_of(n) for n in ("unquantized_weights", "gradients", "optimizer_states"))
    assert weights_and_states == 16 * llama8b.total_params
    # 16-bit LoRA holds the frozen base in bf16: 2 bytes per parameter
    assert plans["16bit"].bytes_of("unquantized_weights") == 2 * llama8b.total_params


def test_activations_and_logits_scale_with_tokens(llama8b):
    base = plan(llama8b, AdapterSpec(), TrainShape(batch_size=1, seq_len=1024), Precision())
    double = plan(llama8b, AdapterSpec(), TrainShape(batch_size=2, seq_len=1024), Precision())
    lm_head_copy = 128_256 * 4096 * 2  # autocast's bf16 copy of the fp32 lm_head, kept for backward
    assert base.peak_phase.name == double.peak_phase.name == "loss_backward"
    assert double.bytes_of("logits") - lm_head_copy == 2 * (base.bytes_of("logits") - lm_head_copy)
    assert double.bytes_of("activations") == pytest.approx(2 * base.bytes_of("activations"), rel=0.01)
    # at the start of backward the loss holds 12 bytes per (token × vocabulary entry)
    assert base.bytes_of("logits") == 12 * 1024 * 128_256 + lm_head_copy
    no_ckpt = plan(llama8b, AdapterSpec(), TrainShape(batch_size=1, seq_len=1024, gradient_checkpointing=False), Precision())
    assert no_ckpt.bytes_of("activations") > 5 * base.bytes_of("activations")
    eager = plan(llama8b, AdapterSpec(), TrainShape(seq_len=4096, attention="eager"), Precision())
    sdpa = plan(llama8b, AdapterSpec(), TrainShape(seq_len=4096), Precision())
    assert recomputed(eager) > recomputed(sdpa)  # the s×s probabilities, in the layer backward recomputes


def recomputed(p) -> int:
    """Activation bytes while backward goes through a recomputed layer."""
    phase = next(ph for ph in p.phases if ph.name == "layer_backward")
    return sum(c.bytes for c in phase.live if c.name == "activations")


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
    assert any(s.change.startswith("Fewer examples at once: ") and "instead of 4" in s.change for s in suggestions)


def test_combined_suggestion_when_no_single_change_fits(llama8b):
    adapter, shape = AdapterSpec(rank=64), TrainShape(batch_size=8, seq_len=8192, gradient_checkpointing=False, optimizer="adamw")
    suggestions = suggest_changes(llama8b, adapter, shape, Precision(), 12 * GiB)
    assert len(suggestions) >= 1 and suggestions[0].combined and ";" in suggestions[0].change
    assert suggestions[0].total_bytes <= 12 * GiB


def test_smaller_model_of_the_family_is_offered():
    big, small = resolve_model("qwen2.5-7b"), resolve_model("qwen2.5-1.5b")
    suggestions = suggest_changes(big, AdapterSpec(), TrainShape(seq_len=512), Precision(), 6 * GiB, [small])
    assert suggestions[-1].changes == {"model": "qwen2.5-1.5b"}
    assert suggestions[-1].total_bytes <= 6 * GiB


# ---------------------------------------------------------------------------------------------
# Fixes in the user's words, one change each; one answer to "can it fit at all"
# ---------------------------------------------------------------------------------------------

JARGON = ("lm_head", "fp32", "bfloat16", "LoRA rank", "Micro-batch", "Sequence length", "→")


@pytest.fixture(scope="module")
def llama31():
    return resolve_model("llama-3.1-8b")


def studio_defaults(model):
    """What the window plans for a real model: the recipe's defaults (rank 16, 2048 tokens, the loss in
    pieces, the fp32 copy of the frozen layers, paged 8-bit AdamW)."""
    from studio.core.recipe import RunConfig

    config = RunConfig()
    return (config.adapter_spec(), config.train_shape(on_gpu=True, model_type=model.model_type),
            config.precision_for("bfloat16"))


def test_each_fix_is_one_change_in_plain_words(llama31):
    adapter, shape, precision = AdapterSpec(), TrainShape(batch_size=4, seq_len=4096, grad_accum=4, optimizer="adamw"), Precision()
    fixes = suggest_changes(llama31, adapter, shape, precision, 28 * GiB)
    assert [f.change for f in fixes] == ["Work out the loss 1024 tokens at a time (same result)",
                                         "Fewer examples at once: 1 instead of 4 (the same 16 examples per training step)",
                                         "Shorter examples: cut at 1024 tokens instead of 4096"]
    for fix in fixes:
        assert fix.parts == (fix.change,) and not fix.combined  # one change per button
        assert not any(word in fix.change for word in JARGON), fix.change
        assert fix.total_bytes == plan(llama31, *apply_changes(fix.changes, adapter, shape, precision)).total_bytes <= 28 * GiB


def test_qwen_7b_on_8gb_gets_one_listed_combination_of_two_changes():
    """No single change makes the studio's default run of Qwen2.5 7B fit 8 GB (what the process holds
    included, at the range's upper end): the fix lists the fewest changes that do, each necessary,
    each in plain words, with the new total."""
    qwen = resolve_model("qwen2.5-7b")
    settings = studio_defaults(qwen)
    fixes = suggest_changes(*[qwen, *settings], 8 * GiB)
    assert len(fixes) == 1 and fixes[0].combined
    fix = fixes[0]
    assert fix.parts == ("Smaller adapter: rank 4 instead of 16 (it can change the model less)",
                         "Shorter examples: cut at 256 tokens instead of 2048")
    assert fix.change == ("2 changes together: smaller adapter: rank 4 instead of 16 (it can change the model less); "
                          "shorter examples: cut at 256 tokens instead of 2048")
    assert fix.changes == {"adapter.rank": 4, "adapter.alpha": 8, "shape.seq_len": 256}
    assert fix.total_bytes == plan(qwen, *apply_changes(fix.changes, *settings)).total_bytes <= 8 * GiB
    for rest in ({"shape.seq_len": 256}, {"adapter.rank": 4, "adapter.alpha": 8}):  # each change is needed
        assert not plan(qwen, *apply_changes(rest, *settings)).fits(8 * GiB), rest


def test_the_leanest_run_and_the_fixes_give_one_answer(llama31):
    """Whether any fix makes Llama 3.1 8B fit is exactly whether its leanest run fits — on every card."""
    settings = studio_defaults(llama31)
    lean = leanest(llama31, *settings)
    assert lean.plan.precision.mode == "4bit" and not lean.plan.precision.upcast_frozen
    assert lean.plan.adapter.rank == 4 and lean.plan.shape.seq_len == 256 and lean.plan.shape.batch_size == 1
    assert lean.fits(8.5 * GiB) and not lean.fits(7 * GiB)
    for eighths in range(5 * 8, 13 * 8):
        gpu = eighths * GiB // 8
        offered = suggest_changes(llama31, *settings, gpu)
        fixes = [f for f in offered if f.gpus == 1]  # settings; more GPUs come only where no settings fit
        if plan(llama31, *settings).fits(gpu):
            assert offered == []
        else:
            assert bool(fixes) == lean.fits(gpu), gpu / GiB
            assert all(f.gpus > 1 for f in offered[len(fixes):])
            assert all(f.total_bytes <= gpu and f.total_bytes >= lean.plan.total_bytes for f in fixes)


def test_the_leanest_run_starts_from_the_users_settings(llama31):
    """From a 16-bit run without the loss in pieces, the leanest run is 4-bit, in pieces, without the copy."""
    lean = leanest(llama31, AdapterSpec(rank=64, alpha=128), TrainShape(batch_size=8, seq_len=4096, optimizer="adamw"),
                   Precision(mode="16bit"))
    p = lean.plan
    assert (p.precision.mode, p.precision.upcast_frozen, p.shape.loss_chunk_tokens) == ("4bit", False, 1024)
    assert (p.shape.optimizer, p.shape.batch_size, p.shape.grad_accum) == ("paged-adamw-8bit", 1, 64)
    assert (p.adapter.rank, p.adapter.alpha, p.shape.seq_len) == (4, 8, 256)
    assert len(lean.changes) == 7 and all(c.words for c in lean.changes)


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
