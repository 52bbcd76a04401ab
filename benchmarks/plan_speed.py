"""How long plan() and suggest_changes() take once the ModelInfo is known (the window calls them on
every slider move), and how long resolving a model takes the first time.

    python benchmarks/plan_speed.py [--model llama-3.1-70b] [--repeats 1000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="llama-3.1-70b")
    ap.add_argument("--repeats", type=int, default=1000)
    args = ap.parse_args()
    from studio.core.memory import AdapterSpec, GiB, Precision, TrainShape, plan, suggest_changes
    from studio.core.models import resolve_model

    t0 = time.perf_counter()
    info = resolve_model(args.model)
    resolve_s = time.perf_counter() - t0
    adapter, shape, precision = AdapterSpec(), TrainShape(batch_size=2, seq_len=4096), Precision()
    t0 = time.perf_counter()
    for _ in range(args.repeats):
        plan(info, adapter, shape, precision)
    plan_ms = (time.perf_counter() - t0) / args.repeats * 1000
    t0 = time.perf_counter()
    for _ in range(max(1, args.repeats // 10)):
        suggest_changes(info, adapter, shape, precision, 24 * GiB)
    suggest_ms = (time.perf_counter() - t0) / max(1, args.repeats // 10) * 1000
    print(f"command: python benchmarks/plan_speed.py --model {args.model} --repeats {args.repeats}")
    print(f"device: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    print(f"resolve_model (first time, imports included): {resolve_s:.2f} s")
    print(f"plan(): {plan_ms:.3f} ms per call; suggest_changes() for a 24 GB card: {suggest_ms:.2f} ms per call")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
