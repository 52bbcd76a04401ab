"""`studio train`, `studio runs` as a user runs them."""

from __future__ import annotations

import json

import pytest

from studio.cli import main
from studio.core.recipe import RunConfig


def test_train_writes_its_recipe_and_ends_with_the_adapter(capsys, tmp_path):
    run_dir = tmp_path / "run"
    code = main(["train", "--model", "demo", "--data", "demo", "--steps", "3", "--batch-size", "2", "--grad-accum", "1",
                 "--seq-len", "128", "--rank", "8", "--alpha", "16", "--targets", "q_proj,v_proj", "--lr", "1e-3",
                 "--save-every", "0", "--sample-every", "0", "--eval-fraction", "0", "--run-dir", str(run_dir), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "step 3/3" in out and f"Adapter: {run_dir / 'adapter'}" in out
    recipe = RunConfig.load(run_dir / "run.toml")
    assert recipe.training.steps == 3 and recipe.adapter.rank == 8 and recipe.adapter.targets == ["q_proj", "v_proj"]
    adapter_config = json.loads((run_dir / "adapter" / "adapter_config.json").read_text())
    assert adapter_config["r"] == 8 and set(adapter_config["target_modules"]) == {"q_proj", "v_proj"}

    assert main(["runs", "--runs-dir", str(tmp_path), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["status"], r["step"]) for r in listed] == [("run", "completed", 3)]
    assert listed[0]["final_loss"] > 0 and listed[0]["size_bytes"] > 0

    # the recipe alone runs it again
    assert main(["train", "--recipe", str(run_dir / "run.toml"), "--run-dir", str(tmp_path / "again"), "--quiet"]) == 0


@pytest.mark.parametrize("args,needle", [
    (["--model", "demo", "--data", "demo", "--lr", "3"], "--lr"),
    (["--model", "demo", "--data", "demo", "--batch-size", "0"], "--batch-size"),
    (["--model", "demo"], "--data"),
    (["--recipe", "/no/such/run.toml"], "no recipe"),
])
def test_bad_train_arguments(capsys, args, needle):
    assert main(["train", *args]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_train_on_missing_data_fails_with_advice(capsys, tmp_path):
    code = main(["train", "--model", "demo", "--data", str(tmp_path / "nope.jsonl"), "--steps", "2", "--run-dir",
                 str(tmp_path / "run"), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "bad_input" in err and "What to do:" in err


def test_runs_when_there_are_none(capsys, tmp_path):
    assert main(["runs", "--runs-dir", str(tmp_path / "empty")]) == 0
    assert "No runs yet" in capsys.readouterr().out


def test_memory_options_and_the_preflight_switch_reach_the_recipe_and_the_run(capsys, tmp_path):
    from studio.core import runs
    from studio.core.training.events import read_events

    run_dir = tmp_path / "lean"
    code = main(["train", "--model", "demo", "--data", "demo", "--steps", "2", "--batch-size", "2", "--seq-len", "128",
                 "--save-every", "0", "--sample-every", "0", "--eval-fraction", "0", "--run-dir", str(run_dir), "--quiet",
                 "--no-preflight", "--no-chunked-loss", "--packing", "off", "--no-fp32-frozen"])
    assert code == 0, capsys.readouterr().out
    t = RunConfig.load(run_dir / "run.toml").training
    assert (t.preflight, t.chunked_loss, t.packing, t.upcast_frozen) == (False, False, "off", False)
    events = read_events(run_dir / runs.EVENTS)
    assert not [e for e in events if e["type"] == "preflight"] and events[-1]["type"] == "finished"

    recipe = RunConfig()
    recipe.model.source = recipe.data.source = "demo"
    path = tmp_path / "r.toml"
    recipe.save(path)
    from studio.cli import build_parser, recipe_from_args

    args = build_parser().parse_args(["train", "--recipe", str(path), "--loss-chunk", "256"])
    t = recipe_from_args(args).training
    assert (t.preflight, t.chunked_loss, t.packing, t.upcast_frozen, t.loss_chunk_tokens) == (True, True, "auto", False, 256)
