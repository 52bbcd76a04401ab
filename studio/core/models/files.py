"""A model folder's files, read as they are: config.json as a dict, the chat template, the model
card's license, and the weight files (their size, format and whether they are whole)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from studio.core.errors import StudioError
from studio.core.weights import base_weights, safetensors_problem

CONFIG_NAME = "config.json"


def read_config_dict(config_file: Path) -> dict:
    """config.json as a dict, with errors a person can act on."""
    try:
        text = config_file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise StudioError(f"{config_file} is not a text file.", "Point the studio at the model's config.json.") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StudioError(
            f"{config_file} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}).",
            "The file is damaged or was edited by hand: download it again or fix the line shown.",
        ) from exc
    if not isinstance(data, dict):
        raise StudioError(f"{config_file} does not hold a model configuration.", "Point the studio at the model's config.json.")
    return data


def has_chat_template(folder: Path | None) -> bool:
    """Whether the folder's tokenizer brings a chat template (a file of its own, or in tokenizer_config.json)."""
    if folder is None:
        return False
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return True
    tok_config = folder / "tokenizer_config.json"
    if tok_config.is_file():
        try:
            return bool(json.loads(tok_config.read_text(encoding="utf-8")).get("chat_template"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            return False
    return False


def card_license(folder: Path | None) -> str | None:
    """The `license:` in a model card's YAML front matter (README.md), where hub models state it."""
    if folder is None:
        return None
    try:
        text = (Path(folder) / "README.md").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    front = re.match(r"---\s*\n(.*?)\n---", text, re.S)
    if not front:
        return None
    found = re.search(r"^license:\s*['\"]?([^'\"\n]+?)['\"]?\s*$", front.group(1), re.M)
    return found.group(1) if found else None


def weights_on_disk(folder: Path | None) -> tuple[int, str | None, str | None]:
    """(bytes, "safetensors" / "bin" / None, why the files are damaged or None) of the weights
    from_pretrained would load (weights.py decides which, by transformers' own file names)."""
    found = base_weights(folder)
    damaged = None
    for path in found.files:
        problem = "missing" if not path.is_file() else safetensors_problem(path) if path.suffix == ".safetensors" else None
        if problem:
            damaged = f"{path.name}: {problem}"
            break
    return found.size_bytes, {"safetensors": "safetensors", "pickle": "bin"}.get(found.kind or ""), damaged
