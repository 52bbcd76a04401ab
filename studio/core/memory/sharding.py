"""One GPU's share of a run trained on several (issue #21): the plan is per GPU.

  DDP   every GPU holds the whole model, its adapter, gradients and optimizer states, and DDP's
        gradient buckets (a copy of the adapter's gradients it all-reduces); activations are each
        GPU's own micro-batch's, as on one GPU.
  FSDP  (FSDP-QLoRA through accelerate: bitsandbytes' quant storage lets the 4-bit weights shard)
        each GPU keeps 1/N of the decoder layers' weights, of the adapter, its gradients and the
        optimizer's states. A layer's full weights are all-gathered while it runs forward and
        backward, and FSDP prefetches the next one: two layers' full weights are alive at once. The
        root unit (embeddings, final norm, lm_head) is gathered for the whole step, so the
        unquantized weights count whole.

A model, to be calibrated on several GPUs (none has been measured yet): the shares are exact, the
gathered layers and the buckets are what the libraries' defaults allocate.
"""

from __future__ import annotations

import re
from collections import defaultdict

from studio.core.memory.choices import AdapterSpec, Precision, TrainShape
from studio.core.memory.components import Component
from studio.core.memory.tensors import bnb4_layer_bytes, int8_layer_bytes
from studio.core.models import ModelInfo

SHARDED = ("quantized_weights", "lora_weights", "reference_adapter", "lora_gradients", "optimizer_states")
PREFETCHED_LAYERS = 2  # the layer running and the next one FSDP prefetches
_LAYER = re.compile(r"\.layers\.(\d+)\.")


def per_gpu(model: ModelInfo, adapter: AdapterSpec, shape: TrainShape, precision: Precision,
            static: list[Component], trained: list[Component]) -> tuple[list[Component], list[Component]]:
    """(static, trained) as one of `shape.gpus` GPUs holds them."""
    if shape.gpus == 1:
        return static, trained
    if not shape.sharded:
        grads = sum(c.bytes for c in trained if c.name == "lora_gradients")
        buckets = Component("gradient_buckets", grads, f"DDP keeps a copy of the adapter's gradients in buckets that it "
                            f"adds up across the {shape.gpus} GPUs after each backward.")
        return static, trained + [buckets]
    n = shape.gpus
    static = [_share(c, n, model, precision) for c in static] + [_gathered(model, adapter, precision)]
    return static, [_share(c, n, model, precision) for c in trained]


def _share(c: Component, n: int, model: ModelInfo, precision: Precision) -> Component:
    if c.name not in SHARDED:
        return c
    if c.name == "quantized_weights" and precision.mode == "4bit":
        # the packed values are the parameter FSDP shards; bitsandbytes keeps each layer's block scales and
        # code table (its quant_state) beside the module, whole on every GPU
        packed = sum((lay.weight_params + 1) // 2 for lay in model.linear_layers)
        kept = c.bytes - packed
        return Component(c.name, -(-packed // n) + kept, f"{c.why} FSDP shards the packed values: 1/{n} on each GPU; "
                         f"the block scales ({kept / 2**20:.0f} MiB) stay whole on each, beside their layers.")
    return Component(c.name, -(-c.bytes // n), f"{c.why} FSDP shards it: 1/{n} on each GPU.")


def _gathered(model: ModelInfo, adapter: AdapterSpec, precision: Precision) -> Component:
    """The full weights of the largest decoder layer and the next, all-gathered while they run."""
    layer = max(_layer_bytes(model, precision).values(), default=0)
    trainable_per_layer = sum(lay.in_features + lay.out_features for lay in model.target_layers(adapter.targets))
    lora = 4 * adapter.rank * trainable_per_layer // max(model.num_layers, 1)
    return Component("fsdp_gathered", PREFETCHED_LAYERS * (layer + lora),
                     f"FSDP gathers a decoder layer's full weights (and its adapter) from every GPU while it runs, "
                     f"and prefetches the next: {PREFETCHED_LAYERS} layers whole at once.")


def _layer_bytes(model: ModelInfo, precision: Precision) -> dict[int, int]:
    """Each decoder layer's Linear weights as the base holds them (4-bit, 8-bit or 16-bit)."""
    out: dict[int, int] = defaultdict(int)
    for lay in model.linear_layers:
        found = _LAYER.search(lay.name)
        if found is None:
            continue
        if precision.mode == "4bit":
            size = bnb4_layer_bytes(lay.weight_params, precision.double_quant)
        elif precision.mode == "8bit":
            size = int8_layer_bytes(lay.in_features, lay.out_features)
        else:
            size = lay.weight_params * precision.compute_bytes
        out[int(found.group(1))] += size
    return out
