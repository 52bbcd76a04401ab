"""The merged model's tensors as llama.cpp reads them: read one at a time from the safetensors files
(a model never sits in memory whole), renamed with the `gguf` package's map, and changed where
llama.cpp's layout differs from Hugging Face's (arch.py says where)."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from studio.core.errors import StudioError
from studio.core.export.to_gguf.arch import Architecture, head_dim, rope_settings

# Tensors of a merged model that llama.cpp has no use for.
_SKIPPED = ("rotary_emb.inv_freq", "rotary_emb.original_inv_freq")
# Gemma 3 checkpoints with a vision tower keep the language model under this prefix.
_TEXT_PREFIX = "model.language_model."
_NOT_TEXT = ("model.vision_tower.", "vision_tower.", "model.multi_modal_projector.", "multi_modal_projector.")


@dataclass(frozen=True)
class GgufTensor:
    name: str  # GGUF name, e.g. blk.0.attn_q.weight
    shape: tuple[int, ...]  # numpy order (rows first), as Hugging Face stores it
    keep_f32: bool  # norms, biases and other 1-D tensors stay 32-bit (llama.cpp expects it)
    load: Callable[[], object]  # -> torch.Tensor, float32, transformed


def safetensors_shapes(model_dir: Path) -> dict[str, tuple[Path, tuple[int, ...]]]:
    """Every tensor of a folder's *.safetensors files: its file and shape, read from the headers only."""
    index: dict[str, tuple[Path, tuple[int, ...]]] = {}
    for file in sorted(Path(model_dir).glob("*.safetensors")):
        with file.open("rb") as fh:
            (length,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(length))
        for name, entry in header.items():
            if name != "__metadata__":
                index[name] = (file, tuple(entry["shape"]))
    return index


def safetensors_index(model_dir: Path) -> dict[str, tuple[Path, tuple[int, ...]]]:
    """safetensors_shapes of a model that must have weights."""
    index = safetensors_shapes(model_dir)
    if not index:
        raise StudioError(f"{model_dir} holds no .safetensors weights to convert.", "Export the merged model again.")
    return index


def _text_name(name: str) -> str | None:
    """The language model's own name of a tensor, or None for a vision tower's."""
    if name.startswith(_NOT_TEXT):
        return None
    return "model." + name[len(_TEXT_PREFIX):] if name.startswith(_TEXT_PREFIX) else name


def _permute(weight, n_head: int):
    """Hugging Face's q/k rows (each head's rotary halves apart) in llama.cpp's order (the pairs side by side)."""
    rows = weight.shape[0]
    return weight.reshape(n_head, 2, rows // n_head // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def _transform(name: str, config, arch: Architecture) -> Callable:
    def change(t):
        if arch.permute_qk and name.endswith(("self_attn.q_proj.weight", "self_attn.q_proj.bias")):
            return _permute(t, config.num_attention_heads)
        if arch.permute_qk and name.endswith(("self_attn.k_proj.weight", "self_attn.k_proj.bias")):
            return _permute(t, config.num_key_value_heads or config.num_attention_heads)
        if arch.norm_plus_one and name.endswith("norm.weight"):
            return t + 1
        return t
    return change


def gguf_tensors(model_dir: Path, config, arch: Architecture) -> list[GgufTensor]:
    """The GGUF file's tensors, in order, each with how to load it."""
    import gguf

    arch_enum = next(k for k, v in gguf.MODEL_ARCH_NAMES.items() if v == arch.gguf_arch)
    names = gguf.get_tensor_name_map(arch_enum, config.num_hidden_layers)
    index = safetensors_index(model_dir)
    tensors = []
    for hf_name, (file, shape) in index.items():
        text = _text_name(hf_name)
        if text is None or text.endswith(_SKIPPED):
            continue
        if text == "lm_head.weight" and (arch.tied_always or getattr(config, "tie_word_embeddings", False)):
            continue  # llama.cpp uses token_embd for the output when output.weight is absent
        new = names.get_name(text, try_suffixes=(".weight", ".bias"))
        if new is None:
            raise StudioError(f"The GGUF export does not know where the tensor {hf_name} goes in a {arch.label} GGUF file.",
                              "Export the merged model instead (--merged) and convert it with llama.cpp's convert_hf_to_gguf.py.",
                              topic="model")
        tensors.append(GgufTensor(new, shape, len(shape) <= 1, _loader(file, hf_name, _transform(text, config, arch))))
    return tensors + list(_rope_factor_tensors(config))


def _loader(file: Path, name: str, change: Callable) -> Callable:
    def load():
        import torch
        from safetensors import safe_open

        with safe_open(str(file), framework="pt") as f:
            return change(f.get_tensor(name).to(torch.float32))
    return load


def _rope_factor_tensors(config) -> Iterator[GgufTensor]:
    """Llama 3.1's rope scaling travels as a tensor of per-frequency divisors (rope_freqs), computed with
    transformers' own rope functions: the unscaled inverse frequencies over the scaled ones."""
    rope = rope_settings(config)
    if rope.get("rope_type") == "llama3":
        def load():
            from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

            scaled, _ = ROPE_INIT_FUNCTIONS["llama3"](config, "cpu")
            base = float(rope["rope_theta"])
            import torch

            dims = head_dim(config)
            plain = 1.0 / (base ** (torch.arange(0, dims, 2, dtype=torch.int64).float() / dims))
            return (plain / scaled).to(torch.float32)
        yield GgufTensor("rope_freqs.weight", (head_dim(config) // 2,), True, load)
    elif rope.get("rope_type") == "longrope":
        import torch

        for which in ("long", "short"):
            values = rope[f"{which}_factor"]
            yield GgufTensor(f"rope_factors_{which}.weight", (len(values),), True,
                             lambda v=values: torch.tensor(v, dtype=torch.float32))
