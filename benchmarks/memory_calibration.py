"""How close the memory planner is to what a run really uses.

GPU (the real measurement; run by hand on a CUDA machine, see benchmarks/RESULTS.md):

    python benchmarks/memory_calibration.py --device cuda [--models qwen2.5-0.5b,llama-3.2-1b] [--out results.json]

  For each model (built once from its catalog config with random weights, saved as bf16 safetensors
  beside the demo tokenizer; no download), every case runs the studio's own worker in its own process
  on synthetic rows that fill the whole sequence length, with the preflight on: its event holds the
  peak of torch's allocated and reserved memory and the process's use from NVML (CUDA context
  included) on the worst batch, one full optimizer step included. The table sets them against plan().

CPU (a tiny case, so CI tests the harness without a GPU):

    python benchmarks/memory_calibration.py --device cpu

  The demo model in 4-bit with fp32 compute, in-process: weights, adapter, gradients and optimizer
  states measured from the tensors' storages, activations as the bytes autograd saves for backward
  (saved-tensor hooks), against the same components of plan(). Logits and CUDA overhead have no CPU
  counterpart and are left out.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


@dataclass(frozen=True)
class Case:
    model: str
    seq_len: int
    batch_size: int = 1
    rank: int = 16
    gradient_checkpointing: bool = True
    precision: str = "4bit"

    def label(self) -> str:
        ckpt = "ckpt" if self.gradient_checkpointing else "no-ckpt"
        return f"{self.model} {self.precision} b{self.batch_size}×{self.seq_len} r{self.rank} {ckpt}"


# Grouped by model: each model is built once, then its shapes vary. Sized for one H100 (80 GB).
GPU_CASES = [
    Case("qwen2.5-0.5b", 2048), Case("qwen2.5-0.5b", 8192, 1, 16), Case("qwen2.5-0.5b", 1024, 8, 64),
    Case("qwen2.5-0.5b", 512, 4, 16, False),
    Case("llama-3.2-1b", 4096), Case("llama-3.2-1b", 2048, 4, 32), Case("llama-3.2-1b", 1024, 2, 8, False, "16bit"),
    Case("llama-3.2-3b", 2048, 2, 16), Case("llama-3.2-3b", 8192, 1, 16, True, "8bit"),
    Case("phi-3-mini-4k-instruct", 2048, 2, 16),
    Case("llama-3-8b", 2048), Case("llama-3-8b", 8192, 1, 16), Case("llama-3-8b", 512, 8, 64, False),
    Case("mistral-7b-v0.3", 4096, 1, 16),
    Case("gemma-2-9b", 2048, 1, 16),
]
CPU_CASES = [Case("demo", 128, 2, 8), Case("demo", 256, 1, 16), Case("demo", 128, 2, 16, False)]


@dataclass
class Row:
    case: Case
    planned: dict
    measured: dict
    notes: list = field(default_factory=list)

    def error(self, planned_key: str = "total", measured_key: str = "total") -> float | None:
        p, m = self.planned.get(planned_key), self.measured.get(measured_key)
        return None if not p or not m else 100.0 * (p - m) / m


# ---------------------------------------------------------------------------------------------
# CPU: component by component, in-process
# ---------------------------------------------------------------------------------------------


def _storage_bytes(tensors) -> int:
    import torch

    seen = {}
    for t in tensors:
        if torch.is_tensor(t) and t.device.type != "meta":
            s = t.untyped_storage()
            seen[s.data_ptr()] = s.nbytes()
    return sum(seen.values())


def measure_cpu(case: Case) -> Row:
    import torch
    from torch.autograd.graph import saved_tensors_hooks

    from studio.core.memory import plan
    from studio.core.models import resolve_model
    from studio.core.recipe import RunConfig
    from studio.core.training.model import load_model

    config = RunConfig()
    config.model.source = case.model
    config.adapter.rank, config.adapter.alpha = case.rank, 2 * case.rank
    t = config.training
    t.precision, t.batch_size, t.seq_len, t.gradient_checkpointing, t.optimizer = case.precision, case.batch_size, case.seq_len, \
        case.gradient_checkpointing, "adamw"
    info = resolve_model(case.model)
    model = load_model(config, info, torch.device("cpu"), "float32")
    p = plan(info, config.adapter_spec(), config.train_shape(on_gpu=False), config.precision_for("float32"))

    params = list(model.parameters())
    param_ptrs = {x.untyped_storage().data_ptr() for x in params}
    quant = []
    for module in model.modules():
        state = getattr(getattr(module, "weight", None), "quant_state", None)
        if state is not None:
            quant += [module.weight.data, state.absmax, state.code]
            if state.nested:
                quant += [state.offset, state.state2.absmax, state.state2.code]
    trainable = [x for x in params if x.requires_grad]
    frozen = [x for x in params if not x.requires_grad and x.__class__.__name__ != "Params4bit"]

    saved: dict[int, int] = {}

    def pack(x):
        if torch.is_tensor(x) and x.untyped_storage().data_ptr() not in param_ptrs:
            saved[x.untyped_storage().data_ptr()] = x.untyped_storage().nbytes()
        return x

    ids = torch.randint(5, info.vocab_size, (case.batch_size, case.seq_len))
    optimizer = torch.optim.AdamW(trainable, lr=1e-4)
    model.train()
    with saved_tensors_hooks(pack, lambda x: x):
        out = model(input_ids=ids, labels=ids)
    forward_saved = sum(saved.values())
    out.loss.backward()
    optimizer.step()
    logits_bytes = out.logits.numel() * 4  # the loss keeps its fp32 log-probabilities: planned under "logits"
    measured = {
        "quantized_weights": _storage_bytes(quant),
        "unquantized_weights": _storage_bytes(frozen),
        "lora_weights": _storage_bytes(trainable),
        "lora_gradients": _storage_bytes(x.grad for x in trainable),
        "optimizer_states": _storage_bytes(v for s in optimizer.state.values() for v in s.values() if torch.is_tensor(v) and v.numel() > 1),
    }
    if not case.gradient_checkpointing:
        # Everything autograd saves in forward, minus the loss's log-probabilities. (Non-reentrant
        # checkpointing saves through hooks of its own, which these do not see: GPU cases measure it.)
        measured["activations"] = forward_saved - logits_bytes
    planned = {c.name: c.bytes for c in p.components if c.name in measured}
    measured["total"] = sum(measured.values())
    planned["total"] = sum(planned.values())
    return Row(case, planned, measured,
               ["CPU: storages and saved tensors; logits, CUDA overhead and checkpointed activations not measured"])


# ---------------------------------------------------------------------------------------------
# GPU: the real worker, its preflight event
# ---------------------------------------------------------------------------------------------


def synthetic_data(folder: Path, rows: int, words: int) -> Path:
    """Rows long enough to fill any sequence length after truncation."""
    import random

    rng = random.Random(0)
    vocab = "water light soil root leaf pot drain mist humid bright shade pest fern palm orchid repot prune".split()
    path = folder / "long.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for _ in range(rows):
            q = " ".join(rng.choices(vocab, k=16))
            a = " ".join(rng.choices(vocab, k=words))
            fh.write(json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}) + "\n")
    return path


def measure_gpu(case: Case, model_dir: Path, data: Path, work: Path) -> Row:
    from studio.core.recipe import RunConfig
    from studio.core.training import launcher
    from studio.core.training.events import read_events

    config = RunConfig()
    config.model.source, config.data.source, config.data.eval_fraction = str(model_dir), str(data), 0.0
    config.adapter.rank, config.adapter.alpha = case.rank, 2 * case.rank
    t = config.training
    t.precision, t.batch_size, t.seq_len = case.precision, case.batch_size, case.seq_len
    t.gradient_checkpointing = case.gradient_checkpointing
    t.steps, t.epochs, t.grad_accum, t.eval_every, t.save_every, t.sample_every, t.preflight = 2, None, 1, 0, 0, 0, True
    handle = launcher.start(config, work / f"run-{time.time_ns()}")
    finished = launcher.wait(handle, timeout=900)
    events = read_events(handle.run_dir / "events.jsonl")
    started = next((e for e in events if e["type"] == "started"), {})
    pre = next((e for e in events if e["type"] == "preflight"), {})
    steps = [e for e in events if e["type"] == "step"]
    planned = dict(started.get("planned_components") or {})
    planned["total"] = started.get("planned_bytes")
    measured = {
        "allocated": max([pre.get("measured_allocated_bytes") or 0] + [e.get("gpu_peak_bytes") or 0 for e in steps]),
        "reserved": max([pre.get("measured_reserved_bytes") or 0] + [e.get("gpu_peak_reserved_bytes") or 0 for e in steps]),
        "nvml": max([pre.get("measured_nvml_bytes") or 0] + [e.get("gpu_nvml_bytes") or 0 for e in steps]),
    }
    measured["total"] = measured["nvml"] or measured["reserved"]
    notes = [] if finished.get("status") == "completed" else [f"run {finished.get('status')}: {finished.get('error')}"]
    return Row(case, planned, measured, notes)


def build_random_model(name: str, folder: Path, overrides: dict | None = None) -> Path:
    """The catalog architecture with random weights (bf16 safetensors) and the demo tokenizer;
    `overrides` replaces config values (e.g. smaller sizes for a CPU check)."""
    import shutil

    import torch
    from transformers import AutoModelForCausalLM
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    from studio.core.models import catalog_entry
    from studio.core.paths import demo_model_dir

    entry = catalog_entry(name)
    raw = {**json.loads(entry.config_path.read_text()), **(overrides or {})}
    raw.pop("quantization_config", None)
    for key in ("pad_token_id", "bos_token_id", "eos_token_id"):  # a shrunk vocabulary must still hold them
        ids = raw.get(key)
        if isinstance(ids, int) and ids >= raw["vocab_size"] or isinstance(ids, list) and max(ids) >= raw["vocab_size"]:
            raw[key] = 0
    config = CONFIG_MAPPING[raw["model_type"]].from_dict(raw)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(folder)
    del model
    for f in demo_model_dir().iterdir():
        if f.name.startswith(("tokenizer", "chat_template", "special_tokens")):
            shutil.copy(f, folder / f.name)
    return folder


# ---------------------------------------------------------------------------------------------


def table(rows: list[Row], device: str) -> str:
    gib = 1024**3
    out = []
    if device == "cpu":
        names = ["quantized_weights", "unquantized_weights", "lora_weights", "lora_gradients", "optimizer_states", "activations", "total"]
        out.append("| case | component | planned MiB | measured MiB | error % |")
        out.append("|---|---|---:|---:|---:|")
        for r in rows:
            for n in names:
                if n not in r.measured:
                    continue
                p, m = r.planned.get(n, 0), r.measured.get(n, 0)
                err = f"{100 * (p - m) / m:+.1f}" if m else "-"
                out.append(f"| {r.case.label()} | {n} | {p / 2**20:.3f} | {m / 2**20:.3f} | {err} |")
    else:
        out.append("| case | planned GiB | allocated GiB | reserved GiB | NVML GiB | error vs NVML % |")
        out.append("|---|---:|---:|---:|---:|---:|")
        for r in rows:
            err = r.error()
            out.append(f"| {r.case.label()} | {(r.planned.get('total') or 0) / gib:.2f} | {r.measured['allocated'] / gib:.2f} | "
                       f"{r.measured['reserved'] / gib:.2f} | {r.measured['nvml'] / gib:.2f} | "
                       f"{'-' if err is None else f'{err:+.1f}'} |")
        errors = [abs(e) for e in (r.error() for r in rows) if e is not None]
        if errors:
            out.append(f"\nmedian |error| {statistics.median(errors):.1f}%, worst {max(errors):.1f}% over {len(errors)} cases")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cuda")
    ap.add_argument("--models", help="comma-separated catalog names (GPU): only these models' cases")
    ap.add_argument("--out", type=Path, help="also write the rows as JSON")
    args = ap.parse_args(argv)
    import torch

    rows: list[Row] = []
    if args.device == "cpu":
        for case in CPU_CASES:
            rows.append(measure_cpu(case))
        device = f"CPU ({os.cpu_count()} cores)"
    else:
        if not torch.cuda.is_available():
            print("No CUDA GPU here: use --device cpu for the harness check.", file=sys.stderr)
            return 2
        wanted = set(args.models.split(",")) if args.models else None
        cases = [c for c in GPU_CASES if wanted is None or c.model in wanted]
        device = torch.cuda.get_device_name(0)
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            data = synthetic_data(tmp, rows=64, words=6000)
            for name in dict.fromkeys(c.model for c in cases):
                t0 = time.time()
                model_dir = build_random_model(name, tmp / name)
                print(f"built {name} in {time.time() - t0:.0f} s", flush=True)
                for case in (c for c in cases if c.model == name):
                    t0 = time.time()
                    rows.append(measure_gpu(case, model_dir, data, tmp))
                    print(f"{case.label()}: {time.time() - t0:.0f} s", flush=True)
                import shutil

                shutil.rmtree(model_dir, ignore_errors=True)
    import transformers

    print(f"command: python benchmarks/memory_calibration.py {' '.join(sys.argv[1:] if argv is None else argv)}")
    print(f"device: {device}; torch {torch.__version__}, transformers {transformers.__version__}")
    print(table(rows, args.device))
    if args.out:
        args.out.write_text(json.dumps([{**asdict(r.case), "planned": r.planned, "measured": r.measured, "notes": r.notes}
                                        for r in rows], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
