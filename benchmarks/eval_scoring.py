"""How long `studio eval` takes on the demo (issue #19): the time to score a run's base model and its
checkpoints on Q golden questions, for Q in --questions and 1 or all checkpoints.

A demo run is trained once (--steps steps, a checkpoint every --save-every, all kept), then for each
(questions, checkpoints) pair its saved scores are deleted and `evaluate_run` scores it from cold in this
process, timed by the clock: the model load, the held-out and general-text losses and the greedy answers
(each answer at most twice the expected answer's length, 32 to 384 tokens). The questions are the demo's
12 golden questions followed by questions of the demo data (for timing only: their content does not
matter). Per-model time = (total - load) / models scored.

    python benchmarks/eval_scoring.py [--questions 10 25 50] [--steps 40] [--save-every 10] [--results benchmarks/RESULTS.md]

With --results, the table goes between `<!-- eval-scoring:start -->` and `<!-- eval-scoring:end -->` in
that file (a new section at its end when the markers are absent).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
START, END = "<!-- eval-scoring:start -->", "<!-- eval-scoring:end -->"


def _questions(n: int) -> list:
    from studio.core.evaluation import load_questions
    from studio.core.paths import demo_data_dir

    golden = load_questions(demo_data_dir() / "golden.jsonl")[0]
    extra = [q for q in load_questions(demo_data_dir() / "demo.jsonl")[0] if len(q.prompt) == 1]
    return (golden + extra)[:n]


def _train(home: Path, steps: int, save_every: int) -> Path:
    from tests.demo_runs import finished_demo_run

    return finished_demo_run(home, "bench", steps=steps, save_every=save_every, keep_checkpoints=steps // save_every,
                             learning_rate=2e-3)


def _score(run_dir: Path, questions: list, which: str) -> tuple[float, int, float]:
    """(seconds in all, models scored, seconds to load the model) from cold."""
    from studio.core.evaluation import evaluate_run

    shutil.rmtree(run_dir / "eval", ignore_errors=True)
    marks = []
    t0 = time.perf_counter()
    board = evaluate_run(run_dir, questions=questions, checkpoints=which,
                         on_progress=lambda message, fraction: marks.append(time.perf_counter()))
    total = time.perf_counter() - t0
    return total, len(board.rows), marks[0] - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--questions", type=int, nargs="+", default=[10, 25, 50])
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--save-every", type=int, default=10)
    p.add_argument("--results", type=Path)
    args = p.parse_args()
    home = Path(tempfile.mkdtemp(prefix="eval-bench-"))
    os.environ["STUDIO_HOME"] = str(home)
    t0 = time.perf_counter()
    run_dir = _train(home, args.steps, args.save_every)
    print(f"trained {args.steps} steps in {time.perf_counter() - t0:.1f} s", flush=True)
    lines = ["| questions | checkpoints | models scored (base + checkpoints) | total s | load s | s per model | s per answer |",
             "|---:|---|---:|---:|---:|---:|---:|"]
    for n in args.questions:
        questions = _questions(n)
        for which in ("last", "all"):
            total, models, load = _score(run_dir, questions, which)
            per_model = (total - load) / models
            line = (f"| {len(questions)} | {which} | {models} | {total:.1f} | {load:.1f} | {per_model:.1f} | "
                    f"{per_model / len(questions):.2f} |")
            print(line, flush=True)
            lines.append(line)
    shutil.rmtree(home, ignore_errors=True)
    table = "\n".join(lines)
    print(table)
    if args.results:
        _write(args.results, table, args)


def _write(path: Path, table: str, args) -> None:
    import torch

    head = (f"Command: `python benchmarks/eval_scoring.py --questions {' '.join(map(str, args.questions))} --steps {args.steps} "
            f"--save-every {args.save_every} --results benchmarks/RESULTS.md`  \n"
            f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, no GPU, torch {torch.__version__}; "
            f"{datetime.date.today()}.")
    block = f"{START}\n{head}\n\n{table}\n{END}"
    text = path.read_text(encoding="utf-8")
    if START in text and END in text:
        text = text[:text.index(START)] + block + text[text.index(END) + len(END):]
    else:
        text += f"\n## Scoring a run's checkpoints on golden questions (`studio eval`, demo model, CPU)\n\n{block}\n"
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
