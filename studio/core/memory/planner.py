"""`plan()`: the GPU memory one training run needs, before anything runs.

A pure function of a `ModelInfo` and the user's choices: it allocates nothing and touches no GPU,
so the window can call it on every slider move. Three layers of answer (issue #17):
  * the tensors, exact where the libraries fix their layout (tensors.py: weights, adapter, gradients,
    optimizer states), a model where autograd decides (activations.py, loss.py);
  * "needed": the tensor peak, the largest of the step's phases (phases.py: forward, the start of
    backward, backward through a recomputed layer, the optimizer step, evaluation, sample answers),
    each phase's live set named, the one that sets the peak said;
  * "held": what the process holds on the GPU at that moment, a range (held.py): the CUDA context
    and library workspaces, and the caching allocator's reserve, which grows with the largest
    blocks a step frees and makes again. The fit check uses its upper end.

`MemoryPlan.components` are the peak phase's live set plus the held margin ("cuda_overhead"), so
they add up to `total_bytes`, the conservative end.
"""

from __future__ import annotations

from dataclasses import replace

from studio.core.memory import held, sharding
from studio.core.memory.choices import AdapterSpec, Precision, TrainShape
from studio.core.memory.components import Component, MemoryPlan
from studio.core.memory.loss import BACKWARD_BYTES_PER_LOGIT
from studio.core.memory.phases import peak, training_phases
from studio.core.memory.tensors import bnb4_layer_bytes, int8_layer_bytes, lora_tensor_sizes, optimizer_bytes
from studio.core.models import ModelInfo

LOGIT_BYTES = BACKWARD_BYTES_PER_LOGIT  # the loss's bytes per logit at its peak (loss.py)

OPTIMIZER_NAMES = {"adamw": "AdamW (32-bit)", "adamw-8bit": "8-bit AdamW", "paged-adamw-8bit": "paged 8-bit AdamW"}


def plan(model: ModelInfo, adapter: AdapterSpec, shape: TrainShape, precision: Precision = Precision()) -> MemoryPlan:
    """The GPU memory one training run needs (on each GPU, when several train it). Pure: no GPU, no allocation."""
    static = _quantized_weights(model, precision) + _unquantized_weights(model, precision)
    if precision.full:
        trained = _full_training(model, shape, precision)
        trainable = model.total_params
    else:
        sizes = lora_tensor_sizes(model, adapter)
        trainable = sum(sizes)
        weights, trained = _adapter(model, adapter, shape, sizes, _adapter_bytes(shape, precision))
        static.append(weights)
        if shape.method == "dpo" and shape.reference_adapter:
            static.append(Component("reference_adapter", trainable * 4,
                                    "DPO going on from an earlier adapter: TRL keeps a frozen copy of it (fp32) as the "
                                    "reference, instead of a second copy of the model."))
    static, trained = sharding.per_gpu(model, adapter, shape, precision, static, trained)  # one GPU's share
    phases = tuple(training_phases(model, adapter, shape, precision, static, trained))
    top = peak(phases)
    low, high = held.held_range(model, shape, top.bytes, precision)
    components = _merged(top.live) + (held.margin(high - top.bytes),)
    return MemoryPlan(model, adapter, shape, precision, components, trainable, _notes(model, shape),
                      phases=phases, held_bytes=(low, high))


def compare_precisions(model: ModelInfo, adapter: AdapterSpec, shape: TrainShape, precision: Precision) -> dict[str, MemoryPlan]:
    """The same run as full fine-tuning, 16-bit LoRA, 8-bit and 4-bit QLoRA, side by side."""
    return {mode: plan(model, adapter, shape, replace(precision, mode=mode)) for mode in ("full", "16bit", "8bit", "4bit")}


def _merged(live: tuple[Component, ...]) -> tuple[Component, ...]:
    """One component per name (the kept activations and the recomputed layer are both activations)."""
    out: dict[str, Component] = {}
    for c in live:
        if c.name in out:
            first = out[c.name]
            out[c.name] = Component(c.name, first.bytes + c.bytes, f"{first.why} {c.why}")
        else:
            out[c.name] = c
    return tuple(out.values())


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
    if precision.quantized and precision.norms_fp32:
        frozen16 = model.embedding_params + model.lm_head_params
        return [Component(
            "unquantized_weights", frozen16 * p + (model.unquantized_params - frozen16) * 4,
            f"Embeddings and lm_head ({frozen16 / 1e6:.0f} M) in {dtype}, norms and biases in fp32, as TRL's "
            "SFTTrainer leaves them.")]
    if precision.quantized:
        return [Component(
            "unquantized_weights", model.unquantized_params * p,
            f"Embeddings, lm_head, norms and biases ({model.unquantized_params / 1e6:.0f} M) stay unquantized, kept in "
            f"{dtype} ({p} bytes each) instead of an fp32 copy.")]
    if precision.mode == "16bit":
        return [Component(
            "unquantized_weights", model.total_params * p,
            f"All {model.total_params / 1e9:.2f} B weights frozen in {dtype} ({p} bytes each): no quantization.")]
    if precision.mode == "full-bf16":
        return [Component(
            "unquantized_weights", model.total_params * p,
            f"All {model.total_params / 1e9:.2f} B weights are trained in pure {dtype} ({p} bytes each): no fp32 copy.")]
    # full fine-tuning, for comparison: Trainer's mixed precision (fp32 weights, 16-bit autocast)
    return [Component(
        "unquantized_weights", model.total_params * 4,
        f"All {model.total_params / 1e9:.2f} B weights are trained, so they are kept in fp32 (4 bytes each); "
        f"{dtype} copies are made on the fly.")]


def _full_training(model: ModelInfo, shape: TrainShape, precision: Precision) -> list[Component]:
    """Full fine-tuning: a gradient and optimizer states for every weight — fp32 with fp32 master
    weights ("full"), the compute dtype in pure bf16 ("full-bf16": no fp32 copy anywhere)."""
    n = model.total_params
    per = 4 if precision.mode == "full" else precision.compute_bytes
    kind = "fp32" if per == 4 else precision.compute_dtype
    return [
        Component("gradients", n * per, f"Every weight is trained, so every weight gets a {kind} gradient."),
        Component("optimizer_states", optimizer_bytes([n], shape.optimizer, per),
                  f"{OPTIMIZER_NAMES[shape.optimizer]} keeps two running averages for each of the {n / 1e9:.2f} B weights."),
    ]


def _adapter_bytes(shape: TrainShape, precision: Precision) -> int:
    """Bytes per adapter weight: fp32 (PEFT's default); TRL's DPOTrainer turns a quantized model's
    trainable adapter weights to bf16, as the QLoRA paper does."""
    return 2 if shape.method == "dpo" and precision.quantized else 4


def _adapter(model: ModelInfo, adapter: AdapterSpec, shape: TrainShape, sizes: list[int],
             per: int = 4) -> tuple[Component, list[Component]]:
    """The LoRA adapter: its weights (`per` bytes each); and what training adds, their gradients and the
    optimizer's states."""
    trainable = sum(sizes)
    kind = "fp32" if per == 4 else "bf16"
    who = "PEFT" if per == 4 else "TRL's DPOTrainer (4/8-bit base)"
    paged = " Paged: moved to CPU memory if the GPU runs short." if shape.optimizer.startswith("paged") else ""
    weights = Component("lora_weights", trainable * per,
                        f"The adapter: {trainable / 1e6:.1f} M trainable parameters (rank {adapter.rank} on "
                        f"{len(model.target_layers(adapter.targets))} layers), kept in {kind} by {who}.")
    return weights, [
        Component("lora_gradients", trainable * per,
                  f"One {kind} gradient per adapter parameter; the frozen base model needs none."),
        Component("optimizer_states", optimizer_bytes(sizes, shape.optimizer, per),
                  f"{OPTIMIZER_NAMES[shape.optimizer]} keeps two running averages per adapter parameter.{paged}"),
    ]


def _notes(model: ModelInfo, shape: TrainShape) -> tuple[str, ...]:
    notes = []
    if shape.packing:
        notes.append("Padding-free packing: the plan is for the worst micro-batch (its longest examples); most use less.")
    if model.context_length and shape.seq_len > model.context_length:
        notes.append(f"Sequence length {shape.seq_len} is longer than the model's context ({model.context_length}).")
    return tuple(notes)
