"""One process, two with DDP and two with FSDP: the demo model's run through the real launcher on the CPU.

    python benchmarks/fsdp_cpu.py [--steps 60] [--results benchmarks/RESULTS.md]

Each setting trains the demo model (4-bit base, LoRA rank 16, micro-batch 4 × 256 tokens, no
accumulation) for the same number of optimizer steps; two processes see twice the examples a step.
It reports the wall time (launch, load, train, save), the mean loss of the first and the last ten
steps, and for two processes what the main process held after its first step (its shard with FSDP).
FSDP on the CPU needs tests/fsdp_on_cpu on PYTHONPATH (accelerate turns FSDP on only with a GPU-like
device; see that file); the script puts it there for the FSDP setting only.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from results import publish  # noqa: E402

SHIM = ROOT / "tests" / "fsdp_on_cpu"
SETTINGS = [("1 process", 1, "ddp"), ("2 processes, DDP", 2, "ddp"), ("2 processes, FSDP", 2, "fsdp")]


def recipe(steps: int, processes: int, strategy: str):
    from studio.core.recipe import RunConfig

    config = RunConfig()
    config.model.source = config.data.source = "demo"
    t = config.training
    t.steps, t.epochs, t.batch_size, t.grad_accum, t.seq_len, t.learning_rate = steps, None, 4, 1, 256, 1e-3
    t.eval_every, t.save_every, t.sample_every = 0, steps, 0
    t.num_processes, t.strategy = processes, strategy
    return config.validate()


def measure(steps: int, processes: int, strategy: str, where: Path) -> dict:
    from studio.core import runs
    from studio.core.training import launcher
    from studio.core.training.events import read_events

    before = os.environ.get("PYTHONPATH")
    if strategy == "fsdp":
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SHIM), before]))
    try:
        started = time.monotonic()
        handle = launcher.start(recipe(steps, processes, strategy), where)
        finished = launcher.wait(handle, timeout=1800)
        seconds = time.monotonic() - started
    finally:
        os.environ.pop("PYTHONPATH", None) if before is None else os.environ.update(PYTHONPATH=before)
    steps_seen = [e for e in read_events(where / runs.EVENTS) if e["type"] == "step"]
    losses = [e["loss"] for e in steps_seen]
    return {"status": finished["status"], "seconds": seconds, "first": sum(losses[:10]) / 10,
            "last": sum(losses[-10:]) / 10, "held": steps_seen[0].get("process_bytes")}


def row(name: str, r: dict) -> str:
    held = "–" if not r["held"] else ", ".join(f"{k.replace('_', ' ')} {v / 1024:.0f} KiB" for k, v in r["held"].items())
    return f"| {name} | {r['status']} | {r['seconds']:.1f} s | {r['first']:.3f} → {r['last']:.3f} | {held} |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--results", type=Path, help="append the table to this Markdown file")
    args = ap.parse_args()
    lines = ["| Setting | Ended | Wall time | Loss, first 10 → last 10 steps | Main process held after step 1 |",
             "|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, processes, strategy) in enumerate(SETTINGS):
            lines.append(row(name, measure(args.steps, processes, strategy, Path(tmp) / str(i))))
            print(lines[-1], flush=True)
    text = (f"\n## Several processes on the CPU: DDP and FSDP through the real launcher — {time.strftime('%Y-%m-%d')}\n\n"
            f"`python benchmarks/fsdp_cpu.py --steps {args.steps}` on {os.cpu_count()} CPU cores ({platform.machine()}, "
            "no GPU; gloo). Demo model, 4-bit base, LoRA rank 16, micro-batch 4 × 256 tokens; two processes see "
            "twice the examples a step.\n\n" + "\n".join(lines) + "\n")
    publish(text, args.results)


if __name__ == "__main__":
    main()
