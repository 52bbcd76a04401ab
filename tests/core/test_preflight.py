"""The worst batch runs first: chosen right, leaves the run unchanged, and stops a run that cannot fit."""

from __future__ import annotations

import time

import torch
from safetensors.torch import load_file

from studio.core import runs
from studio.core.recipe import RunConfig
from studio.core.training import session, worker
from studio.core.training.events import read_events
from studio.core.training.preflight import longest_rows


def recipe(**training) -> RunConfig:
    config = RunConfig()
    config.model.source = config.data.source = "demo"
    t = config.training
    t.steps, t.epochs, t.batch_size, t.grad_accum, t.seq_len, t.learning_rate = 4, None, 4, 1, 256, 1e-3
    t.eval_every, t.save_every, t.sample_every = 0, 0, 0
    for key, value in training.items():
        setattr(t, key, value)
    return config.validate()


def train(tmp_path, name, **training):
    run_dir = runs.create_run_dir(recipe(**training), tmp_path / name)
    code = worker.run(run_dir, echo=None)
    return run_dir, code, read_events(run_dir / runs.EVENTS)


def test_longest_rows_are_the_worst_batch():
    from datasets import Dataset

    ds = Dataset.from_dict({"input_ids": [[1] * n for n in (5, 50, 7, 49, 3)]})
    assert longest_rows(ds, 2) == [1, 3]


def test_preflight_leaves_the_run_identical(tmp_path):
    with_dir, code_a, with_events = train(tmp_path, "with", preflight=True)
    without_dir, code_b, without_events = train(tmp_path, "without", preflight=False)
    assert code_a == code_b == 0
    pre = [e for e in with_events if e["type"] == "preflight"]
    assert len(pre) == 1 and not [e for e in without_events if e["type"] == "preflight"]
    assert pre[0]["planned_bytes"] > 0 and pre[0]["longest"] == 256 and pre[0]["tokens"] == 4 * 256
    losses = lambda events: [(e["step"], e["loss"]) for e in events if e["type"] == "step"]  # noqa: E731
    assert losses(with_events) == losses(without_events)  # step for step, to the last bit on CPU
    a = load_file(with_dir / "adapter" / "adapter_model.safetensors")
    b = load_file(without_dir / "adapter" / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_worst_batch_that_does_not_fit_stops_the_run_at_once(tmp_path, monkeypatch):
    real_trainer_class = session.trainer_class

    def longest_example(inputs) -> int:  # packed batches: one row, positions restart at each example
        if "position_ids" in inputs:
            return int(inputs["position_ids"].max()) + 1
        return inputs["input_ids"].shape[1]

    def trainer_class():
        base = real_trainer_class()

        class DoesNotFit(base):
            def compute_loss(self, model, inputs, *args, **kwargs):
                if longest_example(inputs) >= 256:  # only the longest examples "do not fit"
                    raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.50 GiB")
                return super().compute_loss(model, inputs, *args, **kwargs)

        return DoesNotFit

    monkeypatch.setattr(session, "trainer_class", trainer_class)
    t0 = time.monotonic()
    run_dir, code, events = train(tmp_path, "oom", steps=50, save_every=5)
    assert code == 1 and time.monotonic() - t0 < 60
    finished = events[-1]
    assert finished["type"] == "finished" and finished["error"]["kind"] == "out_of_memory"
    assert "longest batch" in finished["error"]["message"] and finished["error"]["advice"]
    assert not [e for e in events if e["type"] in ("step", "checkpoint")]
    checkpoints = run_dir / runs.CHECKPOINTS
    assert not checkpoints.exists() or not any(checkpoints.iterdir())
