"""`plan()`: the GPU memory one training run needs, component by component, before anything runs.

A pure function of a `ModelInfo` and the user's choices: it allocates nothing and touches no GPU,
so the window can call it on every slider move. The weight, adapter and optimizer terms are exact
(tensors.py); activations are a model (activations.py); the rest, to be calibrated on a GPU (issue
"Measured on a real GPU"):
  * unquantized weights: embeddings, norms, biases and lm_head, in the dtype they end up in —
    fp32 after `peft.prepare_model_for_kbit_training` (it upcasts every non-quantized float
    parameter), the compute dtype for 16-bit LoRA.
  * logits: the cross-entropy peak over b·s·vocab values. transformers upcasts the logits to fp32
    (`ForCausalLMLoss`), log_softmax keeps its fp32 output, and its backward holds the incoming
    gradient and its result at once: 12 bytes per logit.
  * CUDA overhead: the context and library workspaces, and the caching allocator's slack — named
    calibration constants below.
"""

from __future__ import annotations

from dataclasses import replace

from studio.core.memory.activations import activations
from studio.core.memory.choices import AdapterSpec, Precision, TrainShape
from studio.core.memory.components import Component, MemoryPlan
from studio.core.memory.tensors import MiB, bnb4_layer_bytes, int8_layer_bytes, lora_tensor_sizes, optimizer_bytes
from studio.core.models import ModelInfo

# Calibration constants (issue "Measured on a real GPU" measures them; these are starting values).
CUDA_CONTEXT_BYTES = 512 * MiB  # CUDA context, cuBLAS/cuDNN workspaces: taken before any tensor
ALLOCATOR_SLACK = 0.04  # the caching allocator reserves this much more than is allocated
LOGIT_BYTES = 12  # fp32 log_softmax output + its incoming gradient + its result, per logit

OPTIMIZER_NAMES = {"adamw": "AdamW (32-bit)", "adamw-8bit": "8-bit AdamW", "paged-adamw-8bit": "paged 8-bit AdamW"}


def plan(model: ModelInfo, adapter: AdapterSpec, shape: TrainShape, precision: Precision = Precision()) -> MemoryPlan:
    """The GPU memory one training run needs, as named components. Pure: no GPU, no allocation."""
    components = _quantized_weights(model, precision) + _unquantized_weights(model, precision)
    if precision.mode == "full":
        components += _full_training(model, shape)
        trainable = model.total_params
    else:
        sizes = lora_tensor_sizes(model, adapter)
        trainable = sum(sizes)
        components += _adapter(model, adapter, shape, sizes)
    components.append(activations(model, adapter, shape, precision))
    components.append(_logits(model, shape))
    components.append(_cuda_overhead(components))
    return MemoryPlan(model, adapter, shape, precision, tuple(components), trainable, _notes(model, shape))


def compare_precisions(model: ModelInfo, adapter: AdapterSpec, shape: TrainShape, precision: Precision) -> dict[str, MemoryPlan]:
    """The same run as full fine-tuning, 16-bit LoRA, 8-bit and 4-bit QLoRA, side by side."""
    return {mode: plan(model, adapter, shape, replace(precision, mode=mode)) for mode in ("full", "16bit", "8bit", "4bit")}


def _quantized_weights(model: ModelInfo, precision: Precision) -> list[Component]:
    """The Linear weights bitsandbytes holds in 4 or 8 bits; none in 16-bit and full training."""
    if precision.mode == "4bit":
        q_bytes = sum(bnb4_layer_bytes(layer.weight_params, precision.double_quant) for layer in model.linear_layers)
        per_weight = q_bytes / max(model.quantizable_params, 1)
        dq = "with" if precision.double_quant else "without"
        return [Component(
            "quantized_weights", q_bytes,
            f"{model.quantizable_params / 1e9:.2f} B Linear weights in 4-bit {precision.quant_type.upper()} {dq} double "
            f"quantization: {per_weight:.4f} bytes each (packed values, block scales, code tables).")]
    if precision.mode == "8bit":
        q_bytes = sum(int8_layer_bytes(layer.in_features, layer.out_features) for layer in model.linear_layers)
        return [Component(
            "quantized_weights", q_bytes,
            f"{model.quantizable_params / 1e9:.2f} B Linear weights in 8-bit (LLM.int8): one byte each plus a scale per row.")]
    return []


def _unquantized_weights(model: ModelInfo, precision: Precision) -> list[Component]:
    """The weights kept in floating point: what quantization leaves, or all of them."""
    p, dtype = precision.compute_bytes, precision.compute_dtype
    if precision.quantized and precision.upcast_frozen:
        return [Component(
            "unquantized_weights", model.unquantized_params * 4,
            f"Embeddings, lm_head, norms and biases ({model.unquantized_params / 1e6:.0f} M) stay unquantized, and "
            "prepare_model_for_kbit_training upcasts them to fp32 (4 bytes each).")]
    if precision.quantized:
        return [Component(
            "unquantized_weights", model.unquantized_params * p,
            f"Embeddings, lm_head, norms and biases ({model.unquantized_params / 1e6:.0f} M) stay unquantized, kept in "
            f"{dtype} ({p} bytes each) instead of an fp32 copy.")]
    if precision.mode == "16bit":
        return [Component(
            "unquantized_weights", model.total_params * p,
            f"All {model.total_params / 1e9:.2f} B weights frozen in {dtype} ({p} bytes each): no quantization.")]
    # full fine-tuning, for comparison: Trainer's mixed precision (fp32 weights, 16-bit autocast)
    return [Component(
        "unquantized_weights", model.total_params * 4,
        f"All {model.total_params / 1e9:.2f} B weights are trained, so they are kept in fp32 (4 bytes each); "
        f"{dtype} copies are made on the fly.")]


def _full_training(model: ModelInfo, shape: TrainShape) -> list[Component]:
    """Full fine-tuning: a gradient and optimizer states for every weight."""
    return [
        Component("gradients", model.total_params * 4, "Every weight is trained, so every weight gets an fp32 gradient."),
        Component("optimizer_states", optimizer_bytes([model.total_params], shape.optimizer),
                  f"AdamW keeps two running averages for each of the {model.total_params / 1e9:.2f} B weights."),
    ]


def _adapter(model: ModelInfo, adapter: AdapterSpec, shape: TrainShape, sizes: list[int]) -> list[Component]:
    """The LoRA adapter: its fp32 weights, their gradients, and the optimizer's states for them."""
    trainable = sum(sizes)
    paged = " Paged: moved to CPU memory if the GPU runs short." if shape.optimizer.startswith("paged") else ""
    return [
        Component("lora_weights", trainable * 4,
                  f"The adapter: {trainable / 1e6:.1f} M trainable parameters (rank {adapter.rank} on "
                  f"{len(model.target_layers(adapter.targets))} layers), kept in fp32 by PEFT."),
        Component("lora_gradients", trainable * 4,
                  "One fp32 gradient per adapter parameter; the frozen base model needs none."),
        Component("optimizer_states", optimizer_bytes(sizes, shape.optimizer),
                  f"{OPTIMIZER_NAMES[shape.optimizer]} keeps two running averages per adapter parameter.{paged}"),
    ]


def _logits(model: ModelInfo, shape: TrainShape) -> Component:
    """The loss's peak: fp32 vocabulary scores and their gradient, for all tokens or one chunk."""
    tokens = shape.tokens
    if shape.loss_chunk_tokens and shape.loss_chunk_tokens < tokens:
        return Component(
            "logits", LOGIT_BYTES * shape.loss_chunk_tokens * model.vocab_size,
            f"The chunked loss makes the fp32 vocabulary scores {shape.loss_chunk_tokens} tokens at a time "
            f"(× {model.vocab_size:,}), never all {tokens} at once.")
    return Component(
        "logits", LOGIT_BYTES * tokens * model.vocab_size,
        f"The loss needs {shape.batch_size}×{shape.seq_len} tokens × {model.vocab_size:,} vocabulary scores in fp32, "
        "plus their gradient: large for big vocabularies.")


def _cuda_overhead(components: list[Component]) -> Component:
    tensors = sum(c.bytes for c in components)
    return Component(
        "cuda_overhead", int(CUDA_CONTEXT_BYTES + ALLOCATOR_SLACK * tensors),
        "The CUDA context and library workspaces, and what PyTorch's caching allocator reserves beyond what is in use.")


def _notes(model: ModelInfo, shape: TrainShape) -> tuple[str, ...]:
    notes = []
    if shape.packing:
        notes.append("Padding-free packing: the plan is for the worst micro-batch (its longest examples); most use less.")
    if model.context_length and shape.seq_len > model.context_length:
        notes.append(f"Sequence length {shape.seq_len} is longer than the model's context ({model.context_length}).")
    return tuple(notes)
