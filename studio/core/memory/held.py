"""What the process holds on the GPU beyond its tensors at the peak: a range, not one figure (issue #17).

  the CUDA context and the libraries' workspaces (cuBLAS, cuDNN, bitsandbytes) outside PyTorch's
    allocator: the driver showed 0.74–0.88 GiB beyond torch's reserve on an H100 (CUDA 13), the
    context alone 0.61 GiB before the first tensor;
  the caching allocator's reserve: freed blocks it keeps for reuse, which a step's largest
    short-lived tensor fragments. Measured 0.4–1.15 GiB beyond the tensor peak with the chunked
    loss (4–32% of the peak), and 0.65–1.1× the loss's fp32 logits when transformers' loss makes
    them all at once (4.3 GiB for Llama 3 8B at 8192 tokens).

The range's low end sits a little under the lowest readings, to cover the tensor plan's own error.
Other cards and drivers differ (the context is larger on older CUDA), so the plan reports the
tensor peak ("needed") and the range of what is held; the fit check uses the range's upper end.
"""

from __future__ import annotations

from studio.core.memory.choices import Precision, TrainShape
from studio.core.memory.components import Component
from studio.core.memory.loss import largest_block
from studio.core.memory.tensors import GiB
from studio.core.models import ModelInfo

CONTEXT_BYTES = (int(0.70 * GiB), int(0.90 * GiB))  # context + library workspaces, low and high
# The allocator's reserve is at least a share of the tensor peak, up to a cap (a tiny model reserves
# little), or a share of the step's largest block, whichever is more; low and high.
RESERVE_FLOOR = ((0.10, int(0.35 * GiB)), (0.35, int(1.2 * GiB)))  # (share of the peak, cap)
RESERVE_PER_BLOCK = (0.5, 1.1)


def reserved_range(model: ModelInfo, shape: TrainShape, needed: int, precision: Precision = Precision()) -> tuple[int, int]:
    """(low, high) bytes PyTorch's caching allocator reserves at a tensor peak of `needed` bytes."""
    block = largest_block(model, shape, precision)
    return tuple(needed + max(min(int(share * needed), cap), int(per_block * block))
                 for (share, cap), per_block in zip(RESERVE_FLOOR, RESERVE_PER_BLOCK, strict=True))


def held_range(model: ModelInfo, shape: TrainShape, needed: int, precision: Precision = Precision()) -> tuple[int, int]:
    """(low, high) bytes the process holds at a tensor peak of `needed` bytes: the reserve, the
    context and the workspaces."""
    low, high = reserved_range(model, shape, needed, precision)
    return low + CONTEXT_BYTES[0], high + CONTEXT_BYTES[1]


def margin(extra: int) -> Component:
    return Component("cuda_overhead", extra,
                     "Held beyond the tensors (the upper end of the range): the CUDA context and library workspaces, "
                     "and what PyTorch's caching allocator keeps in reserve.")
