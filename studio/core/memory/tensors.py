"""Bytes of the tensors a run holds, exactly as the libraries lay them out: quantized weights, the
LoRA tensors, AdamW's states — and a training checkpoint, which saves the adapter and those states.

Exact, and proven against real allocations by tests/core/test_memory_exact.py on the CPU:
  * quantized weights: the tensors bitsandbytes stores per quantized Linear — packed 4-bit values
    (n/2 bytes), one absmax per 64-weight block (uint8 with double quantization, else fp32), with
    double quantization one fp32 absmax per 256 blocks, a 256-entry fp32 code table and an fp32
    offset, plus the 16-entry fp32 4-bit code table; LLM.int8 keeps int8 weights plus one fp32
    scale per output row.
  * LoRA weights (A: r×in, B: out×r, DoRA's magnitude: out), kept in fp32 by PEFT
    (`autocast_adapter_dtype`), and the optimizer states: torch AdamW keeps two fp32 states per
    parameter; bitsandbytes 8-bit AdamW keeps two uint8 states plus one fp32 absmax per 256 values
    for tensors of at least 4096 values (smaller ones stay 32-bit), and two 256-entry fp32 quantile
    maps shared by all tensors.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from studio.core.memory.choices import AdapterSpec
from studio.core.models import ModelInfo

GiB = 1024**3
MiB = 1024**2
FP32_BYTES = 4  # LoRA weights, their gradients and torch AdamW's states are fp32

# bitsandbytes 4-bit layout (bnb.functional.quantize_4bit and its nested quantize_blockwise).
BNB4_BLOCK = 64  # weights per absmax block
BNB4_NESTED_BLOCK = 256  # absmax values per nested fp32 absmax (double quantization)
BNB4_CODE_BYTES = 16 * 4  # the NF4/FP4 code table, fp32, one per layer
BNB4_NESTED_CODE_BYTES = 256 * 4  # the dynamic 8-bit map used to quantize the absmax, one per layer
BNB4_OFFSET_BYTES = 4  # the fp32 mean subtracted from absmax before nesting
# AdamW's states (exp_avg and exp_avg_sq): two per parameter.
ADAMW_STATES = 2
# bitsandbytes 8-bit optimizers (bnb.optim.optimizer.Optimizer2State).
BNB8_OPTIM_BLOCK = 256
BNB8_OPTIM_MIN_SIZE = 4096  # tensors smaller than this keep 32-bit states
BNB8_QMAP_BYTES = 256 * 4  # one fp32 quantile map per state, shared by all tensors of the optimizer
# What a checkpoint saves besides the adapter and the optimizer states: the scheduler, the RNG
# states, trainer_state.json, the adapter's config and the recipe — small files, well under this.
CHECKPOINT_FILES_BYTES = MiB


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


def _blockwise(n: int, optimizer: str) -> bool:
    """Whether the optimizer keeps a tensor of `n` values in 8-bit blocks (else two fp32 states)."""
    return optimizer != "adamw" and n >= BNB8_OPTIM_MIN_SIZE


def _tensor_state_bytes(n: int, optimizer: str, param_bytes: int = FP32_BYTES) -> int:
    """AdamW's two states for one tensor of `n` values (torch keeps them in the parameter's dtype)."""
    if not _blockwise(n, optimizer):
        return ADAMW_STATES * param_bytes * n
    return ADAMW_STATES * (n + FP32_BYTES * math.ceil(n / BNB8_OPTIM_BLOCK))  # uint8 values + an fp32 absmax per block


def optimizer_bytes(tensor_sizes: Iterable[int], optimizer: str, param_bytes: int = FP32_BYTES) -> int:
    """AdamW's two states for each tensor: in the parameters' dtype in torch (fp32 for LoRA, bf16 in
    pure-bf16 full training), 8-bit blockwise in bitsandbytes."""
    sizes = list(tensor_sizes)
    total = sum(_tensor_state_bytes(n, optimizer, param_bytes) for n in sizes)
    blockwise = any(_blockwise(n, optimizer) for n in sizes)
    return total + (ADAMW_STATES * BNB8_QMAP_BYTES if blockwise else 0)


def checkpoint_bytes(trainable: int, optimizer: str) -> int:
    """Disk bytes of one training checkpoint of an adapter with `trainable` parameters: its fp32
    weights, the optimizer's states (the planner's terms, the adapter counted as one tensor) and
    the small files beside them (`CHECKPOINT_FILES_BYTES`)."""
    return FP32_BYTES * trainable + optimizer_bytes([trainable], optimizer) + CHECKPOINT_FILES_BYTES
