"""Preference tuning of the demo model on the CPU: DPO and ORPO on resources/demo-data/preferences.jsonl.

    python benchmarks/dpo_demo.py [--steps 48] [--results benchmarks/RESULTS.md]

For each setting, the real worker trains (4-bit base, LoRA rank 16, micro-batch 2 × 2 accumulation, 384
tokens) and the script reports the time, the held-out pairs' reward margin and preference accuracy
before the first step and at the end, and how many of the first six golden questions (which the pairs
never ask) the base and the fine-tuned model answer greedily in the preferred shape (numbered steps or
the "Plant doctor says:" marker).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT / "resources" / "demo-data"
SETTINGS = [("dpo", 0.1, 5e-4), ("dpo", 0.02, 5e-4), ("orpo", 0.1, 5e-4)]


def preferred_shape(text: str) -> bool:
    return "\n1. " in text or text.startswith(("1. ", "Plant doctor says:"))


def greedy_answers(adapter: Path | None, questions: list) -> list[str]:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from studio.core.generate import GenerationSettings, generate
    from studio.core.models import load_tokenizer, resolve_model

    info = resolve_model("demo")
    model = AutoModelForCausalLM.from_pretrained(info.path, dtype=torch.float32)
    if adapter is not None:
        model = PeftModel.from_pretrained(model, str(adapter))
    tokenizer = load_tokenizer(info)
    return [generate(model, tokenizer, q, GenerationSettings(max_new_tokens=48)) for q in questions]


def train(home: Path, method: str, beta: float, lr: float, steps: int) -> tuple[Path, float]:
    from studio.core import runs
    from studio.core.recipe import DataSection, ModelSection, OutputSection, RunConfig, TrainingSection
    from studio.core.training import worker

    name = f"{method}-beta{beta:g}"
    config = RunConfig(model=ModelSection(source="demo"), data=DataSection(source=str(DATA / "preferences.jsonl")),
                       output=OutputSection(name=name),
                       training=TrainingSection(method=method, beta=beta, learning_rate=lr, steps=steps, epochs=None,
                                                batch_size=2, grad_accum=2, seq_len=384, eval_every=max(1, steps // 4),
                                                save_every=steps, sample_every=0))
    run_dir = runs.create_run_dir(config, home / "runs" / name)
    started = time.monotonic()
    code = worker.run(run_dir, echo=None)
    if code != 0:
        raise SystemExit(f"{name} failed: see {run_dir / runs.STDERR}")
    return run_dir, time.monotonic() - started


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=48)
    ap.add_argument("--results", type=Path, help="append the table to this Markdown file")
    args = ap.parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="dpo-demo-"))
    os.environ["STUDIO_HOME"] = str(home)
    from studio.core import runs

    questions = [json.loads(line)["messages"][:1] for line in
                 (DATA / "golden.jsonl").read_text(encoding="utf-8").splitlines()[:6]]
    base = sum(map(preferred_shape, greedy_answers(None, questions)))
    lines = [f"| method | beta | lr | steps | time (s) | held-out margin start → end | held-out accuracy start → end | "
             f"golden answers in the preferred shape (base: {base}/6) |", "|---|---|---|---|---|---|---|---|"]
    for method, beta, lr in SETTINGS:
        run_dir, seconds = train(home, method, beta, lr, args.steps)
        series = runs.RunHistory.read(run_dir).series
        margin, accuracy = series["eval_reward_margin"], series["eval_reward_accuracy"]
        shaped = sum(map(preferred_shape, greedy_answers(run_dir / runs.ADAPTER, questions)))
        lines.append(f"| {method.upper()} | {beta:g} | {lr:g} | {args.steps} | {seconds:.0f} | {margin[0][1]:+.3f} → "
                     f"{margin[-1][1]:+.3f} | {accuracy[0][1]:.2f} → {accuracy[-1][1]:.2f} | {shaped}/6 |")
        print(lines[-1], flush=True)
    table = "\n".join(lines)
    print(table)
    if args.results:
        with args.results.open("a", encoding="utf-8") as fh:
            fh.write(f"\n## Preference tuning of the demo model (DPO, ORPO) on the CPU\n\n"
                     f"`python benchmarks/dpo_demo.py --steps {args.steps}` (2 CPU cores, no GPU; "
                     f"{time.strftime('%Y-%m-%d')}). 96 pairs (86 trained, 10 held out): the Plant doctor's answer chosen, "
                     "the same facts in prose rejected. The margin and accuracy are TRL's, on the held-out pairs, "
                     "measured before the first step and at the end; a margin of 0 and an accuracy of 0 at the start "
                     "of DPO are by construction (the policy is the reference).\n\n" + table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
