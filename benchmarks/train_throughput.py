"""The studio's worker against a plain transformers + PEFT + bitsandbytes script: tokens/s and peak memory.

    python benchmarks/train_throughput.py [--steps 30] [--repeats 3] [--model demo] [--seq-len 256] [--batch-size 4]
    python benchmarks/train_throughput.py --model Qwen/Qwen2.5-0.5B --random-weights --seq-len 1024   # on a GPU

Both sides train the same model on the same data with the same shapes, optimizer and steps (QLoRA:
4-bit NF4 + double quantization, LoRA r16 on all linear layers, gradient checkpointing), each in a
fresh process, alternating, `--repeats` times. Tokens/s counts non-padding tokens from the second
step on (the first step pays one-off costs), from the moment each step is logged. Run by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PLAIN_SCRIPT = r'''
import json, sys, time, torch
from transformers import (AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig, DataCollatorForSeq2Seq, Trainer,
                          TrainerCallback, TrainingArguments)
from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
from datasets import Dataset

a = json.loads(sys.argv[1])
cuda = torch.cuda.is_available()
dtype = torch.bfloat16 if cuda else torch.float32
tok = AutoTokenizer.from_pretrained(a["model_path"])
if tok.pad_token is None:
    tok.pad_token = tok.eos_token
rows = [json.loads(line)["messages"] for line in open(a["data"], encoding="utf-8") if line.strip()]
def encode(m):
    ids = tok.apply_chat_template(m, tokenize=True, return_dict=True)["input_ids"][: a["seq_len"]]
    return {"input_ids": ids, "labels": list(ids)}
ds = Dataset.from_list([encode(m) for m in rows])
qc = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=dtype)
kw = {"device_map": {"": 0}} if cuda else {}
model = AutoModelForCausalLM.from_pretrained(a["model_path"], quantization_config=qc, dtype=dtype, **kw)
model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True, gradient_checkpointing_kwargs={"use_reentrant": False})
model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM"))
marks = []
class Clock(TrainerCallback):
    def on_log(self, args, state, control, logs=None, **k):
        if logs and "loss" in logs:
            marks.append((state.global_step, time.time(), state.num_input_tokens_seen))
args = TrainingArguments(output_dir=a["out"], max_steps=a["steps"], per_device_train_batch_size=a["batch_size"],
    gradient_accumulation_steps=1, learning_rate=1e-3, lr_scheduler_type="cosine", optim=a["optim"], logging_steps=1,
    save_strategy="no", report_to="none", disable_tqdm=True, remove_unused_columns=False, seed=42,
    include_num_input_tokens_seen="non_padding", bf16=cuda, use_cpu=not cuda)
trainer = Trainer(model=model, args=args, train_dataset=ds, callbacks=[Clock()],
                  data_collator=DataCollatorForSeq2Seq(tok, padding="longest", label_pad_token_id=-100))
if cuda:
    torch.cuda.reset_peak_memory_stats()
trainer.train()
peak = torch.cuda.max_memory_allocated() if cuda else None
print("MARKS " + json.dumps({"marks": marks, "peak": peak}))
'''


def tokens_per_second(marks: list) -> float:
    """Non-padding tokens per second from the first logged step to the last."""
    (_, t0, n0), (_, t1, n1) = marks[0], marks[-1]
    return (n1 - n0) / (t1 - t0)


def run_plain(args, model_path: str, data: str) -> dict:
    with tempfile.TemporaryDirectory() as out:
        spec = {"model_path": model_path, "data": data, "seq_len": args.seq_len, "steps": args.steps,
                "batch_size": args.batch_size, "optim": "paged_adamw_8bit" if args.cuda else "adamw_torch", "out": out}
        proc = subprocess.run([sys.executable, "-c", PLAIN_SCRIPT, json.dumps(spec)], capture_output=True, text=True)
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("MARKS ")), None)
        if line is None:
            raise RuntimeError(proc.stderr[-3000:])
        result = json.loads(line[6:])
        return {"tokens_per_s": tokens_per_second(result["marks"]), "peak": result["peak"]}


def run_studio(args, data: str) -> dict:
    from studio.core.recipe import RunConfig
    from studio.core.training import launcher
    from studio.core.training.events import read_events

    config = RunConfig()
    config.model.source, config.data.source, config.data.eval_fraction = args.model, data, 0.0
    t = config.training
    t.steps, t.epochs, t.batch_size, t.grad_accum, t.seq_len = args.steps, None, args.batch_size, 1, args.seq_len
    t.learning_rate, t.eval_every, t.save_every, t.sample_every = 1e-3, 0, 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        handle = launcher.start(config, Path(tmp) / "run")
        finished = launcher.wait(handle)
        if finished["status"] != "completed":
            raise RuntimeError(finished)
        steps = [e for e in read_events(handle.run_dir / "events.jsonl") if e["type"] == "step"]
        marks = [(e["step"], e["time"], e["tokens_seen"]) for e in steps]
        peak = max((e.get("gpu_peak_bytes") or 0) for e in steps) or None
        return {"tokens_per_s": tokens_per_second(marks), "peak": peak}


def build_random_model(name: str, folder: Path) -> str:
    """A real architecture with random weights (no download) and the demo tokenizer, saved as safetensors."""
    import shutil

    import torch
    from transformers import AutoModelForCausalLM
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    from studio.core.models import catalog_entry
    from studio.core.paths import demo_model_dir

    entry = catalog_entry(name)
    raw = json.loads(entry.config_path.read_text())
    config = CONFIG_MAPPING[raw["model_type"]].from_dict(raw)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(folder)
    for f in demo_model_dir().iterdir():
        if f.name.startswith(("tokenizer", "chat_template", "special_tokens")):
            shutil.copy(f, folder / f.name)
    return str(folder)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="demo")
    ap.add_argument("--data", default="demo")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--random-weights", action="store_true",
                    help="build --model's architecture (a catalog name or config) with random weights and the demo tokenizer")
    args = ap.parse_args()
    import torch

    from studio.core.models import resolve_model
    from studio.core.paths import demo_data_dir

    args.cuda = torch.cuda.is_available()
    keep = None
    if args.random_weights:
        keep = tempfile.TemporaryDirectory()
        args.model = model_path = build_random_model(args.model, Path(keep.name))
    info = resolve_model(args.model)
    model_path = str(info.path)
    data = str(demo_data_dir() / "demo.jsonl") if args.data == "demo" else args.data
    device = torch.cuda.get_device_name(0) if args.cuda else f"CPU ({os.cpu_count()} cores)"
    results = {"studio": [], "plain": []}
    for i in range(args.repeats):
        for name, fn in (("plain", lambda: run_plain(args, model_path, data)), ("studio", lambda: run_studio(args, data))):
            t0 = time.time()
            r = fn()
            results[name].append(r)
            print(f"repeat {i + 1} {name:<6} {r['tokens_per_s']:8.1f} tok/s  peak {r['peak']}  ({time.time() - t0:.0f} s)", flush=True)
    med = {k: statistics.median(r["tokens_per_s"] for r in v) for k, v in results.items()}
    print(f"\ncommand: python benchmarks/train_throughput.py --model {args.model} --steps {args.steps} --repeats {args.repeats} "
          f"--seq-len {args.seq_len} --batch-size {args.batch_size}")
    print(f"device: {device}; torch {torch.__version__}")
    print(f"median tokens/s: plain {med['plain']:.1f}, studio {med['studio']:.1f} "
          f"(studio/plain = {med['studio'] / med['plain']:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
