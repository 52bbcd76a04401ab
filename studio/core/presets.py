"""Presets for a first run: the adapter and the training length a newcomer does not have to choose.

Quick / Balanced / Thorough set rank, alpha, dropout, the target layers (all linear: the QLoRA
paper's choice) and the number of passes over the data. The demo model gets CPU-sized training
settings so that pressing Train at once gives a run of about a minute. The window's Adapter page
and `studio train --preset` (and `studio plan --preset`) apply the same presets.
"""

from __future__ import annotations

from studio.core.recipe import OutputSection, RunConfig, TrainingSection

PRESETS = {
    "quick": {"label": "&Quick", "rank": 8, "alpha": 16, "dropout": 0.05, "epochs": 1.0,
              "text": "A first try: a small adapter, one pass over the data. Minutes on a GPU."},
    "balanced": {"label": "&Balanced", "rank": 16, "alpha": 32, "dropout": 0.05, "epochs": 2.0,
                 "text": "The usual choice: enough capacity for a new style or task, two passes over the data."},
    "thorough": {"label": "&Thorough", "rank": 32, "alpha": 64, "dropout": 0.1, "epochs": 3.0,
                 "text": "More capacity and three passes, for larger datasets. Slower; watch the eval loss for overfitting."},
}

# Training settings that suit the demo model on a CPU (a run of about a minute), and the recipe's
# defaults for real models on a GPU. Switching between the demo and a real model swaps them,
# leaving alone what the user changed.
# Measured here: Balanced (rank 16, two passes = 45 steps of 8 rows) at 2e-3 moves the demo from prose to
# the "Plant doctor says:" style by step 30, in about 25 s of training (under a minute in all).
DEMO_TRAINING = {"batch_size": 8, "grad_accum": 1, "seq_len": 256, "learning_rate": 2e-3,
                 "eval_every": 15, "save_every": 15, "sample_every": 15}
REAL_TRAINING = {key: getattr(TrainingSection(), key) for key in DEMO_TRAINING}  # the recipe's own defaults
DEMO_NAME = "demo"


def apply_preset(config: RunConfig, key: str) -> None:
    """The preset's adapter and training length (what the Adapter page's preset buttons set)."""
    p = PRESETS[key]
    a, t = config.adapter, config.training
    a.rank, a.alpha, a.dropout = p["rank"], p["alpha"], p["dropout"]
    a.targets = ["all-linear"]
    t.epochs, t.steps = p["epochs"], None


def matching_preset(config: RunConfig) -> str | None:
    """The preset whose adapter this is (the training length may have been changed since)."""
    a = config.adapter
    for key, p in PRESETS.items():
        if (a.rank, a.alpha, a.dropout) == (p["rank"], p["alpha"], p["dropout"]) and list(a.targets) == ["all-linear"]:
            return key
    return None


def swap_training(config: RunConfig, to_demo: bool) -> None:
    """Between the demo and a real model: the other's training settings, where the recipe still has
    this one's (what the user changed stays)."""
    old, new = (REAL_TRAINING, DEMO_TRAINING) if to_demo else (DEMO_TRAINING, REAL_TRAINING)
    t = config.training
    for key, value in new.items():
        if getattr(t, key) == old[key]:
            setattr(t, key, value)


def with_preset(config: RunConfig, key: str) -> RunConfig:
    """`config` with the preset as a first run gets it: its adapter and training length, and on the
    demo model the CPU-sized training (where the recipe has the real-model defaults) and the name
    'demo' (where it has the default name)."""
    from studio.core.models import is_demo

    if is_demo(config.model.source):
        swap_training(config, to_demo=True)
        if config.output.name == OutputSection().name:
            config.output.name = DEMO_NAME
    apply_preset(config, key)
    return config


def first_run_config(model: str, data: str) -> RunConfig:
    """What `studio` opens with: the Balanced preset, and on the demo CPU-sized training."""
    config = RunConfig()
    config.model.source, config.data.source = model, data
    return with_preset(config, "balanced")
