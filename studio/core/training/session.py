"""One run, as a recipe read top to bottom: `setup` (check the inputs, load the data and the model,
build the trainer, announce the run), `run_training`, `finish` (final evaluation, samples, the saved
adapter). `train` does the three in turn; the worker (worker.py) runs it in its own process."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from studio.core import runs
from studio.core.atomic import write_atomically
from studio.core.errors import StudioError
from studio.core.memory import checkpoint_bytes
from studio.core.recipe import RunConfig
from studio.core.training.dataset import recipe_data, sample_prompts, tokenized_splits
from studio.core.training.distributed import fsdp_running, full_adapter_state, world_size
from studio.core.training.events import EventWriter, is_main_process
from studio.core.training.failures import RunFailure
from studio.core.training.model import attention_for, device_and_dtype, device_name, load_model, weight_load_kwargs
from studio.core.training.trainer import liger_available, make_collator, trainer_class, training_arguments


@dataclass
class Stop:
    """Why training stopped early, set by the callback or a signal."""

    cancel_requested: bool = False
    failure: RunFailure | None = None


@dataclass
class Session:
    """What one run trains with: its inputs as checked and planned by `setup`, then the model and the trainer."""

    run_dir: Path
    config: RunConfig
    events: EventWriter
    stop: Stop
    info: object  # models.ModelInfo
    loaded: object  # data.LoadedData
    tokenizer: object
    device: object  # torch.device
    compute_dtype: str
    shape: object  # memory.TrainShape
    precision: object  # memory.Precision
    plan: object  # memory.MemoryPlan
    train_ds: object
    eval_ds: object | None
    total_steps: int
    checkpoint: Path | None = None  # the one the run resumes from
    samples: list = field(default_factory=list)
    questions: list = field(default_factory=list)  # golden questions, scored at each checkpoint
    model: object = None
    callback: object = None
    trainer: object = None

    @property
    def on_gpu(self) -> bool:
        return self.device.type == "cuda"

    @property
    def start_step(self) -> int:
        return runs.checkpoint_step(self.checkpoint) if self.checkpoint else 0

    @property
    def trainable(self) -> int:
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)


def train(run_dir: Path, config: RunConfig, events: EventWriter, stop: Stop, *, resume: bool = False) -> dict:
    """Train the run in `run_dir`; returns the finished event's fields."""
    session = setup(config, run_dir, events, stop, resume=resume)
    run_training(session)
    return finish(session)


# ---------------------------------------------------------------------------------------------
# setup
# ---------------------------------------------------------------------------------------------


def setup(config: RunConfig, run_dir: Path, events: EventWriter, stop: Stop, *, resume: bool = False) -> Session:
    """Everything up to the first step: inputs checked (before a model weight is read), data tokenized,
    memory planned, the checkpoint to resume from, the model and the trainer; then the `started` event."""
    from transformers import set_seed

    config.validate()
    session = _planned(config, Path(run_dir), events, stop)
    session.checkpoint = resume_checkpoint(run_dir, events) if resume else None
    set_seed(config.training.seed)
    _build_trainer(session)
    _announce(session)
    return session


def check_inputs(config: RunConfig):
    """Resolve the model and load the data; fail with bad_input before a model weight is read."""
    from studio.core.models import resolve_model

    try:
        info = resolve_model(config.model.source, trust_remote_code=config.model.trust_remote_code)
        weight_load_kwargs(config, info)
    except StudioError as exc:
        raise RunFailure("bad_input", exc.message, exc.advice, topic="model") from exc
    try:
        loaded = recipe_data(config)
    except StudioError as exc:
        raise RunFailure("bad_input", exc.message, exc.advice, topic="data") from exc
    return info, loaded


def _planned(config: RunConfig, run_dir: Path, events: EventWriter, stop: Stop) -> Session:
    """The session's inputs: the model's facts, the data as token ids, the device, and the memory plan."""
    from studio.core.memory import plan
    from studio.core.models import load_tokenizer

    info, loaded = check_inputs(config)
    tokenizer = load_tokenizer(info)
    device, compute_dtype = device_and_dtype(config)
    if config.training.method != "sft":
        train_ds, eval_ds = _pairs(loaded, tokenizer, config, events)
        dropped = 0
    else:
        train_ds, eval_ds, dropped = tokenized_splits(loaded, tokenizer, config)
    if dropped:
        events.emit("log", message=f"{dropped} examples were left out: after cutting to {config.training.seq_len} tokens "
                                   "no answer was left in them.")
    if not loaded.is_chat and config.training.method == "sft":
        chunks = len(train_ds) + (len(eval_ds) if eval_ds is not None else 0)
        events.emit("log", message=f"{loaded.rows_kept} documents make {chunks} training rows of at most "
                                   f"{config.training.seq_len} tokens: longer documents are cut into chunks, all trained.")
    on_gpu = device.type == "cuda"
    shape = config.train_shape(on_gpu, info.model_type, attention=attention_for(config.training.attention, device))
    precision = config.precision_for("bfloat16" if compute_dtype == "float32" and not on_gpu else compute_dtype)
    return Session(run_dir, config, events, stop, info, loaded, tokenizer, device, compute_dtype, shape, precision,
                   plan(info, config.adapter_spec(), shape, precision), train_ds, eval_ds,
                   config.total_steps(len(train_ds), world_size()), questions=_golden(config, run_dir, events))


def _pairs(loaded, tokenizer, config: RunConfig, events: EventWriter):
    """A preference run's (train, eval or None) pairs; the rows left out are said with their lines."""
    from studio.core.training.dataset import split_rows
    from studio.core.training.pairs import preference_pairs
    from studio.core.wording import count

    pairs, left_out = preference_pairs(loaded, tokenizer, config)
    if left_out:
        shown = "; ".join(f"line {x.line}: {x.reason}" for x in left_out[:3])
        events.emit("log", message=f"{count(len(left_out), 'row')} left out of preference tuning ({shown}"
                                   f"{'; …' if len(left_out) > 3 else ''}).")
    events.emit("log", message=f"{count(len(pairs), 'preference pair')}: {config.training.method.upper()} teaches the "
                               "model to prefer each chosen answer over its rejected one.")
    return split_rows(pairs, config)


def _golden(config: RunConfig, run_dir: Path, events: EventWriter) -> list:
    """The run's golden questions (the recipe's file, saved with the run; or saved before), checked
    before a model weight is read."""
    from studio.core.evaluation.during_training import run_golden_questions

    try:
        questions, problems = run_golden_questions(run_dir, config.data.questions)
    except StudioError as exc:
        raise RunFailure("bad_input", f"The golden questions cannot be used: {exc.message}", exc.advice,
                         topic="data") from exc
    from studio.core.data.problems import ERROR
    from studio.core.wording import count

    left_out = [p for p in problems if p.severity == ERROR]
    if left_out:
        events.emit("log", message=f"{count(len(left_out), 'golden question')} left out (e.g. line {left_out[0].line}: "
                                   f"{left_out[0].message}).")
    if questions:
        events.emit("log", message=f"{count(len(questions), 'golden question')}: each checkpoint is scored on them as it "
                                   "is saved.")
    return questions


def resume_checkpoint(run_dir: Path, events: EventWriter) -> Path:
    """The newest complete checkpoint; a newer one that is not complete is named in a `log` event
    (resuming from it would fail the same way on every try)."""
    checkpoint = runs.resume_point(run_dir)
    if checkpoint is None:
        raise RunFailure("bad_input", "This run has no complete checkpoint to resume from.",
                         "Start it again instead (the recipe is kept in run.toml).")
    newer = [p for p in runs.checkpoints(run_dir) if runs.checkpoint_step(p) > runs.checkpoint_step(checkpoint)]
    if newer:
        skipped = "; ".join(f"{p.name}: {runs.checkpoint_problem(p)}" for p in newer)
        events.emit("log", message=f"Skipped the newer checkpoints that are incomplete ({skipped}). Resuming from "
                                   f"{checkpoint.name} instead: the steps after it are trained again.")
    return checkpoint


def _build_trainer(s: Session) -> None:
    """The model with its adapter, the callback that reports, and the trainer that joins them."""
    from transformers import PrinterCallback

    if s.shape.attention != s.config.training.attention:  # flash attention asked for, not available here
        s.events.emit("log", message="Flash attention needs an NVIDIA GPU and the flash-attn package "
                      "(pip install flash-attn); this run uses SDPA attention instead, with the same memory plan.")
    s.samples = sample_prompts(s.config, s.loaded)
    if fsdp_running():
        _main_process_work_left_out(s)
    if s.config.training.method != "sft":
        _build_preference_trainer(s)
        return
    s.model = load_model(s.config, s.info, s.device, s.compute_dtype)
    s.callback = _callback(s)
    liger = bool(s.shape.loss_chunk_tokens) and liger_available(s.on_gpu)
    if liger:
        s.events.emit("log", message="The loss runs through Liger's fused linear cross-entropy (liger-kernel) "
                      "instead of the studio's chunked loss.")
    args = training_arguments(s.config, s.shape, run_dir=s.run_dir, total_steps=s.total_steps, compute_dtype=s.compute_dtype,
                              on_gpu=s.on_gpu, has_eval=s.eval_ds is not None, world=world_size(), liger=liger)
    s.trainer = trainer_class()(model=s.model, args=args, train_dataset=s.train_ds, eval_dataset=s.eval_ds,
                                data_collator=make_collator(s.shape, s.tokenizer, s.on_gpu), processing_class=s.tokenizer,
                                callbacks=[s.callback], loss_chunk_tokens=0 if liger else s.shape.loss_chunk_tokens)
    s.trainer.remove_callback(PrinterCallback)  # its log lines would mix with the events on stdout


def _main_process_work_left_out(s: Session) -> None:
    """What the main process does alone while the others wait (sample answers, golden-question scores,
    the preflight batch) needs the whole model: with FSDP each process holds a part of it, so these wait
    for the run's end, and the run says so."""
    left = [what for what, there in (("sample answers", s.samples), ("golden-question scores", s.questions),
                                     ("the preflight check", s.config.training.preflight)) if there]
    if left:
        s.events.emit("log", message=f"With FSDP each GPU holds only a part of the model, so these are left out while "
                                     f"it trains: {', '.join(left)}. Score the checkpoints afterwards (`studio eval`, or "
                                     "Score on the Runs page) and try the adapter on the Try page.")
    s.samples, s.questions = [], []


def _callback(s: Session):
    from studio.core.training.callback import StudioEvents

    return StudioEvents(s.events, s.stop, s.run_dir, start_step=s.start_step, samples=s.samples, tokenizer=s.tokenizer,
                        config=s.config, checkpoint_bytes=checkpoint_bytes(s.trainable, s.shape.optimizer),
                        scoring=_scoring(s))


def _build_preference_trainer(s: Session) -> None:
    """DPO or ORPO through TRL's trainer. A fresh DPO adapter is added by TRL itself (given the LoRA
    config), so its reference is the same base with the adapter switched off; going on from an earlier
    adapter, TRL keeps a frozen copy of it as the reference."""
    from transformers import PrinterCallback

    from studio.core.data.tokens import chat_template_of
    from studio.core.training.model import lora_config
    from studio.core.training.trainer import preference_trainer_class

    method = s.config.training.method
    trl_wraps = method == "dpo" and not s.config.adapter.start_from
    model = load_model(s.config, s.info, s.device, s.compute_dtype, adapter=not trl_wraps)
    s.tokenizer.chat_template = chat_template_of(s.tokenizer)[0]  # TRL renders the pairs with the run's template
    args = training_arguments(s.config, s.shape, run_dir=s.run_dir, total_steps=s.total_steps,
                              compute_dtype=s.compute_dtype, on_gpu=s.on_gpu, has_eval=s.eval_ds is not None,
                              world=world_size())
    s.trainer = preference_trainer_class(method)(model=model, args=args, train_dataset=s.train_ds, eval_dataset=s.eval_ds,
                                                 processing_class=s.tokenizer,
                                                 peft_config=lora_config(s.config) if trl_wraps else None)
    s.model = s.trainer.model
    s.callback = _callback(s)
    s.trainer.add_callback(s.callback)
    s.trainer.remove_callback(PrinterCallback)


def _scoring(s: Session):
    """Who scores each checkpoint on the golden questions: the main process, when there are questions."""
    if not s.questions or not is_main_process():
        return None
    from studio.core.evaluation.during_training import CheckpointScoring

    mode = s.config.training.precision
    held_out = s.eval_ds if s.config.training.method == "sft" else None  # a preference run's are pairs, not rows
    return CheckpointScoring(s.run_dir, s.questions, s.tokenizer, held_out,
                             held_as=mode if mode in ("4bit", "8bit") else s.compute_dtype)


def _announce(s: Session) -> None:
    """The `started` event: the run as planned and as it will train."""
    s.events.emit("started", total_steps=s.total_steps, resumed_from_step=s.start_step, device=device_name(s.device),
                  compute_dtype=s.compute_dtype, precision=s.config.training.precision, optimizer=s.shape.optimizer,
                  planned_bytes=s.plan.total_bytes, planned_components={c.name: c.bytes for c in s.plan.components},
                  planned_needed_bytes=s.plan.needed_bytes, planned_held_bytes=list(s.plan.held_bytes),
                  planned_peak_phase=s.plan.peak_phase.name,
                  train_rows=len(s.train_ds), eval_rows=len(s.eval_ds) if s.eval_ds is not None else 0,
                  trainable_params=s.trainable, total_params=s.info.total_params, pid=os.getpid(),
                  processes=world_size(), data_format=s.loaded.format, data_rows=s.loaded.rows_kept)


# ---------------------------------------------------------------------------------------------
# run_training
# ---------------------------------------------------------------------------------------------


def run_training(s: Session) -> None:
    """The training loop (after the preflight check of the longest batch), or, when a resumed run had
    already reached its last step, that step's state restored. Raises the RunFailure that stopped it."""
    import torch

    if s.checkpoint is not None and s.start_step >= s.total_steps:
        restore_final_state(s)
    else:
        if s.config.training.preflight and not fsdp_running():  # said in _main_process_work_left_out
            preflight(s)
        try:
            s.trainer.train(resume_from_checkpoint=str(s.checkpoint) if s.checkpoint else None)
        except torch.cuda.OutOfMemoryError as exc:
            raise RunFailure("out_of_memory", f"The GPU ran out of memory: {str(exc).splitlines()[0][:200]}",
                             oom_advice(s)) from exc
    if s.stop.failure is not None:
        raise s.stop.failure


def oom_advice(s: Session) -> str:
    """What to change when memory ran out: the planner's first fixes for this GPU."""
    import torch

    from studio.core.memory import suggest_changes

    if not s.on_gpu:
        return "The computer ran out of memory: close other programs, or lower the batch size or sequence length."
    total_gpu = torch.cuda.get_device_properties(s.device).total_memory
    fixes = suggest_changes(s.info, s.config.adapter_spec(), s.shape, s.precision, int(total_gpu * 0.92))
    if not fixes:
        return "Even the smallest settings do not fit this GPU: choose a smaller model."
    return "Try: " + "; or ".join(f"{f.change} (planned {f.total_bytes / 1024**3:.1f} GiB)" for f in fixes[:3])


def preflight(s: Session) -> None:
    """Run the longest batch first (preflight.py), so data that cannot fit fails now, not hours in."""
    import torch

    from studio.core.training.preflight import run_preflight

    try:
        # the trainer's own rows: for DPO and ORPO the pairs as TRL tokenized them
        result = run_preflight(s.trainer, s.trainer.train_dataset, s.trainer.eval_dataset, s.config.training.batch_size)
    except torch.cuda.OutOfMemoryError as exc:
        raise RunFailure("out_of_memory", "The longest batch of this data does not fit in GPU memory "
                         f"(checked before training: {str(exc).splitlines()[0][:160]}).", oom_advice(s)) from exc
    s.events.emit("preflight", **result.as_event(s.plan.total_bytes))


def restore_final_state(s: Session) -> None:
    """The run was stopped after its last checkpoint (in the final evaluation or while the adapter was
    saved): nothing is left to train. The model takes that checkpoint's weights and the trainer its
    state, and the run finishes from there."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file
    from transformers import TrainerState

    set_peft_model_state_dict(s.model, load_file(str(s.checkpoint / "adapter_model.safetensors")))
    s.trainer.state = TrainerState.load_from_json(str(s.checkpoint / "trainer_state.json"))
    s.events.emit("log", message=f"Training had reached its last step ({s.trainer.state.global_step}) before it was "
                                 f"stopped; the adapter is written from {s.checkpoint.name}, with no further training.")


# ---------------------------------------------------------------------------------------------
# finish
# ---------------------------------------------------------------------------------------------


def finish(s: Session) -> dict:
    """The final evaluation and samples, and the adapter saved; returns the `finished` event's fields."""
    step = s.trainer.state.global_step
    cancelled = s.stop.cancel_requested
    final_eval = None if s.eval_ds is None or cancelled else _final_eval(s, step)
    every = s.config.training.sample_every
    if s.samples and every and not cancelled and step % every:
        s.callback.emit_samples(s.model, step)
    state = full_adapter_state(s.model) if fsdp_running() else None  # gathered from every process
    if is_main_process():
        save_adapter(s.model, s.tokenizer, s.run_dir, s.config, s.info, s.precision.mode, s.loaded.format, state=state)
    return {"status": "cancelled" if cancelled else "completed", "step": step, "adapter": runs.ADAPTER,
            "eval_loss": final_eval}


def _final_eval(s: Session, step: int) -> float | None:
    """The eval loss at the last step: the one already measured there, else measured now."""
    evals = [h for h in s.trainer.state.log_history if "eval_loss" in h]
    if evals and evals[-1].get("step") == step:
        return evals[-1]["eval_loss"]
    return s.trainer.evaluate().get("eval_loss")  # the callback's on_evaluate writes the event


def save_adapter(model, tokenizer, run_dir: Path, config: RunConfig, info, precision: str, data_format: str | None = None,
                 *, state: dict | None = None) -> Path:
    """Write the adapter beside its final place, then rename: a crash never leaves half an adapter.
    `state`: the adapter's tensors whole, where FSDP sharded the model's own."""
    from studio.core.data.tokens import chat_template_of

    def build(work: Path) -> None:
        # only `default`, not DPO's frozen reference copy ("ref")
        model.save_pretrained(work, selected_adapters=["default"], **({"state_dict": state} if state else {}))
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
