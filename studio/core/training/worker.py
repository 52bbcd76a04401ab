"""`python -m studio.core.training.worker RUN_DIR [--resume]`: the one place that trains.

It reads the run's recipe, checks the model and data before loading anything heavy, builds the
model as the memory plan assumed (4-bit NF4 + double quantization, 8-bit or 16-bit base, PEFT LoRA,
gradient checkpointing), trains with transformers' Trainer, and reports everything as events
(events.py) in the run folder. It runs as its own process, so an out-of-memory error or a crash in
a CUDA kernel cannot take the window down, and all GPU memory returns when it ends; the same
command runs under `accelerate launch` on several GPUs.

Cancel: a `cancel.request` file in the run folder (or SIGINT/SIGTERM) stops training at the end of
the current step and saves a checkpoint and the adapter; a second signal ends the process at once.

Ownership: before anything else the worker takes (or is handed) the run folder's lock and keeps it
for its whole life (ownership.py). A worker that cannot take it writes nothing into the folder.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import sys
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path

from studio.core import runs
from studio.core.atomic import write_atomically
from studio.core.errors import StudioError
from studio.core.recipe import RunConfig
from studio.core.runs import DISK_MARGIN, free_bytes  # by name: tests replace worker.free_bytes
from studio.core.training import ownership
from studio.core.training.events import EventWriter, size_of
from studio.core.training.failures import Failure

EXIT_NOT_OWNER = 3  # another process owns the run folder: nothing was done
OPTIMIZER_NAMES = {"adamw": "adamw_torch", "adamw-8bit": "adamw_bnb_8bit", "paged-adamw-8bit": "paged_adamw_8bit"}
DEFAULT_SAMPLE_PROMPTS = 2  # rows of the eval split (or the data) used as sample prompts when none are set


class RunFailure(Exception):
    """A failure the window knows (failures.py): its kind, message, advice, and topic — what the user
    changes to fix it ("data", "model", "settings", "memory", "disk"; by default the kind's own, if any)."""

    def __init__(self, kind: str, message: str, advice: str = "", topic: str | None = None):
        super().__init__(message)
        self.failure = Failure(kind, message, advice, topic)
        self.kind, self.message, self.advice, self.topic = kind, message, advice, self.failure.topic

    def error(self) -> dict:
        """The `error` of the `finished` event."""
        return self.failure.as_dict()


@dataclass
class Stop:
    """Why training stopped early, set by the callback or a signal."""

    cancel_requested: bool = False
    failure: RunFailure | None = None


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main_process() -> bool:
    return rank() == 0


# ---------------------------------------------------------------------------------------------
# Checks before anything heavy loads
# ---------------------------------------------------------------------------------------------


def check_inputs(config: RunConfig):
    """Resolve the model and load the data; fail with bad_input before a model weight is read."""
    from studio.core.data import load_data
    from studio.core.models import resolve_model

    try:
        info = resolve_model(config.model.source, trust_remote_code=config.model.trust_remote_code)
        weight_load_kwargs(config, info)
    except StudioError as exc:
        raise RunFailure("bad_input", exc.message, exc.advice, topic="model") from exc
    try:
        loaded = load_data(config.data.source, fmt=config.data.format, mapping=config.data.mapping,
                           skip_bad_rows=config.data.skip_bad_rows, split=config.data.split, subset=config.data.subset)
    except StudioError as exc:
        raise RunFailure("bad_input", exc.message, exc.advice, topic="data") from exc
    return info, loaded


def weight_load_kwargs(config: RunConfig, info) -> dict:
    """Check the base model's weight files (pickles only when allowed, none damaged) and return what
    makes from_pretrained load exactly those (weights.py decides, for every place that loads)."""
    from studio.core.weights import check_base

    return check_base(info.path, info.name, allow_pickle=config.model.allow_pickle)


def device_and_dtype(config: RunConfig):
    import torch

    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        device = torch.device("cuda", local)
        wanted = config.training.compute_dtype
        if wanted == "auto":
            wanted = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        return device, wanted
    wanted = config.training.compute_dtype
    return torch.device("cpu"), "float32" if wanted == "auto" else wanted


# ---------------------------------------------------------------------------------------------
# The data as token ids
# ---------------------------------------------------------------------------------------------


def tokenized_splits(loaded, tokenizer, config: RunConfig):
    """(train, eval or None, dropped_without_targets) as datasets of input_ids/labels."""
    from studio.core.data import IGNORE_INDEX, Renderer, encode_row

    renderer = Renderer(tokenizer)
    seq_len = config.training.seq_len
    assistant_only = config.data.assistant_only

    def encode(row):
        enc = encode_row(row, renderer, assistant_only=assistant_only, max_length=seq_len)
        return {"input_ids": enc.input_ids, "labels": enc.labels,
                "trained": sum(1 for label in enc.labels if label != IGNORE_INDEX)}

    dataset = loaded.dataset
    columns = dataset.column_names
    tokenized = dataset.map(encode, remove_columns=[c for c in columns if c not in ("line",)], desc="tokenizing")
    kept = tokenized.filter(lambda row: row["trained"] > 0)
    dropped = len(tokenized) - len(kept)
    if len(kept) == 0:
        raise RunFailure("bad_input", f"After cutting examples to {seq_len} tokens, none has an answer left to learn from.",
                         "Raise the sequence length (--seq-len), or shorten the prompts.", topic="data")
    eval_ds = None
    n_eval = int(round(len(kept) * config.data.eval_fraction))
    if n_eval >= 1 and len(kept) - n_eval >= 1:
        split = kept.train_test_split(test_size=n_eval, seed=config.training.seed, shuffle=True)
        train_ds, eval_ds = split["train"], split["test"]
    else:
        train_ds = kept
    drop = ["trained", "line"]
    train_ds = train_ds.remove_columns([c for c in drop if c in train_ds.column_names])
    if eval_ds is not None:
        eval_ds = eval_ds.remove_columns([c for c in drop if c in eval_ds.column_names])
    return train_ds, eval_ds, dropped


def sample_prompts(config: RunConfig, loaded) -> list:
    """The fixed prompts answered during training: the recipe's, or the first held-out conversations."""
    if config.training.sample_prompts:
        return list(config.training.sample_prompts)
    if not loaded.is_chat:
        return []
    prompts = []
    longest = 4 * config.training.seq_len  # characters: about the sequence length in tokens; a longer prompt is no sample
    for row in loaded.dataset.select(range(min(len(loaded.dataset), 200))):
        turns = row["messages"]
        short = sum(len(str(t["content"])) for t in turns[:-1]) <= longest
        if short and sum(t["role"] == "user" for t in turns) == 1:  # a single question reads well as a sample
            prompts.append(turns[:-1])
        if len(prompts) == DEFAULT_SAMPLE_PROMPTS:
            break
    return prompts


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------


def attention_for(requested: str, device) -> str:
    """flash_attention_2 needs CUDA and the flash-attn package; without them SDPA (same memory plan)."""
    if requested != "flash_attention_2":
        return requested
    import importlib.util

    if device.type == "cuda" and importlib.util.find_spec("flash_attn") is not None:
        return requested
    return "sdpa"


def load_model(config: RunConfig, info, device, compute_dtype: str):
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    dtype = getattr(torch, compute_dtype)
    t = config.training
    kwargs: dict = {"dtype": dtype, "attn_implementation": attention_for(t.attention, device),
                    "trust_remote_code": config.model.trust_remote_code}
    if t.precision == "4bit":
        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=t.quant_type,
                                                           bnb_4bit_use_double_quant=t.double_quant,
                                                           bnb_4bit_compute_dtype=dtype)
    elif t.precision == "8bit":
        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True)
    if device.type == "cuda":
        kwargs["device_map"] = {"": device.index or 0}
    kwargs.update(weight_load_kwargs(config, info))
    where = str(info.path) if info.path is not None else info.hub_id
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = AutoModelForCausalLM.from_pretrained(where, **kwargs)
    ckpt_kwargs = {"use_reentrant": False}
    if t.precision in ("4bit", "8bit") and t.upcast_frozen:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=t.gradient_checkpointing,
                                                gradient_checkpointing_kwargs=ckpt_kwargs)
    else:
        # What prepare_model_for_kbit_training does, without its fp32 copy of every unquantized weight
        # (embeddings and lm_head: ~4 GB for a 128k vocabulary): freeze, checkpoint, let gradients
        # reach the first layer's input. The norms still compute their statistics in fp32 internally.
        for param in model.parameters():
            param.requires_grad = False
        if t.gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=ckpt_kwargs)
            model.enable_input_require_grads()
    a = config.adapter
    targets = "all-linear" if "all-linear" in a.targets else list(a.targets)
    lora = LoraConfig(r=a.rank, lora_alpha=a.alpha, lora_dropout=a.dropout, target_modules=targets, use_dora=a.use_dora,
                      use_rslora=a.use_rslora, bias="none", task_type="CAUSAL_LM")
    model = get_peft_model(model, lora)
    if device.type == "cpu":
        # bitsandbytes repacks 4-bit weights for fast CPU inference the first time a layer runs in
        # eval mode without grad (evaluation, samples); training then takes its gemv path, which has
        # no backward, and gradients through the frozen layers go silently wrong. Keep the
        # training layout on CPU.
        for module in model.modules():
            if hasattr(module, "support_avx512bf16_for_cpu"):
                module.support_avx512bf16_for_cpu = False
    model.config.use_cache = False  # the cache is for generation; in training it only costs memory
    return model


# ---------------------------------------------------------------------------------------------
# The callback: Trainer's progress as studio events
# ---------------------------------------------------------------------------------------------


def _make_callback(events: EventWriter, stop: Stop, run_dir: Path, *, start_step: int, samples: list, tokenizer,
                   config: RunConfig, checkpoint_bytes: int):
    import torch
    from transformers import TrainerCallback

    from studio.core.generate import GenerationSettings, generate

    class StudioEvents(TrainerCallback):
        def __init__(self):
            self.t0 = time.monotonic()
            self.last_time = self.t0
            self.last_tokens = 0
            self.first_step = start_step
            self.cancel_file = run_dir / runs.CANCEL

        def on_train_begin(self, args, state, control, **kw):
            self.t0 = self.last_time = time.monotonic()
            self.last_tokens = state.num_input_tokens_seen or 0

        def on_log(self, args, state, control, logs=None, **kw):
            logs = logs or {}
            if "loss" not in logs or not is_main_process():
                return
            loss = float(logs["loss"])
            now = time.monotonic()
            tokens = state.num_input_tokens_seen or 0
            dt = max(now - self.last_time, 1e-9)
            tps = (tokens - self.last_tokens) / dt if tokens else None
            self.last_time, self.last_tokens = now, tokens
            done = state.global_step - self.first_step
            elapsed = now - self.t0
            eta = elapsed / done * (state.max_steps - state.global_step) if done > 0 else None
            fields = dict(step=state.global_step, total_steps=state.max_steps, loss=loss, lr=logs.get("learning_rate"),
                          grad_norm=logs.get("grad_norm"), tokens_per_s=tps, tokens_seen=tokens, elapsed_s=round(elapsed, 2),
                          eta_s=None if eta is None else round(eta, 1), epoch=logs.get("epoch"))
            if torch.cuda.is_available():
                from studio.core.hardware import process_gpu_bytes

                fields.update(gpu_bytes=torch.cuda.memory_allocated(), gpu_reserved_bytes=torch.cuda.memory_reserved(),
                              gpu_peak_bytes=torch.cuda.max_memory_allocated(),
                              gpu_peak_reserved_bytes=torch.cuda.max_memory_reserved(),
                              gpu_nvml_bytes=process_gpu_bytes(torch.cuda.current_device()))
            events.emit("step", **fields)
            if not math.isfinite(loss):
                stop.failure = RunFailure(
                    "nan_loss", f"The loss became {loss} at step {state.global_step}: training diverged.",
                    f"Lower the learning rate (now {config.training.learning_rate:g}; try {config.training.learning_rate / 4:g}), "
                    "and check the data for broken examples. The last checkpoint before this step is kept.")
                control.should_training_stop = True
                control.should_save = False

        def on_evaluate(self, args, state, control, metrics=None, **kw):
            if is_main_process() and metrics and "eval_loss" in metrics:
                events.emit("eval", step=state.global_step, eval_loss=float(metrics["eval_loss"]))

        def on_step_end(self, args, state, control, model=None, **kw):
            if stop.failure is not None:
                control.should_training_stop = True
                control.should_save = False
                return
            if self.cancel_file.exists() and not stop.cancel_requested:
                stop.cancel_requested = True
                events.emit("log", step=state.global_step, message="Cancel requested: stopping after this step and saving.")
            if stop.cancel_requested:
                control.should_training_stop = True
                control.should_save = True
            if control.should_save:
                free = free_bytes(run_dir)
                need = checkpoint_bytes + DISK_MARGIN
                if free < need:
                    stop.failure = RunFailure(
                        "disk_full", f"Only {free / 1e6:.0f} MB are free where the run is saved; a checkpoint needs about "
                        f"{need / 1e6:.0f} MB.", f"Free some disk space in {run_dir.parent}, then resume the run "
                        "(studio train --resume). Nothing was lost: the last checkpoint is intact.")
                    control.should_save = False
                    control.should_training_stop = True
                    return
            every = config.training.sample_every
            if samples and every and state.global_step % every == 0 and is_main_process():
                self.emit_samples(model, state.global_step)

        def emit_samples(self, model, step):
            settings = GenerationSettings(max_new_tokens=config.training.sample_max_tokens)
            for prompt in samples:
                text = generate(model, tokenizer, prompt, settings)
                shown = prompt if isinstance(prompt, str) else prompt[-1]["content"]
                events.emit("sample", step=step, prompt=shown, text=text)

        def on_save(self, args, state, control, **kw):
            if is_main_process():
                path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
                events.emit("checkpoint", step=state.global_step, path=str(path.relative_to(run_dir)))

    return StudioEvents()


# ---------------------------------------------------------------------------------------------
# One run
# ---------------------------------------------------------------------------------------------


def _trainer_class():
    """transformers' Trainer, with the chunked loss when the recipe asks for it (chunked_loss.py),
    in training and in evaluation alike (the eval batch must not bring back the logits peak)."""
    import torch
    from transformers import Trainer

    from studio.core.training.chunked_loss import chunked_causal_lm_loss, usable_for

    class StudioTrainer(Trainer):
        def __init__(self, *args, loss_chunk_tokens: int = 0, **kwargs):
            super().__init__(*args, **kwargs)
            self.loss_chunk_tokens = loss_chunk_tokens if usable_for(self.model) else 0

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if not self.loss_chunk_tokens or "labels" not in inputs:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            autocast = torch.bfloat16 if self.args.bf16 else torch.float16 if self.args.fp16 else None
            loss = chunked_causal_lm_loss(model, inputs, chunk_tokens=self.loss_chunk_tokens,
                                          num_items_in_batch=num_items_in_batch, autocast_dtype=autocast)
            if self.args.average_tokens_across_devices and num_items_in_batch is not None and self.accelerator.num_processes > 1:
                loss = loss * self.accelerator.num_processes  # as Trainer does for model-computed losses
            # evaluation asks for the outputs too; with prediction_loss_only it reads none of them
            return (loss, {}) if return_outputs else loss

    return StudioTrainer


def make_collator(shape, tokenizer, on_gpu: bool):
    """How micro-batches are built: padded to their longest example, or (shape.packing) padding-free."""
    from transformers import DataCollatorForSeq2Seq, DataCollatorWithFlattening

    if shape.packing:
        # padding-free: a micro-batch's examples joined in one row; position ids restart per example,
        # so flash attention runs each example on its own (varlen) and SDPA/eager get a block mask
        return DataCollatorWithFlattening(return_position_ids=True, separator_id=-100)
    return DataCollatorForSeq2Seq(tokenizer, padding="longest", label_pad_token_id=-100,
                                  pad_to_multiple_of=8 if on_gpu else None)


def liger_available(on_gpu: bool) -> bool:
    """Liger's fused linear cross-entropy (Trainer's use_liger_kernel) needs CUDA and the
    liger-kernel package; where it is, it replaces the studio's chunked loss."""
    import importlib.util

    return on_gpu and importlib.util.find_spec("liger_kernel") is not None


def estimate_checkpoint_bytes(trainable: int, optimizer: str) -> int:
    """Adapter weights (fp32) + optimizer states + scheduler/RNG/state files."""
    states = 2 * 4 * trainable if optimizer == "adamw" else 2 * trainable + trainable // 32
    return 4 * trainable + states + 1024**2


def train(run_dir: Path, config: RunConfig, events: EventWriter, stop: Stop, *, resume: bool = False) -> dict:
    """Train the run in `run_dir`; returns the finished event's fields."""
    import torch
    from transformers import PrinterCallback, TrainingArguments, set_seed

    from studio.core.memory import plan, suggest_changes
    from studio.core.models import load_tokenizer

    config.validate()
    info, loaded = check_inputs(config)
    tokenizer = load_tokenizer(info)
    device, compute_dtype = device_and_dtype(config)
    on_gpu = device.type == "cuda"
    train_ds, eval_ds, dropped = tokenized_splits(loaded, tokenizer, config)
    if dropped and is_main_process():
        events.emit("log", message=f"{dropped} examples were left out: after cutting to {config.training.seq_len} tokens "
                                   "no answer was left in them.")
    t = config.training
    world = int(os.environ.get("WORLD_SIZE", "1"))
    per_step = t.batch_size * t.grad_accum * world
    total = t.steps or max(1, math.ceil((t.epochs or 1) * len(train_ds) / per_step))
    shape = config.train_shape(on_gpu, info.model_type, attention=attention_for(t.attention, device))
    precision = config.precision_for("bfloat16" if compute_dtype == "float32" and not on_gpu else compute_dtype)
    memory = plan(info, config.adapter_spec(), shape, precision)

    def advice_for_oom() -> str:
        if not on_gpu:
            return "The computer ran out of memory: close other programs, or lower the batch size or sequence length."
        total_gpu = torch.cuda.get_device_properties(device).total_memory
        fixes = suggest_changes(info, config.adapter_spec(), shape, precision, int(total_gpu * 0.92))
        if not fixes:
            return "Even the smallest settings do not fit this GPU: choose a smaller model."
        return "Try: " + "; or ".join(f"{s.change} (planned {s.total_bytes / 1024**3:.1f} GiB)" for s in fixes[:3])

    checkpoint = resume_checkpoint(run_dir, events) if resume else None
    start_step = runs.checkpoint_step(checkpoint) if checkpoint else 0

    set_seed(t.seed)
    StudioTrainer = _trainer_class()
    if shape.attention != t.attention:  # flash attention asked for, not available here
        events.emit("log", message="Flash attention needs an NVIDIA GPU and the flash-attn package "
                    "(pip install flash-attn); this run uses SDPA attention instead, with the same memory plan.")
    model = load_model(config, info, device, compute_dtype)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    samples = sample_prompts(config, loaded)
    callback = _make_callback(events, stop, run_dir, start_step=start_step, samples=samples, tokenizer=tokenizer, config=config,
                              checkpoint_bytes=estimate_checkpoint_bytes(trainable, shape.optimizer))
    eval_every = t.eval_every or total
    liger = bool(shape.loss_chunk_tokens) and liger_available(on_gpu)
    if liger and is_main_process():
        events.emit("log", message="The loss runs through Liger's fused linear cross-entropy (liger-kernel) "
                    "instead of the studio's chunked loss.")
    args = TrainingArguments(
        output_dir=str(run_dir / runs.CHECKPOINTS),
        max_steps=total,
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=t.batch_size,
        gradient_accumulation_steps=t.grad_accum,
        learning_rate=t.learning_rate,
        lr_scheduler_type=t.scheduler,
        warmup_steps=int(math.ceil(t.warmup_ratio * total)),
        weight_decay=t.weight_decay,
        max_grad_norm=t.max_grad_norm,
        optim=OPTIMIZER_NAMES[shape.optimizer],
        logging_steps=1,
        logging_nan_inf_filter=False,  # a NaN loss must reach the callback, not be averaged away
        save_strategy="steps",
        save_steps=t.save_every or total,
        save_total_limit=t.keep_checkpoints,
        eval_strategy="steps" if eval_ds is not None else "no",
        eval_steps=eval_every,
        prediction_loss_only=True,  # never gather eval logits: they can run the GPU out of memory
        bf16=compute_dtype == "bfloat16",  # autocast; on the CPU too when bf16 compute is asked for
        fp16=on_gpu and compute_dtype == "float16",
        use_cpu=not on_gpu,
        seed=t.seed,
        data_seed=t.seed,
        report_to="none",
        disable_tqdm=True,
        remove_unused_columns=False,
        include_num_input_tokens_seen="non_padding",
        dataloader_pin_memory=on_gpu,
        ddp_find_unused_parameters=False if world > 1 else None,
        use_liger_kernel=liger,  # fused linear cross-entropy on CUDA, where liger-kernel is installed
    )
    collator = make_collator(shape, tokenizer, on_gpu)
    trainer = StudioTrainer(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds, data_collator=collator,
                            processing_class=tokenizer, callbacks=[callback],
                            loss_chunk_tokens=0 if liger else shape.loss_chunk_tokens)
    trainer.remove_callback(PrinterCallback)  # its log lines would mix with the events on stdout
    if is_main_process():
        events.emit("started", total_steps=total, resumed_from_step=start_step, device=_device_name(device),
                    compute_dtype=compute_dtype, precision=t.precision, optimizer=shape.optimizer, planned_bytes=memory.total_bytes,
                    planned_components={c.name: c.bytes for c in memory.components}, train_rows=len(train_ds),
                    eval_rows=len(eval_ds) if eval_ds is not None else 0, trainable_params=trainable,
                    total_params=info.total_params, pid=os.getpid(), processes=world, data_format=loaded.format,
                    data_rows=loaded.rows_kept)
    if checkpoint is not None and start_step >= total:
        restore_final_state(trainer, model, checkpoint, events)
    else:
        if t.preflight:
            preflight(trainer, train_ds, eval_ds, t.batch_size, events, memory.total_bytes, advice_for_oom)
        try:
            trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        except torch.cuda.OutOfMemoryError as exc:
            raise RunFailure("out_of_memory", f"The GPU ran out of memory: {str(exc).splitlines()[0][:200]}",
                             advice_for_oom()) from exc
    if stop.failure is not None:
        raise stop.failure
    step = trainer.state.global_step
    final_eval = None
    if eval_ds is not None and not stop.cancel_requested:
        evals = [h for h in trainer.state.log_history if "eval_loss" in h]
        if evals and evals[-1].get("step") == step:
            final_eval = evals[-1]["eval_loss"]
        else:
            final_eval = trainer.evaluate().get("eval_loss")  # on_evaluate emits the event
    if is_main_process():
        if samples and t.sample_every and not stop.cancel_requested and step % t.sample_every:
            callback.emit_samples(model, step)
        save_adapter(model, tokenizer, run_dir, config, info, precision.mode, loaded.format)
    status = "cancelled" if stop.cancel_requested else "completed"
    return {"status": status, "step": step, "adapter": runs.ADAPTER, "eval_loss": final_eval}


def resume_checkpoint(run_dir: Path, events: EventWriter) -> Path:
    """The newest complete checkpoint; a newer one that is not complete is named in a `log` event
    (resuming from it would fail the same way on every try)."""
    checkpoint = runs.resume_point(run_dir)
    if checkpoint is None:
        raise RunFailure("bad_input", "This run has no complete checkpoint to resume from.",
                         "Start it again instead (the recipe is kept in run.toml).")
    newer = [p for p in runs.checkpoints(run_dir) if runs.checkpoint_step(p) > runs.checkpoint_step(checkpoint)]
    if newer and is_main_process():
        skipped = "; ".join(f"{p.name}: {runs.checkpoint_problem(p)}" for p in newer)
        events.emit("log", message=f"Skipped the newer checkpoints that are incomplete ({skipped}). Resuming from "
                                   f"{checkpoint.name} instead: the steps after it are trained again.")
    return checkpoint


def preflight(trainer, train_ds, eval_ds, batch_size: int, events: EventWriter, planned_bytes: int, advice_for_oom) -> None:
    import torch

    from studio.core.training.preflight import run_preflight

    try:
        result = run_preflight(trainer, train_ds, eval_ds, batch_size)
    except torch.cuda.OutOfMemoryError as exc:
        raise RunFailure("out_of_memory", "The longest batch of this data does not fit in GPU memory "
                         f"(checked before training: {str(exc).splitlines()[0][:160]}).", advice_for_oom()) from exc
    if is_main_process():
        events.emit("preflight", **result.as_event(planned_bytes))


def restore_final_state(trainer, model, checkpoint: Path, events: EventWriter) -> None:
    """The run was stopped after its last checkpoint (in the final evaluation or while the adapter was
    saved): nothing is left to train. The model takes that checkpoint's weights and the trainer its
    state, and the run finishes from there."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file
    from transformers import TrainerState

    set_peft_model_state_dict(model, load_file(str(checkpoint / "adapter_model.safetensors")))
    trainer.state = TrainerState.load_from_json(str(checkpoint / "trainer_state.json"))
    if is_main_process():
        events.emit("log", message=f"Training had reached its last step ({trainer.state.global_step}) before it was stopped; "
                                   f"the adapter is written from {checkpoint.name}, with no further training.")


def _device_name(device) -> str:
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "CPU"


def save_adapter(model, tokenizer, run_dir: Path, config: RunConfig, info, precision: str, data_format: str | None = None) -> Path:
    """Write the adapter beside its final place, then rename: a crash never leaves half an adapter."""
    from studio.core.data.tokens import chat_template_of

    def build(work: Path) -> None:
        model.save_pretrained(work)
        template, is_default = chat_template_of(tokenizer)
        tokenizer.chat_template = template  # saved with the adapter, so inference renders prompts as training did
        tokenizer.save_pretrained(work)
        meta = {"base_model": config.model.source, "base_model_path": str(info.path) if info.path else info.hub_id,
                "base_model_name": info.name, "base_hub_id": info.hub_id, "license": info.license,
                "model_type": info.model_type, "architecture": info.architecture, "precision": precision,
                "chat_template_is_default": is_default, "data_format": data_format, "recipe": config.to_dict()}
        (work / "studio.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")

    final = run_dir / runs.ADAPTER
    write_atomically(final, build)
    return final


# ---------------------------------------------------------------------------------------------
# The process
# ---------------------------------------------------------------------------------------------


def _install_signal_handlers(stop: Stop) -> dict:
    """SIGINT/SIGTERM: the first cancels politely, the second ends the process. Returns the old handlers."""
    def handler(signum, frame):
        if stop.cancel_requested:  # the second request: end now
            os._exit(130)
        stop.cancel_requested = True

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, handler)
        except (ValueError, OSError):  # not the main thread: the cancel file still works
            pass
    return previous


def _quiet() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "warning")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    # Libraries' deprecation notices say nothing to the user and crowd the run's log.
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)


def run(run_dir: Path, *, resume: bool = False, echo=sys.stdout, quiet: bool = False) -> int:
    """Train the run and report how it ended; the exit status is 0 for completed and cancelled.
    `quiet`: turn the libraries' progress bars and notices off (the worker process does)."""
    run_dir = Path(run_dir)
    lock = None
    if is_main_process():
        lock = ownership.claim(run_dir, one_of_several=int(os.environ.get("WORLD_SIZE", "1")) > 1)
        if lock is None:
            _log_message(run_dir, "Another studio process is already training this run, so this one stopped without "
                                  "touching the run folder. Wait for that one to finish, or cancel it, before resuming.")
            return EXIT_NOT_OWNER
    if quiet:
        _quiet()
    try:
        if resume and is_main_process() and runs.is_completed(run_dir):
            _log_message(run_dir, "This run has already finished and its adapter is saved: nothing was resumed. "
                                  "To train more, start a new run with its recipe (studio train --recipe run.toml).")
            return 2
        return _run_owned(run_dir, resume=resume, echo=echo if is_main_process() else None)
    finally:
        if lock is not None:
            lock.release()


def _run_owned(run_dir: Path, *, resume: bool, echo) -> int:
    """The run, once this process owns its folder (or is a helper process of the one that does)."""
    events = EventWriter(run_dir / runs.EVENTS, echo=echo)
    stop = Stop()
    previous_handlers = _install_signal_handlers(stop)
    if is_main_process():
        ownership.record_worker(run_dir, events_offset=size_of(run_dir / runs.EVENTS))
        (run_dir / runs.CANCEL).unlink(missing_ok=True)
    try:
        try:
            config = runs.load_recipe(run_dir)
        except StudioError as exc:
            raise RunFailure("bad_input", exc.message, exc.advice, topic="settings") from exc
        result = train(run_dir, config, events, stop, resume=resume)
        if is_main_process():
            events.emit("finished", **result)
        return 0
    except RunFailure as failure:
        _log_traceback(run_dir)
        if is_main_process():
            events.emit("finished", status="failed", error=failure.error())
        return 2 if failure.kind == "bad_input" else 1
    except StudioError as exc:
        _log_traceback(run_dir)
        if is_main_process():
            events.emit("finished", status="failed", error=Failure("bad_input", exc.message, exc.advice).as_dict())
        return 2
    except MemoryError:
        _log_traceback(run_dir)
        if is_main_process():
            events.emit("finished", status="failed", error=Failure(
                "out_of_memory", "The computer ran out of memory (RAM).",
                "Close other programs, or lower the batch size or the sequence length.").as_dict())
        return 1
    except Exception as exc:
        _log_traceback(run_dir)
        if not is_main_process():
            return 1
        events.emit("finished", status="failed", error=Failure(
            "crash", f"Training stopped on an unexpected error: {type(exc).__name__}: {exc}"[:500],
            f"The full report is in {run_dir / runs.STDERR}. Resume the run to continue from the last checkpoint; "
            "if it happens again, include that file in a bug report.").as_dict())
        return 1
    finally:
        events.close()
        if is_main_process():
            ownership.forget_worker(run_dir)
        for sig, old in previous_handlers.items():
            signal.signal(sig, old)


def _log_message(run_dir: Path, message: str) -> None:
    """A line in the run's stderr.log (where the window's log panel and bug reports look)."""
    with (run_dir / runs.STDERR).open("a", encoding="utf-8") as fh:
        fh.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} --- {message}\n")


def _log_traceback(run_dir: Path) -> None:
    with (run_dir / runs.STDERR).open("a", encoding="utf-8") as fh:
        fh.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} ---\n")
        traceback.print_exc(file=fh)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m studio.core.training.worker")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--resume", action="store_true", help="continue from the last complete checkpoint")
    args = parser.parse_args(argv)
    return run(args.run_dir, resume=args.resume, quiet=True)


if __name__ == "__main__":
    raise SystemExit(main())
