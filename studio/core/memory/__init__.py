"""How much GPU memory a fine-tuning run needs, component by component, before anything runs — and
what to change when it does not fit.

`plan(model, adapter, shape, precision)` is a pure function of a `ModelInfo` (exact parameter
counts and Linear shapes from `studio.core.models`) and the user's choices. It allocates nothing and
touches no GPU, so the window can call it on every slider move. Each `Component` carries a one-line
`why` (the window's tooltip).

    choices.py      the user's choices: AdapterSpec, TrainShape, Precision
    tensors.py      exact bytes of weights, LoRA tensors, optimizer states, and a checkpoint of them
    activations.py  what autograd keeps for backward: each layer's input or all of it, one layer
    loss.py         the loss's vocabulary-sized tensors at each moment, per way of computing it
    phases.py       the moments of a step and what is alive in each; the peak is the largest
    held.py         what the process holds beyond its tensors: CUDA context, allocator reserve
    components.py   the answer: MemoryPlan, its named Components and phases
    planner.py      plan() and compare_precisions(): needed (tensor peak) and held (a range)
    fixes.py        what to change so that it fits: suggest_changes, leanest, apply_changes
"""

from studio.core.memory.activations import layer_bytes_per_token, residual_bytes
from studio.core.memory.choices import (
    ATTENTION,
    COMPUTE_DTYPES,
    METHODS,
    OPTIMIZERS,
    PRECISIONS,
    STRATEGIES,
    AdapterSpec,
    Precision,
    TrainShape,
)
from studio.core.memory.components import Component, MemoryPlan
from studio.core.memory.fixes import (
    LOSS_CHUNK_TOKENS,
    MIN_RANK,
    MIN_SEQ_LEN,
    Change,
    Leanest,
    Suggestion,
    apply_changes,
    leanest,
    suggest_changes,
)
from studio.core.memory.phases import Phase
from studio.core.memory.planner import LOGIT_BYTES, compare_precisions, plan
from studio.core.memory.tensors import (
    BNB4_BLOCK,
    BNB4_CODE_BYTES,
    BNB4_NESTED_BLOCK,
    BNB4_NESTED_CODE_BYTES,
    BNB4_OFFSET_BYTES,
    BNB8_OPTIM_BLOCK,
    BNB8_OPTIM_MIN_SIZE,
    BNB8_QMAP_BYTES,
    CHECKPOINT_FILES_BYTES,
    GiB,
    MiB,
    bnb4_layer_bytes,
    checkpoint_bytes,
    int8_layer_bytes,
    lora_tensor_sizes,
    optimizer_bytes,
)

__all__ = [
    "ATTENTION", "BNB4_BLOCK", "BNB4_CODE_BYTES", "BNB4_NESTED_BLOCK", "BNB4_NESTED_CODE_BYTES",
    "BNB4_OFFSET_BYTES", "BNB8_OPTIM_BLOCK", "BNB8_OPTIM_MIN_SIZE", "BNB8_QMAP_BYTES", "CHECKPOINT_FILES_BYTES",
    "COMPUTE_DTYPES", "LOGIT_BYTES", "LOSS_CHUNK_TOKENS", "METHODS", "MIN_RANK", "MIN_SEQ_LEN", "OPTIMIZERS",
    "PRECISIONS", "STRATEGIES", "AdapterSpec", "Change", "Component", "GiB", "Leanest", "MemoryPlan", "MiB", "Phase",
    "Precision", "Suggestion",
    "TrainShape", "apply_changes", "bnb4_layer_bytes", "checkpoint_bytes", "compare_precisions", "int8_layer_bytes",
    "layer_bytes_per_token", "leanest", "lora_tensor_sizes", "optimizer_bytes", "plan", "residual_bytes",
    "suggest_changes",
]
