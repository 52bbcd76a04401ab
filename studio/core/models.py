"""Know a model before loading it: resolve what the user named, and inspect its architecture exactly.

`resolve_model(source)` accepts a local folder, a path to a config.json, the built-in demo (`demo`),
a name from the built-in catalog (`llama-3.1-8b`), or a hub id (`Qwen/Qwen2.5-0.5B`: the local
Hugging Face cache first, then the catalog, then — when online — the config and tokenizer files
only, never weights). It returns a `ModelInfo` whose parameter counts are exact: the architecture
is instantiated on torch's meta device (shapes only, no memory, no weights), and what bitsandbytes
would quantize is decided by transformers' own rule (`get_keys_to_not_convert`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import warnings
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Iterable

from studio.core import paths
from studio.core.errors import StudioError
from studio.core.hub import hub_error, hub_offline, require_hub
from studio.core.weights import base_weights, safetensors_problem

log = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
# Files fetched from the hub for planning: never weights.
PLANNING_FILES = ("config.json", "tokenizer_config.json", "chat_template.jinja", "chat_template.json", "generation_config.json")
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


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
    config_dtype: str | None  # the dtype the weights were published in ("bfloat16", ...)
    has_chat_template: bool
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

    def with_catalog(self, entry: "CatalogEntry | None") -> "ModelInfo":
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


# ---------------------------------------------------------------------------------------------
# The built-in catalog
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    display_name: str
    hub_id: str
    family: str
    config_path: Path
    license: str
    gated: bool
    chat_template: bool
    instruct_hub_id: str | None
    expected_total_params: int


@lru_cache(maxsize=4)
def _catalog_at(folder: Path) -> tuple[CatalogEntry, ...]:
    index = folder / "index.json"
    if not index.is_file():
        return ()
    entries = []
    for row in json.loads(index.read_text(encoding="utf-8")):
        entries.append(
            CatalogEntry(
                name=row["name"],
                display_name=row.get("display_name", row["name"]),
                hub_id=row["hub_id"],
                family=row.get("family", ""),
                config_path=folder / row["config"],
                license=row.get("license", ""),
                gated=bool(row.get("gated", False)),
                chat_template=bool(row.get("chat_template", False)),
                instruct_hub_id=row.get("instruct_hub_id"),
                expected_total_params=int(row.get("expected_total_params") or 0),
            )
        )
    return tuple(entries)


def catalog() -> tuple[CatalogEntry, ...]:
    """The models whose real config.json ships with the studio, so planning works offline."""
    return _catalog_at(paths.catalog_dir())


def catalog_entry(name_or_hub_id: str) -> CatalogEntry | None:
    key = name_or_hub_id.strip().lower()
    for entry in catalog():
        if key in (entry.name.lower(), entry.hub_id.lower()):
            return entry
    return None


def family_members(info: ModelInfo) -> list[CatalogEntry]:
    """Catalog models of the same family as `info`, smallest first (for "a smaller model" advice)."""
    if not info.family:
        return []
    members = [e for e in catalog() if e.family == info.family]
    return sorted(members, key=lambda e: e.expected_total_params)


# ---------------------------------------------------------------------------------------------
# The Hugging Face cache
# ---------------------------------------------------------------------------------------------


def hf_cache_dir() -> Path:
    """The hub cache, read at call time so `HF_HUB_CACHE`/`HF_HOME` set after import still count."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def cached_snapshot(hub_id: str, cache_dir: Path | None = None) -> Path | None:
    """The snapshot folder of `hub_id` in the local cache if its config.json is there."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(hub_id, CONFIG_NAME, cache_dir=str(cache_dir or hf_cache_dir()))
    if isinstance(found, str) and Path(found).is_file():
        return Path(found).parent
    return None


@dataclass(frozen=True)
class CachedModel:
    hub_id: str
    path: Path  # the snapshot folder
    size_on_disk: int
    has_weights: bool


def cached_models(cache_dir: Path | None = None) -> list[CachedModel]:
    """Models in the local hub cache that have a config.json (what `studio models` lists)."""
    from huggingface_hub import scan_cache_dir

    folder = cache_dir or hf_cache_dir()
    if not folder.is_dir():
        return []
    try:
        info = scan_cache_dir(folder)
    except Exception as exc:  # a corrupt cache must not break listing the rest of the studio
        log.warning("could not scan the hub cache at %s: %s", folder, exc)
        return []
    models = []
    for repo in info.repos:
        if repo.repo_type != "model":
            continue
        for revision in sorted(repo.revisions, key=lambda r: r.last_modified, reverse=True):
            names = {f.file_name for f in revision.files}
            if CONFIG_NAME in names:
                has_weights = any(n.endswith((".safetensors", ".bin")) for n in names)
                models.append(CachedModel(repo.repo_id, Path(revision.snapshot_path), repo.size_on_disk, has_weights))
                break
    return sorted(models, key=lambda m: m.hub_id.lower())


def _download_planning_files(hub_id: str, cache_dir: Path | None = None) -> Path:
    """Fetch config and tokenizer files (never weights) of `hub_id` into the hub cache."""
    from huggingface_hub import hf_hub_download

    require_hub(f"the configuration of {hub_id}")
    folder = str(cache_dir or hf_cache_dir())
    try:
        config = hf_hub_download(hub_id, CONFIG_NAME, cache_dir=folder)
    except Exception as exc:
        raise hub_error(hub_id, exc, "the configuration") from exc
    for name in PLANNING_FILES[1:]:
        try:
            hf_hub_download(hub_id, name, cache_dir=folder)
        except Exception:  # optional files: most repos lack some of them
            pass
    return Path(config).parent


# ---------------------------------------------------------------------------------------------
# Reading a folder
# ---------------------------------------------------------------------------------------------


def _read_config_dict(config_file: Path) -> dict:
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


def _has_chat_template(folder: Path | None) -> bool:
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


def _weights_on_disk(folder: Path | None) -> tuple[int, str | None, str | None]:
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


# ---------------------------------------------------------------------------------------------
# Inspection on the meta device
# ---------------------------------------------------------------------------------------------


def _load_config(folder: Path, raw: dict, trust_remote_code: bool):
    """AutoConfig for `folder`, with errors a person can act on."""
    from transformers import AutoConfig
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    model_type = raw.get("model_type")
    known = model_type in CONFIG_MAPPING
    remote = "auto_map" in raw and not known
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


def _text_config(config):
    """The language-model part of a config (multimodal configs nest it)."""
    getter = getattr(config, "get_text_config", None)
    return getter() if callable(getter) else config


@dataclass(frozen=True)
class _Inspection:
    architecture: str
    total: int
    embedding: int
    lm_head: int
    tied: bool
    linears: tuple[LinearLayer, ...]


def _inspect_on_meta(config, trust_remote_code: bool) -> _Inspection:
    import torch
    from transformers import AutoModelForCausalLM

    try:
        with warnings.catch_warnings(), torch.device("meta"):
            warnings.simplefilter("ignore")
            model = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
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
    return _Inspection(type(model).__name__, total, embedding, lm_head, tied, tuple(linears))


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


def inspect_folder(
    folder: Path,
    *,
    source: str,
    name: str | None = None,
    hub_id: str | None = None,
    entry: CatalogEntry | None = None,
    trust_remote_code: bool = False,
    config_file: Path | None = None,
    weights_folder: Path | None = None,
) -> ModelInfo:
    """Build a `ModelInfo` from a folder with a config.json (weights optional)."""
    config_file = config_file or folder / CONFIG_NAME
    raw = _read_config_dict(config_file)
    config = _load_config(folder, raw, trust_remote_code)
    shape = _inspect_on_meta(config, trust_remote_code)
    text = _text_config(config)

    heads = int(getattr(text, "num_attention_heads", 0) or 0)
    hidden = int(getattr(text, "hidden_size", 0) or 0)
    head_dim = int(getattr(text, "head_dim", 0) or (hidden // heads if heads else 0))
    kv_heads = int(getattr(text, "num_key_value_heads", 0) or heads)
    dtype = raw.get("torch_dtype") or raw.get("dtype") or (raw.get("text_config") or {}).get("torch_dtype")
    weights_bytes, weights_format, damaged = _weights_on_disk(weights_folder if weights_folder is not None else folder)
    context = getattr(text, "max_position_embeddings", None)
    notes = []
    if damaged:
        notes.append(f"A weight file is damaged ({damaged}): download the model again before training.")
    if weights_format == "bin":
        notes.append("Weights are pickled .bin files, which can run code when loaded; the studio asks before loading them.")
    quantizable = sum(layer.weight_params for layer in shape.linears)
    return ModelInfo(
        name=name or (entry.display_name if entry else (hub_id or folder.name)),
        source=source,
        architecture=shape.architecture,
        model_type=str(raw.get("model_type", "")),
        total_params=shape.total,
        quantizable_params=quantizable,
        embedding_params=shape.embedding,
        lm_head_params=shape.lm_head,
        other_params=shape.total - quantizable - shape.embedding - shape.lm_head,
        tied_embeddings=shape.tied,
        linear_layers=shape.linears,
        vocab_size=int(getattr(text, "vocab_size", 0) or 0),
        hidden_size=hidden,
        num_layers=int(getattr(text, "num_hidden_layers", 0) or 0),
        num_attention_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        intermediate_size=int(getattr(text, "intermediate_size", 0) or 0),
        context_length=int(context) if context else None,
        config_dtype=str(dtype) if dtype else None,
        has_chat_template=(entry.chat_template if entry else False) or _has_chat_template(weights_folder or folder),
        path=None if entry else folder,
        hub_id=hub_id or (entry.hub_id if entry else None),
        license=entry.license if entry else (raw.get("license") or card_license(weights_folder or folder)),
        family=entry.family if entry else None,
        catalog_name=entry.name if entry else None,
        weights_bytes=weights_bytes,
        weights_format=weights_format,
        needs_trust_remote_code=trust_remote_code and "auto_map" in raw,
        notes=tuple(notes),
    )


# ---------------------------------------------------------------------------------------------
# The entry point
# ---------------------------------------------------------------------------------------------


def resolve_model(source: str | os.PathLike, *, trust_remote_code: bool = False, cache_dir: Path | None = None) -> ModelInfo:
    """Find and inspect the model the user named. See the module docstring for what `source` may be.

    Results are cached per source, keyed also on the files behind it, so a folder that changes
    (weights downloaded, a chat template added) is inspected again.
    """
    folder = str(cache_dir) if cache_dir else None
    return _resolve_cached(str(source), trust_remote_code, folder, _fingerprint(str(source), folder))


def _fingerprint(source: str, cache_dir: str | None) -> tuple:
    """What changes when the files behind `source` change: names, sizes and times of its folder."""
    path = Path(source.strip()).expanduser()
    if not path.exists() and HUB_ID.match(source.strip()):
        path = cached_snapshot(source.strip(), Path(cache_dir) if cache_dir else None) or path
        env = (os.environ.get("HF_HUB_CACHE"), os.environ.get("HF_HOME"), hub_offline())
    else:
        env = ()
    folder = path.parent if path.is_file() else path
    if not folder.is_dir():
        return (str(folder),) + env
    entries = []
    for child in sorted(folder.iterdir()):
        try:
            stat = child.stat()
        except OSError:
            continue
        entries.append((child.name, stat.st_size, stat.st_mtime_ns))
    return (str(folder), tuple(entries)) + env


DEMO_NAMES = ("demo", "demo-model", "builtin:demo")


def is_demo(source: str | None) -> bool:
    """Whether a model source names the built-in demo model."""
    return (source or "").strip().lower() in DEMO_NAMES


@lru_cache(maxsize=32)
def _resolve_cached(source: str, trust_remote_code: bool, cache_dir: str | None, fingerprint: tuple) -> ModelInfo:
    text = source.strip()
    if not text:
        raise StudioError("No model was given.", "Name a model: a folder, a hub id like Qwen/Qwen2.5-0.5B, or 'demo'.")
    cache = Path(cache_dir) if cache_dir else None

    if is_demo(text):
        folder = paths.demo_model_dir()
        if not (folder / CONFIG_NAME).is_file():
            raise StudioError("The built-in demo model is missing from this installation.", "Reinstall LoRA Studio.")
        return inspect_folder(folder, source=source, name="demo", trust_remote_code=False)

    path = Path(text).expanduser()
    if path.exists():
        return _resolve_path(path, source, trust_remote_code)

    entry = catalog_entry(text)
    if entry is not None and "/" not in text:
        return _from_catalog(entry, source, cache)

    if HUB_ID.match(text):
        snapshot = cached_snapshot(text, cache)
        if snapshot is not None:
            return inspect_folder(snapshot, source=source, hub_id=text, entry=None, trust_remote_code=trust_remote_code).with_catalog(entry)
        if entry is not None:
            return _from_catalog(entry, source, cache)
        snapshot = _download_planning_files(text, cache)
        return inspect_folder(snapshot, source=source, hub_id=text, trust_remote_code=trust_remote_code)

    if any(sep in text for sep in ("/", "\\")) or text.startswith("."):
        raise StudioError(f"There is no file or folder at {text}.", "Check the path, or drag the model folder into the window.")
    raise StudioError(
        f"'{text}' is neither a folder, a catalog model nor a hub id.",
        "Use a folder path, a hub id like Qwen/Qwen2.5-0.5B, 'demo', or a name from `studio models`.",
    )


def _resolve_path(path: Path, source: str, trust_remote_code: bool) -> ModelInfo:
    if path.is_file():
        if path.suffix != ".json":
            raise StudioError(
                f"{path} is a file, not a model folder.",
                "Point the studio at the folder that holds config.json (and the weights), or at the config.json itself.",
            )
        return inspect_folder(path.parent, source=source, config_file=path, weights_folder=path.parent, trust_remote_code=trust_remote_code)
    if not (path / CONFIG_NAME).is_file():
        inner = sorted(p.parent for p in path.glob(f"*/{CONFIG_NAME}"))
        hint = f" It has a model in {inner[0]}: point the studio there." if inner else ""
        raise StudioError(
            f"{path} has no config.json, so it is not a model folder.{hint}",
            "A Hugging Face model folder holds config.json, tokenizer files and *.safetensors weights.",
        )
    return inspect_folder(path, source=source, trust_remote_code=trust_remote_code)


def _from_catalog(entry: CatalogEntry, source: str, cache: Path | None) -> ModelInfo:
    snapshot = cached_snapshot(entry.hub_id, cache)
    if snapshot is not None:  # downloaded before: the cache also knows the weights' size
        return inspect_folder(snapshot, source=source, hub_id=entry.hub_id).with_catalog(entry)
    return inspect_folder(entry.config_path.parent, source=source, config_file=entry.config_path, entry=entry)


# ---------------------------------------------------------------------------------------------
# The tokenizer
# ---------------------------------------------------------------------------------------------


def load_tokenizer(info: ModelInfo):
    """The model's own tokenizer (local folder, hub cache, or — online — its tokenizer files only)."""
    from transformers import AutoTokenizer

    where: str | None = str(info.path) if info.path else None
    if where is None and info.hub_id:
        snapshot = cached_snapshot(info.hub_id)
        where = str(snapshot) if snapshot else info.hub_id
        if snapshot is None:
            require_hub(f"the tokenizer of {info.name}")
    if where is None:
        raise StudioError(f"{info.name} has no tokenizer on this computer.", "Choose a model folder that holds its tokenizer files.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tokenizer = AutoTokenizer.from_pretrained(where, trust_remote_code=info.needs_trust_remote_code)
    except Exception as exc:
        offline = hub_offline() or "offline" in str(exc).lower() or "connect" in str(exc).lower()
        if info.path is None and offline:
            raise StudioError(
                f"The tokenizer of {info.name} is not on this computer, and the hub cannot be reached.",
                "Connect once to fetch it (only the tokenizer files are downloaded), or use the demo model or a local folder.",
            ) from exc
        raise StudioError(
            f"The tokenizer of {info.name} could not be loaded: {exc}",
            "The model folder needs tokenizer.json or tokenizer_config.json (with its vocabulary files).",
        ) from exc
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token  # batching needs a pad token; it is masked out of the loss
    return tokenizer
