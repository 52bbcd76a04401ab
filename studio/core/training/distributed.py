"""Training on several GPUs (and several machines): how accelerate launches the worker's processes
for DDP or FSDP, and what an FSDP process does differently. No sharding of our own: accelerate's
FSDP plugin (FSDP2, torch's `fully_shard`) wraps each decoder layer, and bitsandbytes keeps the
4-bit weights in the compute dtype (`bnb_4bit_quant_storage`) so that they shard like any tensor."""

from __future__ import annotations

import os
import sys

from studio.core.training.events import is_main_process

ACCELERATE = [sys.executable, "-m", "accelerate.commands.launch"]


def launched(training) -> bool:
    """Whether the recipe trains in more than one process (several GPUs or machines)."""
    return training.num_processes > 1 or training.machines > 1


def launch_command(training, worker: list[str]) -> list[str]:
    """accelerate's launcher for the recipe's processes, running `worker` (its arguments after python)
    in each; on a machine without CUDA the processes talk over gloo."""
    flags = ["--num_processes", str(training.num_processes), "--num_machines", str(training.machines),
             "--mixed_precision", "no", "--dynamo_backend", "no"]
    if training.machines > 1:
        host, port = main_address(training.main_address)
        flags += ["--machine_rank", str(training.machine_rank), "--main_process_ip", host,
                  "--main_process_port", port]
    if training.strategy == "fsdp":
        flags += fsdp_flags()
    else:
        flags += ["--multi_gpu"]
    return ACCELERATE + flags + worker


def fsdp_flags() -> list[str]:
    """FSDP2 with each decoder layer its own unit (the model's `_no_split_modules`), resharded after
    its forward; checkpoints as each process's shard (torch's distributed checkpoint), which resumes on
    the same number of processes. Each process loads the 4-bit model into its CPU memory and FSDP moves
    its shard to its GPU (transformers loads a quantized model whole in every process anyway, so
    rank-0-only loading would save nothing). The same flags on a GPU and on the CPU."""
    return ["--use_fsdp", "--fsdp_version", "2", "--fsdp_auto_wrap_policy", "TRANSFORMER_BASED_WRAP",
            "--fsdp_reshard_after_forward", "true", "--fsdp_state_dict_type", "SHARDED_STATE_DICT",
            "--fsdp_cpu_ram_efficient_loading", "false", "--fsdp_sync_module_states", "false",
            "--fsdp_offload_params", "false"]


def main_address(address: str) -> tuple[str, str]:
    """("host", "port") of the main machine from "host:port" (port 29500 when left out)."""
    host, colon, port = address.strip().rpartition(":")
    return (host, port) if colon and port else (address.strip().rstrip(":"), "29500")


def world_size() -> int:
    """The processes training this run together (accelerate sets WORLD_SIZE)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def fsdp_running() -> bool:
    """Whether this worker process was launched with FSDP (accelerate's launcher says so in the environment)."""
    return os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"


def full_adapter_state(model) -> dict:
    """The LoRA tensors of a model whose parameters FSDP sharded, whole (every process must call this:
    each tensor is gathered from all of them); of an unsharded model, as they are. Only the adapter's
    tensors travel, never the base's."""
    state = {}
    for name, tensor in model.state_dict().items():
        if "lora_" not in name:
            continue
        whole = tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor
        state[name] = whole.detach().cpu()
    return state


def process_bytes(model, optimizer) -> dict:
    """What this process really holds of the run, in bytes (its shard where FSDP shards): the frozen
    weights, bitsandbytes' 4-bit block scales beside them, the adapter, and the optimizer's states."""
    import torch

    frozen = sum(_local_bytes(p) for p in model.parameters() if not p.requires_grad)
    adapter = sum(_local_bytes(p) for p in model.parameters() if p.requires_grad)
    inner = getattr(optimizer, "optimizer", optimizer)  # accelerate's wrapper
    states = sum(_local_bytes(v) for state in inner.state.values() for v in state.values() if torch.is_tensor(v))
    return {"frozen_weights": frozen, "quant_scales": sum(_quant_state_bytes(m) for m in model.modules()),
            "adapter": adapter, "optimizer_states": states}


def _local_bytes(tensor) -> int:
    local = tensor.to_local() if hasattr(tensor, "to_local") else tensor
    return local.numel() * local.element_size()


def _quant_state_bytes(module) -> int:
    """A bitsandbytes 4-bit layer's quant_state: block scales, code table, and the nested ones."""
    if not hasattr(module, "quant_state"):
        return 0
    state = module.quant_state  # kept on the module too, since FSDP replaces the weight with its shard
    if state is None:
        state = getattr(module.weight, "quant_state", None)
    total = 0
    while state is not None:
        total += sum(_local_bytes(t) for t in (state.absmax, state.code, getattr(state, "offset", None))
                     if t is not None)
        state = getattr(state, "state2", None)
    return total


def save_whole_adapter(model, folder) -> None:
    """A checkpoint's adapter_model.safetensors and adapter_config.json, gathered from every process (all
    call this) and written by the main one."""
    state = full_adapter_state(model)
    if is_main_process():
        model.save_pretrained(str(folder), selected_adapters=["default"], state_dict=state)


def tie_to_launcher() -> None:
    """One of several processes: end with the launcher that started it. The launcher holds the run's
    lock for all of them; killed (kill -9, a crash), it cannot stop its processes, which would go on
    writing into a run the studio then sees as free to resume. Linux's parent-death signal ends them
    with it (the platform where CUDA runs on several GPUs); elsewhere nothing is done."""
    import ctypes
    import signal

    if not sys.platform.startswith("linux") or world_size() == 1:
        return
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the launcher was gone before the signal was set
        os._exit(1)


def agreed(flag: bool) -> bool:
    """Whether any process of the run says yes (a cancel request each process notices on its own, maybe
    a step apart): all then act at the same step, never one stopping while the others wait for it.
    Every process must call this at the same point; one process answers its own flag."""
    import torch
    import torch.distributed as dist

    if world_size() == 1 or not dist.is_available() or not dist.is_initialized():
        return flag
    on_gpu = dist.get_backend() == "nccl"
    vote = torch.tensor([int(flag)], device=torch.device("cuda", torch.cuda.current_device()) if on_gpu else "cpu")
    dist.all_reduce(vote, op=dist.ReduceOp.MAX)
    return bool(vote.item())
