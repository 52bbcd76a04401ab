"""The recipe as one table: every field's help, flag and checks; the version key and the migrations of
the recipes older studios wrote; the step count the worker trains for."""

from __future__ import annotations

import math
from dataclasses import MISSING, fields
from pathlib import Path

import pytest

from studio.core.errors import StudioError
from studio.core.recipe import (
    SECTIONS,
    VERSION,
    AdapterSection,
    DataSection,
    RunConfig,
    help_of,
    iter_settings,
    kinds_of,
)

# The recipe the last studio without a version key wrote (a step count, a mapping, two targets).
LAST_UNVERSIONED = """# LoRA Studio recipe: `studio train --recipe run.toml` runs it again.
[model]
source = "demo"
trust_remote_code = false
allow_pickle = false

[data]
source = "demo"
skip_bad_rows = false
eval_fraction = 0.1
assistant_only = true

[data.mapping]
prompt = "q"
response = "a"

[adapter]
rank = 16
alpha = 32
dropout = 0.05
targets = ["q_proj", "v_proj"]
use_dora = false
use_rslora = false

[training]
precision = "4bit"
quant_type = "nf4"
double_quant = true
compute_dtype = "auto"
steps = 30
learning_rate = 0.0002
scheduler = "cosine"
warmup_ratio = 0.03
weight_decay = 0.0
max_grad_norm = 1.0
batch_size = 1
grad_accum = 8
seq_len = 2048
gradient_checkpointing = true
optimizer = "auto"
attention = "sdpa"
seed = 42
eval_every = 50
save_every = 50
keep_checkpoints = 2
sample_every = 50
sample_prompts = []
sample_max_tokens = 64
num_processes = 1
preflight = true
chunked_loss = true
loss_chunk_tokens = 1024
packing = "auto"
upcast_frozen = true

[output]
name = "run"
"""


def _default(spec):
    return spec.default_factory() if spec.default is MISSING else spec.default


# ---------------------------------------------------------------------------------------------
# One table: help, flag and choices on every field
# ---------------------------------------------------------------------------------------------


def test_every_setting_has_help_and_its_own_flag():
    flags = []
    for section, spec in iter_settings():
        meta = spec.metadata
        assert len(meta["help"]) > 10, f"{section}.{spec.name}"
        assert meta["flag"].startswith("--") and not meta["flag"].startswith("--no-"), f"{section}.{spec.name}"
        if meta["choices"]:
            assert _default(spec) in meta["choices"] or _default(spec) is None, f"{section}.{spec.name}"
        flags.append(meta["flag"])
    assert len(flags) == len(set(flags))
    assert help_of(AdapterSection, "rank").startswith("LoRA rank")


def test_the_data_formats_are_the_data_loaders():
    from studio.core.data import FORMATS

    assert {s.name: s for s in fields(DataSection)}["format"].metadata["choices"] == FORMATS


def _others(spec, value) -> list:
    """Valid values of the field other than `value`."""
    choices = spec.metadata["choices"]
    if choices:
        return [c for c in choices if c != value]
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1]
    if isinstance(value, float):
        return [value / 2]
    if isinstance(value, list):
        return [["q_proj"]]
    if isinstance(value, str):  # training.main_address
        return ["10.0.0.5:29500"]
    if value is None and "str" in kinds_of(spec):  # adapter.start_from: an adapter folder of another shape
        import json
        import tempfile

        folder = Path(tempfile.mkdtemp())
        (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4, "lora_alpha": 8,
                                                                "target_modules": ["q_proj"]}))
        return [str(folder)]
    assert value is None and "int" in kinds_of(spec), spec.name
    return [5]


@pytest.mark.parametrize("section,name", [(s, f.name) for s, f in iter_settings() if s in ("adapter", "training")])
def test_the_settings_marked_as_planned_are_the_ones_the_plan_reads(section, name):
    """`plans` (the fields `studio plan` takes flags for) agrees with what the planner's views read;
    the compute dtype is read where it is not auto (the plan's precision), so it is marked too."""
    spec = next(f for f in fields(SECTIONS[section]) if f.name == name)

    def views(c):
        dtype = "bfloat16" if c.training.compute_dtype == "auto" else c.training.compute_dtype
        return c.adapter_spec(), c.train_shape(True, "llama"), c.precision_for(dtype)

    before = views(RunConfig())
    changed = []
    for value in _others(spec, _default(spec)):
        config = RunConfig()
        setattr(getattr(config, section), name, value)
        changed.append(views(config) != before)
    assert any(changed) == spec.metadata["plans"]


# ---------------------------------------------------------------------------------------------
# Validation, section by section
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("section,name,value,flag,words", [
    ("training", "precision", "full", "--precision", "4bit, 8bit or 16bit"),
    ("training", "quant_type", "int4", "--quant-type", "nf4 or fp4"),
    ("training", "optimizer", "sgd", "--optim", "auto, adamw, adamw-8bit or paged-adamw-8bit"),
    ("training", "attention", "flex", "--attention", "flash_attention_2"),
    ("training", "epochs", 0.0, "--epochs (or --steps)", "positive"),
    ("training", "learning_rate", math.nan, "--lr", "between 0 and 1"),
    ("training", "grad_accum", 1.5, "--grad-accum", "whole number"),
    ("training", "loss_chunk_tokens", 32, "--loss-chunk", "at least 64"),
    ("training", "keep_checkpoints", 0, "--keep-checkpoints", "at least 1"),
    ("training", "save_every", -1, "--save-every", "0 or more"),
    ("adapter", "rank", 2000, "--rank", "between 1 and 1024"),
    ("adapter", "alpha", 0, "--alpha", "positive"),
    ("adapter", "targets", "q_proj", "--targets", "list of layer names"),
    ("data", "format", "jsonl", "--format", "alpaca, sharegpt"),
    ("data", "mapping", {"prompt": 3}, "--map", "column names"),
    ("data", "eval_fraction", 0.95, "--eval-fraction", "[0, 0.9)"),
    ("output", "name", "my run", "--name", "letters, digits"),
])
def test_each_section_names_the_bad_value_and_the_flag(section, name, value, flag, words):
    config = RunConfig()
    setattr(getattr(config, section), name, value)
    for good in SECTIONS:  # only the bad section complains
        if good != section:
            getattr(config, good).validate()
    with pytest.raises(StudioError) as err:
        config.validate()
    assert repr(value) in err.value.message and words in err.value.message
    assert err.value.advice == f"Change it with {flag}."


def test_the_defaults_and_the_presets_are_valid():
    from studio.core.presets import PRESETS, first_run_config, with_preset

    assert RunConfig().validate()
    for key in PRESETS:
        with_preset(first_run_config("llama-3.1-8b", "data.jsonl"), key).validate()


# ---------------------------------------------------------------------------------------------
# The version key and the recipes of older studios
# ---------------------------------------------------------------------------------------------


def test_a_saved_recipe_starts_with_its_version(tmp_path):
    path = tmp_path / "run.toml"
    RunConfig().save(path)
    lines = path.read_text().splitlines()
    assert lines[1] == f"version = {VERSION}"
    assert RunConfig.load(path) == RunConfig()


def test_the_last_recipe_without_a_version_loads_as_it_was(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text(LAST_UNVERSIONED)
    config = RunConfig.load(path).validate()
    assert config.training.steps == 30 and config.training.epochs is None
    assert config.data.mapping == {"prompt": "q", "response": "a"} and config.adapter.targets == ["q_proj", "v_proj"]
    assert config.training.packing == "auto"
    config.save(path)  # written again: today's version, the same recipe
    assert RunConfig.load(path) == config and f"version = {VERSION}" in path.read_text()


@pytest.mark.parametrize("old,new", [("true", "auto"), ("false", "off")])
def test_recipes_from_before_the_packing_modes_migrate(tmp_path, old, new):
    path = tmp_path / "run.toml"
    path.write_text(LAST_UNVERSIONED.replace('packing = "auto"', f"packing = {old}"))
    assert RunConfig.load(path).validate().training.packing == new
    path.write_text(f"version = 1\n[training]\npacking = {old}\n")
    assert RunConfig.load(path).training.packing == new


def test_todays_version_is_not_migrated():
    """Migrations run from the version a recipe names; a current one is read as it is."""
    with pytest.raises(StudioError, match="training.packing"):
        RunConfig.from_dict({"version": VERSION, "training": {"packing": True}})


def test_a_run_folders_meta_recipe_without_a_version_still_loads():
    """generate.py reads the recipe an export's meta holds: old exports have no version key."""
    data = RunConfig().to_dict()
    assert data.pop("version") == VERSION
    assert RunConfig.from_dict(data) == RunConfig()


@pytest.mark.parametrize("line,words", [
    (f"version = {VERSION + 1}", "newer LoRA Studio"), ("version = 0", "whole number"),
    ('version = "2"', "whole number"), ("version = true", "whole number"),
])
def test_a_version_this_studio_cannot_read_is_a_plain_error(tmp_path, line, words):
    path = tmp_path / "run.toml"
    path.write_text(line + '\n[model]\nsource = "demo"\n')
    with pytest.raises(StudioError) as err:
        RunConfig.load(path)
    assert words in err.value.message and err.value.advice


# ---------------------------------------------------------------------------------------------
# The step count
# ---------------------------------------------------------------------------------------------


def test_total_steps_as_the_worker_counts_them():
    config = RunConfig()
    t = config.training
    t.batch_size, t.grad_accum, t.epochs = 4, 2, 2.0
    assert config.total_steps(100) == math.ceil(2 * 100 / 8) == 25
    assert config.total_steps(100, world=2) == 13
    t.num_processes = 2
    assert config.total_steps(100) == 13
    t.epochs = 0.01
    assert config.total_steps(100) == 1  # at least one step
    t.epochs = None
    assert config.total_steps(16) == 1  # no epochs: one pass
    t.steps = 7
    assert config.total_steps(100_000) == 7


@pytest.mark.parametrize("rows,fraction,held", [
    (200, 0.1, 20), (5, 0.1, 0), (15, 0.1, 2), (2, 0.5, 1), (1, 0.5, 0), (1, 0.8, 0), (100, 0.0, 0),
])
def test_held_out_rows_as_the_worker_splits_them(rows, fraction, held):
    data = DataSection(eval_fraction=fraction)
    assert data.held_out_rows(rows) == held
    n = round(rows * fraction)  # dataset.tokenized_splits (data.held_out_rows)
    assert held == (n if n >= 1 and rows - n >= 1 else 0)


def test_the_demo_first_run_trains_45_steps():
    """The window's first run (and `studio train --preset balanced --model demo --data demo`): two passes
    over the demo's 200 rows less the 10% held out, 8 rows a step."""
    from studio.core.presets import first_run_config

    config = first_run_config("demo", "demo")
    rows = 200
    assert config.total_steps(rows - config.data.held_out_rows(rows)) == 45



@pytest.mark.parametrize("section,name,value,topic", [
    ("data", "eval_fraction", 0.95, "data"), ("training", "learning_rate", 5.0, "settings"), ("adapter", "rank", 0, "settings"),
])
def test_a_bad_value_says_which_topic_fixes_it(section, name, value, topic):
    """The window opens the page its topic names, without reading the message."""
    config = RunConfig()
    setattr(getattr(config, section), name, value)
    with pytest.raises(StudioError) as caught:
        config.validate()
    assert caught.value.topic == topic
