"""What an export folder holds, by name: the one place the export's file names are written down.

    DIR/
        adapter_model.safetensors, adapter_config.json   the adapter (adapter export)
        config.json, model*.safetensors                   the merged model (--merged), sharded
        tokenizer files, chat_template.jinja              the tokenizer and the chat template training used
        README.md                                         model card: base model, license, data, recipe, loss
        loss.svg                                          the loss curve, drawn from the run's events
        run.toml                                          the recipe: `studio train --recipe run.toml` runs it again
        Modelfile                                         for `ollama create` (when asked, or when Ollama takes
                                                          adapters of this architecture)
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
