"""What GPUs this computer has, how much memory they hold, and what they can compute in.

NVML (nvidia-ml-py) is asked first: it answers without creating a CUDA context, so looking costs
no GPU memory and works before torch is imported. torch.cuda is the fallback (e.g. where NVML is
missing but CUDA works, as in some containers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from studio.core.errors import StudioError

GiB = 1024**3

# GPU memory as NVML reports it, in MiB, for the cards people fine-tune on. Used by `--gpu 4090`.
KNOWN_GPUS: dict[str, int] = {
    "rtx 3060": 12288,
    "rtx 3080": 10240,
    "rtx 3090": 24576,
    "rtx 4060 ti": 16380,
    "rtx 4070": 12282,
    "rtx 4080": 16376,
    "rtx 4090": 24564,
    "rtx 5090": 32607,
    "rtx a6000": 49140,
    "rtx 6000 ada": 49140,
    "l4": 23034,
    "t4": 15360,
    "a10": 23028,
    "v100": 16384,
    "a100 40gb": 40960,
    "a100 80gb": 81920,
    "h100": 81559,
    "h200": 143771,
}


@dataclass(frozen=True)
class GPU:
    index: int
    name: str
    total_bytes: int
    free_bytes: int
    compute_capability: tuple[int, int] | None
    source: str  # "nvml" or "torch"

    @property
    def supports_bf16(self) -> bool:
        """bf16 needs compute capability 8.0 (Ampere) or newer."""
        return self.compute_capability is not None and self.compute_capability >= (8, 0)

    @property
    def compute_dtype(self) -> str:
        return "bfloat16" if self.supports_bf16 else "float16"


_NVML = None


def _nvml():
    """pynvml, initialised once per process: init is a round trip to the driver, too slow for every
    training step or every poll of the window's gauge. Raises where there is no driver."""
    global _NVML
    if _NVML is None:
        import pynvml

        pynvml.nvmlInit()
        _NVML = pynvml
    return _NVML


def nvml_gpus() -> list[GPU]:
    """GPUs as the driver sees them, without a CUDA context (safe to poll from the window every second)."""
    pynvml = _nvml()
    gpus = []
    for i in range(pynvml.nvmlDeviceGetCount()):
        handle = pynvml.nvmlDeviceGetHandleByIndex(i)
        name = pynvml.nvmlDeviceGetName(handle)
        name = name.decode() if isinstance(name, bytes) else name
        mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
        try:
            cc = tuple(pynvml.nvmlDeviceGetCudaComputeCapability(handle))
        except pynvml.NVMLError:
            cc = None
        gpus.append(GPU(i, name, int(mem.total), int(mem.free), cc, "nvml"))
    return gpus


def _from_torch() -> list[GPU]:
    import torch

    if not torch.cuda.is_available():
        return []
    gpus = []
    for i in range(torch.cuda.device_count()):
        free, total = torch.cuda.mem_get_info(i)
        props = torch.cuda.get_device_properties(i)
        gpus.append(GPU(i, props.name, int(total), int(free), (props.major, props.minor), "torch"))
    return gpus


def detect_gpus() -> list[GPU]:
    """The CUDA GPUs of this computer; an empty list when there are none (or no driver)."""
    try:
        gpus = nvml_gpus()
        if gpus:
            return gpus
    except Exception:  # no driver, no libnvidia-ml: not an error, just no NVIDIA GPU to see this way
        pass
    try:
        return _from_torch()
    except Exception:
        return []


def planning_gpu(gpus: list[GPU]) -> tuple[GPU, str]:
    """The GPU a run on all of `gpus` is planned for — the one with the least free memory, since every
    GPU holds the same share — and the cards in words ("2 × NVIDIA RTX 4090"; mixed cards said plainly)."""
    smallest = min(gpus, key=lambda g: g.free_bytes)
    names = sorted({g.name for g in gpus})
    if len(gpus) == 1:
        return smallest, smallest.name
    if len(names) == 1:
        return smallest, f"{len(gpus)} × {names[0]}"
    return smallest, (f"{len(gpus)} GPUs of different kinds ({', '.join(names)}): the plan is for the one with the least "
                      f"free memory, {smallest.name}")


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(gib|gb|g|mib|mb|m)?\s*$", re.IGNORECASE)


def parse_gpu_memory(text: str) -> int:
    """Bytes of GPU memory from what a user types: "24GB", "24", "80 GiB", "16000MB" or a card name.

    GPU makers' "GB" are binary (a 24 GB card reports 24564 MiB), so GB and GiB both mean 1024³ here.
    """
    key = text.strip().lower().removeprefix("nvidia").removeprefix("geforce").strip()
    if key in KNOWN_GPUS:
        return KNOWN_GPUS[key] * 1024**2
    for name, mib in KNOWN_GPUS.items():
        if key.replace("rtx", "").strip() == name.replace("rtx", "").strip():
            return mib * 1024**2
    match = _SIZE.match(text)
    if not match:
        raise StudioError(
            f"'{text}' is not a GPU memory size.",
            "Write it like 24GB, 80GB or 16000MB, or a card name such as 4090, A100 80GB or H100.",
        )
    value = float(match.group(1))
    unit = (match.group(2) or "gb").lower()
    scale = 1024**2 if unit.startswith("m") else GiB
    if value <= 0:
        raise StudioError(f"GPU memory must be positive (got {text}).", "Write it like 24GB.")
    return int(value * scale)


def process_gpu_bytes(index: int = 0) -> int | None:
    """GPU memory the driver attributes to this process (CUDA context included), from NVML;
    None where NVML cannot tell (no driver, some containers)."""
    import os

    pid = os.getpid()
    try:
        pynvml = _nvml()
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        for proc in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
            if proc.pid == pid and proc.usedGpuMemory is not None:
                return int(proc.usedGpuMemory)
        return None
    except Exception:
        return None
