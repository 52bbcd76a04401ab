"""Kill the worker (SIGKILL) at random moments, resume until the run finishes, and check that it ends
with the same adapter as a run nobody interrupted.

    python benchmarks/faults.py [--kills 30] [--seed 0] [--steps 12] [--save-every 3] [--again 0.3]

One uninterrupted reference run first. Then, per trial, a fresh run of the same recipe is killed at a
moment picked by a seeded RNG — during the preflight, after a given step, while a checkpoint folder is
being written, or in the final evaluation and adapter save — and resumed with `launcher.resume`; with
probability `--again` the resumed attempt is killed too, after a random delay. A run killed before its
first checkpoint has nothing to resume from: it is started again, as the studio advises. Each trial's
adapter_model.safetensors is compared with the reference's, tensor by tensor (torch.allclose at
rtol 1e-5, atol 1e-7; bit-identical counted too). Run by hand; CI only runs a tiny smoke version.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from studio.core import runs  # noqa: E402
from studio.core.errors import StudioError  # noqa: E402
from studio.core.recipe import RunConfig  # noqa: E402
from studio.core.training import launcher  # noqa: E402
from studio.core.training.events import read_events  # noqa: E402

PHASES = ("preflight", "step", "checkpoint", "final-save")


def demo_recipe(steps: int, save_every: int) -> RunConfig:
    config = RunConfig()
    config.model.source = config.data.source = "demo"
    t = config.training
    t.steps, t.epochs, t.save_every, t.keep_checkpoints = steps, None, save_every, 2
    t.batch_size, t.grad_accum, t.seq_len, t.learning_rate = 4, 1, 128, 1e-3
    t.eval_every, t.sample_every = steps // 2, 0
    return config.validate()


@dataclass
class Trial:
    aimed: str
    landed: list[str] = field(default_factory=list)  # what the worker was doing at each kill
    attempts: int = 1
    restarts: int = 0
    status: str = ""
    same: bool = False
    identical: bool = False
    max_diff: float = float("nan")
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Waiting for a moment, killing, telling where the kill landed
# ---------------------------------------------------------------------------------------------


def _wait_for(handle, predicate, timeout: float = 600) -> bool:
    """Poll until `predicate()` holds; False if the worker ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if not handle.alive():
            return False
        time.sleep(0.002)
    return False


def _has_event(handle, test) -> bool:
    return any(test(e) for e in read_events(handle.run_dir / runs.EVENTS, offset=handle.offset))


def wait_for_moment(handle, phase: str, rng: random.Random, steps: int, save_every: int) -> bool:
    """Wait for a moment of `phase` picked with `rng`; False if the run ended before it."""
    if phase == "preflight":
        reached = _wait_for(handle, lambda: _has_event(handle, lambda e: e["type"] == "started"))
        delay = rng.uniform(0, 0.3)
    elif phase == "step":
        k = rng.randint(1, steps - 1)
        reached = _wait_for(handle, lambda: _has_event(handle, lambda e: e["type"] == "step" and e["step"] == k))
        delay = rng.uniform(0, 0.6)
    elif phase == "checkpoint":
        n = rng.choice(range(save_every, steps + 1, save_every))
        folder = handle.run_dir / runs.CHECKPOINTS / f"checkpoint-{n}"
        reached = _wait_for(handle, folder.exists)  # the folder appears as the save begins
        delay = rng.uniform(0, 0.05)
    elif rng.random() < 0.5:  # while the adapter folder is being written
        reached = _wait_for(handle, lambda: _writing_adapter(handle.run_dir))
        delay = 0.0
    else:  # after the last checkpoint: the final evaluation, samples and the adapter's save
        reached = _wait_for(handle, lambda: _has_event(handle, lambda e: e["type"] == "checkpoint" and e["step"] == steps))
        delay = rng.uniform(0, 0.03)
    time.sleep(delay)
    return reached


def _writing_adapter(run_dir: Path) -> bool:
    return any(p.name.startswith(f".{runs.ADAPTER}.partial") for p in run_dir.iterdir())


def kill(handle) -> None:
    try:
        os.killpg(handle.process.pid, signal.SIGKILL)  # the worker leads its own session
    except ProcessLookupError:
        pass
    handle.process.wait(timeout=60)


def landed_at(handle, steps: int, save_every: int) -> str:
    """What the killed attempt was doing, read from its events and its checkpoint folders."""
    events = read_events(handle.run_dir / runs.EVENTS, offset=handle.offset)
    kinds = [e["type"] for e in events]
    if "finished" in kinds:
        return "after its finished event, as it exited"
    if "started" not in kinds:
        return "startup (model and data loading)"
    done = [e["step"] for e in events if e["type"] == "step"]
    saved = {e["step"] for e in events if e["type"] == "checkpoint"}
    being_saved = [p.name for p in runs.checkpoints(handle.run_dir)
                   if runs.checkpoint_step(p) not in saved and runs.checkpoint_step(p) == (done[-1] if done else -1)]
    if being_saved:
        return f"saving {being_saved[0]}"
    if steps in saved:
        if _writing_adapter(handle.run_dir):
            return "writing the adapter folder"
        return "after the adapter's save" if (handle.run_dir / runs.ADAPTER).exists() else "final evaluation / adapter save"
    if not done:
        return "preflight" if "preflight" not in kinds else "before step 1"
    if (done[-1] % save_every == 0 or done[-1] == steps) and done[-1] not in saved:
        return f"after step {done[-1]}, before its checkpoint"
    return f"step {done[-1] + 1}"


# ---------------------------------------------------------------------------------------------
# One trial
# ---------------------------------------------------------------------------------------------


def run_to_the_end(run_dir: Path, config: RunConfig, trial: Trial, rng: random.Random, again: float, steps: int,
                   save_every: int) -> Path:
    """Resume (or, with no checkpoint yet, start again) until the run completes; returns its folder."""
    while trial.attempts < 8:
        if runs.is_completed(run_dir):
            trial.status = "completed"
            return run_dir
        trial.attempts += 1
        try:
            handle = launcher.resume(run_dir)
        except StudioError:
            if runs.resume_point(run_dir) is not None:
                raise
            trial.restarts += 1
            trial.notes.append("started again: no checkpoint yet")
            run_dir = run_dir.with_name(f"{run_dir.name}-again{trial.restarts}")
            handle = launcher.start(config, run_dir)
        if rng.random() < again:
            time.sleep(rng.uniform(0, 12))
            if handle.alive():
                kill(handle)
                trial.landed.append(landed_at(handle, steps, save_every))
        finished = launcher.wait(handle)
        if finished["status"] != "completed" and finished.get("error", {}).get("kind") != "killed":
            trial.notes.append(f"attempt {trial.attempts}: {finished.get('error')}")
    trial.status = "gave up"
    return run_dir


def compare(adapter: Path, reference: dict, trial: Trial) -> None:
    import torch
    from safetensors.torch import load_file

    got = load_file(str(adapter))
    if got.keys() != reference.keys():
        trial.notes.append("different tensors")
        return
    trial.max_diff = max(float((got[k] - reference[k]).abs().max()) for k in got)
    trial.same = all(torch.allclose(got[k], reference[k], rtol=1e-5, atol=1e-7) for k in got)
    trial.identical = all(torch.equal(got[k], reference[k]) for k in got)


def one_trial(i: int, phase: str, config: RunConfig, work: Path, reference: dict, args, rng: random.Random) -> Trial:
    trial = Trial(phase)
    run_dir = work / f"trial-{i:02d}"
    handle = launcher.start(config, run_dir)
    if wait_for_moment(handle, phase, rng, args.steps, args.save_every) and handle.alive():
        kill(handle)
        trial.landed.append(landed_at(handle, args.steps, args.save_every))
        launcher.classify(handle)
        run_dir = run_to_the_end(run_dir, config, trial, rng, args.again, args.steps, args.save_every)
    else:
        trial.landed.append("after the end (missed)")
        trial.status = launcher.wait(handle)["status"]
    adapter = run_dir / runs.ADAPTER / "adapter_model.safetensors"
    if trial.status == "completed" and adapter.is_file():
        compare(adapter, reference, trial)
        check_events(run_dir, args.steps, trial)
    if not args.keep:
        shutil.rmtree(work / f"trial-{i:02d}", ignore_errors=True)
        for again in work.glob(f"trial-{i:02d}-again*"):
            shutil.rmtree(again, ignore_errors=True)
    return trial


def check_events(run_dir: Path, steps: int, trial: Trial) -> None:
    """The folder tells one story: every step once per attempt at most, none past the last, one final completion."""
    events = read_events(run_dir / runs.EVENTS)
    if any(e["type"] == "step" and e["step"] > steps for e in events):
        trial.notes.append("a step past the recipe's last")
    if runs.summarize_run(run_dir).status != "completed":
        trial.notes.append(f"folder status {runs.summarize_run(run_dir).status}")
    if any(p.name.startswith(".adapter.") for p in run_dir.iterdir()):
        trial.notes.append("a leftover partial adapter folder")


# ---------------------------------------------------------------------------------------------


def machine() -> str:
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{platform.platform()}, {os.cpu_count()} CPU cores, {gpu}; Python {platform.python_version()}, torch {torch.__version__}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=30, help="trials, each killed at least once")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--save-every", type=int, default=3)
    parser.add_argument("--again", type=float, default=0.3, help="chance that a resumed attempt is killed too")
    parser.add_argument("--phases", default=",".join(PHASES), help=f"where to aim the kills, among {', '.join(PHASES)}")
    parser.add_argument("--keep", action="store_true", help="keep the run folders")
    parser.add_argument("--work", type=Path, default=None, help="where the runs go (default: a temporary folder)")
    args = parser.parse_args(argv)
    from safetensors.torch import load_file

    print("command: python benchmarks/faults.py " + " ".join(argv if argv is not None else sys.argv[1:]))
    print(f"machine: {machine()}")
    rng = random.Random(args.seed)
    config = demo_recipe(args.steps, args.save_every)
    work = args.work or Path(tempfile.mkdtemp(prefix="studio-faults-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    reference_run = launcher.start(config, work / "reference")
    assert launcher.wait(reference_run)["status"] == "completed", "the uninterrupted run failed"
    reference = load_file(str(reference_run.run_dir / runs.ADAPTER / "adapter_model.safetensors"))
    print(f"reference run: {time.monotonic() - t0:.0f} s ({args.steps} steps, a checkpoint every {args.save_every})")
    aims = [p for p in args.phases.split(",") if p in PHASES] or list(PHASES)
    phases = [aims[i % len(aims)] for i in range(args.kills)]
    rng.shuffle(phases)
    trials = []
    print(f"\n{'#':>3}  {'aimed at':<11} {'landed at':<58} {'tries':>5} {'result':<10} {'max |diff|':>10}  notes")
    for i, phase in enumerate(phases, 1):
        trial = one_trial(i, phase, config, work, reference, args, rng)
        trials.append(trial)
        result = "identical" if trial.identical else "same" if trial.same else trial.status or "?"
        print(f"{i:>3}  {phase:<11} {' → '.join(trial.landed):<58} {trial.attempts:>5} {result:<10} {trial.max_diff:>10.2e}  "
              + "; ".join(trial.notes), flush=True)
    kills = sum(len(t.landed) for t in trials if "missed" not in " ".join(t.landed))
    same = sum(t.same for t in trials)
    print(f"\nkills delivered: {kills} in {len(trials)} trials; restarted from scratch (no checkpoint yet): "
          f"{sum(t.restarts > 0 for t in trials)}; missed (the run had ended): {sum('missed' in ' '.join(t.landed) for t in trials)}")
    print(f"same adapter as the uninterrupted run: {same}/{len(trials)} (bit-identical: {sum(t.identical for t in trials)})")
    print(f"time: {(time.monotonic() - t0) / 60:.1f} min")
    if not args.keep and args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if same == len(trials) else 1


if __name__ == "__main__":
    raise SystemExit(main())
