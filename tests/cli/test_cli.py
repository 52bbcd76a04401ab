"""`studio plan | models | doctor` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from studio.cli import main

REQUIRED = {
    "model": {"name", "architecture", "total_params", "quantizable_params", "vocab_size", "tied_embeddings", "lora_targets"},
    "adapter": {"rank", "alpha", "targets", "trainable_params"},
    "memory": {"total_bytes", "components", "gpu_bytes", "fits", "suggestions"},
}


def run_json(capsys, *args):
    assert main(list(args) + ["--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_plan_json_has_the_documented_shape(capsys):
    report = run_json(capsys, "plan", "llama-3.1-8b", "--gpu", "24GB")
    for key, fields in REQUIRED.items():
        assert fields <= set(report[key]), key
    assert report["model"]["total_params"] == 8_030_261_248
    assert report["model"]["quantizable_params"] == 6_979_321_856
    assert report["adapter"]["trainable_params"] == 41_943_040
    assert report["memory"]["gpu_bytes"] == 24 * 1024**3
    assert report["memory"]["fits"] is True
    assert sum(c["bytes"] for c in report["memory"]["components"]) == report["memory"]["total_bytes"]
    assert all({"name", "bytes", "why"} <= set(c) for c in report["memory"]["components"])


def test_plan_that_does_not_fit_suggests_changes(capsys):
    report = run_json(capsys, "plan", "llama-3.1-8b", "--gpu", "12GB", "--batch-size", "4", "--seq-len", "4096")
    assert report["memory"]["fits"] is False
    assert report["memory"]["suggestions"]
    for s in report["memory"]["suggestions"]:
        assert {"change", "total_bytes"} <= set(s) and s["total_bytes"] <= 12 * 1024**3


def test_plan_suggests_a_smaller_model_of_the_family(capsys):
    report = run_json(capsys, "plan", "qwen2.5-32b", "--gpu", "8GB", "--seq-len", "512")
    models = [s["changes"].get("model") for s in report["memory"]["suggestions"]]
    assert any(m and m.startswith("qwen2.5-") for m in models)


def test_plan_options_reach_the_planner(capsys):
    base = run_json(capsys, "plan", "qwen2.5-0.5b")
    opts = run_json(capsys, "plan", "qwen2.5-0.5b", "--precision", "16bit", "--rank", "8", "--alpha", "16",
                    "--targets", "q_proj,v_proj", "--batch-size", "2", "--seq-len", "512", "--no-grad-ckpt",
                    "--optim", "adamw")
    assert opts["adapter"]["targets"] == ["q_proj", "v_proj"]
    assert opts["adapter"]["trainable_params"] < base["adapter"]["trainable_params"]
    assert "quantized_weights" not in [c["name"] for c in opts["memory"]["components"]]
    assert opts["shape"] == {"batch_size": 2, "seq_len": 512, "grad_accum": 8, "gradient_checkpointing": False,
                             "optimizer": "adamw", "attention": "sdpa", "loss_chunk_tokens": 1024, "method": "sft",
                             "method_words": "", "gpus": 1, "strategy": "ddp"}
    dpo = run_json(capsys, "plan", "qwen2.5-0.5b", "--method", "dpo")
    assert dpo["shape"]["method"] == "dpo" and dpo["shape"]["loss_chunk_tokens"] == 0  # TRL computes its own loss
    assert "the base with the adapter off" in dpo["shape"]["method_words"]
    assert "reference" in [p["name"] for p in dpo["memory"]["phases"]]


def test_plan_table_for_people(capsys):
    assert main(["plan", "demo", "--gpu", "8GB"]) == 0
    out = capsys.readouterr().out
    assert "quantized_weights" in out and "total" in out
    assert "Fits 8GB" in out and "to spare" in out


def test_plan_without_gpu_explains_how_to_choose_one(capsys):
    assert main(["plan", "qwen2.5-0.5b"]) == 0  # this machine has no GPU
    assert "--gpu 24GB" in capsys.readouterr().out


@pytest.mark.parametrize("args,needle", [
    (["plan", "/no/such/model"], "no file or folder"),
    (["plan", "demo", "--gpu", "lots"], "not a GPU memory size"),
    (["plan", "demo", "--rank", "0"], "rank must be at least 1"),
    (["plan", "demo", "--targets", "wq,wv"], "has no layer named"),
])
def test_errors_print_message_and_advice_without_traceback(capsys, args, needle):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert needle in err and "What to do:" in err and "Traceback" not in err


def test_debug_shows_the_traceback():
    from studio.core.errors import StudioError

    with pytest.raises(StudioError):
        main(["--debug", "plan", "/no/such/model"])


def test_models_lists_demo_catalog_and_cache(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    rows = run_json(capsys, "models")
    names = [r["name"] for r in rows]
    assert names[0] == "demo"
    assert {"llama-3.1-8b", "qwen2.5-0.5b", "gemma-2-9b"} <= set(names)


def test_doctor_reports_versions_and_gpus(capsys):
    report = run_json(capsys, "doctor")
    for key in ("python", "torch", "cuda_build", "transformers", "peft", "bitsandbytes", "bitsandbytes_backend", "gpus", "qt",
                "qt_platform", "runs_folder"):
        assert key in report
    assert report["gpus"] == [] or all("total_gib" in g for g in report["gpus"])


def test_doctor_says_in_plain_words_what_the_computer_can_do(capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "bitsandbytes_backend" in out and "runs_folder" in out
    assert "4-bit training" in out  # the verdict, as the window's check says it
    assert ("This computer is ready" in out) or ("No NVIDIA GPU was found" in out) or ("A GPU was found" in out)


def test_console_script_runs(tmp_path):
    """The installed `studio` entry point, in a real process, as the README's first command runs it."""
    env = dict(os.environ, STUDIO_HOME=str(tmp_path))
    script = os.path.join(os.path.dirname(sys.executable), "studio")
    proc = subprocess.run([script, "plan", "demo", "--gpu", "8GB"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Fits 8GB" in proc.stdout
    assert proc.stderr.strip() == ""  # no library noise
