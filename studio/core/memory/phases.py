"""The moments of a training step, each with the tensors alive in it: the plan's peak is the largest
of them, not the sum of every term (issue #17). Peaks that happen at different times are combined as
peaks: the loss's vocabulary-sized tensors are freed before backward recomputes the first
checkpointed layer, so the two never coincide.

  forward    the weights, what the layers keep for backward, one layer's working set, and with
             transformers' loss (inside the model's forward) its logits
  loss_backward   the start of backward: the loss's gradient while everything forward kept is
             still alive
  layer_backward  (with checkpointing) backward through the last recomputed layer: its kept
             tensors again, and their gradients as they are made
  optimizer  the weights, the adapter's gradients and the optimizer's states and step
  evaluation the eval batch's forward without gradients: one layer at a time and the loss
  reference  (DPO) the reference model's forward without gradients, after the policy's forward: what
             the policy kept is alive, the reference runs one layer at a time and then TRL's fused LM
             head. The reference is the same 4-bit base with the adapter switched off (no second
             copy of the model); going on from an earlier adapter, a frozen copy of that adapter.
  samples    generating an answer: the weights and the key/value cache of one sequence

Every phase after the first step also holds the adapter's gradients (zeroed between steps, not
freed) and a small runtime set (cuBLAS workspaces, rotary tables, the batch): RUNTIME_BYTES.
Measured on an H100 phase by phase (benchmarks/gpu_calibrate.py): the peak was in backward in every
case, forward, optimizer and evaluation below it.
"""

from __future__ import annotations

from dataclasses import dataclass

from studio.core.memory import activations as act
from studio.core.memory.choices import AdapterSpec, Precision, TrainShape
from studio.core.memory.components import Component
from studio.core.memory.loss import describe, loss_bytes
from studio.core.memory.tensors import MiB
from studio.core.models import ModelInfo

RUNTIME_BYTES = 80 * MiB  # measured 74–106 MiB beside the model and its gradients between steps (H100)
# Backward through a recomputed layer holds its kept tensors and, as it goes, their gradients:
# measured 1.2× the kept bytes at its peak (within 1.4% for Llama 3 8B at 8192 tokens with and
# without the fp32 copy, and Phi-3 mini at 4096, on an H100).
LAYER_BACKWARD_FACTOR = 1.2
# LLM.int8 training: bitsandbytes' MatMul8bitLt keeps every Linear's input for backward as an int8
# copy and the 16-bit original (ctx.tensors, outside save_for_backward, so gradient checkpointing
# does not free them): 3 bytes per input value, every layer, until backward. Measured 1.9 GiB more
# than the other terms for Llama 3.2 1B at 2048 tokens on an H100; this gives 1.875 GiB.
INT8_INPUT_BYTES = 3


@dataclass(frozen=True)
class Phase:
    name: str  # forward, loss_backward, layer_backward, reference, optimizer, evaluation, samples
    live: tuple[Component, ...]  # what is alive at this phase's worst moment
    why: str

    @property
    def bytes(self) -> int:
        return sum(c.bytes for c in self.live)


def training_phases(model: ModelInfo, adapter: AdapterSpec, shape: TrainShape, precision: Precision,
                    static: list[Component], trained: list[Component]) -> list[Phase]:
    """The phases of one step. `static`: weights alive throughout; `trained`: the gradients and the
    optimizer's states (alive from the first step on)."""
    base = static + trained + [Component("runtime", RUNTIME_BYTES, "cuBLAS workspaces, rotary tables, the batch.")]
    kept_int8 = _int8_inputs(model, shape, precision)
    kept = act.kept(model, adapter, shape, precision)
    layer = act.recomputed_layer(model, adapter, shape, precision)
    start = _logits(model, shape, precision, "backward", "at the start of backward")
    forward = layer if shape.loss_chunk_tokens else max(layer, _logits(model, shape, precision, "forward", "in forward"),
                                                            key=lambda c: c.bytes)
    phases = [
        Phase("forward", tuple(base + kept_int8 + [kept, forward]),
              "the forward pass: what the layers keep, and one layer working or transformers' loss"),
        Phase("loss_backward", tuple(base + kept_int8 + [kept, start]),
              "the start of backward: the loss's gradient while everything forward kept is alive"),
    ]
    if shape.gradient_checkpointing:
        scaled = Component(layer.name, int(layer.bytes * LAYER_BACKWARD_FACTOR), layer.why + " Backward adds their gradients.")
        phases.append(Phase("layer_backward", tuple(base + kept_int8 + [kept, scaled]),
                            "backward through the last checkpointed layer: it is recomputed, with its gradients"))
    if shape.method == "dpo":
        reference = _logits(model, shape, precision, "evaluation", "of the reference pass")
        phases.append(Phase("reference", tuple(base + kept_int8 + [kept, max(layer, reference, key=lambda c: c.bytes)]),
                            "DPO's reference pass: the base (adapter off) scores both answers without gradients, "
                            "while the policy's forward is kept for backward"))
    phases.append(Phase("optimizer", tuple(base), "the optimizer step: weights, gradients, states"))
    scores = _logits(model, shape, precision, "evaluation", "in evaluation")
    phases.append(Phase("evaluation", tuple(static + [max(layer, scores, key=lambda c: c.bytes)]),
                        "an evaluation batch: no gradients, one layer at a time, then the loss"))
    phases.append(Phase("samples", tuple(static + [_kv_cache(model, shape, precision)]),
                        "a sample answer: the key/value cache of one sequence"))
    return phases


def peak(phases) -> Phase:
    """The phase that sets the peak (the first of equals)."""
    return max(phases, key=lambda p: p.bytes)


def _logits(model: ModelInfo, shape: TrainShape, precision: Precision, moment: str, when: str) -> Component:
    in_what = f"in {precision.compute_dtype} tiles" if shape.method == "dpo" else "in fp32"
    return Component("logits", loss_bytes(model, shape, precision, moment),
                     f"The loss {when}: {describe(model, shape)}, {in_what}.")


def _kv_cache(model: ModelInfo, shape: TrainShape, precision: Precision) -> Component:
    kv = 2 * model.num_layers * model.num_kv_heads * model.head_dim * precision.compute_bytes * shape.seq_len
    return Component("activations", kv, f"The key/value cache of one answer up to {shape.seq_len:,} tokens.")


def _int8_inputs(model: ModelInfo, shape: TrainShape, precision: Precision) -> list[Component]:
    if precision.mode != "8bit":
        return []
    values = shape.tokens * sum(layer.in_features for layer in model.linear_layers)
    return [Component("int8_inputs", INT8_INPUT_BYTES * values,
                      "8-bit layers keep each input for backward (an 8-bit and a 16-bit copy), in every layer: "
                      "gradient checkpointing does not free them.")]
