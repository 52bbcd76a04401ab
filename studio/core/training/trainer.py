"""How transformers' Trainer is set up for a run: its arguments (a pure function of the recipe and
the plan's shape), the micro-batch collator, and the Trainer subclass with the studio's chunked loss."""

from __future__ import annotations

import math
from pathlib import Path

from studio.core import runs
from studio.core.recipe import RunConfig

OPTIMIZER_NAMES = {"adamw": "adamw_torch", "adamw-8bit": "adamw_bnb_8bit", "paged-adamw-8bit": "paged_adamw_8bit"}


def training_arguments(config: RunConfig, shape, *, run_dir: Path, total_steps: int, compute_dtype: str,
                       on_gpu: bool, has_eval: bool, world: int = 1, liger: bool = False):
    """Trainer's arguments for this run: `shape` is the plan's TrainShape (its optimizer as chosen for
    the device), `total_steps` the run's optimizer steps, `has_eval` whether rows are held out. A
    preference method gets its TRL trainer's arguments (preference_arguments)."""
    from transformers import TrainingArguments

    t = config.training
    args_class, extra = preference_arguments(config, has_eval) if t.method != "sft" else (TrainingArguments, {})
    return args_class(
        **extra,
        output_dir=str(Path(run_dir) / runs.CHECKPOINTS),
        max_steps=total_steps,
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=t.batch_size,
        gradient_accumulation_steps=t.grad_accum,
        learning_rate=t.learning_rate,
        lr_scheduler_type=t.scheduler,
        warmup_steps=int(math.ceil(t.warmup_ratio * total_steps)),
        weight_decay=t.weight_decay,
        max_grad_norm=t.max_grad_norm,
        optim=OPTIMIZER_NAMES[shape.optimizer],
        logging_steps=1,
        logging_nan_inf_filter=False,  # a NaN loss must reach the callback, not be averaged away
        save_strategy="steps",
        save_steps=t.save_every or total_steps,
        save_total_limit=t.keep_checkpoints,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=t.eval_every or total_steps,
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


def preference_arguments(config: RunConfig, has_eval: bool = True) -> tuple[type, dict]:
    """(TRL's config class, its settings) for a DPO or ORPO run: beta, and the sequence length for each
    of a pair's two sequences (prompt and answer together; longer ones lose their end)."""
    t = config.training
    # TRL's configs default to checkpointing on: the recipe's setting instead (the model is prepared with it)
    # eval_on_start: the held-out pairs' rewards before the first step, where each curve starts
    common = {"beta": t.beta, "max_length": t.seq_len, "gradient_checkpointing": t.gradient_checkpointing,
              "gradient_checkpointing_kwargs": {"use_reentrant": False}, "eval_on_start": has_eval}
    if t.method == "dpo":
        from trl import DPOConfig

        return DPOConfig, {**common, "precompute_ref_log_probs": False}
    from trl.experimental.orpo import ORPOConfig

    return ORPOConfig, common


def preference_trainer_class(method: str):
    """TRL's trainer for a preference method. DPO's reference is the model with its adapter switched off
    (TRL does so for a PEFT model given no reference model), or, going on from an earlier adapter, a
    frozen copy of that adapter: never a second copy of the base model."""
    if method == "dpo":
        from trl import DPOTrainer

        return DPOTrainer
    from trl.experimental.orpo import ORPOTrainer

    return ORPOTrainer


def liger_available(on_gpu: bool) -> bool:
    """Liger's fused linear cross-entropy (Trainer's use_liger_kernel) needs CUDA and the
    liger-kernel package; where it is, it replaces the studio's chunked loss."""
    import importlib.util

    return on_gpu and importlib.util.find_spec("liger_kernel") is not None


def make_collator(shape, tokenizer, on_gpu: bool):
    """How micro-batches are built: padded to their longest example, or (shape.packing) padding-free."""
    from transformers import DataCollatorForSeq2Seq, DataCollatorWithFlattening

    if shape.packing:
        # padding-free: a micro-batch's examples joined in one row; position ids restart per example,
        # so flash attention runs each example on its own (varlen) and SDPA/eager get a block mask
        return DataCollatorWithFlattening(return_position_ids=True, separator_id=-100)
    return DataCollatorForSeq2Seq(tokenizer, padding="longest", label_pad_token_id=-100,
                                  pad_to_multiple_of=8 if on_gpu else None)


def trainer_class():
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
