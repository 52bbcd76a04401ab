"""The plan per GPU when several train a run (issue #21): DDP's whole copy and its gradient buckets, FSDP's
shares, its gathered layers, and the GPU a mixed set of cards is planned for."""

from __future__ import annotations

import pytest

from studio.core.memory import AdapterSpec, GiB, Precision, TrainShape, plan
from studio.core.memory.sharding import PREFETCHED_LAYERS
from studio.core.memory.tensors import bnb4_layer_bytes
from studio.core.models import resolve_model


@pytest.fixture(scope="module")
def llama70b():
    return resolve_model("llama-3.1-70b")


def test_fsdp_shares_the_weights_the_adapter_and_its_states(llama70b):
    one = plan(llama70b, AdapterSpec(), TrainShape(), Precision())
    fsdp = plan(llama70b, AdapterSpec(), TrainShape(gpus=4, strategy="fsdp"), Precision())
    for name in ("lora_weights", "lora_gradients", "optimizer_states"):
        assert fsdp.bytes_of(name) == -(-one.bytes_of(name) // 4), name
    # the packed 4-bit values shard; bitsandbytes' block scales stay whole beside each layer (measured
    # on two processes in tests/core/test_fsdp.py)
    packed = sum((x.weight_params + 1) // 2 for x in llama70b.linear_layers)
    assert fsdp.bytes_of("quantized_weights") == -(-packed // 4) + one.bytes_of("quantized_weights") - packed
    # the root unit (embeddings, lm_head) is gathered for the whole step, the activations are each GPU's own
    assert fsdp.bytes_of("unquantized_weights") == one.bytes_of("unquantized_weights")
    assert fsdp.bytes_of("activations") == one.bytes_of("activations")
    # two decoder layers whole: the one running and the one prefetched (Llama 3.1 70B: 80 alike)
    layer = sum(bnb4_layer_bytes(x.weight_params, True) for x in llama70b.linear_layers if ".layers.0." in x.name)
    lora = 4 * 16 * sum(x.in_features + x.out_features for x in llama70b.linear_layers) // 80
    assert fsdp.bytes_of("fsdp_gathered") == PREFETCHED_LAYERS * (layer + lora)
    assert "fsdp_gathered" not in {c.name for c in one.components}


def test_ddp_copies_the_model_and_buckets_the_gradients(llama70b):
    one = plan(llama70b, AdapterSpec(), TrainShape(), Precision())
    ddp = plan(llama70b, AdapterSpec(), TrainShape(gpus=2), Precision())
    assert ddp.bytes_of("quantized_weights") == one.bytes_of("quantized_weights")
    assert ddp.bytes_of("gradient_buckets") == one.bytes_of("lora_gradients")
    # on one GPU the strategy changes nothing
    assert plan(llama70b, AdapterSpec(), TrainShape(strategy="fsdp"), Precision()).total_bytes == one.total_bytes


def test_studio_plan_per_gpu_for_a_70b_model(capsys):
    """`studio plan llama-3.1-70b --gpus 2 --gpu 40GB --strategy fsdp` fits, the same with DDP does not;
    on 2 × 24 GB neither fits at 2,048 tokens, and the output says the figures are per GPU."""
    import json

    from studio.cli import main

    def report(*flags):
        assert main(["plan", "llama-3.1-70b", "--json", *flags]) == 0
        return json.loads(capsys.readouterr().out)

    fsdp, ddp = (report("--gpus", "2", "--gpu", "40GB", "--strategy", s) for s in ("fsdp", "ddp"))
    assert fsdp["memory"]["fits"] and not ddp["memory"]["fits"]
    assert fsdp["shape"]["gpus"] == 2 and fsdp["shape"]["strategy"] == "fsdp"
    names = {c["name"] for c in fsdp["memory"]["components"]}
    assert {"quantized_weights", "fsdp_gathered"} <= names and "gradient_buckets" in {c["name"] for c in ddp["memory"]["components"]}
    assert fsdp["memory"]["total_bytes"] < 30 * GiB < 40 * GiB < ddp["memory"]["total_bytes"]
    assert main(["plan", "llama-3.1-70b", "--gpus", "2", "--gpu", "24GB", "--strategy", "fsdp"]) == 0
    text = capsys.readouterr().out
    assert "GPUs     2 (FSDP" in text and "per GPU" in text and "Does not fit 24GB" in text


def test_mixed_cards_are_planned_for_the_smallest():
    from studio.core.hardware import GPU, planning_gpu

    big = GPU(0, "NVIDIA RTX 4090", 24 * GiB, 23 * GiB, (8, 9), "nvml")
    small = GPU(1, "NVIDIA RTX 3060", 12 * GiB, 11 * GiB, (8, 6), "nvml")
    chosen, words = planning_gpu([big, small])
    assert chosen is small and "different kinds" in words and "RTX 3060" in words
    assert planning_gpu([big, big])[1] == "2 × NVIDIA RTX 4090"


def test_a_run_too_big_for_one_gpu_is_offered_more_gpus_with_fsdp(llama70b):
    """"Add a second GPU" where it makes the run fit: the fewest GPUs like this one that FSDP can shard
    it across, planned as each GPU's share (and with AdamW: 8-bit optimizer states do not shard)."""
    from dataclasses import replace

    from studio.core.memory import suggest_changes

    shape = TrainShape(optimizer="paged-adamw-8bit")
    fixes = suggest_changes(llama70b, AdapterSpec(), shape, Precision(), 40 * GiB)
    more = [f for f in fixes if f.gpus > 1]
    assert len(more) == 1 and more[0].gpus == 2
    assert more[0].changes == {"shape.gpus": 2, "shape.strategy": "fsdp", "shape.optimizer": "adamw"}
    sharded = replace(shape, gpus=2, strategy="fsdp", optimizer="adamw")
    assert more[0].total_bytes == plan(llama70b, AdapterSpec(), sharded, Precision()).total_bytes <= 40 * GiB
    short = replace(shape, seq_len=512)  # 2 × 24 GB is not enough even so: the 4-bit shard and the whole lm_head
    lean = Precision(upcast_frozen=False)
    assert [f.gpus for f in suggest_changes(llama70b, AdapterSpec(), short, lean, 24 * GiB) if f.gpus > 1] == [4]
    # already planned on several GPUs, or a run that fits: no GPUs to add
    assert not [f for f in suggest_changes(llama70b, AdapterSpec(), sharded, Precision(), 20 * GiB) if f.gpus > 1]
