"""Files that belong to a model, not to a dataset: weights, configuration, tokenizer files.

Given as data, a tokenizer.json reads as a list of "records" (its special tokens, with a "content"
field) and would be trained on. Each check here needs the file's name AND its content to agree
(a dataset that happens to be called config.json is still read), except for JSON objects whose
shape only a model file has (a tokenizer's "model" with its "added_tokens"), which are recognised
under any name.
"""

from __future__ import annotations

import json
from pathlib import Path

# Weight files: never data, whatever they hold.
WEIGHT_SUFFIXES = (".safetensors", ".gguf", ".ggml", ".pt", ".pth", ".ckpt", ".bin", ".onnx", ".h5", ".msgpack")
SPECIAL_TOKEN_KEYS = {"bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token",
                      "additional_special_tokens"}
MODEL_CONFIG_KEYS = ("hidden_size", "vocab_size", "num_hidden_layers", "n_layer", "d_model", "transformers_version",
                     "text_config", "num_attention_heads")
# Names a model's files go by: only these are opened to check before reading (any other JSON object
# is checked as it is read, see kind_of_json).
MODEL_FILE_NAMES = {"config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                    "generation_config.json", "added_tokens.json", "vocab.json", "adapter_config.json",
                    "preprocessor_config.json", "model.safetensors.index.json", "merges.txt", "vocab.txt"}
MAX_CHECKED_BYTES = 64 * 2**20  # model JSON files are smaller (the largest tokenizer.json files are ~35 MB)

REFUSED_ADVICE = ("Choose the file that holds your examples (.jsonl, .json, .csv, .tsv, .parquet, .txt) or a folder "
                  "of them. To train this model, choose its folder as the model instead (the Model page, or --model FOLDER).")
SKIPPED_ADVICE = "Keep the model's files out of the data folder; the other files were read."


def kind_of_json(value, name: str = "") -> str | None:
    """What model file a parsed JSON value is, or None when it may well be data."""
    if not isinstance(value, dict) or not value:
        return None
    name = name.lower()
    if isinstance(value.get("model"), dict) and ("added_tokens" in value or "pre_tokenizer" in value):
        return "a tokenizer (tokenizer.json)"
    if "peft_type" in value and ("target_modules" in value or "r" in value):
        return "a LoRA adapter's configuration (adapter_config.json)"
    if isinstance(value.get("weight_map"), dict):
        return "the index of a model's weight files"
    if isinstance(value.get("architectures"), list) and "model_type" in value:
        return "a model's configuration (config.json)"
    if "model_type" in value and any(k in value for k in MODEL_CONFIG_KEYS):
        return "a model's configuration (config.json)"
    if "tokenizer_class" in value or isinstance(value.get("added_tokens_decoder"), dict):
        return "a tokenizer's settings (tokenizer_config.json)"
    if "_from_model_config" in value or (name == "generation_config.json" and "transformers_version" in value):
        return "a model's generation settings (generation_config.json)"
    if name == "special_tokens_map.json" and set(value) <= SPECIAL_TOKEN_KEYS:
        return "a tokenizer's special tokens (special_tokens_map.json)"
    if name in ("vocab.json", "added_tokens.json") and all(isinstance(v, int) for v in list(value.values())[:1000]):
        return f"a tokenizer's vocabulary ({name})"
    return None


def kind_of_file(path: Path) -> str | None:
    """What model file `path` is, judged by its name and a look at its content; None for anything else."""
    name = path.name.lower()
    if path.suffix.lower() in WEIGHT_SUFFIXES:
        return f"a model's weights ({path.suffix.lower()})"
    if name not in MODEL_FILE_NAMES or not path.is_file() or path.stat().st_size > MAX_CHECKED_BYTES:
        return None
    if name in ("merges.txt", "vocab.txt"):
        return _kind_of_token_list(path, name)
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return kind_of_json(value, name)


def _kind_of_token_list(path: Path, name: str) -> str | None:
    """merges.txt holds "a b" pairs, vocab.txt one token a line: a tokenizer's files, not text to learn."""
    try:
        with path.open(encoding="utf-8") as fh:
            lines = [line.rstrip("\n") for _, line in zip(range(1000), fh)]
    except (OSError, UnicodeDecodeError):
        return None
    body = [line for line in lines if line and not line.startswith("#version")]
    if not body:
        return None
    parts = 2 if name == "merges.txt" else 1
    if sum(len(line.split(" ")) == parts for line in body) >= 0.95 * len(body):
        return f"a tokenizer's {'merge rules' if parts == 2 else 'vocabulary'} ({name})"
    return None


def model_folder_files(folder: Path) -> list[str]:
    """The files at the top of `folder` that make it a model folder (weights, config, tokenizer); [] if none."""
    found = []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        defining = path.name.lower() in ("config.json", "tokenizer.json") or path.suffix.lower() in WEIGHT_SUFFIXES
        if defining and kind_of_file(path):
            found.append(path.name)
    return found
