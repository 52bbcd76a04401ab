"""The planner's phases: what is alive at each moment of a step, the peak as the largest of them, and
"needed" against "held" (issue #17). The loss's bytes per logit are measured here on the CPU, on a
tiny model whose vocabulary dominates, with every tensor storage counted while it lives."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from studio.core.memory import AdapterSpec, GiB, Precision, TrainShape, plan
from studio.core.memory.held import held_range
from studio.core.memory.loss import BACKWARD_BYTES_PER_LOGIT, FORWARD_BYTES_PER_LOGIT, loss_bytes
from studio.core.models import resolve_model

TRAINING = ("forward", "loss_backward", "layer_backward", "optimizer")


@pytest.fixture(scope="module")
def llama8b():
    return resolve_model("llama-3-8b")


def names(phase) -> set[str]:
    return {c.name for c in phase.live}


def test_each_phase_holds_what_is_alive_then(llama8b):
    p = plan(llama8b, AdapterSpec(), TrainShape(seq_len=4096, loss_chunk_tokens=1024), Precision(upcast_frozen=False))
    phases = {ph.name: ph for ph in p.phases}
    assert list(phases) == ["forward", "loss_backward", "layer_backward", "optimizer", "evaluation", "samples"]
    for name in TRAINING:  # from the first step on: the adapter's gradients, the optimizer's states
        assert {"quantized_weights", "lora_weights", "lora_gradients", "optimizer_states", "runtime"} <= names(phases[name])
    assert "logits" in names(phases["loss_backward"]) and "logits" not in names(phases["layer_backward"])
    assert not {"activations", "logits"} & names(phases["optimizer"])
    assert not {"lora_gradients", "optimizer_states"} & (names(phases["evaluation"]) | names(phases["samples"]))
    # the peak is the largest phase, and the plan's figures follow from it
    assert p.peak_phase is max(p.phases, key=lambda ph: ph.bytes) and p.needed_bytes == p.peak_phase.bytes
    low, high = p.held_bytes
    assert p.needed_bytes < low < high == p.total_bytes == sum(c.bytes for c in p.components)


def test_peaks_that_happen_apart_are_not_added(llama8b):
    """With checkpointing the loss's tensors and the recomputed layer never coincide: the plan is
    the larger of the two moments, well under their sum."""
    p = plan(llama8b, AdapterSpec(), TrainShape(seq_len=8192), Precision())
    phases = {ph.name: ph for ph in p.phases}
    kept = next(c.bytes for c in phases["loss_backward"].live if c.name == "activations")
    layer = sum(c.bytes for c in phases["layer_backward"].live if c.name == "activations") - kept
    logits = next(c.bytes for c in phases["loss_backward"].live if c.name == "logits")
    assert p.peak_phase.name == "loss_backward"
    assert p.needed_bytes == phases["loss_backward"].bytes < phases["loss_backward"].bytes + layer
    no_ckpt = plan(llama8b, AdapterSpec(), TrainShape(seq_len=1024, gradient_checkpointing=False), Precision())
    assert "layer_backward" not in {ph.name for ph in no_ckpt.phases}  # everything forward made is still kept
    assert logits > 10 * GiB


def test_the_loss_bytes_per_logit_by_how_it_is_computed(llama8b):
    gemma = resolve_model("gemma-2-2b")
    full, chunked = TrainShape(seq_len=2048), TrainShape(seq_len=2048, loss_chunk_tokens=1024)
    lean = Precision(upcast_frozen=False)

    def per(model, shape, moment, precision=lean):
        return loss_bytes(model, shape, precision, moment) / model.vocab_size

    assert per(llama8b, full, "backward") == BACKWARD_BYTES_PER_LOGIT * 2048
    assert per(llama8b, chunked, "backward") == BACKWARD_BYTES_PER_LOGIT * 1024
    assert per(llama8b, full, "evaluation") == FORWARD_BYTES_PER_LOGIT * 2048
    assert per(gemma, full, "backward") == (BACKWARD_BYTES_PER_LOGIT + 2) * 2048  # tanh on the 16-bit logits
    assert per(gemma, chunked, "backward") == (BACKWARD_BYTES_PER_LOGIT + 4) * 1024  # ... on the fp32 ones
    legacy = TrainShape(seq_len=2048, loss="transformers<4.46")
    assert per(llama8b, legacy, "backward") == (BACKWARD_BYTES_PER_LOGIT + 4) * 2048  # the shifted fp32 copy
    # an fp32 lm_head multiplies under autocast through a bf16 copy: kept in training, not in evaluation
    copy = 128_256 * 4096 * 2
    assert loss_bytes(llama8b, full, Precision(), "backward") == loss_bytes(llama8b, full, lean, "backward") + copy
    assert loss_bytes(llama8b, full, Precision(), "evaluation") == loss_bytes(llama8b, full, lean, "evaluation")


def test_full_fine_tuning_in_pure_bf16(llama8b):
    shape = TrainShape(optimizer="adamw", loss_chunk_tokens=1024)
    bf16 = plan(llama8b, AdapterSpec(), shape, Precision(mode="full-bf16"))
    mixed = plan(llama8b, AdapterSpec(), shape, Precision(mode="full"))

    def state(p):
        return sum(p.bytes_of(n) for n in ("unquantized_weights", "gradients", "optimizer_states"))

    assert state(bf16) == 8 * llama8b.total_params  # bf16 weights, gradients and two AdamW states
    assert state(mixed) == 16 * llama8b.total_params  # fp32 for all four
    assert bf16.trainable_params == llama8b.total_params and bf16.peak_phase.name in TRAINING


def test_trl_keeps_norms_in_fp32_and_embeddings_in_bf16(llama8b):
    trl = plan(llama8b, AdapterSpec(), TrainShape(), Precision(upcast_frozen=False, norms_fp32=True))
    ours = plan(llama8b, AdapterSpec(), TrainShape(), Precision(upcast_frozen=False))
    embeddings = llama8b.embedding_params + llama8b.lm_head_params
    norms = llama8b.unquantized_params - embeddings
    assert trl.bytes_of("unquantized_weights") == 2 * embeddings + 4 * norms
    assert ours.bytes_of("unquantized_weights") == 2 * llama8b.unquantized_params
    assert trl.bytes_of("activations") > ours.bytes_of("activations")  # the residual stream runs in fp32


def test_dora_keeps_two_outputs_per_adapted_layer(llama8b):
    shape = TrainShape(seq_len=1024, gradient_checkpointing=False)
    lora = plan(llama8b, AdapterSpec(targets=("q_proj", "v_proj")), shape, Precision(mode="16bit"))
    dora = plan(llama8b, AdapterSpec(targets=("q_proj", "v_proj"), use_dora=True), shape, Precision(mode="16bit"))
    extra = 32 * 1024 * 2 * 2 * (4096 + 1024)  # layers × tokens × bf16 × (base and LoRA outputs) × (q + v outputs)
    assert dora.bytes_of("activations") - lora.bytes_of("activations") == extra


def test_held_range_grows_with_the_largest_block(llama8b):
    small = held_range(llama8b, TrainShape(seq_len=1024, loss_chunk_tokens=1024), 10 * GiB)
    large = held_range(llama8b, TrainShape(seq_len=8192), 10 * GiB)
    assert small[0] < small[1] < large[1] and large[1] - 10 * GiB > 4 * GiB  # 8192 × 128k fp32 logits


# ---------------------------------------------------------------------------------------------
# Measured on the CPU: the loss's live bytes per logit at the start of backward
# ---------------------------------------------------------------------------------------------


def measured_loss_bytes_per_logit(tmp_path, chunk: int) -> float:
    """Peak bytes of tensors alive during one forward + backward of a one-layer model with a 32k
    vocabulary (the loss dominates), less what the model holds, per (token × vocabulary entry)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from peak_vs_plain import LiveTensorBytes, model_tensors

    from studio.core.training.chunked_loss import chunked_causal_lm_loss

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=32_000, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                         num_attention_heads=4, num_key_value_heads=4, tie_word_embeddings=False)
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    for p in model.parameters():
        p.requires_grad_(False)
    model.model.layers[0].mlp.down_proj.weight.requires_grad_(True)  # something to train
    ids = torch.randint(0, 32_000, (1, 512))
    tracker = LiveTensorBytes()
    tracker.add_static(model_tensors(model))
    tracker.start()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        if chunk:
            loss = chunked_causal_lm_loss(model, {"input_ids": ids, "labels": ids}, chunk_tokens=chunk,
                                          autocast_dtype=torch.bfloat16)
        else:
            loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    tracker.stop()
    return (tracker.peak - tracker.static) / (min(chunk or 512, 512) * 32_000)


@pytest.mark.parametrize("chunk", [0, 128])
def test_the_loss_holds_about_twelve_bytes_per_logit(tmp_path, chunk):
    measured = measured_loss_bytes_per_logit(tmp_path, chunk)
    assert BACKWARD_BYTES_PER_LOGIT - 1 <= measured <= BACKWARD_BYTES_PER_LOGIT + 3, measured


def test_8bit_layers_keep_their_inputs_through_checkpointing(llama8b):
    shape = TrainShape(seq_len=2048, loss_chunk_tokens=1024)
    p = plan(llama8b, AdapterSpec(), shape, Precision(mode="8bit"))
    inputs = 2048 * 32 * (5 * 4096 + 4096 + 14336)  # tokens × layers × (q, k, v, gate, up + o + down inputs)
    phases = {ph.name: ph for ph in p.phases}
    for name in ("forward", "loss_backward", "layer_backward"):
        assert sum(c.bytes for c in phases[name].live if c.name == "int8_inputs") == 3 * inputs
    assert "int8_inputs" not in names(phases["optimizer"])
