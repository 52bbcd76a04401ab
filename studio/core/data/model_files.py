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
    return next((kind.format(name=name) for looks_like, kind in _JSON_MODEL_FILES if looks_like(value, name)), None)


def _is_tokenizer(v: dict, name: str) -> bool:
    return isinstance(v.get("model"), dict) and ("added_tokens" in v or "pre_tokenizer" in v)


def _is_model_config(v: dict, name: str) -> bool:
    return "model_type" in v and (isinstance(v.get("architectures"), list) or any(k in v for k in MODEL_CONFIG_KEYS))


def _is_vocabulary(v: dict, name: str) -> bool:
    return name in ("vocab.json", "added_tokens.json") and all(isinstance(x, int) for x in list(v.values())[:1000])


# (how a model file's JSON looks, what it is), most telling first; `name` is the file's name in lower case
_JSON_MODEL_FILES = (
    (_is_tokenizer, "a tokenizer (tokenizer.json)"),
    (lambda v, name: "peft_type" in v and ("target_modules" in v or "r" in v),
     "a LoRA adapter's configuration (adapter_config.json)"),
    (lambda v, name: isinstance(v.get("weight_map"), dict), "the index of a model's weight files"),
    (_is_model_config, "a model's configuration (config.json)"),
    (lambda v, name: "tokenizer_class" in v or isinstance(v.get("added_tokens_decoder"), dict),
     "a tokenizer's settings (tokenizer_config.json)"),
    (lambda v, name: "_from_model_config" in v or (name == "generation_config.json" and "transformers_version" in v),
     "a model's generation settings (generation_config.json)"),
    (lambda v, name: name == "special_tokens_map.json" and set(v) <= SPECIAL_TOKEN_KEYS,
     "a tokenizer's special tokens (special_tokens_map.json)"),
    (_is_vocabulary, "a tokenizer's vocabulary ({name})"),
)


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
            lines = [line.rstrip("\n") for _, line in zip(range(1000), fh, strict=False)]
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
