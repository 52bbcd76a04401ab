"""The planner against measured GPU memory, phase by phase (issue #17; run by benchmarks/gpu_check.sh).

    python benchmarks/gpu_calibrate.py --out DIR [--budget-s 300] [--models qwen2.5-0.5b,...]

For each architecture (the catalog config with random weights, built on the GPU and saved as bf16
safetensors in a RAM folder beside the demo tokenizer: no download), one child process measures
its cases in turn. A case is the studio's own path: `training.model.load_model` (bitsandbytes 4/8-bit,
PEFT LoRA or DoRA, the fp32 copy or not, checkpointing) and the worker's Trainer class with the
chunked loss, paged 8-bit AdamW, bf16 autocast, two optimizer steps on random token ids that
fill the whole sequence (every token a target), then one evaluation batch.

Per case it records, for the second step (the first also creates the optimizer states):
  forward   from the model's forward call to its return (labels inside: transformers' own loss)
  loss      from there to compute_loss's return (the studio's chunked loss runs here)
  backward  from there to the optimizer step (gradient clipping included)
  optimizer the optimizer step
each as torch's peak allocated bytes within the phase and the allocated bytes at its end; the
whole-run peaks of allocated and reserved bytes; the GPU memory the driver shows in use (NVML,
the device's used memory minus what was in use before this process touched CUDA, which holds the
CUDA context, library workspaces, the allocator's reserve and bitsandbytes' paged optimizer
states, which live outside torch's allocator); the evaluation batch's peak; and plan()'s components
for the same settings. One plain-loop case trains every weight in pure bf16 (no fp32 master copy)
for the full fine-tuning model.

`--cpu-rehearsal`: the same code on the CPU with each architecture shrunk (a few seconds each), so
the GPU minutes are only spent measuring.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import subprocess
import sys
import time
import traceback
from dataclasses import asdict, dataclass, replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import memory_calibration  # noqa: E402  (its Case; build_random_model: the catalog architecture, random weights)
from calibration_pairs import preference_trainer  # noqa: E402  (DPO and ORPO cases: TRL's trainer on random pairs)
from memory_calibration import build_random_model  # noqa: E402


@dataclass(frozen=True)
class Case(memory_calibration.Case):
    """memory_calibration's case (model, shape, rank, checkpointing, precision: 4bit, 8bit, 16bit,
    or full-bf16, every weight trained in pure bf16) and the memory options."""

    use_dora: bool = False
    upcast_frozen: bool = True
    chunked_loss: bool = True
    optimizer: str = "auto"
    method: str = "sft"  # dpo, orpo: TRL's trainer as the worker builds it, on pairs of sequences

    def label(self) -> str:
        parts = [self.model, self.precision, f"b{self.batch_size}×{self.seq_len}"]
        if self.precision != "full-bf16":
            parts.append(f"r{self.rank}" + (" DoRA" if self.use_dora else ""))
        parts.append("ckpt" if self.gradient_checkpointing else "no-ckpt")
        if self.precision in ("4bit", "8bit") and not self.upcast_frozen:
            parts.append("no-fp32-copy")
        if not self.chunked_loss:
            parts.append("full-loss")
        if self.optimizer != "auto":
            parts.append(self.optimizer)
        if self.method != "sft":
            parts.append(self.method.upper())
        return " ".join(parts)


# Grouped by architecture; each group runs in one child process, in this order (most valuable first).
CASES = [
    # qwen2 (152k vocabulary, tied embeddings)
    Case("qwen2.5-0.5b", 2048), Case("qwen2.5-0.5b", 8192), Case("qwen2.5-0.5b", 2048, chunked_loss=False),
    Case("qwen2.5-0.5b", 1024, 4, 64, False), Case("qwen2.5-0.5b", 1024, 2, precision="16bit"),
    Case("qwen2.5-0.5b", 2048, precision="full-bf16", optimizer="adamw"),
    # llama (128k vocabulary)
    Case("llama-3.2-1b", 4096), Case("llama-3.2-1b", 2048, 2), Case("llama-3.2-1b", 2048, 2, use_dora=True),
    Case("llama-3.2-1b", 4096, upcast_frozen=False), Case("llama-3.2-1b", 2048, precision="8bit"),
    Case("llama-3.2-1b", 1024, 2, 16, False, chunked_loss=False),
    # gemma2 (256k vocabulary, soft-capped logits)
    Case("gemma-2-2b", 2048), Case("gemma-2-2b", 4096, upcast_frozen=False), Case("gemma-2-2b", 2048, chunked_loss=False),
    # phi3 (fused qkv and gate_up projections)
    Case("phi-3-mini-4k-instruct", 4096), Case("phi-3-mini-4k-instruct", 1024, 2, 16, False),
    # qwen3
    Case("qwen3-0.6b", 4096), Case("qwen3-0.6b", 2048, 2, 32, use_dora=True),
    # preference tuning (issue #20): a chosen and a rejected sequence per example; DPO's reference pass
    Case("llama-3.2-1b", 2048, method="dpo"), Case("llama-3.2-1b", 4096, method="dpo", upcast_frozen=False),
    Case("llama-3.2-1b", 2048, method="orpo"), Case("qwen2.5-0.5b", 2048, 2, method="dpo"),
    # the same on a 16-bit base, for a lent machine that carries TRL and datasets instead of bitsandbytes
    # (pyarrow's 55 MB and bitsandbytes' 43 MB do not travel together): gpu_check.sh --preference
    Case("llama-3.2-1b", 2048, precision="16bit", optimizer="adamw", method="dpo"),
    Case("llama-3.2-1b", 4096, precision="16bit", optimizer="adamw", method="dpo"),
    Case("llama-3.2-1b", 2048, precision="16bit", optimizer="adamw", method="orpo"),
    Case("qwen2.5-0.5b", 2048, 2, precision="16bit", optimizer="adamw", method="dpo"),
]

# Shrunk architectures for the CPU rehearsal: the code paths, not the figures.
REHEARSAL = {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4,
             "num_key_value_heads": 2, "head_dim": 32, "vocab_size": 4096, "max_position_embeddings": 4096}


def rehearsal_case(case: Case) -> Case:
    return replace(case, seq_len=min(case.seq_len, 128), batch_size=min(case.batch_size, 2), optimizer="adamw")


# ---------------------------------------------------------------------------------------------
# Memory readings
# ---------------------------------------------------------------------------------------------


class Nvml:
    """The device's used memory from NVML (0 where there is no driver)."""

    def __init__(self):
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml, self._handle = pynvml, pynvml.nvmlDeviceGetHandleByIndex(0)
        except Exception:
            self._nvml = None

    def used(self) -> int:
        return int(self._nvml.nvmlDeviceGetMemoryInfo(self._handle).used) if self._nvml else 0


class PhaseProbe:
    """Peak and end-of-phase allocated bytes, phase by phase, for every training step."""

    def __init__(self, on_gpu: bool):
        import torch

        self.torch, self.on_gpu = torch, on_gpu
        self.steps: list[dict] = []
        self._current: dict = {}
        self.active = True  # off for the evaluation batch, whose peak is read on its own

    def _read(self) -> tuple[int, int]:
        if not self.on_gpu:
            return 0, 0
        cuda = self.torch.cuda
        cuda.synchronize()
        return int(cuda.max_memory_allocated()), int(cuda.memory_allocated())

    def mark(self, phase: str) -> None:
        if not self.active:
            return
        peak, now = self._read()
        self._current[phase] = {"peak": peak, "end": now}
        if self.on_gpu:
            self.torch.cuda.reset_peak_memory_stats()
        if phase == "optimizer":
            self.steps.append(self._current)
            self._current = {}

    def attach(self, model, optimizer) -> None:
        def named(phase: str) -> str:  # DPO's reference forward runs without gradients inside the training step
            return phase if self.torch.is_grad_enabled() else f"reference_{phase}"

        model.register_forward_pre_hook(lambda *_: self.mark(named("before")))
        model.register_forward_hook(lambda *_: self.mark(named("forward")))
        inner = getattr(optimizer, "optimizer", optimizer)  # accelerate wraps it
        inner.register_step_pre_hook(lambda *_: self.mark("backward"))
        inner.register_step_post_hook(lambda *_: self.mark("optimizer"))


def probed(trainer_class, probe: PhaseProbe):
    """`trainer_class` with the end of its loss marked as a phase (training steps only)."""

    class Probed(trainer_class):
        def compute_loss(self, *args, **kwargs):
            out = super().compute_loss(*args, **kwargs)
            if self.model.training:
                probe.mark("loss")
            return out

    return Probed


def attach_probe(probe: PhaseProbe):
    """A Trainer callback that hooks `probe` to the model and optimizer when training begins."""
    from transformers import TrainerCallback

    class Attach(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, optimizer=None, **kw):
            probe.attach(model, optimizer)

    return Attach()


# ---------------------------------------------------------------------------------------------
# One case
# ---------------------------------------------------------------------------------------------


def random_rows(n: int, seq_len: int, vocab: int, seed: int = 0) -> list[dict]:
    import torch

    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (n, seq_len), generator=g).tolist()
    return [{"input_ids": row, "labels": list(row)} for row in ids]


def studio_config(case: Case, model_dir: Path):
    from studio.core.recipe import RunConfig

    config = RunConfig()
    config.model.source = str(model_dir)
    config.adapter.rank, config.adapter.alpha, config.adapter.use_dora = case.rank, 2 * case.rank, case.use_dora
    t = config.training
    t.precision, t.batch_size, t.seq_len, t.grad_accum = case.precision, case.batch_size, case.seq_len, 1
    t.gradient_checkpointing, t.upcast_frozen, t.chunked_loss = case.gradient_checkpointing, case.upcast_frozen, case.chunked_loss
    t.optimizer, t.attention = case.optimizer, "sdpa"
    t.method, t.save_every, t.eval_every = case.method, 0, 0
    return config


def planned(case: Case, config, info, on_gpu: bool) -> dict:
    from studio.core.memory import plan

    if case.precision == "full-bf16":
        return {}  # not in the planner's model yet
    shape = config.train_shape(on_gpu, info.model_type)
    p = plan(info, config.adapter_spec(), shape, config.precision_for("bfloat16"))
    return {"total": p.total_bytes, **{c.name: c.bytes for c in p.components}}


def full_bf16_model(model_dir: Path, case: Case, device):
    """Every weight trained in pure bf16 (no fp32 master copy), as a plain script does it."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16, attn_implementation="sdpa",
                                                 device_map={"": device.index or 0} if device.type == "cuda" else None)
    if case.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False
    return model


def measure(case: Case, model_dir: Path, on_gpu: bool, nvml: Nvml, nvml_idle: int) -> dict:
    import tempfile

    import torch
    from transformers import PrinterCallback, Trainer, TrainingArguments

    from studio.core.models import load_tokenizer, resolve_model
    from studio.core.training import model as training_model
    from studio.core.training import trainer as training_trainer

    device = torch.device("cuda", 0) if on_gpu else torch.device("cpu")
    compute = "bfloat16"
    config = studio_config(case, model_dir)
    info = resolve_model(str(model_dir))
    shape = config.train_shape(on_gpu, info.model_type) if case.precision != "full-bf16" else None
    if on_gpu:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    base_allocated = torch.cuda.memory_allocated() if on_gpu else 0
    nvml_start = nvml.used() - nvml_idle  # what earlier cases of this process still hold (context, workspaces)
    if case.method != "sft":  # TRL's trainer, which loads (or wraps) the model itself
        return measure_preference(case, config, info, device, compute, on_gpu, nvml, nvml_idle, base_allocated, nvml_start)
    t0 = time.perf_counter()
    if case.precision == "full-bf16":
        model = full_bf16_model(model_dir, case, device)
        trainer_class, extra, collator = Trainer, {}, None
    else:
        model = training_model.load_model(config, info, device, compute)
        trainer_class = training_trainer.trainer_class()
        extra = {"loss_chunk_tokens": shape.loss_chunk_tokens}
        collator = training_trainer.make_collator(shape, load_tokenizer(info), on_gpu)
    load_s = time.perf_counter() - t0
    loaded_allocated = (torch.cuda.memory_allocated() if on_gpu else 0) - base_allocated
    probe = PhaseProbe(on_gpu)
    rows = random_rows(2 * case.batch_size + case.batch_size, case.seq_len, info.vocab_size)
    train_rows, eval_rows = rows[: 2 * case.batch_size], rows[2 * case.batch_size:]
    optim = "adamw_torch" if case.optimizer == "adamw" or shape is None else training_trainer.OPTIMIZER_NAMES[shape.optimizer]
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out, max_steps=2, per_device_train_batch_size=case.batch_size, per_device_eval_batch_size=case.batch_size,
            gradient_accumulation_steps=1, learning_rate=1e-4, lr_scheduler_type="constant", max_grad_norm=1.0, optim=optim,
            logging_steps=1, save_strategy="no", eval_strategy="no", bf16=True, use_cpu=not on_gpu, report_to="none",
            disable_tqdm=True, remove_unused_columns=False, prediction_loss_only=True, dataloader_pin_memory=False)
        trainer = probed(trainer_class, probe)(model=model, args=args, train_dataset=train_rows, data_collator=collator,
                                               callbacks=[attach_probe(probe)], **extra)
        trainer.remove_callback(PrinterCallback)
        readings = train_and_read(trainer, probe, on_gpu, nvml, nvml_idle, base_allocated,
                                  functools.partial(trainer.evaluate, eval_dataset=eval_rows))
    readings.update(let_go(trainer, case, config, info, on_gpu))
    return {"case": asdict(case), "label": case.label(), "loaded_allocated": loaded_allocated, "nvml_start": nvml_start,
            "base_allocated": base_allocated, "phases": probe.steps, **readings, "tokens": case.batch_size * case.seq_len,
            "load_s": round(load_s, 2), "vocab_size": info.vocab_size, "model_type": info.model_type}


def train_and_read(trainer, probe, on_gpu: bool, nvml, nvml_idle: int, base_allocated: int, evaluate) -> dict:
    """`trainer`'s two steps, then one evaluation batch (`evaluate()`): the whole run's peaks, the driver's
    count, the time, the eval loss and the evaluation's own peak."""
    import torch

    if on_gpu:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t1 = time.perf_counter()
    trainer.train()
    train_s = time.perf_counter() - t1
    probe.active = False
    result = {"allocated": 0, "reserved": 0, "nvml": 0}
    if on_gpu:
        torch.cuda.synchronize()
        phase_peak = max((v["peak"] for step in probe.steps for v in step.values()), default=0)  # marks reset the peak
        result = {"allocated": max(phase_peak, int(torch.cuda.max_memory_allocated())) - base_allocated,
                  "reserved": int(torch.cuda.max_memory_reserved()), "nvml": nvml.used() - nvml_idle}
        torch.cuda.reset_peak_memory_stats()
    eval_loss = evaluate().get("eval_loss")
    eval_peak = int(torch.cuda.max_memory_allocated()) - base_allocated if on_gpu else 0
    return {"measured": result, "train_s": round(train_s, 2), "eval_loss": eval_loss, "eval_peak": eval_peak}


def let_go(trainer, case: Case, config, info, on_gpu: bool) -> dict:
    """The losses, the trainable parameters and the plan; then the model and trainer freed for the next case."""
    import torch

    model = trainer.model
    facts = {"losses": [h["loss"] for h in trainer.state.log_history if "loss" in h],
             "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
             "planned": planned(case, config, info, on_gpu)}
    del trainer, model
    gc.collect()
    if on_gpu:
        torch.cuda.empty_cache()
    return facts


def measure_preference(case: Case, config, info, device, compute: str, on_gpu: bool, nvml, nvml_idle: int,
                       base_allocated: int, nvml_start: int) -> dict:
    """One DPO or ORPO case: two optimizer steps of TRL's trainer, phase by phase (DPO's reference
    forward, which runs without gradients, is its own phase), then one evaluation batch."""
    import tempfile

    from transformers import PrinterCallback

    from studio.core.training import trainer as training_trainer

    probe = PhaseProbe(on_gpu)
    with tempfile.TemporaryDirectory() as out:
        trainer = preference_trainer(case, config, info, device, compute, on_gpu, out,  # calibration_pairs.py
                                     probed(training_trainer.preference_trainer_class(case.method), probe))
        trainer.add_callback(attach_probe(probe))
        trainer.remove_callback(PrinterCallback)
        readings = train_and_read(trainer, probe, on_gpu, nvml, nvml_idle, base_allocated, trainer.evaluate)
    readings.update(let_go(trainer, case, config, info, on_gpu))
    return {"case": asdict(case), "label": case.label(), "loaded_allocated": None, "nvml_start": nvml_start,
            "base_allocated": base_allocated, "phases": probe.steps, **readings, "tokens": 2 * case.batch_size * case.seq_len,
            "load_s": None, "vocab_size": info.vocab_size, "model_type": info.model_type}


# ---------------------------------------------------------------------------------------------
# Building the architectures, the child per architecture, the parent
# ---------------------------------------------------------------------------------------------


def runnable(case: Case, methods: tuple[str, ...]) -> bool:
    """A case of the methods asked for, whose libraries this machine has (bitsandbytes for 4/8-bit, TRL
    and datasets for preference tuning)."""
    import importlib.util

    if case.method not in methods:
        return False
    needs = (["bitsandbytes"] if case.precision in ("4bit", "8bit") else []) + (["trl", "datasets"] if case.method != "sft" else [])
    return all(importlib.util.find_spec(n) is not None for n in needs)


def child(name: str, work: Path, out: Path, rehearsal: bool, deadline: float, index: int | None = None,
          build_only: bool = False, methods: tuple[str, ...] = ("sft", "dpo", "orpo")) -> int:
    """Measure `name`'s cases (only CASES[index] with `index`: a process per case, so no case
    inherits another's memory); the model is built by the first call and reused."""
    import warnings

    warnings.filterwarnings("ignore")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    nvml = Nvml()
    nvml_idle = nvml.used()  # before this process touches CUDA
    import torch

    on_gpu = torch.cuda.is_available() and not rehearsal
    model_dir = work / name
    if build_only or not (model_dir / "config.json").exists():
        t0 = time.time()
        torch.manual_seed(0)
        build_random_model(name, model_dir, REHEARSAL if rehearsal else None)
        print(f"[{name}] built in {time.time() - t0:.1f} s", flush=True)
        if build_only:  # the measuring processes start with nothing on the GPU
            return 0
    chosen = [CASES[index]] if index is not None else [c for c in CASES if c.model == name and runnable(c, methods)]
    cases = [rehearsal_case(c) if rehearsal else c for c in chosen]
    with out.open("a", encoding="utf-8") as fh:
        for case in cases:
            if time.time() > deadline:
                print(f"[{name}] out of time: skipped {case.label()}", flush=True)
                continue
            t1 = time.time()
            try:
                row = measure(case, model_dir, on_gpu, nvml, nvml_idle)
            except Exception as exc:  # one case's failure must not lose the others
                traceback.print_exc()
                row = {"case": asdict(case), "label": case.label(), "error": f"{type(exc).__name__}: {exc}"[:500]}
                gc.collect()
                if on_gpu:
                    torch.cuda.empty_cache()
            row["own_process"] = index is not None
            fh.write(json.dumps(row) + "\n")
            fh.flush()
            print(f"[{name}] {case.label()}: {time.time() - t1:.1f} s "
                  f"{'error: ' + row['error'] if 'error' in row else _short(row)}", flush=True)
    return 0


def _short(row: dict) -> str:
    m, p = row["measured"], row["planned"].get("total")
    gib = 1024**3
    err = f" plan {p / gib:.2f} ({100 * (p - m['nvml']) / m['nvml']:+.1f}% vs NVML)" if p and m["nvml"] else ""
    return f"allocated {m['allocated'] / gib:.2f} reserved {m['reserved'] / gib:.2f} NVML {m['nvml'] / gib:.2f} GiB{err}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True, help="folder for calibration.jsonl")
    ap.add_argument("--work", type=Path, default=Path("/dev/shm/studio-calibration"))
    ap.add_argument("--models", help="comma-separated catalog names (default: all, in CASES order)")
    ap.add_argument("--budget-s", type=float, default=300.0, help="stop starting cases after this many seconds")
    ap.add_argument("--cpu-rehearsal", action="store_true")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--case", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--per-case", action="store_true", help="a process per case (clean readings; slower)")
    ap.add_argument("--skip-first", action="store_true", help="with --per-case: leave out each model's first case")
    ap.add_argument("--methods", default="sft,dpo,orpo", help="the training methods whose cases run (those whose "
                    "libraries this machine lacks are left out)")
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    results = a.out / "calibration.jsonl"
    if a.child:
        return child(a.child, a.work, results, a.cpu_rehearsal, a.deadline, a.case, a.build_only, tuple(a.methods.split(",")))
    deadline = time.time() + a.budget_s
    methods = tuple(a.methods.split(","))
    names = a.models.split(",") if a.models else list(dict.fromkeys(c.model for c in CASES if c.method in methods))
    for name in names:
        if time.time() > deadline:
            print(f"out of time: {name} not measured", flush=True)
            continue
        cmd = [sys.executable, __file__, "--out", str(a.out), "--work", str(a.work), "--child", name,
               "--deadline", str(deadline), "--methods", a.methods] + (["--cpu-rehearsal"] if a.cpu_rehearsal else [])
        indices = [i for i, c in enumerate(CASES) if c.model == name and runnable(c, methods)]
        runs = [cmd + ["--case", str(i)] for i in indices[1 if a.skip_first else 0:]] if a.per_case else [cmd]
        if a.per_case:
            runs.insert(0, cmd + ["--build-only"])
        for run in runs:
            try:
                code = subprocess.run(run, timeout=max(30.0, deadline - time.time() + 120)).returncode
            except subprocess.TimeoutExpired:
                code = "timeout"
            print(f"[{name}] child finished: {code}", flush=True)
        subprocess.run(["rm", "-rf", str(a.work / name)])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
