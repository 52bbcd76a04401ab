"""`studio export RUN --checkpoint STEP` on a real 8-step demo run that kept checkpoints at steps 4 and 8."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studio.cli import main
from studio.cli.output import EXIT_USER_ERROR
from studio.core import runs
from tests.demo_runs import finished_demo_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return finished_demo_run(tmp_path_factory.mktemp("cli-ckpt-home"), "cli-ckpt", steps=8, save_every=4)


def test_export_a_checkpoint(run_dir, tmp_path, capsys):
    target = tmp_path / "at-4"
    assert main(["export", str(run_dir), "--to", str(target), "--checkpoint", "4"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Exporting the adapter of checkpoint-4 of {run_dir} ...")
    assert f"Exported to {target} with checkpoint-4, step 4 of 8 (" in out
    checkpoint = run_dir / runs.CHECKPOINTS / "checkpoint-4" / "adapter_model.safetensors"
    assert (target / "adapter_model.safetensors").read_bytes() == checkpoint.read_bytes()
    assert (target / "adapter_model.safetensors").read_bytes() != (run_dir / runs.ADAPTER / "adapter_model.safetensors").read_bytes()

    assert main(["export", str(run_dir), "--to", str(tmp_path / "json"), "--checkpoint", "8", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["checkpoint"] == 8 and result["weights"] == "checkpoint-8, step 8 of 8"


def test_an_unknown_step_names_the_steps_there_are(run_dir, tmp_path, capsys):
    target = tmp_path / "at-5"
    assert main(["export", str(run_dir), "--to", str(target), "--checkpoint", "5"]) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert "no checkpoint at step 5" in err and "steps 4 and 8" in err and "--checkpoint 8" in err
    assert "Traceback" not in err and not target.exists()


def test_the_help_says_what_checkpoint_does(capsys):
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--checkpoint STEP" in out and "instead of the final adapter" in out
