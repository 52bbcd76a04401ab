"""Trainer's progress as studio events: a step's loss, speed and memory, evaluations, samples and
checkpoints; and the checks made at each step's end — a cancel request, a loss that diverged, a disk
too full for the next checkpoint."""

from __future__ import annotations

import math
import time
from pathlib import Path

from transformers import TrainerCallback

from studio.core import runs
from studio.core.runs import DISK_MARGIN, free_bytes  # by name: tests replace callback.free_bytes
from studio.core.training.distributed import agreed, fsdp_running, process_bytes, save_whole_adapter, world_size
from studio.core.training.events import REWARD_FIELDS, EventWriter, is_main_process
from studio.core.training.failures import RunFailure


def reward_fields(logs: dict, prefix: str = "") -> dict:
    """The preference rewards in a TRL trainer's log (or eval metrics, `prefix` "eval_"), as event fields."""
    return {prefix + name: float(logs[prefix + key]) for key, name in REWARD_FIELDS.items() if prefix + key in logs}


class StudioEvents(TrainerCallback):
    """Writes the run's events as Trainer reports; stops training (through `stop`) when asked or when
    it must. `checkpoint_bytes`: what one checkpoint takes on disk."""

    def __init__(self, events: EventWriter, stop, run_dir: Path, *, start_step: int, samples: list, tokenizer,
                 config, checkpoint_bytes: int, scoring=None):
        self.events, self.stop, self.run_dir = events, stop, run_dir
        self.samples, self.tokenizer, self.config = samples, tokenizer, config
        self.checkpoint_bytes = checkpoint_bytes
        self.scoring = scoring  # evaluation.during_training.CheckpointScoring, when the run has golden questions
        self.first_step = start_step
        self.cancel_file = run_dir / runs.CANCEL
        self.t0 = self.last_time = time.monotonic()
        self.last_tokens = 0
        self.measured = False  # process_bytes reported (several processes)

    def on_train_begin(self, args, state, control, model=None, **kw):
        if self.scoring is not None and not self.scoring.has("base"):
            self._score(model, "base", None)
        self.t0 = self.last_time = time.monotonic()
        self.last_tokens = state.num_input_tokens_seen or 0

    def _score(self, model, name: str, step: int | None) -> None:
        """The golden questions answered by `model` (the base: adapter off), scored, saved and reported."""
        from studio.core.evaluation.during_training import event_fields

        what = "the base model" if step is None else name
        self.events.emit("log", step=step or 0, message=f"Scoring {what} on {self.scoring.count} golden questions…")
        started = time.monotonic()
        row = self.scoring.score(model, name, step)
        self.events.emit("eval", **event_fields(row))
        self.events.emit("log", step=step or 0, message=f"Scored {what} in {time.monotonic() - started:.1f} s.")

    def on_log(self, args, state, control, logs=None, **kw):
        logs = logs or {}
        if "loss" not in logs:
            return
        loss = float(logs["loss"])
        self.events.emit("step", **self._step_fields(state, logs, loss), **reward_fields(logs), **_gpu_fields(),
                         **self._process_fields(kw))
        if not math.isfinite(loss):
            lr = self.config.training.learning_rate
            self.stop.failure = RunFailure(
                "nan_loss", f"The loss became {loss} at step {state.global_step}: training diverged.",
                f"Lower the learning rate (now {lr:g}; try {lr / 4:g}), "
                "and check the data for broken examples. The last checkpoint before this step is kept.")
            control.should_training_stop = True
            control.should_save = False

    def _step_fields(self, state, logs: dict, loss: float) -> dict:
        now = time.monotonic()
        tokens = state.num_input_tokens_seen or 0
        tps = (tokens - self.last_tokens) / max(now - self.last_time, 1e-9) if tokens else None
        self.last_time, self.last_tokens = now, tokens
        done = state.global_step - self.first_step
        elapsed = now - self.t0
        eta = elapsed / done * (state.max_steps - state.global_step) if done > 0 else None
        return dict(step=state.global_step, total_steps=state.max_steps, loss=loss, lr=logs.get("learning_rate"),
                    grad_norm=logs.get("grad_norm"), tokens_per_s=tps, tokens_seen=tokens, elapsed_s=round(elapsed, 2),
                    eta_s=None if eta is None else round(eta, 1), epoch=logs.get("epoch"))

    def _process_fields(self, kw: dict) -> dict:
        """On the first step of a run on several processes: what the main process holds (its shard with FSDP)."""
        if self.measured or world_size() == 1 or kw.get("model") is None or kw.get("optimizer") is None:
            return {}
        self.measured = True
        return {"process_bytes": process_bytes(kw["model"], kw["optimizer"])}

    def on_evaluate(self, args, state, control, metrics=None, **kw):
        if metrics and "eval_loss" in metrics:
            self.events.emit("eval", step=state.global_step, eval_loss=float(metrics["eval_loss"]),
                             **reward_fields(metrics, "eval_"))

    def on_step_end(self, args, state, control, model=None, **kw):
        self._check_cancel(state, control)  # first: with several processes every one takes part in the vote
        if self.stop.failure is not None:
            control.should_training_stop = True
            control.should_save = False
            return
        if control.should_save and not self._room_for_checkpoint(control):
            return
        every = self.config.training.sample_every
        if self.samples and every and state.global_step % every == 0:
            self.emit_samples(model, state.global_step)

    def _check_cancel(self, state, control) -> None:
        asked = agreed(self.cancel_file.exists() or self.stop.cancel_requested)  # every process at the same step
        if asked and not self.stop.cancel_requested:
            self.stop.cancel_requested = True
            self.events.emit("log", step=state.global_step, message="Cancel requested: stopping after this step and saving.")
        if self.stop.cancel_requested:
            control.should_training_stop = True
            control.should_save = True

    def _room_for_checkpoint(self, control) -> bool:
        """Whether the disk has room for the checkpoint about to be saved; if not, the run stops with disk_full."""
        free = free_bytes(self.run_dir)
        need = self.checkpoint_bytes + DISK_MARGIN
        if free >= need:
            return True
        self.stop.failure = RunFailure(
            "disk_full", f"Only {free / 1e6:.0f} MB are free where the run is saved; a checkpoint needs about "
            f"{need / 1e6:.0f} MB.", f"Free some disk space in {self.run_dir.parent}, then resume the run "
            "(studio train --resume). Nothing was lost: the last checkpoint is intact.")
        control.should_save = False
        control.should_training_stop = True
        return False

    def emit_samples(self, model, step: int) -> None:
        """The sample prompts' answers at this step (generated on the main process only)."""
        from studio.core.generate import GenerationSettings, generate

        if not is_main_process():
            return
        settings = GenerationSettings(max_new_tokens=self.config.training.sample_max_tokens)
        for prompt in self.samples:
            text = generate(model, self.tokenizer, prompt, settings)
            shown = prompt if isinstance(prompt, str) else prompt[-1]["content"]
            self.events.emit("sample", step=step, prompt=shown, text=text)

    def on_save(self, args, state, control, model=None, **kw):
        path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if fsdp_running():  # Trainer saved only the shards: the adapter is written whole, as every checkpoint has it
            save_whole_adapter(model, path)
        self.events.emit("checkpoint", step=state.global_step, path=str(path.relative_to(self.run_dir)))
        if self.scoring is None:
            return
        if self.stop.cancel_requested:
            self.events.emit("log", step=state.global_step, message=f"{path.name} is not scored now, the run is stopping: "
                             "`studio eval` (or Score on the Runs page) scores it later.")
        else:
            self._score(model, path.name, state.global_step)
            self._keep_best(state, Path(args.output_dir))

    def _keep_best(self, state, checkpoints: Path) -> None:
        """Spare the best-scored checkpoint from the deletion of old checkpoints (keep_checkpoints)."""
        best = self.scoring.best()
        if best is None or not (checkpoints / best).is_dir():
            return
        newest = best == f"checkpoint-{state.global_step}"  # kept anyway: said only when an older one is kept
        if state.best_model_checkpoint != str(checkpoints / best):
            state.best_model_checkpoint = str(checkpoints / best)
            if not newest:
                self.events.emit("log", step=state.global_step, message=f"{best} answers the golden questions best so "
                                 "far: it is kept when older checkpoints are deleted.")


def _gpu_fields() -> dict:
    """This process's GPU memory now and at its peak, as torch and the driver count it ({} on the CPU)."""
    import torch

    if not torch.cuda.is_available():
        return {}
    from studio.core.hardware import process_gpu_bytes

    return dict(gpu_bytes=torch.cuda.memory_allocated(), gpu_reserved_bytes=torch.cuda.memory_reserved(),
                gpu_peak_bytes=torch.cuda.max_memory_allocated(), gpu_peak_reserved_bytes=torch.cuda.max_memory_reserved(),
                gpu_nvml_bytes=process_gpu_bytes(torch.cuda.current_device()))
