"""The GGUF types the export writes, what each costs on disk, and quantizing with llama.cpp's own
quantizer (llama_model_quantize, in a child process: llama_run.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from studio.core.errors import StudioError
from studio.core.export.to_gguf.llama_run import run_llama


@dataclass(frozen=True)
class GgufType:
    name: str  # as people and llama.cpp's tools write it: q4_k_m
    bits: float  # bits per weight in llama.cpp's own accounting, for a 7B-8B model
    ftype: str  # llama_cpp's constant
    help: str


TYPES: dict[str, GgufType] = {t.name: t for t in (
    GgufType("bf16", 16.0, "LLAMA_FTYPE_MOSTLY_BF16", "16-bit, exactly the merged weights; the largest file"),
    GgufType("f16", 16.0, "LLAMA_FTYPE_MOSTLY_F16", "16-bit half precision; for runners without bf16"),
    GgufType("q8_0", 8.5, "LLAMA_FTYPE_MOSTLY_Q8_0", "8-bit: answers almost exactly as the 16-bit model, half the size"),
    GgufType("q6_k", 6.56, "LLAMA_FTYPE_MOSTLY_Q6_K", "6-bit K-quant: near 8-bit quality, smaller"),
    GgufType("q5_k_m", 5.69, "LLAMA_FTYPE_MOSTLY_Q5_K_M", "5-bit K-quant: a little better than q4_k_m"),
    GgufType("q4_k_m", 4.89, "LLAMA_FTYPE_MOSTLY_Q4_K_M", "4-bit K-quant: what most people run on a desktop"),
)}
SIXTEEN = ("bf16", "f16")
INSTALL = "pip install 'lora-studio[gguf]'"


def check_types(names) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(n.lower() for n in names))
    unknown = [n for n in names if n not in TYPES]
    if unknown:
        raise StudioError(f"The GGUF type {unknown[0]!r} is not one the export writes.",
                          f"Choose from {', '.join(TYPES)} (q4_k_m is what most desktops run).", topic="settings")
    return names


def missing_dependency() -> StudioError | None:
    """Why a GGUF export cannot run here (the optional packages are absent), or None."""
    import importlib.util

    absent = [name for name, module in (("gguf", "gguf"), ("llama-cpp-python", "llama_cpp"))
              if importlib.util.find_spec(module) is None]
    if not absent:
        return None
    return StudioError(f"GGUF export needs {' and '.join(absent)}, which {'is' if len(absent) == 1 else 'are'} not installed.",
                       f"Install the GGUF extra: {INSTALL} (it builds llama.cpp once, a few minutes; needs a C++ compiler "
                       "and CMake), then export again.", topic="settings")


def estimated_bytes(parameters: int, name: str, tokenizer_bytes: int = 0) -> int:
    """The file's size, from the model's parameter count and the size of its tokenizer.json (the vocabulary and
    merges travel inside the file, at about that size)."""
    return int(parameters * TYPES[name].bits / 8) + tokenizer_bytes + 64 * 1024


def quantize(source: Path, target: Path, name: str, cancelled: Callable[[], bool] | None = None) -> None:
    """`source` (a 16-bit GGUF) → `target` in type `name`, with llama.cpp's quantizer."""
    run_llama({"do": "quantize", "source": str(source), "target": str(target), "ftype": TYPES[name].ftype},
              cancelled=cancelled)
