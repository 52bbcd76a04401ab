"""What the studio knows about a model without its weights: `ModelInfo` and its `LinearLayer`s."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from studio.core.errors import StudioError

if TYPE_CHECKING:
    from studio.core.models.catalog import CatalogEntry


@dataclass(frozen=True)
class LinearLayer:
    """One `nn.Linear` of the decoder: a quantization target and a possible LoRA target."""

    name: str  # full module name, e.g. "model.layers.0.self_attn.q_proj"
    in_features: int
    out_features: int
    bias: bool

    @property
    def suffix(self) -> str:
        """The name PEFT's `target_modules` matches, e.g. "q_proj"."""
        return self.name.rsplit(".", 1)[-1]

    @property
    def weight_params(self) -> int:
        return self.in_features * self.out_features


@dataclass(frozen=True)
class ModelInfo:
    """Everything the planner and the window need to know about a model, without its weights."""

    name: str  # what to show: "Llama 3.1 8B", "demo", a folder name, a hub id
    source: str  # what the user typed
    architecture: str  # e.g. "LlamaForCausalLM"
    model_type: str  # e.g. "llama"
    total_params: int  # unique parameters (tied embeddings counted once)
    quantizable_params: int  # weights of the Linear layers bitsandbytes quantizes (biases excluded)
    embedding_params: int  # input embedding table
    lm_head_params: int  # output projection; 0 when tied to the input embeddings
    other_params: int  # what is left: norms, biases, anything not a quantized Linear weight or an embedding
    tied_embeddings: bool
    linear_layers: tuple[LinearLayer, ...]  # the quantizable Linear layers, in model order
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_attention_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    context_length: int | None
    has_chat_template: bool
    logit_softcapping: float | None = None  # Gemma 2: logits = cap·tanh(logits / cap), one more vocabulary-sized tensor
    path: Path | None = None  # local folder holding config.json (and maybe weights)
    hub_id: str | None = None
    license: str | None = None
    family: str | None = None
    catalog_name: str | None = None
    weights_bytes: int = 0  # on-disk size of the weight files found; 0 when none are present
    weights_format: str | None = None  # "safetensors", "bin" (pickle: needs the user's yes) or None
    needs_trust_remote_code: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def unquantized_params(self) -> int:
        """Parameters bitsandbytes leaves in floating point: embeddings, lm_head, norms, biases."""
        return self.total_params - self.quantizable_params

    @property
    def lora_targets(self) -> list[str]:
        """Module names usable in PEFT's `target_modules`, in model order."""
        seen: dict[str, None] = {}
        for layer in self.linear_layers:
            seen.setdefault(layer.suffix, None)
        return list(seen)

    def target_layers(self, targets: Iterable[str]) -> list[LinearLayer]:
        """The Linear layers a LoRA `target_modules` list selects ("all-linear" selects every one)."""
        if not self.linear_layers:
            raise StudioError(f"{self.name} has no layers an adapter can attach to (its configuration has "
                              f"{self.num_layers} layers and no Linear layer).",
                              "Its config.json is broken or it is not a text-generation model: choose another model.")
        wanted = set(targets)
        if "all-linear" in wanted:
            return list(self.linear_layers)
        unknown = wanted - set(self.lora_targets)
        if unknown:
            raise StudioError(
                f"{self.name} has no layer named {', '.join(sorted(unknown))}.",
                f"Choose LoRA targets among: {', '.join(self.lora_targets)} (or all-linear).",
            )
        return [layer for layer in self.linear_layers if layer.suffix in wanted]

    def with_catalog(self, entry: CatalogEntry | None) -> ModelInfo:
        """Add the catalog's name, license and family to a model found elsewhere (e.g. the hub cache)."""
        if entry is None:
            return self
        return replace(
            self,
            name=entry.display_name,
            license=self.license or entry.license,
            family=entry.family,
            catalog_name=entry.name,
            has_chat_template=self.has_chat_template or entry.chat_template,
        )
