"""How long `studio data inspect` takes on a large JSONL, and how much memory it uses.

    python benchmarks/data_inspect.py [--rows 200000] [--model demo] [--keep FILE]

Writes a messages-format JSONL of --rows rows (~1 KB each, ≈ 200 MB for 200,000 rows) to a temporary
folder, then times loading + validation + token statistics (inspect_data, cold cache) and prints
the peak resident memory of the process. Run by hand; not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

WORDS = ("leaf water light soil root pot drain mist humid bright shade pest mite gnat rot yellow brown "
         "fern palm orchid cactus succulent monstera pothos ivy repot prune fertilize spring winter").split()


def write_jsonl(path: Path, rows: int, seed: int = 0) -> int:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as fh:
        for i in range(rows):
            q = " ".join(rng.choices(WORDS, k=rng.randint(15, 40))) + f"? ({i})"
            a = " ".join(rng.choices(WORDS, k=rng.randint(100, 160))) + "."
            msgs = [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
            if i % 5 == 0:
                msgs = [{"role": "system", "content": "You are a plant doctor."}] + msgs
            fh.write(json.dumps({"messages": msgs}) + "\n")
    return path.stat().st_size


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--model", default="demo")
    ap.add_argument("--seq-len", type=int, default=512)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["STUDIO_HOME"] = str(Path(tmp) / "home")  # a cold cache
        path = Path(tmp) / "big.jsonl"
        t0 = time.perf_counter()
        size = write_jsonl(path, args.rows)
        print(f"wrote {args.rows:,} rows, {size / 1e6:.0f} MB in {time.perf_counter() - t0:.1f} s")
        from studio.core.data import inspect_data, load_data
        from studio.core.models import load_tokenizer, resolve_model

        tokenizer = load_tokenizer(resolve_model(args.model))
        t0 = time.perf_counter()
        report = inspect_data(path, model=args.model, seq_len=args.seq_len, tokenizer=tokenizer)
        elapsed = time.perf_counter() - t0
        t1 = time.perf_counter()
        load_data(path)
        cached = time.perf_counter() - t1
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        st = report.stats
        print(f"command: python benchmarks/data_inspect.py --rows {args.rows} --model {args.model} --seq-len {args.seq_len}")
        print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
        print(f"inspect (load + validate + token stats + examples), cold: {elapsed:.1f} s")
        print(f"load again (cached Arrow): {cached:.2f} s")
        print(f"rows {report.loaded.rows_kept:,}, tokens {st.total_tokens:,}, median {st.median:.0f}, max {st.max}")
        print(f"peak resident memory: {peak:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
