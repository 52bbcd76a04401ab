"""What each model architecture needs in a GGUF file: llama.cpp's name for it, the hyperparameters its
loader reads, and how a Hugging Face tensor becomes a GGUF tensor. Tensor names come from the `gguf`
package's own map (gguf.get_tensor_name_map); only what differs between architectures is written here,
as read from llama.cpp's loader and converter (llama.cpp's conversion/ and src/llama-model.cpp)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from studio.core.errors import StudioError


@dataclass(frozen=True)
class Architecture:
    gguf_arch: str  # general.architecture, llama.cpp's name
    label: str  # for people
    permute_qk: bool = False  # llama.cpp's "llama" rope pairs neighbouring values; HF's rotates halves
    norm_plus_one: bool = False  # Gemma stores RMSNorm weights as w with (1 + w) applied
    extra: Callable | None = None  # (writer, config) -> None: the architecture's own keys
    tied_always: bool = False  # llama.cpp never reads an output tensor: the embedding is always the output


def _layer_pattern(writer, config) -> None:
    """Which layers attend within a sliding window, layer by layer (transformers' `layer_types`)."""
    kinds = getattr(config, "layer_types", None)
    if kinds:
        writer.add_sliding_window_pattern([kind == "sliding_attention" for kind in kinds])


# llama.cpp's Gemma 2 always caps logits as cap·tanh(x/cap); a cap of 0 (no cap, in transformers) gives NaN. A cap
# this large leaves logits of up to ±50 within 5e-4 of x, and one of 1 over it is still a normal 16-bit number.
_NO_CAP = 1e4


def _gemma2_keys(writer, config) -> None:
    writer.add_attn_logit_softcapping(config.attn_logit_softcapping or _NO_CAP)
    writer.add_final_logit_softcapping(config.final_logit_softcapping or _NO_CAP)
    writer.add_sliding_window(config.sliding_window)
    _layer_pattern(writer, config)


def _gemma3_keys(writer, config) -> None:
    if getattr(config, "attn_logit_softcapping", None):
        raise StudioError("This Gemma 3 model caps attention logits, which llama.cpp's Gemma 3 does not do.",
                          "Export the merged model instead (--merged).", topic="model")
    writer.add_sliding_window(config.sliding_window)
    _layer_pattern(writer, config)
    local = (getattr(config, "rope_parameters", None) or {}).get("sliding_attention") or {}
    base = local.get("rope_theta") or getattr(config, "rope_local_base_freq", None)
    if base:
        writer.add_rope_freq_base_swa(float(base))
    if getattr(config, "final_logit_softcapping", None):
        writer.add_final_logit_softcapping(config.final_logit_softcapping)


def _phi3_keys(writer, config) -> None:
    import math

    rope = rope_settings(config)
    original = int(rope.get("original_max_position_embeddings") or getattr(config, "original_max_position_embeddings", None)
                   or config.max_position_embeddings)
    writer.add_rope_scaling_orig_ctx_len(original)
    writer.add_sliding_window(getattr(config, "sliding_window", None) or 0)
    if rope.get("rope_type") == "longrope":
        scale = config.max_position_embeddings / original
        writer.add_rope_scaling_attn_factors(math.sqrt(1 + math.log(scale) / math.log(original)) if scale > 1 else 1.0)


# Hugging Face `model_type` → the GGUF architecture. Mistral's dense models are llama.cpp's "llama".
ARCHITECTURES: dict[str, Architecture] = {
    "llama": Architecture("llama", "Llama 2 / 3.x (and the demo model)", permute_qk=True),
    "mistral": Architecture("llama", "Mistral", permute_qk=True),
    "qwen2": Architecture("qwen2", "Qwen2 / Qwen2.5"),
    "qwen3": Architecture("qwen3", "Qwen3"),
    "gemma2": Architecture("gemma2", "Gemma 2", norm_plus_one=True, extra=_gemma2_keys, tied_always=True),
    "gemma3_text": Architecture("gemma3", "Gemma 3", norm_plus_one=True, extra=_gemma3_keys),
    "phi3": Architecture("phi3", "Phi-3 / Phi-4", extra=_phi3_keys),
}


def known_labels() -> str:
    return ", ".join(dict.fromkeys(a.label for a in ARCHITECTURES.values()))


def architecture_of(config) -> Architecture:
    """The architecture of a model's config, or a StudioError that names those the GGUF export knows."""
    model_type = getattr(config, "model_type", None)
    arch = ARCHITECTURES.get(model_type)
    if arch is None:
        raise StudioError(f"The GGUF export does not know the architecture '{model_type}' of this model.",
                          f"It writes these: {known_labels()}. Export the merged model instead (--merged) and convert it "
                          "with llama.cpp's own convert_hf_to_gguf.py, which knows more architectures.",
                          topic="model")
    return arch


def rope_settings(config) -> dict:
    """The model's rope parameters (transformers 5 keeps them in `rope_parameters`; Gemma 3 per attention kind)."""
    params = getattr(config, "rope_parameters", None) or {}
    if "full_attention" in params:  # Gemma 3: {"full_attention": {...}, "sliding_attention": {...}}
        params = params["full_attention"]
    if not params.get("rope_theta") and getattr(config, "rope_theta", None):
        params = {**params, "rope_theta": config.rope_theta}
    return params


def head_dim(config) -> int:
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


def add_hyperparameters(writer, config, arch: Architecture) -> None:
    """The keys every architecture here shares, then the architecture's own."""
    import gguf

    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(getattr(config, "num_key_value_heads", None) or config.num_attention_heads)
    writer.add_key_length(head_dim(config))
    writer.add_value_length(head_dim(config))
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_vocab_size(config.vocab_size)
    rope = rope_settings(config)
    writer.add_rope_freq_base(float(rope.get("rope_theta") or 10000.0))
    writer.add_rope_dimension_count(int(head_dim(config) * float(rope.get("partial_rotary_factor") or 1.0)))
    kind = rope.get("rope_type") or "default"
    if kind == "linear":
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(rope["factor"]))
    elif kind == "yarn":
        writer.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        writer.add_rope_scaling_factor(float(rope["factor"]))
        writer.add_rope_scaling_orig_ctx_len(int(rope["original_max_position_embeddings"]))
    elif kind not in ("default", "llama3", "longrope"):  # llama3 and longrope travel as factor tensors (tensors.py)
        raise StudioError(f"The model's rope scaling '{kind}' is not one the GGUF export writes.",
                          "Export the merged model instead (--merged) and convert it with llama.cpp's convert_hf_to_gguf.py.",
                          topic="model")
    if arch.extra is not None:
        arch.extra(writer, config)
