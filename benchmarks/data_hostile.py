"""Memory and time of `studio data inspect` on hostile data: one huge field, and a very large file.

    python benchmarks/data_hostile.py field [--mb 50]        one JSONL row whose answer is MB megabytes
    python benchmarks/data_hostile.py file [--gb 1]          a JSONL of ~1 KB chat rows, GB gigabytes
    ... [--dir DIR] [--keep] [--code DIR] [--seq-len 2048]

Writes the file to a temporary folder (or --dir; deleted unless --keep), then runs
`python -m studio data inspect FILE` in a child process with a cold cache and reports its wall
time, its peak resident memory (ru_maxrss: includes the pages of the memory-mapped Arrow file that
were read, which the kernel can drop at any time), its peak anonymous memory (RssAnon, sampled
every 20 ms: what the process itself allocated) and how many bytes it printed. The same is measured
on a file of a few normal rows first: the base. --code DIR runs another copy of the studio (e.g.
`git archive HEAD studio resources | tar -x -C DIR`) to measure the code before a change.
Run by hand; not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from data_inspect import write_jsonl  # noqa: E402 - the ~1 KB chat rows of the 200,000-row benchmark

WORDS = ["leaf", "water", "light", "soil", "root", "pot", "drain", "mist", "humid", "bright", "shade", "pest", "mite",
         "gnat", "rot", "yellow", "brown", "fern", "palm"]


def write_huge_field(path: Path, megabytes: float) -> int:
    """Five normal rows around one whose answer is `megabytes` MB of words (the huge row first)."""
    rng = random.Random(0)
    piece = " ".join(rng.choice(WORDS) for _ in range(200_000)) + " "
    size = int(megabytes * 1e6)
    answer = (piece * (size // len(piece) + 1))[:size]
    with path.open("w", encoding="utf-8") as fh:
        fh.write(json.dumps({"prompt": "Tell me everything about plants.", "answer": answer}) + "\n")
        for i in range(5):
            fh.write(json.dumps({"prompt": f"Question {i}: why is my {WORDS[i]} sad?", "answer": f"Give it light ({i})."}) + "\n")
    return path.stat().st_size


def write_large_file(path: Path, gigabytes: float) -> int:
    rows = int(gigabytes * 1e9 / 1065)  # the rows of data_inspect.write_jsonl average ~1,065 bytes
    return write_jsonl(path, rows)


def _sample_anon(pid: int, peak: dict, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            with open(f"/proc/{pid}/status") as fh:
                for line in fh:
                    if line.startswith("RssAnon:"):
                        peak["anon"] = max(peak.get("anon", 0), int(line.split()[1]) * 1024)
        except OSError:
            return
        stop.wait(0.02)


def measure(path: Path, seq_len: int, code: str | None) -> dict:
    """Run `studio data inspect` on `path` in a child process with a cold cache; its time and memory."""
    env = dict(os.environ, STUDIO_HOME=tempfile.mkdtemp(prefix="studio-home-"), TOKENIZERS_PARALLELISM="true")
    if code:
        env["PYTHONPATH"] = code
    out = tempfile.TemporaryFile()
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "studio", "data", "inspect", str(path), "--seq-len", str(seq_len)],
                            stdout=out, stderr=subprocess.PIPE, env=env, cwd=code or ROOT)  # (-m imports from the cwd first)
    peak: dict = {}
    stop = threading.Event()
    sampler = threading.Thread(target=_sample_anon, args=(proc.pid, peak, stop), daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    stop.set()
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace")
    shutil.rmtree(env["STUDIO_HOME"], ignore_errors=True)
    printed = out.seek(0, os.SEEK_END)
    out.seek(0)
    head = out.read(2000).decode(errors="replace")
    return {"rc": proc.returncode, "seconds": elapsed, "peak_rss": usage.ru_maxrss * 1024,
            "peak_anon": peak.get("anon", 0), "printed": printed, "head": head, "stderr": err[-2000:]}


def show(label: str, m: dict) -> None:
    mib = 2**20
    print(f"{label}: exit {m['rc']}, {m['seconds']:.1f} s, peak RSS {m['peak_rss'] / mib:,.0f} MiB, "
          f"peak anonymous {m['peak_anon'] / mib:,.0f} MiB, printed {m['printed']:,} bytes")
    if m["rc"] != 0:
        print(m["stderr"])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("case", choices=["field", "file"])
    ap.add_argument("--mb", type=float, default=50.0, help="field: the size of the huge answer in MB")
    ap.add_argument("--gb", type=float, default=1.0, help="file: the size of the file in GB")
    ap.add_argument("--seq-len", type=int, default=2048)
    ap.add_argument("--dir", type=Path, help="where to write the data (default: a temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the data file")
    ap.add_argument("--code", help="run this copy of the studio instead (a folder holding studio/ and resources/)")
    args = ap.parse_args()
    folder = Path(args.dir or tempfile.mkdtemp(prefix="hostile-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        small = folder / "small.jsonl"
        write_huge_field(small, 0.0001)
        path = folder / (f"field-{args.mb:g}mb.jsonl" if args.case == "field" else f"file-{args.gb:g}gb.jsonl")
        t0 = time.perf_counter()
        if not path.exists():
            size = write_huge_field(path, args.mb) if args.case == "field" else write_large_file(path, args.gb)
        else:
            size = path.stat().st_size
        print(f"data: {path.name}, {size / 1e6:,.0f} MB ({time.perf_counter() - t0:.0f} s to write)")
        print(f"command: python benchmarks/data_hostile.py {' '.join(sys.argv[1:])}")
        print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; code: {args.code or 'this checkout'}")
        base = measure(small, args.seq_len, args.code)
        show("base (6 short rows)", base)
        m = measure(path, args.seq_len, args.code)
        show(f"{path.name}", m)
        print(f"peak RSS over the base: {(m['peak_rss'] - base['peak_rss']) / 2**20:,.0f} MiB; "
              f"anonymous over the base: {(m['peak_anon'] - base['peak_anon']) / 2**20:,.0f} MiB")
        print("\n".join(m["head"].splitlines()[:8]))
    finally:
        if not args.keep and not args.dir:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
