"""How much GPU memory a fine-tuning run needs, component by component, before anything runs.

`plan(model, adapter, shape, precision)` is a pure function of a `ModelInfo` (exact parameter
counts and Linear shapes from `models.py`) and the user's choices. It allocates nothing and touches
no GPU, so the window can call it on every slider move. Each `Component` carries a one-line `why`
(the window's tooltip).

What is exact, and proven against real allocations by tests/core/test_memory_exact.py on the CPU:
  * quantized weights: the tensors bitsandbytes stores per quantized Linear — packed 4-bit values
    (n/2 bytes), one absmax per 64-weight block (uint8 with double quantization, else fp32), with
    double quantization one fp32 absmax per 256 blocks, a 256-entry fp32 code table and an fp32
    offset, plus the 16-entry fp32 4-bit code table; LLM.int8 keeps int8 weights plus one fp32
    scale per output row.
  * unquantized weights: embeddings, norms, biases and lm_head, in the dtype they end up in —
    fp32 after `peft.prepare_model_for_kbit_training` (it upcasts every non-quantized float
    parameter), the compute dtype for 16-bit LoRA.
  * LoRA weights (A: r×in, B: out×r, DoRA's magnitude: out), kept in fp32 by PEFT
    (`autocast_adapter_dtype`), their fp32 gradients, and the optimizer states: torch AdamW keeps
    two fp32 states per parameter; bitsandbytes 8-bit AdamW keeps two uint8 states plus one fp32
    absmax per 256 values for tensors of at least 4096 values (smaller ones stay 32-bit), and two
    256-entry fp32 quantile maps shared by all tensors.

What is a model, to be calibrated on a GPU (issue "Measured on a real GPU"):
  * activations: the tensors autograd keeps for the backward pass, counted per token for one
    decoder layer from the architecture (see `_layer_activation_bytes_per_token`; the structure
    follows Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer
    Models", §4, adapted to RMSNorm, rotary embeddings, grouped-query attention, SwiGLU, bnb's
    casts and PEFT's LoRA branch). With gradient checkpointing only each layer's input is kept,
    plus one layer recomputed during backward.
  * logits: the cross-entropy peak over b·s·vocab values. transformers upcasts the logits to fp32
    (`ForCausalLMLoss`), log_softmax keeps its fp32 output, and its backward holds the incoming
    gradient and its result at once: 12 bytes per logit.
  * CUDA overhead: the context and library workspaces, and the caching allocator's slack — named
    calibration constants below.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field, replace
from typing import Iterable, Sequence

from studio.core.errors import StudioError
from studio.core.models import ModelInfo
from studio.core.wording import count

GiB = 1024**3
MiB = 1024**2

PRECISIONS = ("4bit", "8bit", "16bit", "full")
OPTIMIZERS = ("adamw", "adamw-8bit", "paged-adamw-8bit")
COMPUTE_DTYPES = {"bfloat16": 2, "float16": 2, "float32": 4}
ATTENTION = ("sdpa", "eager", "flash_attention_2")  # flash keeps no s×s matrix either: planned as sdpa

# bitsandbytes 4-bit layout (bnb.functional.quantize_4bit and its nested quantize_blockwise).
BNB4_BLOCK = 64  # weights per absmax block
BNB4_NESTED_BLOCK = 256  # absmax values per nested fp32 absmax (double quantization)
BNB4_CODE_BYTES = 16 * 4  # the NF4/FP4 code table, fp32, one per layer
BNB4_NESTED_CODE_BYTES = 256 * 4  # the dynamic 8-bit map used to quantize the absmax, one per layer
BNB4_OFFSET_BYTES = 4  # the fp32 mean subtracted from absmax before nesting
# bitsandbytes 8-bit optimizers (bnb.optim.optimizer.Optimizer2State).
BNB8_OPTIM_BLOCK = 256
BNB8_OPTIM_MIN_SIZE = 4096  # tensors smaller than this keep 32-bit states
BNB8_QMAP_BYTES = 256 * 4  # one fp32 quantile map per state, shared by all tensors of the optimizer

# Calibration constants (issue "Measured on a real GPU" measures them; these are starting values).
CUDA_CONTEXT_BYTES = 512 * MiB  # CUDA context, cuBLAS/cuDNN workspaces: taken before any tensor
ALLOCATOR_SLACK = 0.04  # the caching allocator reserves this much more than is allocated
LOGIT_BYTES = 12  # fp32 log_softmax output + its incoming gradient + its result, per logit
LOSS_CHUNK_TOKENS = 1024  # the loss chunk a fix proposes (training.chunked_loss's default)


@dataclass(frozen=True)
class AdapterSpec:
    """The LoRA adapter: how much the model can change (rank) and how strongly (alpha / rank)."""

    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05
    targets: tuple[str, ...] = ("all-linear",)
    use_dora: bool = False
    use_rslora: bool = False

    def __post_init__(self) -> None:
        if self.rank < 1:
            raise StudioError(f"LoRA rank must be at least 1 (got {self.rank}).", "Use --rank 8, 16 or 32.")
        if not 0 <= self.dropout < 1:
            raise StudioError(f"LoRA dropout must be in [0, 1) (got {self.dropout}).", "Use --dropout 0.05.")
        if not self.targets:
            raise StudioError("No LoRA target modules were chosen.", "Use --targets all-linear, or e.g. q_proj,v_proj.")


@dataclass(frozen=True)
class TrainShape:
    """How the data flows through one optimizer step."""

    batch_size: int = 1  # micro-batch: sequences per forward pass
    seq_len: int = 2048
    grad_accum: int = 8
    gradient_checkpointing: bool = True
    optimizer: str = "paged-adamw-8bit"
    attention: str = "sdpa"
    loss_chunk_tokens: int = 0  # 0: transformers' loss over all logits at once; N: the chunked loss
    packing: bool = False  # padding-free: the worst micro-batch is unchanged, the average one smaller
    # (without flash attention a packed micro-batch also needs a batch·seq square mask)

    def __post_init__(self) -> None:
        if self.loss_chunk_tokens < 0:
            raise StudioError(f"The loss chunk must be 0 or more tokens (got {self.loss_chunk_tokens}).", "Use 0 (off) or e.g. 1024.")
        if self.batch_size < 1 or self.seq_len < 1 or self.grad_accum < 1:
            raise StudioError(
                f"Batch size, sequence length and gradient accumulation must be positive "
                f"(got {self.batch_size}, {self.seq_len}, {self.grad_accum}).",
                "Use e.g. --batch-size 1 --seq-len 2048 --grad-accum 8.",
            )
        if self.optimizer not in OPTIMIZERS:
            raise StudioError(f"Unknown optimizer '{self.optimizer}'.", f"Choose one of: {', '.join(OPTIMIZERS)}.")
        if self.attention not in ATTENTION:
            raise StudioError(f"Unknown attention '{self.attention}'.", f"Choose one of: {', '.join(ATTENTION)}.")

    @property
    def effective_batch(self) -> int:
        return self.batch_size * self.grad_accum

    @property
    def tokens(self) -> int:
        return self.batch_size * self.seq_len


@dataclass(frozen=True)
class Precision:
    """How the base model is held: 4-bit (QLoRA), 8-bit, 16-bit LoRA, or 16-bit full fine-tuning."""

    mode: str = "4bit"
    quant_type: str = "nf4"  # 4-bit only: "nf4" or "fp4"
    double_quant: bool = True  # 4-bit only: quantize the absmax values too
    compute_dtype: str = "bfloat16"  # bf16 where the GPU supports it, else float16; float32 on CPU
    upcast_frozen: bool = True  # 4/8-bit: prepare_model_for_kbit_training's fp32 copy of embeddings, norms, lm_head

    def __post_init__(self) -> None:
        if self.mode not in PRECISIONS:
            raise StudioError(f"Unknown precision '{self.mode}'.", f"Choose one of: {', '.join(PRECISIONS)}.")
        if self.quant_type not in ("nf4", "fp4"):
            raise StudioError(f"Unknown 4-bit type '{self.quant_type}'.", "Choose nf4 (recommended) or fp4.")
        if self.compute_dtype not in COMPUTE_DTYPES:
            raise StudioError(f"Unknown compute dtype '{self.compute_dtype}'.", f"Choose one of: {', '.join(COMPUTE_DTYPES)}.")

    @property
    def quantized(self) -> bool:
        return self.mode in ("4bit", "8bit")

    @property
    def compute_bytes(self) -> int:
        return COMPUTE_DTYPES[self.compute_dtype]


@dataclass(frozen=True)
class Component:
    name: str
    bytes: int
    why: str


@dataclass(frozen=True)
class Change:
    """One change to the user's settings, in their words ("Shorter examples: cut at 512 tokens instead
    of 2048"), with the machine-readable settings it makes ({"shape.seq_len": 512})."""

    words: str
    changes: dict
    same_result: bool = True  # False: what the run learns changes too (a smaller adapter, shorter examples, ...)


@dataclass(frozen=True)
class Suggestion:
    """A fix that makes the run fit, and the total it leads to: one change, or — when no single change
    is enough — a listed combination. `change` says it in the user's words (the window's button, the
    CLI's line); `parts` lists each change of a combination on its own; `changes` is machine-readable:
    keys are "adapter.rank", "shape.batch_size", "precision.mode", "model" ... for the window's buttons."""

    change: str
    total_bytes: int
    changes: dict = field(default_factory=dict)
    parts: tuple[str, ...] = ()

    @property
    def combined(self) -> bool:
        return len(self.parts) > 1


@dataclass(frozen=True)
class MemoryPlan:
    model: ModelInfo
    adapter: AdapterSpec
    shape: TrainShape
    precision: Precision
    components: tuple[Component, ...]
    trainable_params: int
    notes: tuple[str, ...] = ()

    @property
    def total_bytes(self) -> int:
        return sum(c.bytes for c in self.components)

    def component(self, name: str) -> Component:
        for c in self.components:
            if c.name == name:
                return c
        raise KeyError(name)

    def bytes_of(self, name: str) -> int:
        return next((c.bytes for c in self.components if c.name == name), 0)

    def fits(self, gpu_bytes: int) -> bool:
        return self.total_bytes <= gpu_bytes

    def headroom(self, gpu_bytes: int) -> int:
        """Bytes to spare (positive) or missing (negative) on a GPU of `gpu_bytes`."""
        return gpu_bytes - self.total_bytes


@dataclass(frozen=True)
class Leanest:
    """The leanest run of a model the studio can offer (see `leanest`): its plan, and the changes
    from the user's settings that lead to it."""

    plan: MemoryPlan
    changes: tuple[Change, ...]

    def fits(self, gpu_bytes: int) -> bool:
        return self.plan.fits(gpu_bytes)


# ---------------------------------------------------------------------------------------------
# Component by component
# ---------------------------------------------------------------------------------------------


def bnb4_layer_bytes(n_weights: int, double_quant: bool) -> int:
    """Bytes bitsandbytes stores for one 4-bit Linear weight of `n_weights` values."""
    packed = (n_weights + 1) // 2
    blocks = math.ceil(n_weights / BNB4_BLOCK)
    if double_quant:
        nested = math.ceil(blocks / BNB4_NESTED_BLOCK)
        absmax = blocks * 1 + nested * 4 + BNB4_NESTED_CODE_BYTES + BNB4_OFFSET_BYTES
    else:
        absmax = blocks * 4
    return packed + absmax + BNB4_CODE_BYTES


def int8_layer_bytes(in_features: int, out_features: int) -> int:
    """LLM.int8: int8 weights plus one fp32 scale (SCB) per output row."""
    return in_features * out_features + out_features * 4


def lora_tensor_sizes(model: ModelInfo, adapter: AdapterSpec) -> list[int]:
    """Element counts of every trainable LoRA tensor, as PEFT creates them."""
    sizes = []
    for layer in model.target_layers(adapter.targets):
        sizes.append(adapter.rank * layer.in_features)  # lora_A: r × in
        sizes.append(layer.out_features * adapter.rank)  # lora_B: out × r
        if adapter.use_dora:
            sizes.append(layer.out_features)  # lora_magnitude_vector
    return sizes


def optimizer_bytes(tensor_sizes: Iterable[int], optimizer: str) -> int:
    """AdamW's two states for each tensor: fp32 in torch, 8-bit blockwise in bitsandbytes."""
    total = 0
    blockwise = False
    for n in tensor_sizes:
        if optimizer == "adamw" or n < BNB8_OPTIM_MIN_SIZE:
            total += 2 * 4 * n
        else:
            total += 2 * (n + 4 * math.ceil(n / BNB8_OPTIM_BLOCK))
            blockwise = True
    return total + (2 * BNB8_QMAP_BYTES if blockwise else 0)


def _layer_activation_bytes_per_token(model: ModelInfo, adapter: AdapterSpec | None, shape: TrainShape, precision: Precision) -> float:
    """Bytes autograd keeps per token for one decoder layer, without gradient checkpointing.

    p  = compute dtype bytes (bf16/fp16: 2); rs = residual-stream bytes: fp32 when the embeddings
    were upcast by prepare_model_for_kbit_training (the embedding output, and every residual add
    after it, is then fp32), else p.
      two residual tensors, kept by the two RMSNorms ........................ 2·rs·h
      their fp32 normalised values (for the norm weight's gradient) ......... 2·4·h
      the input of every Linear, in compute dtype (bnb/torch keep it for the input gradient);
        shared by the projections reading one norm when no cast is needed, else one copy each
      q, k, v outputs and the rotated q, k (RoPE) ............................ p·(2·qd + 3·kvd)
      attention output and log-sum-exp (SDPA/flash) ......................... p·qd + 4·heads
        eager attention adds the s×s probabilities ........................... heads·s·2p
      MLP: gate and up outputs, SiLU output ................................. 3·p·i
      LoRA on a Linear with input d: its input as the adapter's matmul keeps it, the dropout
        mask, and the r-wide intermediate ................................... p·d + d + 8r
    """
    p = precision.compute_bytes
    full = precision.mode == "full"
    rs = _residual_bytes(precision)
    h, heads = model.hidden_size, model.num_attention_heads
    qd = heads * model.head_dim
    kvd = model.num_kv_heads * model.head_dim
    i = model.intermediate_size
    per_layer = [layer for layer in model.linear_layers if _layer_index(layer.name) == 0] or list(model.linear_layers)

    total = 2 * rs * h + 2 * 4 * h
    from_norm = [layer for layer in per_layer if layer.in_features == h]
    others = [layer for layer in per_layer if layer.in_features != h]
    if rs == p:
        total += 2 * p * h  # one compute-dtype tensor per norm, shared by its projections
    else:
        total += p * h * len(from_norm)  # each quantized Linear casts its fp32 input on its own
    total += sum(p * layer.in_features for layer in others)
    total += p * (2 * qd + 3 * kvd)
    total += p * qd + 4 * heads
    if shape.attention == "eager":
        total += heads * shape.seq_len * 2 * p
    total += 3 * p * i
    if adapter is not None and not full:
        targeted = {layer.suffix for layer in model.target_layers(adapter.targets)}
        for layer in per_layer:
            if layer.suffix in targeted:
                total += p * layer.in_features + 8 * adapter.rank
                if adapter.dropout > 0:
                    total += layer.in_features  # the dropout mask (one byte per value)
    return total


def _residual_bytes(precision: Precision) -> int:
    """Bytes per value of the residual stream: fp32 once prepare_model_for_kbit_training has upcast the
    embeddings (their output, and every residual add after it, is fp32), else the compute dtype."""
    return 4 if precision.quantized and precision.upcast_frozen else precision.compute_bytes


def _layer_index(name: str) -> int | None:
    parts = name.split(".")
    for a, b in zip(parts, parts[1:]):
        if a in ("layers", "h", "blocks", "layer") and b.isdigit():
            return int(b)
    return None


def plan(model: ModelInfo, adapter: AdapterSpec, shape: TrainShape, precision: Precision = Precision()) -> MemoryPlan:
    """The GPU memory one training run needs, as named components. Pure: no GPU, no allocation."""
    p = precision.compute_bytes
    dtype = precision.compute_dtype
    components: list[Component] = []
    notes: list[str] = []

    if precision.mode == "4bit":
        q_bytes = sum(bnb4_layer_bytes(layer.weight_params, precision.double_quant) for layer in model.linear_layers)
        per_weight = q_bytes / max(model.quantizable_params, 1)
        dq = "with" if precision.double_quant else "without"
        components.append(Component(
            "quantized_weights", q_bytes,
            f"{model.quantizable_params / 1e9:.2f} B Linear weights in 4-bit {precision.quant_type.upper()} {dq} double "
            f"quantization: {per_weight:.4f} bytes each (packed values, block scales, code tables)."))
    elif precision.mode == "8bit":
        q_bytes = sum(int8_layer_bytes(layer.in_features, layer.out_features) for layer in model.linear_layers)
        components.append(Component(
            "quantized_weights", q_bytes,
            f"{model.quantizable_params / 1e9:.2f} B Linear weights in 8-bit (LLM.int8): one byte each plus a scale per row."))

    if precision.quantized and precision.upcast_frozen:
        unq = model.unquantized_params * 4
        components.append(Component(
            "unquantized_weights", unq,
            f"Embeddings, lm_head, norms and biases ({model.unquantized_params / 1e6:.0f} M) stay unquantized, and "
            "prepare_model_for_kbit_training upcasts them to fp32 (4 bytes each)."))
    elif precision.quantized:
        components.append(Component(
            "unquantized_weights", model.unquantized_params * p,
            f"Embeddings, lm_head, norms and biases ({model.unquantized_params / 1e6:.0f} M) stay unquantized, kept in "
            f"{dtype} ({p} bytes each) instead of an fp32 copy."))
    elif precision.mode == "16bit":
        components.append(Component(
            "unquantized_weights", model.total_params * p,
            f"All {model.total_params / 1e9:.2f} B weights frozen in {dtype} ({p} bytes each): no quantization."))
    else:  # full fine-tuning, for comparison: Trainer's mixed precision (fp32 weights, 16-bit autocast)
        components.append(Component(
            "unquantized_weights", model.total_params * 4,
            f"All {model.total_params / 1e9:.2f} B weights are trained, so they are kept in fp32 (4 bytes each); "
            f"{dtype} copies are made on the fly."))
        components.append(Component(
            "gradients", model.total_params * 4,
            "Every weight is trained, so every weight gets an fp32 gradient."))
        states = optimizer_bytes([model.total_params], shape.optimizer)
        components.append(Component(
            "optimizer_states", states,
            f"AdamW keeps two running averages for each of the {model.total_params / 1e9:.2f} B weights."))

    if precision.mode == "full":
        trainable = model.total_params
    else:
        sizes = lora_tensor_sizes(model, adapter)
        trainable = sum(sizes)
        components.append(Component(
            "lora_weights", trainable * 4,
            f"The adapter: {trainable / 1e6:.1f} M trainable parameters (rank {adapter.rank} on "
            f"{len(model.target_layers(adapter.targets))} layers), kept in fp32 by PEFT."))
        components.append(Component(
            "lora_gradients", trainable * 4,
            "One fp32 gradient per adapter parameter; the frozen base model needs none."))
        opt_name = {"adamw": "AdamW (32-bit)", "adamw-8bit": "8-bit AdamW", "paged-adamw-8bit": "paged 8-bit AdamW"}[shape.optimizer]
        paged = " Paged: moved to CPU memory if the GPU runs short." if shape.optimizer.startswith("paged") else ""
        components.append(Component(
            "optimizer_states", optimizer_bytes(sizes, shape.optimizer),
            f"{opt_name} keeps two running averages per adapter parameter.{paged}"))

    tokens = shape.tokens
    per_layer = _layer_activation_bytes_per_token(model, None if precision.mode == "full" else adapter, shape, precision)
    rs = _residual_bytes(precision)
    if shape.gradient_checkpointing:
        kept = model.num_layers * rs * model.hidden_size * tokens
        act = int(kept + per_layer * tokens)
        act_why = (f"Gradient checkpointing keeps only each layer's input ({model.num_layers} layers × "
                   f"{shape.batch_size}×{shape.seq_len} tokens) and recomputes one layer at a time during backward.")
    else:
        act = int(model.num_layers * per_layer * tokens)
        act_why = (f"Without gradient checkpointing every layer keeps its intermediate tensors for "
                   f"{shape.batch_size}×{shape.seq_len} tokens until backward.")
    act += rs * model.hidden_size * tokens * 2  # embedding output and final norm
    if shape.packing and shape.attention != "flash_attention_2" and shape.batch_size > 1:
        # SDPA/eager see a joined row as one sequence with a block-diagonal mask over all of it:
        # a bool mask and its 16-bit additive form, batch·seq squared
        mask = 3 * tokens * tokens
        act += mask
        act_why += (f" Packing without flash attention adds a {tokens:,}×{tokens:,} attention mask "
                    f"({mask / 1024**2:,.0f} MiB).")
    components.append(Component("activations", act, act_why))

    if shape.loss_chunk_tokens and shape.loss_chunk_tokens < tokens:
        components.append(Component(
            "logits", LOGIT_BYTES * shape.loss_chunk_tokens * model.vocab_size,
            f"The chunked loss makes the fp32 vocabulary scores {shape.loss_chunk_tokens} tokens at a time "
            f"(× {model.vocab_size:,}), never all {tokens} at once."))
    else:
        components.append(Component(
            "logits", LOGIT_BYTES * tokens * model.vocab_size,
            f"The loss needs {shape.batch_size}×{shape.seq_len} tokens × {model.vocab_size:,} vocabulary scores in fp32, "
            "plus their gradient: large for big vocabularies."))

    tensors = sum(c.bytes for c in components)
    components.append(Component(
        "cuda_overhead", int(CUDA_CONTEXT_BYTES + ALLOCATOR_SLACK * tensors),
        "The CUDA context and library workspaces, and what PyTorch's caching allocator reserves beyond what is in use."))

    if shape.packing:
        notes.append("Padding-free packing: the plan is for the worst micro-batch (its longest examples); most use less.")
    if model.context_length and shape.seq_len > model.context_length:
        notes.append(f"Sequence length {shape.seq_len} is longer than the model's context ({model.context_length}).")
    return MemoryPlan(model, adapter, shape, precision, tuple(components), trainable, tuple(notes))


# ---------------------------------------------------------------------------------------------
# What to change so that it fits
# ---------------------------------------------------------------------------------------------
#
# Every setting the studio may change to save memory is an axis of steps, mildest first. The fixes
# move one axis (or, when no single change is enough, the fewest axes together); the leanest run is
# every axis at its last step. Both come from the same axes, so "too large even for the leanest
# run" and "no fix makes it fit" are one answer.

MIN_RANK = 4  # the smallest adapter a fix proposes
MIN_SEQ_LEN = 256  # the shortest examples a fix proposes (tokens)


def _halvings(value: int, floor: int) -> list[int]:
    out = []
    while value // 2 >= floor:
        value //= 2
        out.append(value)
    return out


def _checkpointing(shape: TrainShape) -> list[Change]:
    if shape.gradient_checkpointing:
        return []
    return [Change("Recompute instead of store: turn on gradient checkpointing (about 30% slower, same result)",
                   {"shape.gradient_checkpointing": True})]


def _loss_in_pieces(shape: TrainShape, chunkable: bool) -> list[Change]:
    if shape.loss_chunk_tokens or not chunkable:
        return []
    return [Change(f"Work out the loss {LOSS_CHUNK_TOKENS} tokens at a time (same result)",
                   {"shape.loss_chunk_tokens": LOSS_CHUNK_TOKENS})]


def _no_fp32_copy(precision: Precision) -> list[Change]:
    if not precision.upcast_frozen or precision.compute_bytes >= 4:
        return []
    bits = 8 * precision.compute_bytes
    return [Change(f"Keep the input and output layers in {bits}-bit, without a 32-bit copy (trains as well)",
                   {"precision.upcast_frozen": False})]


def _eight_bit_optimizer(shape: TrainShape) -> list[Change]:
    if shape.optimizer != "adamw":
        return []
    return [Change("Use the 8-bit optimizer: its running averages take a quarter of the memory",
                   {"shape.optimizer": "paged-adamw-8bit"})]


def _fewer_at_once(shape: TrainShape) -> list[Change]:
    steps = []
    for b in _halvings(shape.batch_size, 1):
        accum = math.ceil(shape.effective_batch / b)
        per_step = b * accum
        same = "the same" if per_step == shape.effective_batch else f"now {per_step}, not"
        steps.append(Change(f"Fewer examples at once: {b} instead of {shape.batch_size} "
                            f"({same} {count(shape.effective_batch, 'example')} per training step)",
                            {"shape.batch_size": b, "shape.grad_accum": accum}))
    return steps


def _quantize(precision: Precision) -> list[Change]:
    order = ["full", "16bit", "8bit", "4bit"]
    if precision.mode == "4bit":
        return []
    return [Change(_held_in(precision.mode, mode), {"precision.mode": mode}, same_result=False)
            for mode in order[order.index(precision.mode) + 1:]]


def _held_in(before: str, after: str) -> str:
    bits = {"16bit": "16-bit", "8bit": "8-bit", "4bit": "4-bit"}
    qlora = " (QLoRA)" if after == "4bit" else ""
    if before == "full":
        return f"Train a small adapter on a {bits[after]} copy of the model instead of every weight{qlora}"
    return f"Hold the base model in {bits[after]} instead of {bits[before]}{qlora}"


def _smaller_adapter(adapter: AdapterSpec, precision: Precision) -> list[Change]:
    if precision.mode == "full":
        return []
    return [Change(f"Smaller adapter: rank {r} instead of {adapter.rank} (it can change the model less)",
                   {"adapter.rank": r, "adapter.alpha": max(1, round(adapter.alpha * r / adapter.rank))}, same_result=False)
            for r in _halvings(adapter.rank, MIN_RANK)]


def _shorter_examples(shape: TrainShape) -> list[Change]:
    return [Change(f"Shorter examples: cut at {s} tokens instead of {shape.seq_len}", {"shape.seq_len": s}, same_result=False)
            for s in _halvings(shape.seq_len, MIN_SEQ_LEN)]


def _axes(model: ModelInfo, adapter: AdapterSpec, shape: TrainShape, precision: Precision) -> list[list[Change]]:
    """Each setting a fix may change, least disruptive first; each lists its steps, mildest first."""
    from studio.core.training.chunked_loss import supports

    axes = [_checkpointing(shape), _loss_in_pieces(shape, supports(model.model_type)), _no_fp32_copy(precision),
            _eight_bit_optimizer(shape), _fewer_at_once(shape), _quantize(precision), _smaller_adapter(adapter, precision),
            _shorter_examples(shape)]
    return [axis for axis in axes if axis]


def _merged(chosen: Sequence[Change]) -> dict:
    return {key: value for change in chosen for key, value in change.changes.items()}


def _total(model: ModelInfo, chosen: Sequence[Change], settings: tuple) -> int:
    """The planned total with the `chosen` changes made to `settings` (adapter, shape, precision)."""
    return plan(model, *apply_changes(_merged(chosen), *settings)).total_bytes


def _suggestion(chosen: Sequence[Change], total: int) -> Suggestion:
    parts = tuple(change.words for change in chosen)
    if len(parts) == 1:
        return Suggestion(parts[0], total, _merged(chosen), parts)
    listed = "; ".join(part[:1].lower() + part[1:] for part in parts)
    return Suggestion(f"{count(len(parts), 'change')} together: {listed}", total, _merged(chosen), parts)


def leanest(model: ModelInfo, adapter: AdapterSpec, shape: TrainShape, precision: Precision) -> Leanest:
    """The leanest run the studio can offer from these settings: every setting a fix may change, at
    its last step. If it does not fit a GPU, no fix does (a smaller model aside)."""
    furthest = tuple(axis[-1] for axis in _axes(model, adapter, shape, precision))
    return Leanest(plan(model, *apply_changes(_merged(furthest), adapter, shape, precision)), furthest)


def _single_fixes(model: ModelInfo, axes: list[list[Change]], settings: tuple, gpu_bytes: int) -> list[Suggestion]:
    """One fix per setting: its mildest step that fits."""
    out = []
    for axis in axes:
        for change in axis:
            total = _total(model, [change], settings)
            if total <= gpu_bytes:
                out.append(_suggestion([change], total))
                break
    return out


def _combined_fix(model: ModelInfo, axes: list[list[Change]], settings: tuple, gpu_bytes: int) -> list[Suggestion]:
    """When no single change is enough: a group of settings that together make it fit — the fewest
    that change what the run learns, then the fewest in all, then the least disruptive — each eased
    back to its mildest step that still fits."""
    if not leanest(model, *settings).fits(gpu_bytes):
        return []
    for group in sorted(_groups(axes), key=lambda g: (sum(not axis[0].same_result for axis in g), len(g))):
        if _total(model, [axis[-1] for axis in group], settings) <= gpu_bytes:
            chosen = _eased(model, list(group), settings, gpu_bytes)
            return [_suggestion(chosen, _total(model, chosen, settings))]
    return []


def _groups(axes: list[list[Change]]) -> list[tuple[list[Change], ...]]:
    """Every group of two or more axes, smaller groups and less disruptive axes first."""
    return [group for size in range(2, len(axes) + 1) for group in itertools.combinations(axes, size)]


def _eased(model: ModelInfo, group: list[list[Change]], settings: tuple, gpu_bytes: int) -> list[Change]:
    """Each setting of `group` at its mildest step that still fits, the most disruptive eased first."""
    chosen = [axis[-1] for axis in group]
    for i in reversed(range(len(group))):
        for change in group[i]:
            trial = chosen[:i] + [change] + chosen[i + 1:]
            if _total(model, trial, settings) <= gpu_bytes:
                chosen = trial
                break
    return chosen


def _smaller_model(model: ModelInfo, smaller_models: Sequence[ModelInfo], settings: tuple, gpu_bytes: int) -> list[Suggestion]:
    for smaller in smaller_models:
        if smaller.total_params >= model.total_params:
            continue
        total = plan(smaller, *settings).total_bytes
        if total <= gpu_bytes:
            words = f"Use the smaller {smaller.name} ({smaller.total_params / 1e9:.1f} B parameters)"
            return [Suggestion(words, total, {"model": smaller.catalog_name or smaller.source}, (words,))]
    return []


def suggest_changes(
    model: ModelInfo,
    adapter: AdapterSpec,
    shape: TrainShape,
    precision: Precision,
    gpu_bytes: int,
    smaller_models: Sequence[ModelInfo] = (),
) -> list[Suggestion]:
    """The fixes that make the run fit `gpu_bytes`, each with its new total and in the user's words.

    One fix per setting (its mildest step that fits). When no single change is enough, one listed
    combination: the fewest settings changed together. None when even the leanest run
    (`leanest`) does not fit. `smaller_models` (same family, e.g. from the catalog) are offered last.
    """
    settings = (adapter, shape, precision)
    if plan(model, *settings).fits(gpu_bytes):
        return []
    axes = _axes(model, *settings)
    fixes = _single_fixes(model, axes, settings, gpu_bytes) or _combined_fix(model, axes, settings, gpu_bytes)
    return fixes + _smaller_model(model, smaller_models, settings, gpu_bytes)


def apply_changes(changes: dict, adapter: AdapterSpec, shape: TrainShape, precision: Precision):
    """Apply "adapter.rank"-style changes (a `Suggestion.changes`) to the three choice dataclasses."""
    parts = {"adapter": {}, "shape": {}, "precision": {}}
    for key, value in changes.items():
        group, _, name = key.partition(".")
        if group in parts:
            parts[group][name] = value
    return (replace(adapter, **parts["adapter"]), replace(shape, **parts["shape"]), replace(precision, **parts["precision"]))


def compare_precisions(model: ModelInfo, adapter: AdapterSpec, shape: TrainShape, precision: Precision) -> dict[str, MemoryPlan]:
    """The same run as full fine-tuning, 16-bit LoRA, 8-bit and 4-bit QLoRA, side by side."""
    return {mode: plan(model, adapter, shape, replace(precision, mode=mode)) for mode in ("full", "16bit", "8bit", "4bit")}
