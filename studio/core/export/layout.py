"""What an export folder holds, by name: the one place the export's file names are written down.

    DIR/
        adapter_model.safetensors, adapter_config.json   the adapter (adapter export)
        config.json, model*.safetensors                   the merged model (--merged), sharded
        tokenizer files, chat_template.jinja              the tokenizer and the chat template training used
        README.md                                         model card: base model, license, data, recipe, loss
        loss.svg                                          the loss curve, drawn from the run's events
        run.toml                                          the recipe: `studio train --recipe run.toml` runs it again
        NAME-q4_k_m.gguf, NAME-bf16.gguf ...              GGUF files for llama.cpp, Ollama, LM Studio (--gguf);
                                                          with --lmstudio under lora-studio/NAME/, the
                                                          publisher/model/file layout LM Studio reads
        Modelfile                                         for `ollama create` (--ollama: FROM the GGUF file;
                                                          --ollama-adapter: FROM the base + ADAPTER, old Ollama)
        studio-export.json                                what this folder is, and the manifest: the files this
                                                          export wrote (a later export replaces only those)
"""

from __future__ import annotations

import re

from studio.core.runs import ADAPTER_WEIGHTS

MARKER = "studio-export.json"
CARD = "README.md"
PLOT = "loss.svg"
MODELFILE = "Modelfile"
# Files of the run's adapter folder that are not tokenizer files.
NOT_TOKENIZER = frozenset({"README.md", "studio.json", *ADAPTER_WEIGHTS})
# The merged model's weight files: model.safetensors, or model-00001-of-00003.safetensors and its index.
WEIGHT_FILES = re.compile(r"model(-\d+-of-\d+)?\.safetensors(\.index\.json)?")
# LM Studio reads models as <models folder>/<publisher>/<model>/<file>.gguf.
LMSTUDIO_PUBLISHER = "lora-studio"


def model_slug(name: str) -> str:
    """A run's output name as a file name: lower case letters, digits, '.', '_' and '-'."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-.")
    return slug or "model"


def gguf_paths(name: str, types, *, lmstudio: bool) -> dict[str, str]:
    """{GGUF type: the file's path inside the export folder}."""
    slug = model_slug(name)
    folder = f"{LMSTUDIO_PUBLISHER}/{slug}/" if lmstudio else ""
    return {t: f"{folder}{slug}-{t}.gguf" for t in types}
