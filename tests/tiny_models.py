"""Tiny models that tests build themselves, saved as real safetensors folders."""

from __future__ import annotations

from pathlib import Path

import torch


def save_tiny_model(folder: Path, kind: str = "llama", seed: int = 0) -> Path:
    """A random-weight model of a real architecture, small enough for CPU tests.

    kind: "llama" (GQA, untied, no biases), "qwen2" (tied embeddings, q/k/v biases),
    "phi3" (fused qkv_proj and gate_up_proj).
    """
    from transformers import AutoModelForCausalLM, LlamaConfig, Phi3Config, Qwen2Config

    torch.manual_seed(seed)
    common = dict(hidden_size=128, intermediate_size=320, num_hidden_layers=2, num_attention_heads=4,
                  max_position_embeddings=512, vocab_size=600)
    if kind == "llama":
        config = LlamaConfig(num_key_value_heads=2, tie_word_embeddings=False, **common)
    elif kind == "qwen2":
        config = Qwen2Config(num_key_value_heads=2, tie_word_embeddings=True, **common)
    elif kind == "phi3":
        config = Phi3Config(num_key_value_heads=4, tie_word_embeddings=False, pad_token_id=0, **common)
    else:
        raise ValueError(kind)
    model = AutoModelForCausalLM.from_config(config)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    return folder
