"""The GGUF part of an export, written into its staging folder: the merged model → a 16-bit GGUF →
each quantized type asked for, and the check of every file in llama.cpp (check.py)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from studio.core.export.to_gguf.check import FALLBACK_PROMPTS, GgufCheck, check_gguf, reference_answers
from studio.core.export.to_gguf.llama_run import Cancelled
from studio.core.export.to_gguf.quantize import SIXTEEN, quantize
from studio.core.export.to_gguf.write import write_gguf

MAX_CHECK_PROMPTS = 5
_TEMP_16 = ".studio-gguf-16bit.tmp"  # the 16-bit file quantized from, when it was not asked for


@dataclass(frozen=True)
class GgufFile:
    quant: str
    path: str  # relative to the export folder
    size_bytes: int
    seconds: float  # writing it (conversion or quantization)
    check: GgufCheck

    def as_dict(self) -> dict:
        return {"type": self.quant, "path": self.path, "size_bytes": self.size_bytes, "seconds": round(self.seconds, 2),
                "check": self.check.as_dict()}


def check_prompts(prompts) -> list[str]:
    chosen = [p for p in prompts if isinstance(p, str) and p.strip()][:MAX_CHECK_PROMPTS]
    return chosen or list(FALLBACK_PROMPTS)


def write_gguf_files(merged_dir: Path, work: Path, names: dict[str, str], *, prompts: list[str], model_name: str,
                     say: Callable[[str, float], None], cancelled: Callable[[], bool] | None = None) -> list[GgufFile]:
    """Write each GGUF of `names` ({type: path relative to `work`}) from the merged model in `merged_dir`."""
    from transformers import AutoTokenizer

    from studio.core.data.tokens import chat_template_of

    tokenizer = AutoTokenizer.from_pretrained(str(merged_dir))
    template = chat_template_of(tokenizer)[0]
    sixteen = next((q for q in names if q in SIXTEEN), "bf16")
    source = work / names[sixteen] if sixteen in names else work / _TEMP_16
    source.parent.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    try:
        start = time.monotonic()
        say(f"Writing the {sixteen} GGUF file", 0.45)
        write_gguf(merged_dir, source, sixteen=sixteen, chat_template=template, name=model_name,
                   progress=lambda f: say(f"Writing the {sixteen} GGUF file", 0.45 + 0.15 * f), cancelled=cancelled)
        seconds[sixteen] = time.monotonic() - start
        for i, quant in enumerate(q for q in names if q != sixteen):
            start = time.monotonic()
            say(f"Quantizing to {quant} with llama.cpp", 0.6 + 0.1 * i / max(1, len(names)))
            (work / names[quant]).parent.mkdir(parents=True, exist_ok=True)
            quantize(source, work / names[quant], quant, cancelled)
            seconds[quant] = time.monotonic() - start
        say("Answering the sample prompts in transformers, to compare", 0.72)
        reference = reference_answers(merged_dir, check_prompts(prompts), template)
        files = []
        for i, quant in enumerate(names):
            say(f"Checking the {quant} file in llama.cpp", 0.75 + 0.1 * i / len(names))
            check = check_gguf(work / names[quant], quant, reference, exact=quant in SIXTEEN and reference.exact, cancelled=cancelled,
                               decode=tokenizer.decode)
            files.append(GgufFile(quant, names[quant], (work / names[quant]).stat().st_size, seconds[quant], check))
        return files
    finally:
        if sixteen not in names:
            source.unlink(missing_ok=True)


def remove_quietly(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


__all__ = ["Cancelled", "GgufFile", "check_prompts", "remove_quietly", "write_gguf_files"]
