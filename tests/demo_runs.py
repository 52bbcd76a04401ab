"""Finished runs of the demo model that tests build for themselves, trained in-process by the real worker."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.core import runs
from studio.core.recipe import DataSection, ModelSection, OutputSection, RunConfig, TrainingSection


def demo_recipe(name: str, *, model: str = "demo", data: DataSection | None = None, runs_dir: Path | None = None,
                **training) -> RunConfig:
    """A short CPU QLoRA recipe: 6 steps of 4 rows at 256 tokens, no preflight; `training` overrides any setting."""
    settings = dict(steps=6, epochs=None, batch_size=4, grad_accum=1, seq_len=256, learning_rate=1e-3, eval_every=0,
                    save_every=0, sample_every=0, gradient_checkpointing=False, sample_max_tokens=1, preflight=False)
    return RunConfig(model=ModelSection(source=model), data=data or DataSection(source="demo"),
                     output=OutputSection(name=name, runs_dir=str(runs_dir) if runs_dir else None),
                     training=TrainingSection(**{**settings, **training}))


def train_in_process(config: RunConfig, home: Path, run_dir: Path | None = None) -> tuple[Path, int]:
    """(run folder, the worker's exit status); the data cache goes to `home`, not the developer's own folder."""
    run_dir = runs.create_run_dir(config, run_dir)
    from studio.core.training import worker

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STUDIO_HOME", str(home))
        code = worker.run(run_dir, echo=None)
    return run_dir, code


def finished_demo_run(home: Path, name: str, **training) -> Path:
    run_dir, code = train_in_process(demo_recipe(name, **training), home, home / "runs" / name)
    log = run_dir / runs.STDERR
    assert code == 0, log.read_text() if log.exists() else ""
    assert runs.status_of(run_dir) == "completed"
    return run_dir


RATES = (1e-4, 1e-3, 3e-3)  # the learning rates the comparison tests train at


def learning_rate_runs(home: Path, **training) -> list[Path]:
    """home/runs/lr-<rate>: the same demo recipe at each of RATES (`training` overrides any setting)."""
    return [finished_demo_run(home, f"lr-{rate:g}", learning_rate=rate, **training) for rate in RATES]
