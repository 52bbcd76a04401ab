"""A model's exact architecture from its configuration: the config read by transformers, then the
model built on torch's meta device (shapes only: no memory, no weights) and counted — parameters,
embeddings, tied weights, and the Linear layers bitsandbytes would quantize (by transformers' own
rule, `get_keys_to_not_convert`)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from studio.core.errors import StudioError
from studio.core.models.files import CONFIG_NAME
from studio.core.models.info import LinearLayer


@dataclass(frozen=True)
class Architecture:
    """What instantiating a configuration on the meta device shows."""

    architecture: str  # the model class, e.g. "LlamaForCausalLM"
    total: int  # unique parameters (tied embeddings counted once)
    embedding: int
    lm_head: int  # 0 when tied to the input embeddings
    tied: bool
    linears: tuple[LinearLayer, ...]  # the Linear layers bitsandbytes quantizes, in model order

    @property
    def quantizable(self) -> int:
        return sum(layer.weight_params for layer in self.linears)


def load_config(folder: Path, raw: dict, trust_remote_code: bool):
    """AutoConfig for `folder`, with errors a person can act on."""
    from transformers import AutoConfig
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    model_type = raw.get("model_type")
    known = model_type in CONFIG_MAPPING
    remote = "auto_map" in raw and not known
    _check_config_is_usable(folder, model_type, known, remote, trust_remote_code)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if known:  # from the dict itself: works for a config.json under any name (the catalog's)
                return CONFIG_MAPPING[model_type].from_dict(raw)
            return AutoConfig.from_pretrained(str(folder), trust_remote_code=trust_remote_code)
    except StudioError:
        raise
    except Exception as exc:
        raise StudioError(
            f"transformers could not read the configuration in {folder}: {exc}",
            "Check that config.json is complete and matches the model; download it again if in doubt.",
        ) from exc


def _check_config_is_usable(folder: Path, model_type, known: bool, remote: bool, trust_remote_code: bool) -> None:
    """Refuse remote code without the user's yes, a config without an architecture, an unknown one."""
    if remote and not trust_remote_code:
        raise StudioError(
            f"This model ({model_type or 'unknown type'}) ships its own Python code, which would run on your computer.",
            "Only allow it for a model you trust: turn on 'trust remote code' (--trust-remote-code). "
            "Many such models also have an official transformers version: look for one first.",
        )
    if not model_type and not remote:
        raise StudioError(
            f"{folder / CONFIG_NAME} does not say which architecture it is (no model_type).",
            "This is not a transformers model configuration: point the studio at the model's own config.json.",
        )
    if not known and not remote:
        import transformers

        raise StudioError(
            f"The architecture '{model_type}' is not known to transformers {transformers.__version__}.",
            "Update transformers (pip install -U transformers) or choose a model with a supported architecture.",
        )


def text_config(config):
    """The language-model part of a config (multimodal configs nest it)."""
    getter = getattr(config, "get_text_config", None)
    return getter() if callable(getter) else config


def inspect_on_meta(config, trust_remote_code: bool) -> Architecture:
    """Build the model on the meta device and count what it holds."""
    import torch

    model = _build_on_meta(config, trust_remote_code)
    total = sum(p.numel() for p in model.parameters())  # parameters() yields tied tensors once
    in_emb = model.get_input_embeddings()
    out_emb = model.get_output_embeddings()
    embedding = in_emb.weight.numel() if in_emb is not None else 0
    tied = out_emb is not None and in_emb is not None and out_emb.weight is in_emb.weight
    lm_head = 0 if (out_emb is None or tied) else sum(p.numel() for p in out_emb.parameters())

    skip = set(_keys_not_quantized(model))
    linears = []
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear) or module is out_emb:
            continue
        if any(name == key or name.startswith(key + ".") or name.endswith("." + key) for key in skip):
            continue
        linears.append(LinearLayer(name, module.in_features, module.out_features, module.bias is not None))
    return Architecture(type(model).__name__, total, embedding, lm_head, tied, tuple(linears))


def _build_on_meta(config, trust_remote_code: bool):
    import torch
    from transformers import AutoModelForCausalLM

    try:
        with warnings.catch_warnings(), torch.device("meta"):
            warnings.simplefilter("ignore")
            return AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
    except ValueError as exc:
        raise StudioError(
            f"{type(config).__name__} is not a text-generation (causal language) model, so it cannot be fine-tuned here.",
            "Choose a decoder model such as Llama, Qwen, Mistral, Gemma or Phi.",
        ) from exc
    except Exception as exc:
        raise StudioError(
            f"transformers could not build this architecture: {exc}",
            "The configuration may be incomplete, or need a newer transformers (pip install -U transformers).",
        ) from exc


def _keys_not_quantized(model) -> list[str]:
    """The modules bitsandbytes leaves unquantized, by transformers' own rule (lm_head, tied weights)."""
    try:
        from transformers.quantizers.base import get_keys_to_not_convert

        keys = list(get_keys_to_not_convert(model))
    except Exception:  # older/newer transformers moved it: fall back to the same rule, by hand
        out = model.get_output_embeddings()
        keys = [n for n, m in model.named_modules() if out is not None and m is out]
    keys += list(getattr(model, "_keep_in_fp32_modules", None) or [])
    return keys
