"""Activation memory: the tensors autograd keeps for the backward pass — a model, to be calibrated on
a GPU (issue "Measured on a real GPU").

Counted per token for one decoder layer from the architecture (see `layer_bytes_per_token`; the
structure follows Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer
Models", §4, adapted to RMSNorm, rotary embeddings, grouped-query attention, SwiGLU, bnb's casts and
PEFT's LoRA branch). With gradient checkpointing only each layer's input is kept, plus one layer
recomputed during backward.
"""

from __future__ import annotations

from studio.core.memory.choices import AdapterSpec, Precision, TrainShape
from studio.core.memory.components import Component
from studio.core.models import LinearLayer, ModelInfo


def kept(model: ModelInfo, adapter: AdapterSpec, shape: TrainShape, precision: Precision) -> Component:
    """What the forward pass keeps until backward, for one micro-batch: each layer's input with
    gradient checkpointing, every layer's saved tensors without it; the embedding output and the
    final norm's; a packed batch's attention mask."""
    tokens = shape.tokens
    rs = residual_bytes(precision)
    if shape.gradient_checkpointing:
        kept_bytes = model.num_layers * rs * model.hidden_size * tokens
        why = (f"Gradient checkpointing keeps only each layer's input ({model.num_layers} layers × "
               f"{shape.batch_words()}) and recomputes one layer at a time during backward.")
    else:
        kept_bytes = int(model.num_layers * layer_bytes_per_token(model, _trained(adapter, precision), shape, precision) * tokens)
        why = (f"Without gradient checkpointing every layer keeps its intermediate tensors for "
               f"{shape.batch_words()} until backward.")
    kept_bytes += rs * model.hidden_size * tokens * 2  # embedding output and final norm
    if shape.packing and shape.attention != "flash_attention_2" and shape.sequences > 1:
        # SDPA/eager see a joined row as one sequence with a block-diagonal mask over all of it:
        # a bool mask and its 16-bit additive form, batch·seq squared
        mask = 3 * tokens * tokens
        kept_bytes += mask
        why += (f" Packing without flash attention adds a {tokens:,}×{tokens:,} attention mask "
                f"({mask / 1024**2:,.0f} MiB).")
    return Component("activations", kept_bytes, why)


def recomputed_layer(model: ModelInfo, adapter: AdapterSpec, shape: TrainShape, precision: Precision) -> Component:
    """One decoder layer's saved tensors for the micro-batch: what backward recomputes at a time under
    gradient checkpointing (and the working set of a layer in forward)."""
    per_token = layer_bytes_per_token(model, _trained(adapter, precision), shape, precision)
    return Component("activations", int(per_token * shape.tokens),
                     f"One layer's intermediate tensors for {shape.batch_words()}.")


def _trained(adapter: AdapterSpec, precision: Precision) -> AdapterSpec | None:
    return None if precision.full else adapter


def layer_bytes_per_token(model: ModelInfo, adapter: AdapterSpec | None, shape: TrainShape, precision: Precision) -> float:
    """Bytes autograd keeps per token for one decoder layer, without gradient checkpointing.

    p  = compute dtype bytes (bf16/fp16: 2); rs = residual-stream bytes: fp32 when the embeddings
    were upcast by prepare_model_for_kbit_training (the embedding output, and every residual add
    after it, is then fp32), else p.
      two residual tensors, kept by the two RMSNorms ........................ 2·rs·h
      their fp32 normalised values, for the norm weight's gradient: only in full
        fine-tuning (LoRA leaves the norms frozen; the H100's runs without
        checkpointing fit within 2% only without them) .................... 2·4·h
      with an fp32 residual stream, each Linear's compute-dtype copy of its input (_linear_inputs)
      q, k, v outputs and the rotated q, k (RoPE) ............................ p·(2·qd + 3·kvd)
      attention output and log-sum-exp (SDPA/flash) ......................... p·qd + 4·heads
        eager attention adds the s×s probabilities ........................... heads·s·2p
      MLP: gate and up outputs, SiLU output ................................. 3·p·i
      LoRA on a Linear with input d: its input as the adapter's matmul keeps it, the dropout
        mask, and the r-wide intermediate ................................... p·d + d + 8r
        DoRA also keeps the base and LoRA outputs for its magnitude's gradient  2·p·out
    """
    p = precision.compute_bytes
    rs = residual_bytes(precision)
    h, heads = model.hidden_size, model.num_attention_heads
    qd = heads * model.head_dim
    kvd = model.num_kv_heads * model.head_dim
    per_layer = _first_layer_linears(model)

    total = 2 * rs * h + (2 * 4 * h if adapter is None else 0)
    total += _linear_inputs(per_layer, h, p, rs)
    total += p * (2 * qd + 3 * kvd)
    total += p * qd + 4 * heads
    if shape.attention == "eager":
        total += heads * shape.seq_len * 2 * p
    total += 3 * p * model.intermediate_size
    if adapter is not None and not precision.full:
        total += _lora_branches(model, adapter, per_layer, p)
    return total


def _first_layer_linears(model: ModelInfo) -> list[LinearLayer]:
    """The Linear layers of one decoder layer (the first); all of them when layers are not numbered."""
    return [layer for layer in model.linear_layers if _layer_index(layer.name) == 0] or list(model.linear_layers)


def _linear_inputs(per_layer: list[LinearLayer], h: int, p: int, rs: int) -> int:
    """Inputs kept for the Linear layers themselves. A frozen Linear in the compute dtype keeps none
    (its weight needs no gradient, the input's gradient needs only the weight): PEFT's published
    16-bit runs fit only without them. With an fp32 residual stream (the fp32 copy of
    prepare_model_for_kbit_training) each projection's compute-dtype cast of its input is kept:
    the H100's 4-bit runs without checkpointing fit only with them."""
    if rs == p:
        return 0
    from_norm = [layer for layer in per_layer if layer.in_features == h]
    others = [layer for layer in per_layer if layer.in_features != h]
    return p * h * len(from_norm) + sum(p * layer.in_features for layer in others)


def _lora_branches(model: ModelInfo, adapter: AdapterSpec, per_layer: list[LinearLayer], p: int) -> int:
    """What each targeted Linear's LoRA branch keeps: its input, the dropout mask, the r-wide middle."""
    targeted = {layer.suffix for layer in model.target_layers(adapter.targets)}
    total = 0
    for layer in per_layer:
        if layer.suffix in targeted:
            total += p * layer.in_features + 8 * adapter.rank
            if adapter.use_dora:
                total += 2 * p * layer.out_features
            if adapter.dropout > 0:
                total += layer.in_features  # the dropout mask (one byte per value)
    return total


def residual_bytes(precision: Precision) -> int:
    """Bytes per value of the residual stream: fp32 once prepare_model_for_kbit_training has upcast the
    embeddings (their output, and every residual add after it, is fp32), else the compute dtype."""
    return 4 if precision.fp32_residual else precision.compute_bytes


def _layer_index(name: str) -> int | None:
    parts = name.split(".")
    for a, b in zip(parts, parts[1:], strict=False):
        if a in ("layers", "h", "blocks", "layer") and b.isdigit():
            return int(b)
    return None
