"""The built-in model catalog (resources/catalog): its index is well formed, every entry's
config.json is the real published one, and each config builds a model whose parameter count
is exactly the published total.

The count is taken the cheap way: the config is loaded with transformers, the model is built
on the meta device (no memory, no weights) and its unique parameters are summed; tied
embeddings are counted once because ``parameters()`` de-duplicates shared tensors.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

CATALOG = Path(__file__).resolve().parents[2] / "resources" / "catalog"
INDEX = CATALOG / "index.json"

REQUIRED = {
    "name": str,
    "display_name": str,
    "hub_id": str,
    "family": str,
    "config": str,
    "license": str,
    "gated": bool,
    "chat_template": bool,
    "expected_total_params": int,
    "params_source": str,
}
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
NAME = re.compile(r"^[a-z0-9][a-z0-9.-]*$")


def _entries() -> list[dict]:
    return json.loads(INDEX.read_text(encoding="utf-8"))


ENTRIES = _entries()


def _config_dict(entry: dict) -> dict:
    return json.loads((CATALOG / entry["config"]).read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------------------------ the index
def test_index_is_a_nonempty_list_with_unique_names_and_hub_ids():
    assert isinstance(ENTRIES, list) and len(ENTRIES) >= 20
    names = [e["name"] for e in ENTRIES]
    hub_ids = [e["hub_id"] for e in ENTRIES]
    assert len(set(names)) == len(names), "duplicate catalog names"
    assert len(set(hub_ids)) == len(hub_ids), "duplicate hub ids"


def test_every_config_file_is_listed_in_the_index():
    listed = {(CATALOG / e["config"]).resolve() for e in ENTRIES}
    on_disk = {p.resolve() for p in (CATALOG / "configs").glob("*.json")}
    assert on_disk == listed


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["name"] for e in ENTRIES])
def test_entry_fields(entry):
    for key, kind in REQUIRED.items():
        assert key in entry, f"{entry.get('name')}: missing {key}"
        assert type(entry[key]) is kind, f"{entry['name']}: {key} should be {kind.__name__}"
        if kind is str:
            assert entry[key].strip(), f"{entry['name']}: empty {key}"
    assert "instruct_hub_id" in entry
    assert entry["instruct_hub_id"] is None or HUB_ID.match(entry["instruct_hub_id"])
    assert entry["instruct_hub_id"] != entry["hub_id"]
    assert NAME.match(entry["name"])
    assert HUB_ID.match(entry["hub_id"])
    assert entry["config"] == f"configs/{entry['name']}.json"
    assert entry["expected_total_params"] > 1_000_000


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["name"] for e in ENTRIES])
def test_config_file_exists_and_is_a_causal_lm_config(entry):
    path = CATALOG / entry["config"]
    assert path.is_file(), f"{path} is missing"
    config = _config_dict(entry)  # raises on invalid JSON
    assert isinstance(config, dict)
    assert isinstance(config.get("model_type"), str) and config["model_type"]
    archs = config.get("architectures")
    assert isinstance(archs, list) and len(archs) == 1 and archs[0].endswith("ForCausalLM")
    for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size"):
        assert isinstance(config.get(key), int) and config[key] > 0, f"{entry['name']}: {key}"


def test_families_group_sizes_so_a_smaller_sibling_can_be_suggested():
    families: dict[str, list[int]] = {}
    for e in ENTRIES:
        families.setdefault(e["family"], []).append(e["expected_total_params"])
    multi = {f for f, sizes in families.items() if len(sizes) > 1}
    assert {"llama-3", "qwen2.5", "qwen3", "gemma-2", "smollm2", "phi-4"} <= multi


def test_gemma3_1b_is_the_text_only_model():
    entry = next(e for e in ENTRIES if e["hub_id"] == "google/gemma-3-1b-pt")
    config = _config_dict(entry)
    assert config["model_type"] == "gemma3_text"
    assert config["architectures"] == ["Gemma3ForCausalLM"]
    assert "vision_config" not in config and "text_config" not in config


def test_gated_models_are_the_meta_google_and_mistral_ones():
    for e in ENTRIES:
        org = e["hub_id"].split("/")[0]
        assert e["gated"] is (org in {"meta-llama", "google", "mistralai"}), e["name"]


# ------------------------------------------------------------------------------------------------ parameter counts
@pytest.mark.parametrize("entry", ENTRIES, ids=[e["name"] for e in ENTRIES])
def test_config_builds_a_model_with_the_published_parameter_count(entry, tmp_path):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    transformers.logging.set_verbosity_error()

    # Load the file the way the studio will: as the config.json of a model folder.
    shutil.copy(CATALOG / entry["config"], tmp_path / "config.json")
    config = transformers.AutoConfig.from_pretrained(tmp_path)
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(config)
    assert type(model).__name__ == _config_dict(entry)["architectures"][0]
    total = sum(p.numel() for p in model.parameters())
    assert total == entry["expected_total_params"], (
        f"{entry['name']}: meta model has {total:,} parameters, "
        f"index says {entry['expected_total_params']:,}"
    )
