"""Peak memory and tokens/s: a plain QLoRA script against the studio's worker path and its memory options.

GPU (the measurement that matters; run by hand, see benchmarks/RESULTS.md):

    python benchmarks/peak_vs_plain.py --device cuda --out peak.json
    (defaults: --model llama-3-8b --seq-len 8192 --batch-size 1 --warmup 3 --steps 5 --loss-chunk 1024)

  The catalog architecture is built once with random weights (bf16 safetensors and the demo
  tokenizer, no download) by memory_calibration.build_random_model, then each variant trains it
  in a process of its own (this script again, with a hidden --one VARIANT), so peaks never mix:

    plain          a hand-written QLoRA script, no studio code: 4-bit NF4 + double quantization,
                   bf16 compute, prepare_model_for_kbit_training with non-reentrant gradient
                   checkpointing, PEFT LoRA r16 / alpha 32 on all linear layers, transformers' own
                   loss (labels passed to the model), padded batches (DataCollatorForSeq2Seq), sdpa
    studio-off     the worker's load_model and Trainer class with every memory option off
    chunked-loss   ... with only the chunked cross-entropy (training/chunked_loss.py)
    packing        ... with only padding-free packing (DataCollatorWithFlattening)
    no-fp32-copy   ... with only upcast_frozen = false (embeddings, norms, lm_head kept in bf16)
    all-options    ... with all three

  Every variant gets the same rows (random token ids filling the whole sequence, every token a
  target, the same seed), the same Trainer settings and the same optimizer (paged 8-bit AdamW on a
  GPU, as the studio picks; AdamW on the CPU). Each reports torch's peak allocated and reserved
  memory over training (the loaded model included, the loading's own transients not), the
  process's memory from NVML (CUDA context included) where the driver tells, tokens/s over the timed steps, the loss of every step, and
  plan() for the same settings with its error against the measured peak (NVML, else reserved).
  After training, one batch goes through Trainer.evaluate (as the worker's periodic eval does),
  its peak measured on its own.
  The last line sets all-options against plain: the goal is ≤ 0.7× the peak, tokens/s no lower.

CPU (a harness check, so the tests run the script without a GPU):

    python benchmarks/peak_vs_plain.py --device cpu [--out peak-cpu.json]

  The same architecture scaled down (TINY below; --model demo takes the demo model), 512 tokens,
  bf16 compute under CPU autocast, the loss chunked by 64 tokens. There is no allocator to ask on
  the CPU, so the warm-up steps run under a tracker that counts the bytes of every tensor storage
  alive (LiveTensorBytes); the timed steps run without it. The resident set's growth is shown too.
  CPU timings say nothing about a GPU.

Rows fill the whole sequence, so at batch 1 packing has no padding to remove: its row shows what
packing costs or saves by itself, and the plan counts the worst micro-batch either way.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

GiB = 1024**3
MiB = 1024**2

# name -> the recipe's memory options (None: the plain script)
VARIANTS: dict[str, dict | None] = {
    "plain": None,
    "studio-off": {"chunked_loss": False, "packing": "off", "upcast_frozen": True},
    "chunked-loss": {"chunked_loss": True, "packing": "off", "upcast_frozen": True},
    "packing": {"chunked_loss": False, "packing": "on", "upcast_frozen": True},
    "no-fp32-copy": {"chunked_loss": False, "packing": "off", "upcast_frozen": False},
    "all-options": {"chunked_loss": True, "packing": "on", "upcast_frozen": False},
}
GOAL_PEAK_RATIO = 0.7  # all options against the plain script (issue #9)
RANK, ALPHA, DROPOUT = 16, 32, 0.05
LEARNING_RATE = 2e-4
# The CPU check's model: the catalog architecture with Llama 3's proportions kept where they
# matter for memory (a vocabulary ~32× the hidden size, 4 query heads per key/value head,
# an MLP 3.5× wide), small enough for a few seconds of training.
TINY = {"hidden_size": 256, "intermediate_size": 896, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 1, "vocab_size": 8192, "bos_token_id": 0, "eos_token_id": 4}


# ---------------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------------


def current_rss() -> int:
    """Resident bytes of this process now (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def lifetime_max_rss() -> int:
    try:
        import resource

        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return kib * 1024 if sys.platform != "darwin" else kib
    except Exception:
        return 0


class RssSampler:
    """The largest resident set seen while running, sampled every few milliseconds on a thread
    (torch releases the GIL in its kernels, so the thread keeps sampling during a step)."""

    def __init__(self, every_s: float = 0.005):
        self.every_s, self.peak = every_s, current_rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, current_rss())
            self._stop.wait(self.every_s)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, current_rss())


class LiveTensorBytes:
    """The CPU's stand-in for torch.cuda.max_memory_allocated: bytes of tensor storages alive,
    at their largest. The model's own tensors are counted once up front (`add_static`); every
    storage an operator makes while the tracker is on (a TorchDispatchMode) is counted until it
    is freed (a weak reference to the storage tells). Views of a counted storage add nothing."""

    def __init__(self):
        from torch.utils._python_dispatch import TorchDispatchMode

        tracker = self

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                tracker._track_outputs(out)
                return out

        self.static = self.live = self.peak = 0
        self._keys: set[int] = set()
        self._refs: dict[int, object] = {}
        self._mode_class = Mode
        self._mode = None

    def add_static(self, tensors) -> None:
        import torch

        for t in tensors:
            if torch.is_tensor(t) and t.device.type == "cpu":
                st = t.untyped_storage()
                if st._cdata not in self._keys:
                    self._keys.add(st._cdata)
                    self.static += st.nbytes()
        self.peak = max(self.peak, self.static + self.live)

    def _track_outputs(self, out) -> None:
        import weakref

        import torch
        from torch.utils._pytree import tree_leaves

        for t in tree_leaves(out):
            if not torch.is_tensor(t) or t.device.type != "cpu":
                continue
            st = t.untyped_storage()
            key = st._cdata
            if key in self._keys:
                continue
            n = st.nbytes()
            self._keys.add(key)
            self.live += n
            self._refs[key] = weakref.ref(st, lambda _, key=key, n=n: self._freed(key, n))
        self.peak = max(self.peak, self.static + self.live)

    def _freed(self, key: int, n: int) -> None:
        self.live -= n
        self._keys.discard(key)
        self._refs.pop(key, None)

    def reset_peak(self) -> None:
        self.peak = self.static + self.live

    def start(self) -> None:
        if self._mode is None:
            self._mode = self._mode_class()
            self._mode.__enter__()

    def stop(self) -> None:
        if self._mode is not None:
            self._mode.__exit__(None, None, None)
            self._mode = None


def model_tensors(model) -> list:
    """Parameters, buffers and bitsandbytes' quantization state (absmax, code tables) of a model."""
    out = list(model.parameters()) + list(model.buffers())
    for module in model.modules():
        state = getattr(getattr(module, "weight", None), "quant_state", None)
        if state is not None:
            out += [state.absmax, state.code]
            if state.nested:
                out += [state.offset, state.state2.absmax, state.state2.code]
    return out


def make_clock(on_gpu: bool, tracker: LiveTensorBytes | None = None, tracked_steps: int = 0):
    """A TrainerCallback that records (time, tokens seen, NVML bytes) at the end of every step; on
    the CPU it turns `tracker` on for the first `tracked_steps` steps (it slows operators down, so
    the timed steps run without it)."""
    import torch
    from transformers import TrainerCallback

    from studio.core.hardware import process_gpu_bytes

    class Clock(TrainerCallback):
        def __init__(self):
            self.marks: list[tuple[float, int]] = []
            self.nvml_peak: int | None = None

        def _mark(self, state):
            if on_gpu:
                torch.cuda.synchronize()
            self.marks.append((time.perf_counter(), int(state.num_input_tokens_seen or 0)))
            if on_gpu:
                used = process_gpu_bytes(torch.cuda.current_device())
                if used is not None:
                    self.nvml_peak = max(self.nvml_peak or 0, used)

        def on_train_begin(self, args, state, control, **kw):
            self._mark(state)

        def on_step_begin(self, args, state, control, **kw):
            if tracker is not None and state.global_step < tracked_steps:
                tracker.start()

        def on_step_end(self, args, state, control, **kw):
            if tracker is not None:
                tracker.stop()
            self._mark(state)

    return Clock()


# ---------------------------------------------------------------------------------------------
# The two ways of building the model
# ---------------------------------------------------------------------------------------------


def plain_model(model_dir: Path, on_gpu: bool, compute_dtype: str):
    """A hand-written QLoRA setup: transformers, PEFT and bitsandbytes only."""
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    dtype = getattr(torch, compute_dtype)
    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=dtype)
    extra = {"device_map": {"": 0}} if on_gpu else {}
    model = AutoModelForCausalLM.from_pretrained(model_dir, quantization_config=quant, dtype=dtype,
                                                 attn_implementation="sdpa", **extra)
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True,
                                            gradient_checkpointing_kwargs={"use_reentrant": False})
    model = get_peft_model(model, LoraConfig(r=RANK, lora_alpha=ALPHA, lora_dropout=DROPOUT, target_modules="all-linear",
                                             bias="none", task_type="CAUSAL_LM"))
    if not on_gpu:
        # bitsandbytes' CPU repacking for bf16 inference has no backward: keep the training layout
        for module in model.modules():
            if hasattr(module, "support_avx512bf16_for_cpu"):
                module.support_avx512bf16_for_cpu = False
    model.config.use_cache = False
    return model


def studio_config(model_dir: Path, options: dict, seq_len: int, batch_size: int, loss_chunk: int):
    from studio.core.recipe import RunConfig

    config = RunConfig()
    config.model.source = str(model_dir)
    config.adapter.rank, config.adapter.alpha, config.adapter.dropout = RANK, ALPHA, DROPOUT
    t = config.training
    t.seq_len, t.batch_size, t.grad_accum, t.loss_chunk_tokens = seq_len, batch_size, 1, loss_chunk
    t.precision, t.quant_type, t.double_quant, t.attention, t.gradient_checkpointing = "4bit", "nf4", True, "sdpa", True
    for key, value in options.items():
        setattr(t, key, value)
    return config


# ---------------------------------------------------------------------------------------------
# One variant, in its own process
# ---------------------------------------------------------------------------------------------


def synthetic_rows(n_rows: int, seq_len: int, vocab_size: int, seed: int) -> list[dict]:
    """Random token ids that fill the whole sequence; every token is a target. A plain list (Trainer
    takes any sequence of examples), so the GPU check needs no datasets package."""
    import torch

    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab_size, (n_rows, seq_len), generator=g).tolist()
    return [{"input_ids": row, "labels": list(row)} for row in ids]


def run_one(a) -> dict:
    import warnings

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    warnings.filterwarnings("ignore")
    rss_start = current_rss()
    import torch
    from transformers import AutoTokenizer, DataCollatorForSeq2Seq, PrinterCallback, Trainer, TrainingArguments, set_seed

    from studio.core.memory import plan
    from studio.core.models import load_tokenizer, resolve_model
    from studio.core.training import model as training_model
    from studio.core.training import trainer as training_trainer

    on_gpu = a.device == "cuda"
    compute_dtype = a.compute_dtype
    if on_gpu:
        if compute_dtype == "auto":
            compute_dtype = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        device_name = torch.cuda.get_device_name(0)
    else:
        if compute_dtype == "auto":
            compute_dtype = "bfloat16"  # as on a GPU, so that the fp32 copy (upcast_frozen) matters here too
        torch.set_num_threads(1)  # steadier timings on a shared machine; the figures that matter come from a GPU
        device_name = f"CPU (1 thread of {os.cpu_count()} cores)"
    model_dir = Path(a.model_dir)
    options = VARIANTS[a.one]
    planned_options = options or VARIANTS["studio-off"]  # the plain script is the studio with every option off
    config = studio_config(model_dir, planned_options, a.seq_len, a.batch_size, a.loss_chunk)
    info = resolve_model(str(model_dir))
    shape = config.train_shape(on_gpu, info.model_type)
    memory = plan(info, config.adapter_spec(), shape, config.precision_for(compute_dtype))
    optim = training_trainer.OPTIMIZER_NAMES[shape.optimizer]

    total_steps = a.warmup + a.steps
    data = synthetic_rows(total_steps * a.batch_size, a.seq_len, info.vocab_size, a.seed)

    rss_before_model = current_rss()
    set_seed(a.seed)
    t_load = time.perf_counter()
    if options is None:
        model = plain_model(model_dir, on_gpu, compute_dtype)
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        trainer_class, extra = Trainer, {}
        collator = DataCollatorForSeq2Seq(tokenizer, padding="longest", label_pad_token_id=-100)
    else:
        device = torch.device("cuda", 0) if on_gpu else torch.device("cpu")
        model = training_model.load_model(config, info, device, compute_dtype)
        tokenizer = load_tokenizer(info)
        trainer_class, extra = training_trainer.trainer_class(), {"loss_chunk_tokens": shape.loss_chunk_tokens}
        collator = training_trainer.make_collator(shape, tokenizer, on_gpu)  # as session.setup builds it
    load_s = time.perf_counter() - t_load
    loaded_allocated = torch.cuda.memory_allocated() if on_gpu else None
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)

    tracker = None
    if not on_gpu:
        tracker = LiveTensorBytes()
        tracker.add_static(model_tensors(model))
    clock = make_clock(on_gpu, tracker, a.warmup or total_steps)
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out, max_steps=total_steps, per_device_train_batch_size=a.batch_size, gradient_accumulation_steps=1,
            learning_rate=LEARNING_RATE, lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0,
            optim=optim, logging_steps=1, logging_nan_inf_filter=False, save_strategy="no", eval_strategy="no",
            bf16=compute_dtype == "bfloat16", fp16=on_gpu and compute_dtype == "float16", use_cpu=not on_gpu, seed=a.seed,
            data_seed=a.seed, report_to="none", disable_tqdm=True, remove_unused_columns=False,
            include_num_input_tokens_seen="non_padding", dataloader_pin_memory=on_gpu, per_device_eval_batch_size=a.batch_size,
            prediction_loss_only=True)
        trainer = trainer_class(model=model, args=args, train_dataset=data, data_collator=collator, callbacks=[clock], **extra)
        trainer.remove_callback(PrinterCallback)
        if on_gpu:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        with RssSampler() as rss:
            trainer.train()
        # One evaluation batch, as the worker's periodic eval runs it (Trainer.evaluate), measured on its own.
        if on_gpu:
            torch.cuda.synchronize()
            train_peaks = torch.cuda.max_memory_allocated(), torch.cuda.max_memory_reserved()
            torch.cuda.reset_peak_memory_stats()
        else:
            train_peak = tracker.peak
            tracker.reset_peak()
            tracker.start()
        eval_loss = trainer.evaluate(eval_dataset=data[: a.batch_size]).get("eval_loss")
        if on_gpu:
            torch.cuda.synchronize()
            eval_peak = torch.cuda.max_memory_allocated()
        else:
            tracker.stop()
            eval_peak = tracker.peak
    losses = [float(h["loss"]) for h in trainer.state.log_history if "loss" in h]
    (t0, n0), (t1, n1) = clock.marks[a.warmup], clock.marks[-1]
    result = {
        "variant": a.one, "options": options, "device": device_name, "compute_dtype": compute_dtype, "optimizer": optim,
        "model": a.model, "seq_len": a.seq_len, "batch_size": a.batch_size, "warmup_steps": a.warmup, "timed_steps": a.steps,
        "loss_chunk_tokens": shape.loss_chunk_tokens, "trainable_params": trainable, "load_s": round(load_s, 2),
        "tokens_per_s": (n1 - n0) / (t1 - t0) if t1 > t0 else None,
        "step_s": [round(b[0] - a_[0], 4) for a_, b in zip(clock.marks, clock.marks[1:], strict=False)],
        "losses": losses,
        "eval_loss": eval_loss, "eval_peak_bytes": eval_peak,
        "planned_bytes": memory.total_bytes,
        "planned_needed_bytes": memory.needed_bytes,
        "planned_components": {c.name: c.bytes for c in memory.components},
        "rss_start_bytes": rss_start, "rss_before_model_bytes": rss_before_model, "rss_peak_train_bytes": rss.peak,
        "rss_lifetime_max_bytes": lifetime_max_rss(),
    }
    if tracker is not None:
        result.update(static_tensor_bytes=tracker.static, peak_tensor_bytes=train_peak, tracked_steps=a.warmup or total_steps)
    if on_gpu:
        result.update(loaded_allocated_bytes=loaded_allocated, peak_allocated_bytes=train_peaks[0],
                      peak_reserved_bytes=train_peaks[1], nvml_peak_bytes=clock.nvml_peak)
    return result


# ---------------------------------------------------------------------------------------------
# The parent: one process per variant, then the table
# ---------------------------------------------------------------------------------------------


def measured_peak(r: dict) -> int | None:
    """The figure set against the plan: NVML (context included), else torch's reserved; on the
    CPU, the tracked peak of live tensor bytes."""
    if "peak_allocated_bytes" in r:
        return r.get("nvml_peak_bytes") or r.get("peak_reserved_bytes")
    return r.get("peak_tensor_bytes")


def peak_for_ratio(r: dict) -> int | None:
    """The peak the variants are compared by: torch's allocated on a GPU, live tensor bytes on the CPU."""
    return r.get("peak_allocated_bytes") or r.get("peak_tensor_bytes")


def planned_for_device(r: dict) -> int:
    """The planned figure set against `measured_peak`: what the process holds on a GPU, the tensor
    peak ("needed") on the CPU."""
    if "peak_allocated_bytes" in r:
        return r["planned_bytes"]
    return r.get("planned_needed_bytes") or r["planned_bytes"] - r["planned_components"].get("cuda_overhead", 0)


def ratio(value, base) -> str:
    return f"{value / base:.2f}×" if value and base else "-"


def fmt_tps(x) -> str:
    return f"{x:.0f}" if x else "-"


def fmt_loss(x) -> str:
    return f"{x:.4f}" if x is not None else "-"


def table(results: list[dict], on_gpu: bool) -> str:
    base = next((r for r in results if r["variant"] == "plain" and "error" not in r), None)
    lines = []
    if on_gpu:
        lines.append("| variant | loaded GiB | peak allocated GiB | peak reserved GiB | NVML GiB | planned GiB | plan error % "
                     "| tokens/s | first loss | last loss | allocated vs plain | reserved vs plain | tokens/s vs plain "
                     "| eval peak allocated GiB |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    else:
        lines.append("| variant | model tensors MiB | peak tensors MiB | planned MiB (no CUDA overhead) | plan error % "
                     "| peak RSS growth MiB | tokens/s | first loss | last loss | peak vs plain | tokens/s vs plain "
                     "| eval peak tensors MiB |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        name = r["variant"]
        if "error" in r:
            lines.append(f"| {name} | failed: {r['error'][:120]} |")
            continue
        measured, planned = measured_peak(r), planned_for_device(r)
        err = f"{100 * (planned - measured) / measured:+.1f}" if measured else "-"
        first, last = (r["losses"][0], r["losses"][-1]) if r["losses"] else (None, None)
        tps = r["tokens_per_s"]
        base_tps = base["tokens_per_s"] if base else None
        if on_gpu:
            nvml = r.get("nvml_peak_bytes")
            lines.append(
                f"| {name} | {r['loaded_allocated_bytes'] / GiB:.2f} | {r['peak_allocated_bytes'] / GiB:.2f} | "
                f"{r['peak_reserved_bytes'] / GiB:.2f} | {'-' if nvml is None else f'{nvml / GiB:.2f}'} | {planned / GiB:.2f} | "
                f"{err} | {fmt_tps(tps)} | {fmt_loss(first)} | {fmt_loss(last)} | "
                f"{ratio(r['peak_allocated_bytes'], base and base['peak_allocated_bytes'])} | "
                f"{ratio(r['peak_reserved_bytes'], base and base['peak_reserved_bytes'])} | {ratio(tps, base_tps)} | "
                f"{r['eval_peak_bytes'] / GiB:.2f} |")
        else:
            growth = r["rss_peak_train_bytes"] - r["rss_before_model_bytes"]
            lines.append(
                f"| {name} | {r['static_tensor_bytes'] / MiB:.2f} | {measured / MiB:.2f} | {planned / MiB:.2f} | {err} | "
                f"{growth / MiB:.1f} | {fmt_tps(tps)} | {fmt_loss(first)} | {fmt_loss(last)} | "
                f"{ratio(measured, base and measured_peak(base))} | {ratio(tps, base_tps)} | {r['eval_peak_bytes'] / MiB:.2f} |")
    return "\n".join(lines)


def goal_lines(results: list[dict], on_gpu: bool) -> list[str]:
    by = {r["variant"]: r for r in results if "error" not in r}
    if "plain" not in by or "all-options" not in by:
        return ["goal: not checked (it needs the plain and all-options variants)"]
    base, best = by["plain"], by["all-options"]
    peak_ratio = peak_for_ratio(best) / peak_for_ratio(base)
    tps_ratio = (best["tokens_per_s"] or 0) / (base["tokens_per_s"] or math.inf)
    what = "peak allocated" if on_gpu else "peak live tensor bytes (CPU, tiny model: not the goal's measure)"
    ok_peak = peak_ratio <= GOAL_PEAK_RATIO
    ok_tps = tps_ratio >= 1.0
    planned = planned_for_device(best) / planned_for_device(base)
    return [f"all-options vs plain: {what} {peak_ratio:.2f}× (goal ≤ {GOAL_PEAK_RATIO}: {'met' if ok_peak else 'NOT met'}); "
            f"tokens/s {tps_ratio:.2f}× (goal ≥ 1.00: {'met' if ok_tps else 'NOT met'}); planned {planned:.2f}×"]


def run_child(argv: list[str], timeout: float) -> dict:
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)
    line = next((ln for ln in reversed(proc.stdout.splitlines()) if ln.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        tail = (proc.stderr or proc.stdout).strip().splitlines()
        return {"error": (tail[-1] if tail else f"exit status {proc.returncode}"), "stderr_tail": "\n".join(tail[-40:])}
    return json.loads(line[len("RESULT "):])


def prepare_model(model: str, tiny: bool, work: Path, timeout: float, seed: int) -> tuple[Path, str]:
    """(folder, description): the demo model or a folder as they are; a catalog architecture built
    with random weights in a process of its own (so none of its memory stays in this one),
    scaled down to TINY when `tiny`."""
    from studio.core.paths import demo_model_dir

    if model.lower() == "demo":
        return demo_model_dir(), "the demo model (a tiny Llama)"
    if Path(model).expanduser().is_dir():
        return Path(model).expanduser(), str(Path(model).expanduser())
    folder = work / f"random-{model.replace('/', '_')}"
    t0 = time.time()
    cmd = [sys.executable, str(Path(__file__).resolve()), "--build", model, str(folder), "--seed", str(seed)] + (["--tiny"] if tiny else [])
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise SystemExit(f"building {model} with random weights failed:\n{proc.stderr[-3000:]}")
    what = f"{model}, random weights" + (", scaled down: " + ", ".join(f"{k} {v}" for k, v in TINY.items()
                                                                         if not k.endswith("token_id")) if tiny else "")
    print(f"built {what} in {time.time() - t0:.0f} s", flush=True)
    return folder, what


def run_variants(names: list[str], common: list[str], jobs: int, timeout: float) -> list[dict]:
    from concurrent.futures import ThreadPoolExecutor

    def one(name: str) -> dict:
        t0 = time.time()
        try:
            r = run_child(["--one", name, *common], timeout)
        except subprocess.TimeoutExpired:
            r = {"error": f"timed out after {timeout:.0f} s"}
        r.setdefault("variant", name)
        r["wall_s"] = round(time.time() - t0, 1)
        state = f"failed: {r['error']}" if "error" in r else f"{fmt_tps(r['tokens_per_s'])} tok/s"
        print(f"{name}: {state} ({r['wall_s']:.0f} s)", flush=True)
        print("VARIANT " + json.dumps(r), flush=True)  # each variant's figures as soon as they exist
        return r

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(one, names))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Peak memory and tokens/s: a plain QLoRA script against the studio's memory options.")
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    ap.add_argument("--model", default="llama-3-8b",
                    help="a catalog name, built with random weights (on cpu scaled down to a tiny model unless --full-size), "
                         "'demo', or a model folder (default llama-3-8b)")
    ap.add_argument("--full-size", action="store_true", help="cpu: build the catalog model at its real size")
    ap.add_argument("--seq-len", type=int, help="tokens per row (default: 8192 on cuda, 512 on cpu)")
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--steps", type=int, default=5, help="timed steps (default 5)")
    ap.add_argument("--warmup", type=int, help="steps before timing starts (default: 3 on cuda, 2 on cpu, where the "
                                               "memory tracker runs in them)")
    ap.add_argument("--loss-chunk", type=int, help="tokens per chunk of the chunked loss (default: 1024 on cuda, 64 on cpu)")
    ap.add_argument("--compute-dtype", choices=["auto", "bfloat16", "float16", "float32"], default="auto",
                    help="auto: bf16 on a GPU that supports it (else fp16), as the worker chooses; bf16 on the CPU too "
                         "(CPU autocast; the worker's own CPU default is fp32)")
    ap.add_argument("--variants", help="comma-separated subset of: " + ", ".join(VARIANTS))
    ap.add_argument("--jobs", type=int, default=1, help="variants run at once (cpu harness checks only: timings then mix)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--timeout", type=float, default=1800, help="seconds allowed per variant")
    ap.add_argument("--out", type=Path, help="also write every variant's figures as JSON")
    ap.add_argument("--one", choices=list(VARIANTS), help=argparse.SUPPRESS)
    ap.add_argument("--model-dir", help=argparse.SUPPRESS)
    ap.add_argument("--build", nargs=2, metavar=("NAME", "FOLDER"), help=argparse.SUPPRESS)
    ap.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    cuda = a.device == "cuda"
    if a.steps < 1 or a.batch_size < 1 or (a.warmup is not None and a.warmup < 0):
        ap.error("--steps and --batch-size must be at least 1, --warmup at least 0")
    a.seq_len = a.seq_len or (8192 if cuda else 512)
    if a.warmup is None:
        a.warmup = 3 if cuda else 2
    a.loss_chunk = a.loss_chunk or (1024 if cuda else 64)

    if a.build:
        import torch
        from memory_calibration import build_random_model

        torch.manual_seed(a.seed)  # the same random model on every run
        build_random_model(a.build[0], Path(a.build[1]), TINY if a.tiny else None)
        return 0
    if a.one:
        print("RESULT " + json.dumps(run_one(a)), flush=True)
        return 0

    if cuda:
        import torch

        if not torch.cuda.is_available():
            print("No CUDA GPU here: use --device cpu for the harness check.", file=sys.stderr)
            return 2
        if a.jobs != 1:
            ap.error("--jobs is for the cpu harness check: on a GPU the variants must run one at a time")
    names = a.variants.split(",") if a.variants else list(VARIANTS)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        ap.error(f"unknown variants: {', '.join(unknown)}")
    with tempfile.TemporaryDirectory() as tmp:
        model_dir, model_what = prepare_model(a.model, not cuda and not a.full_size, Path(tmp), a.timeout, a.seed)
        common = ["--device", a.device, "--model", a.model, "--model-dir", str(model_dir), "--seq-len", str(a.seq_len),
                  "--batch-size", str(a.batch_size), "--steps", str(a.steps), "--warmup", str(a.warmup),
                  "--loss-chunk", str(a.loss_chunk), "--compute-dtype", a.compute_dtype, "--seed", str(a.seed)]
        results = run_variants(names, common, a.jobs, a.timeout)
    import platform

    ok = [r for r in results if "error" not in r]
    device = ok[0]["device"] if ok else a.device
    dtype = ok[0]["compute_dtype"] if ok else a.compute_dtype
    shown = " ".join(sys.argv[1:] if argv is None else argv)
    print(f"\ncommand: python benchmarks/peak_vs_plain.py {shown}".rstrip())
    print(f"device: {device}; Python {platform.python_version()}; {_versions()}")
    print(f"model: {model_what}; batch {a.batch_size} × {a.seq_len} tokens; 4-bit NF4 + double quant, {dtype} compute; "
          f"LoRA r{RANK} all-linear; {a.warmup} warm-up + {a.steps} timed steps; loss chunk {a.loss_chunk}")
    print()
    print(table(results, cuda))
    print()
    for line in goal_lines(results, cuda):
        print(line)
    for r in results:
        if "error" in r and r.get("stderr_tail"):
            print(f"\n{r['variant']} failed:\n{r['stderr_tail']}", file=sys.stderr)
    if a.out:
        a.out.write_text(json.dumps({"command": shown, "device": device, "model": model_what, "variants": results}, indent=2))
    return 0 if len(ok) == len(results) else 1


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for name in ("torch", "transformers", "peft", "bitsandbytes"):
        try:
            out.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            pass
    return ", ".join(out)


if __name__ == "__main__":
    raise SystemExit(main())
