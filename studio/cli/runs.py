"""`studio runs`: every run, its status, steps, final loss and size."""

from __future__ import annotations

import json
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("runs", help="the runs: status, steps, final loss, size")
    p.add_argument("--runs-dir", type=Path, help="another runs folder")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_runs)


def cmd_runs(args) -> int:
    from studio.core.runs import list_runs

    found = list_runs(args.runs_dir)
    if args.json:
        print(json.dumps([r.as_dict() for r in found], indent=2))
        return 0
    if not found:
        print("No runs yet. Start one with: studio train --model demo --data demo --steps 30")
        return 0
    print(f"{'run':<36} {'status':<12} {'steps':>9} {'loss':>8} {'eval':>8} {'size':>9}  model")
    for r in found:
        steps = f"{r.step}/{r.total_steps}" if r.total_steps else str(r.step)
        loss = f"{r.final_loss:.4f}" if r.final_loss is not None else "-"
        ev = f"{r.eval_loss:.4f}" if r.eval_loss is not None else "-"
        print(f"{r.name:<36} {r.status:<12} {steps:>9} {loss:>8} {ev:>8} {r.size_bytes / 2**20:>7.1f}MB  {r.model}")
    for r in (r for r in found if r.problem):
        print(f"Problem with {r.name}: {r.problem}")
    return 0
