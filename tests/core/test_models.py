"""Model inspection: exact counts for real architectures, every kind of source, and clear errors."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import torch

from studio.core.errors import StudioError
from studio.core.memory import AdapterSpec, Precision, TrainShape, bnb4_layer_bytes, plan
from studio.core.models import cached_models, catalog_entry, resolve_model
from tests.tiny_models import save_tiny_model

# Published totals (hub safetensors metadata) for the models the foundation issue names.
NAMED = {
    "llama-3-8b": 8_030_261_248,
    "qwen2.5-0.5b": 494_032_768,
    "gemma-2-9b": 9_241_705_984,
    "phi-3-mini-4k-instruct": 3_821_079_552,
    "llama-3.1-70b": 70_553_706_496,
}


def _expected_quantizable(config: dict) -> int:
    """Linear weights of the decoder, from the config alone (an independent count)."""
    h, i, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    heads = config["num_attention_heads"]
    head_dim = config.get("head_dim") or h // heads
    q, kv = heads * head_dim, config.get("num_key_value_heads", heads) * head_dim
    attention = h * q + 2 * h * kv + q * h
    return layers * (attention + 3 * h * i)


@pytest.mark.parametrize("name", NAMED)
def test_named_models_have_exact_counts(name):
    info = resolve_model(name)
    assert info.total_params == NAMED[name]
    config = json.loads(catalog_entry(name).config_path.read_text())
    assert info.quantizable_params == _expected_quantizable(config)
    assert info.tied_embeddings == (name == "qwen2.5-0.5b" or name.startswith("gemma"))
    assert info.vocab_size == config["vocab_size"]
    assert info.license and info.hub_id


def _bnb4_stored_bytes(out_f: int, in_f: int, device: str) -> int:
    """Bytes bitsandbytes stores when it quantizes one (out_f × in_f) weight to NF4 with double quant."""
    import bitsandbytes.functional as F

    # bnb caches its 8-bit map on the device of first use; make that the CPU before any meta call.
    F.name2qmap.setdefault("dynamic", F.create_dynamic_map())
    weight = torch.empty(out_f, in_f, dtype=torch.bfloat16, device=device)
    if device == "cpu":
        weight.normal_()
    packed, state = F.quantize_4bit(weight, quant_type="nf4", compress_statistics=True)
    tensors = [packed, state.absmax, state.code, state.offset, state.state2.absmax, state.state2.code]
    return sum(t.numel() * t.element_size() for t in tensors)


# Real quantization on the CPU for the smaller models; for the large ones bitsandbytes' own shape
# functions on the meta device (the tensors it would allocate, without 40 s of CPU work for 70B).
@pytest.mark.parametrize("name,device", [("qwen2.5-0.5b", "cpu"), ("phi-3-mini-4k-instruct", "cpu")] + [(n, "meta") for n in NAMED])
def test_named_models_4bit_bytes_match_bitsandbytes(name, device):
    info = resolve_model(name)
    shapes = Counter((layer.out_features, layer.in_features) for layer in info.linear_layers)
    measured = 0
    for (out_f, in_f), count in shapes.items():
        stored = _bnb4_stored_bytes(out_f, in_f, device)
        assert bnb4_layer_bytes(out_f * in_f, True) == stored
        measured += count * stored
    planned = plan(info, AdapterSpec(), TrainShape(), Precision("4bit", "nf4", True)).bytes_of("quantized_weights")
    assert planned == pytest.approx(measured, rel=0.01)
    assert planned / info.quantizable_params == pytest.approx(0.5159, abs=0.0005)


def test_local_folder_with_weights(tmp_path):
    folder = save_tiny_model(tmp_path / "tiny", "llama")
    info = resolve_model(str(folder))
    assert info.architecture == "LlamaForCausalLM"
    assert info.weights_format == "safetensors"
    assert info.weights_bytes == (folder / "model.safetensors").stat().st_size
    assert info.path == folder
    assert info.lora_targets == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    # a path to the config.json itself works too
    assert resolve_model(str(folder / "config.json")).total_params == info.total_params


def test_folder_without_weights_plans(tmp_path):
    folder = save_tiny_model(tmp_path / "tiny", "qwen2")
    (folder / "model.safetensors").unlink()
    info = resolve_model(str(folder))
    assert info.weights_bytes == 0 and info.weights_format is None
    assert info.tied_embeddings


def test_chat_template_detected(tmp_path):
    folder = save_tiny_model(tmp_path / "tiny", "llama")
    assert not resolve_model(str(folder)).has_chat_template
    # the same folder, changed while the studio runs: inspected again, not served from a stale cache
    (folder / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ messages }}"}))
    assert resolve_model(str(folder)).has_chat_template


def test_pickled_weights_are_flagged(tmp_path):
    folder = save_tiny_model(tmp_path / "tiny", "llama")
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    info = resolve_model(str(folder))
    assert info.weights_format == "bin"
    assert any("pickled" in note for note in info.notes)


def _hub_cache(root: Path, hub_id: str, files: dict[str, str]) -> Path:
    """A local stand-in for the Hugging Face cache, in its real on-disk layout."""
    repo = root / ("models--" + hub_id.replace("/", "--"))
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir()
    for name, text in files.items():
        blob = repo / "blobs" / f"blob-{name}"
        blob.write_text(text)
        (snapshot / name).symlink_to(blob)
    return snapshot


def test_hub_id_from_local_cache(tmp_path, monkeypatch):
    config = catalog_entry("qwen2.5-0.5b").config_path.read_text()
    cache = tmp_path / "hub"
    _hub_cache(cache, "someone/tiny-qwen", {"config.json": config, "tokenizer_config.json": json.dumps({"chat_template": "x"})})
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    info = resolve_model("someone/tiny-qwen")
    assert info.total_params == 494_032_768
    assert info.hub_id == "someone/tiny-qwen" and info.has_chat_template
    listed = cached_models()
    assert [m.hub_id for m in listed] == ["someone/tiny-qwen"]
    assert not listed[0].has_weights


def test_cached_catalog_model_keeps_catalog_license(tmp_path, monkeypatch):
    entry = catalog_entry("qwen2.5-0.5b")
    cache = tmp_path / "hub"
    _hub_cache(cache, entry.hub_id, {"config.json": entry.config_path.read_text()})
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    info = resolve_model(entry.hub_id)
    assert info.path is not None and info.license == entry.license and info.family == entry.family


def test_catalog_hub_id_plans_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    info = resolve_model("meta-llama/Meta-Llama-3-8B")
    assert info.total_params == 8_030_261_248 and info.catalog_name == "llama-3-8b"


@pytest.mark.parametrize(
    "setup,expected",
    [
        ("missing", "no file or folder"),
        ("no_config", "no config.json"),
        ("nested", "point the studio there"),
        ("bad_json", "not valid JSON (line 2"),
        ("unknown_arch", "not known to transformers"),
        ("remote_code", "ships its own Python code"),
        ("not_causal", "not a text-generation"),
        ("not_cached_offline", "is offline"),
        ("weights_file", "is a file, not a model folder"),
        ("nonsense", "neither a folder"),
    ],
)
def test_bad_input_gets_a_clear_error(tmp_path, monkeypatch, setup, expected):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    target = tmp_path / "model"
    if setup == "missing":
        source = str(tmp_path / "nope" / "model")
    elif setup == "no_config":
        target.mkdir()
        (target / "model.safetensors").write_bytes(b"")
        source = str(target)
    elif setup == "nested":
        save_tiny_model(target / "inner", "llama")
        source = str(target)
    elif setup == "bad_json":
        target.mkdir()
        (target / "config.json").write_text('{\n  "model_type": "llama",,\n}')
        source = str(target)
    elif setup == "unknown_arch":
        target.mkdir()
        (target / "config.json").write_text(json.dumps({"model_type": "llama9000", "hidden_size": 8}))
        source = str(target)
    elif setup == "remote_code":
        target.mkdir()
        (target / "config.json").write_text(json.dumps({"model_type": "mystery", "auto_map": {"AutoConfig": "x.Y"}}))
        source = str(target)
    elif setup == "not_causal":
        target.mkdir()
        (target / "config.json").write_text(json.dumps({"model_type": "vit", "hidden_size": 32, "num_hidden_layers": 1,
                                                         "num_attention_heads": 2, "intermediate_size": 64}))
        source = str(target)
    elif setup == "not_cached_offline":
        source = "nobody/not-a-cached-model"
    elif setup == "weights_file":
        folder = save_tiny_model(target, "llama")
        source = str(folder / "model.safetensors")
    else:
        source = "just some words"
    with pytest.raises(StudioError) as err:
        resolve_model(source)
    text = str(err.value)
    assert expected.lower() in text.lower()
    assert err.value.advice  # every error says what to do


def test_trust_remote_code_is_off_by_default_and_explained(tmp_path):
    target = tmp_path / "m"
    target.mkdir()
    (target / "config.json").write_text(json.dumps({"model_type": "mystery", "auto_map": {"AutoConfig": "x.Y"}}))
    with pytest.raises(StudioError) as err:
        resolve_model(str(target))
    assert "trust remote code" in err.value.advice.lower()
