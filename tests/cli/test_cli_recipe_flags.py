"""The flags of `studio train` and `studio plan` come from the recipe's fields: every field has its
flag with the field's help, the old flag names still work, `--recipe` and `--preset` are where the
settings start, and the flags given override them."""

from __future__ import annotations

import json

import pytest

from studio.cli import build_parser, main, recipe_from_args
from studio.cli import plan as plan_command
from studio.core.presets import first_run_config
from studio.core.recipe import RunConfig, TrainingSection, iter_settings

# Every flag the README, the tests and users' scripts have used.
OLD_TRAIN_FLAGS = [
    ["--steps", "5"], ["--epochs", "2"], ["--lr", "1e-3"], ["--batch-size", "2"], ["--grad-accum", "2"],
    ["--seq-len", "128"], ["--no-grad-ckpt"], ["--no-preflight"], ["--no-chunked-loss"], ["--loss-chunk", "256"],
    ["--packing", "off"], ["--no-fp32-frozen"], ["--optim", "adamw"], ["--compute-dtype", "float32"],
    ["--eval-every", "5"], ["--save-every", "5"], ["--sample-every", "5"], ["--seed", "1"], ["--num-processes", "1"],
    ["--name", "mine"], ["--run-dir", "/tmp/x"], ["--trust-remote-code"], ["--allow-pickle"], ["--quiet"],
    ["--rank", "8"], ["--alpha", "16"], ["--dropout", "0.1"], ["--targets", "q_proj,v_proj"], ["--dora"], ["--rslora"],
    ["--precision", "16bit"], ["--map", "prompt=q,response=a"], ["--format", "alpaca"], ["--skip-bad-rows"],
    ["--eval-fraction", "0.2"], ["--scheduler", "linear"], ["--warmup-ratio", "0.1"],
]
OLD_PLAN_FLAGS = [
    ["--precision", "full"], ["--quant-type", "fp4"], ["--no-double-quant"], ["--compute-dtype", "float16"],
    ["--rank", "8"], ["--alpha", "16"], ["--dropout", "0.1"], ["--targets", "q_proj"], ["--dora"], ["--batch-size", "2"],
    ["--seq-len", "512"], ["--grad-accum", "4"], ["--no-grad-ckpt"], ["--optim", "adamw"], ["--attention", "eager"],
    ["--no-chunked-loss"], ["--loss-chunk", "512"], ["--no-fp32-frozen"], ["--gpu", "24GB"],
    ["--trust-remote-code"], ["--json"],
]


def train_args(*flags):
    return build_parser().parse_args(["train", *flags])


def train_recipe(*flags) -> RunConfig:
    return recipe_from_args(train_args(*flags))


def plan_recipe(*flags) -> RunConfig:
    return plan_command.recipe_from_args(build_parser().parse_args(["plan", *flags]))


def _option(parser, flag):
    sub = parser._subparsers._group_actions[0].choices  # the sub-commands' parsers
    return next((a for a in sub[flag[0]]._actions if flag[1] in a.option_strings), None)


@pytest.mark.parametrize("flag", OLD_TRAIN_FLAGS, ids=lambda f: f[0])
def test_every_old_train_flag_still_parses(flag):
    train_args("--model", "demo", "--data", "demo", *flag)


@pytest.mark.parametrize("flag", OLD_PLAN_FLAGS, ids=lambda f: f[0])
def test_every_old_plan_flag_still_parses(flag):
    build_parser().parse_args(["plan", "demo", *flag])


def test_each_recipe_field_is_a_train_flag_with_its_help_and_the_planned_ones_plan_flags():
    parser = build_parser()
    for section, spec in iter_settings():
        flag = spec.metadata["flag"]
        action = _option(parser, ("train", flag))
        assert action is not None and action.dest == f"{section}.{spec.name}", flag
        assert spec.metadata["help"].replace("%", "%%") in action.help
        on_plan = _option(parser, ("plan", flag)) is not None
        assert on_plan == (spec.metadata["plans"] and spec.name != "source"), flag


def test_the_help_prints_with_the_fields_texts(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "~30% slower" in out and "--no-grad-ckpt" in out and "--preset" in out


def test_each_flag_reaches_its_field():
    c = train_recipe("--model", "m", "--data", "d", "--lr", "1e-3", "--no-grad-ckpt", "--map", "prompt=q,response=a",
                     "--targets", "q_proj, v_proj", "--sample-prompt", "Why, though?", "--sample-prompt", "And?",
                     "--quant-type", "fp4", "--no-assistant-only", "--keep-checkpoints", "3", "--runs-dir", "/tmp/r")
    t = c.training
    assert (c.model.source, c.data.source, t.learning_rate, t.gradient_checkpointing) == ("m", "d", 1e-3, False)
    assert c.data.mapping == {"prompt": "q", "response": "a"} and c.adapter.targets == ["q_proj", "v_proj"]
    assert t.sample_prompts == ["Why, though?", "And?"] and t.quant_type == "fp4" and t.keep_checkpoints == 3
    assert c.data.assistant_only is False and c.output.runs_dir == "/tmp/r"


def test_a_step_count_replaces_epochs_and_epochs_a_step_count(tmp_path):
    t = train_recipe("--model", "demo", "--data", "demo", "--steps", "5", "--epochs", "3").training
    assert (t.steps, t.epochs) == (5, None)
    path = tmp_path / "run.toml"
    with_steps = RunConfig()
    with_steps.training.steps = 9
    with_steps.save(path)
    t = train_recipe("--recipe", str(path), "--epochs", "3").training
    assert (t.steps, t.epochs) == (None, 3.0)


def test_switches_turn_a_recipes_setting_off_and_on(tmp_path):
    path = tmp_path / "run.toml"
    config = RunConfig()
    config.adapter.use_dora, config.training.gradient_checkpointing = True, False
    config.save(path)
    c = train_recipe("--recipe", str(path), "--no-dora", "--grad-ckpt")
    assert c.adapter.use_dora is False and c.training.gradient_checkpointing is True
    c = train_recipe("--recipe", str(path))
    assert c.adapter.use_dora is True and c.training.gradient_checkpointing is False


# ---------------------------------------------------------------------------------------------
# Presets
# ---------------------------------------------------------------------------------------------


def test_the_demo_preset_is_the_windows_first_run():
    assert train_recipe("--model", "demo", "--data", "demo", "--preset", "balanced") == first_run_config("demo", "demo")


def test_the_readme_demo_command_is_the_old_five_flag_run():
    """`--preset balanced` on the demo trains what the README's old command did: the same adapter, batch,
    sequence length and learning rate, for the same 45 steps (two passes of 180 rows, 8 a step)."""
    old = train_recipe("--model", "demo", "--data", "demo", "--steps", "45", "--batch-size", "8", "--grad-accum", "1",
                       "--seq-len", "256", "--lr", "2e-3")
    new = train_recipe("--model", "demo", "--data", "demo", "--preset", "balanced")
    assert new.adapter == old.adapter and new.data == old.data and new.model == old.model
    for key in ("batch_size", "grad_accum", "seq_len", "learning_rate", "precision", "seed", "optimizer"):
        assert getattr(new.training, key) == getattr(old.training, key), key
    rows = 200  # resources/demo-data/demo.jsonl
    assert new.total_steps(rows - new.data.held_out_rows(rows)) == old.total_steps(rows) == 45


def test_flags_override_the_preset_and_a_real_model_keeps_its_training():
    c = train_recipe("--model", "llama-3.1-8b", "--data", "d.jsonl", "--preset", "quick", "--rank", "4", "--steps", "10")
    assert (c.adapter.rank, c.adapter.alpha, c.training.steps, c.training.epochs) == (4, 16, 10, None)
    assert c.training.batch_size == TrainingSection().batch_size and c.output.name == "run"
    c = train_recipe("--model", "demo", "--data", "demo", "--preset", "thorough", "--name", "mine", "--batch-size", "2")
    assert (c.adapter.rank, c.training.epochs, c.output.name, c.training.batch_size) == (32, 3.0, "mine", 2)
    assert c.training.seq_len == 256  # the demo's


# ---------------------------------------------------------------------------------------------
# studio plan --recipe
# ---------------------------------------------------------------------------------------------


def run_json(capsys, *args):
    assert main(list(args) + ["--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_plan_plans_a_recipe_and_its_flags_override_it(capsys, tmp_path):
    config = RunConfig()
    config.model.source = "qwen2.5-0.5b"
    config.adapter.rank, config.adapter.targets = 8, ["q_proj", "v_proj"]
    config.training.batch_size, config.training.seq_len, config.training.optimizer = 2, 512, "adamw"
    path = tmp_path / "run.toml"
    config.save(path)
    by_recipe = run_json(capsys, "plan", "--recipe", str(path), "--gpu", "24GB")
    by_flags = run_json(capsys, "plan", "qwen2.5-0.5b", "--rank", "8", "--targets", "q_proj,v_proj", "--batch-size", "2",
                        "--seq-len", "512", "--optim", "adamw", "--gpu", "24GB")
    assert by_recipe == by_flags
    assert by_recipe["shape"]["optimizer"] == "adamw" and by_recipe["adapter"]["rank"] == 8
    other = run_json(capsys, "plan", "demo", "--recipe", str(path), "--seq-len", "256", "--gpu", "24GB")
    assert other["model"]["name"] != by_recipe["model"]["name"] and other["shape"]["seq_len"] == 256
    assert other["adapter"]["rank"] == 8


def test_plan_takes_a_preset(capsys):
    report = run_json(capsys, "plan", "demo", "--preset", "quick", "--gpu", "8GB")
    assert (report["adapter"]["rank"], report["shape"]["batch_size"], report["shape"]["seq_len"]) == (8, 8, 256)


def test_plan_without_a_model_or_recipe_says_what_to_give(capsys):
    assert main(["plan", "--gpu", "8GB"]) == 2
    err = capsys.readouterr().err
    assert "needs a model" in err and "--recipe" in err


def test_plan_keeps_full_fine_tuning_for_comparison():
    c = plan_recipe("demo", "--precision", "full")
    assert c.training.precision == "full"
    with pytest.raises(SystemExit):
        train_args("--model", "demo", "--data", "demo", "--precision", "full")


def test_the_recipe_version_is_checked_on_the_command_line(capsys, tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('version = 99\n[model]\nsource = "demo"\n')
    assert main(["train", "--recipe", str(path)]) == 2
    assert "newer LoRA Studio" in capsys.readouterr().err



@pytest.mark.parametrize("flag", ["--all-tokens", "--no-assistant-only"])
def test_data_inspect_takes_the_recipes_data_flags_and_its_old_all_tokens(capsys, flag):
    report = run_json(capsys, "data", "inspect", "demo", "--seq-len", "256", "--examples", "1", flag)
    assert report["assistant_only_loss"] is False and report["stats"]["seq_len"] == 256
