"""Know a model before loading it: resolve what the user named, and inspect its architecture exactly.

`resolve_model(source)` accepts a local folder, a path to a config.json, the built-in demo (`demo`),
a name from the built-in catalog (`llama-3.1-8b`), or a hub id (`Qwen/Qwen2.5-0.5B`: the local
Hugging Face cache first, then the catalog, then — when online — the config and tokenizer files
only, never weights). It returns a `ModelInfo` whose parameter counts are exact: the architecture
is instantiated on torch's meta device (shapes only, no memory, no weights), and what bitsandbytes
would quantize is decided by transformers' own rule (`get_keys_to_not_convert`).

    info.py          ModelInfo and LinearLayer: what is known about a model, without its weights
    resolve.py       what the user named → the folder to inspect (demo, path, catalog, hub cache, hub)
    catalog.py       the built-in catalog of models whose config.json ships with the studio
    hub_cache.py     the Hugging Face cache: where it is, what it holds, fetching planning files
    files.py         a model folder's files: config.json, chat template, license, weight files
    architecture.py  the exact architecture: the config, the model built on the meta device
    inspection.py    a folder → ModelInfo (architecture, dimensions, files, provenance)
    tokenizer.py     the model's own tokenizer
"""

from studio.core.models.architecture import Architecture
from studio.core.models.catalog import CatalogEntry, catalog, catalog_entry, family_members
from studio.core.models.files import CONFIG_NAME, card_license
from studio.core.models.hub_cache import PLANNING_FILES, CachedModel, cached_models, cached_snapshot, hf_cache_dir
from studio.core.models.info import LinearLayer, ModelInfo
from studio.core.models.inspection import inspect_folder
from studio.core.models.resolve import DEMO_NAMES, HUB_ID, is_demo, resolve_model
from studio.core.models.tokenizer import load_tokenizer

__all__ = [
    "CONFIG_NAME", "DEMO_NAMES", "HUB_ID", "PLANNING_FILES", "Architecture", "CachedModel", "CatalogEntry", "LinearLayer",
    "ModelInfo", "cached_models", "cached_snapshot", "card_license", "catalog", "catalog_entry", "family_members",
    "hf_cache_dir", "inspect_folder", "is_demo", "load_tokenizer", "resolve_model",
]
