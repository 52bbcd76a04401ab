"""Bad input from a user's hands gets a plain message that names what to change — never "Unexpected
error … bug report" — and nothing starts before the input is known to be good."""

from __future__ import annotations

import json

import pytest

from studio.cli import main
from studio.core import runs

BASE = """[model]
source = "demo"

[data]
source = "demo"

[training]
steps = 3
"""


def run_cli(capsys, *args) -> tuple[int, str]:
    code = main(list(args))
    err = capsys.readouterr().err
    assert "Unexpected error" not in err and "Traceback" not in err, err
    return code, err


@pytest.mark.parametrize("edit, names", [
    (("steps = 3", 'steps = "ten"'), ("training.steps", "whole number")),
    (("[training]\n", "[adapter]\nrank = 8.7\n[training]\n"), ("adapter.rank", "whole number")),
    (("[training]\nsteps = 3\n", "training = 5\n"), ("training", "section")),
    (("[training]\n", '[adapter]\ntargets = "q_proj"\n[training]\n'), ("adapter.targets", "list")),
    (("[training]\n", "[model]\nallow_pickle = 1\n[training]\n"), ("allow_pickle", "true or false")),
])
def test_a_recipe_with_a_wrong_type_names_the_field_and_the_type(capsys, tmp_path, edit, names):
    text = BASE.replace(*edit)
    if edit[1].startswith("[model]"):  # a second [model] table is a TOML error: fold it into the first one
        text = BASE.replace('source = "demo"\n\n[data]', 'source = "demo"\nallow_pickle = 1\n\n[data]', 1)
    recipe = tmp_path / "run.toml"
    recipe.write_text(text, encoding="utf-8")
    code, err = run_cli(capsys, "train", "--recipe", str(recipe), "--run-dir", str(tmp_path / "run"))
    assert code == 2
    assert all(name in err for name in names), err
    assert not (tmp_path / "run").exists()  # refused before a run folder or a worker


def test_a_recipe_that_is_not_utf8_is_a_plain_error(capsys, tmp_path):
    recipe = tmp_path / "run.toml"
    recipe.write_bytes(BASE.replace('source = "demo"\n\n[data]', 'source = "d\xe9mo"\n\n[data]', 1).encode("latin-1"))
    code, err = run_cli(capsys, "train", "--recipe", str(recipe))
    assert code == 2 and "not UTF-8" in err and "What to do" in err


def test_plan_refuses_a_model_with_nothing_to_adapt(capsys, tmp_path):
    config = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 128,
              "num_hidden_layers": 0, "num_attention_heads": 4, "vocab_size": 500, "max_position_embeddings": 256}
    (tmp_path / "config.json").write_text(json.dumps(config))
    code, err = run_cli(capsys, "plan", str(tmp_path), "--gpu", "8GB")
    assert code == 2 and "no layers an adapter can attach to" in err, err


def test_an_edited_recipe_in_a_run_folder_fails_before_the_worker_starts(capsys, tmp_path):
    from studio.core.recipe import RunConfig

    run_dir = runs.create_run_dir(RunConfig(), tmp_path / "run")
    recipe = run_dir / runs.RECIPE
    recipe.write_text(recipe.read_text().replace("rank = 16", "rank = 8.7"), encoding="utf-8")
    code, err = run_cli(capsys, "train", "--resume", str(run_dir))
    assert code == 2 and "adapter.rank" in err
    assert not (run_dir / runs.EVENTS).exists() and not (run_dir / runs.STDERR).exists()


def test_a_run_dir_that_is_a_file_is_a_plain_error(capsys, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    code, err = run_cli(capsys, "train", "--model", "demo", "--data", "demo", "--steps", "1",
                        "--run-dir", str(tmp_path / "notes.txt"))
    assert code == 2 and "is a file, not a folder" in err
    assert (tmp_path / "notes.txt").read_text() == "mine"
