"""A merged 16-bit model folder → one GGUF file in 16 bits (bf16 or f16), written with the `gguf`
package: the header and tensor table first, then the tensors one at a time, so memory holds one tensor."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

from studio.core.errors import StudioError
from studio.core.export.to_gguf.arch import add_hyperparameters, architecture_of
from studio.core.export.to_gguf.llama_run import Cancelled
from studio.core.export.to_gguf.tensors import GgufTensor, gguf_tensors
from studio.core.export.to_gguf.vocab import add_vocab, llama_cpp_name


def text_config(config):
    """A model config's language-model part (Gemma 3 with vision keeps it in text_config)."""
    return getattr(config, "text_config", None) if config.model_type == "gemma3" else config


def _numpy(tensor, t: GgufTensor, sixteen: str):
    """(array, raw GGML type or None) for the file: 1-D tensors in 32 bits, the rest in 16."""
    import gguf
    import torch

    if t.keep_f32:
        return tensor.to(torch.float32).numpy(), None
    if sixteen == "bf16":
        return tensor.to(torch.bfloat16).view(torch.uint16).numpy(), gguf.GGMLQuantizationType.BF16
    return tensor.to(torch.float16).numpy(), None


def write_gguf(model_dir: Path, out: Path, *, sixteen: str = "bf16", chat_template: str | None = None,
               name: str = "", progress: Callable[[float], None] | None = None,
               cancelled: Callable[[], bool] | None = None) -> str:
    """Write the model in `model_dir` (config.json, *.safetensors, tokenizer) to `out`; the tokenizer's kind."""
    import gguf
    import numpy as np
    from transformers import AutoConfig

    if sixteen not in ("bf16", "f16"):
        raise StudioError(f"A 16-bit GGUF is bf16 or f16, not {sixteen!r}.", "Choose bf16 or f16.")
    try:
        config = text_config(AutoConfig.from_pretrained(str(model_dir)))
    except ValueError:  # a model type transformers does not know: the StudioError that names those the export writes
        raw = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
        architecture_of(SimpleNamespace(model_type=raw.get("model_type")))
        raise
    arch = architecture_of(config)
    tensors = gguf_tensors(Path(model_dir), config, arch)
    writer = gguf.GGUFWriter(str(out), arch.gguf_arch)
    writer.add_name(llama_cpp_name(name or Path(model_dir).name, Path(model_dir)))
    add_hyperparameters(writer, config, arch)
    kind = add_vocab(writer, Path(model_dir), config.vocab_size, chat_template)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_BF16 if sixteen == "bf16" else gguf.LlamaFileType.MOSTLY_F16)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    for t in tensors:
        count = int(np.prod(t.shape)) if t.shape else 1
        if t.keep_f32:
            writer.add_tensor_info(t.name, t.shape, np.dtype(np.float32), 4 * count)
        elif sixteen == "bf16":
            writer.add_tensor_info(t.name, t.shape, np.dtype(np.uint16), 2 * count, raw_dtype=gguf.GGMLQuantizationType.BF16)
        else:
            writer.add_tensor_info(t.name, t.shape, np.dtype(np.float16), 2 * count)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    try:
        for i, t in enumerate(tensors):
            if cancelled and cancelled():
                raise Cancelled()
            array, _ = _numpy(t.load(), t, sixteen)
            writer.write_tensor_data(array.reshape(t.shape))
            if progress:
                progress((i + 1) / len(tensors))
    finally:
        writer.close()
    return kind
