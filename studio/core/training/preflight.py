"""Fit before it starts: run the worst batch first.

Runs that die of out-of-memory hundreds of steps in usually die at the one long example. The
preflight builds the micro-batch of the longest training examples (after truncation), runs one
forward, backward and optimizer step on it — and the longest eval batch's forward — measures the
peak memory, then puts everything back: the adapter weights, the optimizer (empty again), the
gradients and the random-number generators. Data order is untouched, so the run that follows is
the same as one without preflight (tests/core/test_preflight.py checks it step for step on CPU).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PreflightResult:
    tokens: int  # tokens in the worst training micro-batch (with padding, when not packed)
    longest: int  # its longest example
    allocated_bytes: int | None  # torch's peak allocated during the preflight (CUDA only)
    reserved_bytes: int | None  # torch's peak reserved
    nvml_bytes: int | None  # the process's GPU memory as the driver sees it (CUDA context included)

    def as_event(self, planned_bytes: int) -> dict:
        return {"planned_bytes": planned_bytes, "measured_allocated_bytes": self.allocated_bytes,
                "measured_reserved_bytes": self.reserved_bytes, "measured_nvml_bytes": self.nvml_bytes,
                "tokens": self.tokens, "longest": self.longest}


# A preference pair's token columns as TRL's trainers make them: (prompt, chosen, rejected)
PAIR_COLUMNS = (("prompt_ids", "chosen_ids", "rejected_ids"),  # DPOTrainer
                ("prompt_input_ids", "chosen_input_ids", "rejected_input_ids"))  # ORPOTrainer


def row_lengths(dataset):
    """Each row's tokens (numpy): its input_ids, or a preference pair's prompt and longer answer. The
    lengths come from the Arrow columns themselves: no token list is turned into Python objects."""
    import numpy as np
    import pyarrow.compute as pc

    table = dataset.with_format("arrow")

    def length(column):
        return pc.list_value_length(table[column]).to_numpy(zero_copy_only=False)

    if "input_ids" in dataset.column_names:
        return length("input_ids")
    prompt, chosen, rejected = next(c for c in PAIR_COLUMNS if c[0] in dataset.column_names)
    return length(prompt) + np.maximum(length(chosen), length(rejected))


def longest_rows(dataset, count: int) -> list[int]:
    """Indices of the `count` longest rows (by token count), ties in data order."""
    import numpy as np

    return np.argsort(-row_lengths(dataset), kind="stable")[:count].tolist()


def _rng_state():
    import random

    import numpy as np
    import torch

    state = {"python": random.getstate(), "numpy": np.random.get_state(), "cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _restore_rng(state) -> None:
    import random

    import numpy as np
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["cpu"])
    if "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])


def run_preflight(trainer, train_ds, eval_ds, batch_size: int) -> PreflightResult:
    """One training step (and one eval forward) on the worst batches; leaves no trace on the run."""
    import torch

    model = trainer.model
    rows = longest_rows(train_ds, batch_size)
    worst = [train_ds[i] for i in rows]
    device = next(p.device for p in model.parameters() if p.requires_grad)
    batch = _on(device, trainer.data_collator(worst))
    trainable = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}
    rng = _rng_state()
    optimizer = trainer.create_optimizer()
    was_training = model.training
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    try:
        _train_step(trainer, batch, optimizer)
        if eval_ds is not None and len(eval_ds):
            _eval_forward(trainer, _on(device, trainer.data_collator([eval_ds[i] for i in longest_rows(eval_ds, batch_size)])))
        allocated, reserved, nvml = _peaks(device)
    finally:
        _put_back(model, trainable, optimizer, rng, was_training)
        # train() makes its own optimizer, after it loads a checkpoint to resume from: loading an adapter can
        # replace its weights (PEFT casts TRL's bf16 adapter back to fp32), and an optimizer made now would
        # go on updating the replaced ones, leaving the model unchanged (seen on a resumed DPO run)
        trainer.optimizer = None
        _forget_metrics(trainer)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    # tokens as the model saw them (padded, or packed into one row; a pair's two answers); longest: the longest example
    longest = int(max(row_lengths(train_ds.select(rows))))
    tokens = sum(int(v.numel()) for k, v in batch.items() if k.endswith("input_ids"))
    return PreflightResult(tokens, longest, allocated, reserved, nvml)


def _forget_metrics(trainer) -> None:
    """TRL's trainers keep each batch's rewards until the next log: the preflight's batch is not the run's."""
    for name in ("_metrics", "_stored_metrics"):
        kept = getattr(trainer, name, None)
        for values in (kept.values() if isinstance(kept, dict) else ()):
            if hasattr(values, "clear"):
                values.clear()


def _on(device, batch: dict) -> dict:
    return {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items()}  # ORPO's batch keeps the texts too


def _train_step(trainer, batch: dict, optimizer) -> None:
    """Forward, backward and optimizer step, as Trainer runs them."""
    trainer.model.train()
    with trainer.compute_loss_context_manager():
        loss = trainer.compute_loss(trainer.model, batch)
    trainer.accelerator.backward(loss)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def _eval_forward(trainer, batch: dict) -> None:
    import torch

    trainer.model.eval()
    with torch.no_grad(), trainer.compute_loss_context_manager():
        trainer.compute_loss(trainer.model, batch)


def _peaks(device) -> tuple[int | None, int | None, int | None]:
    """(peak allocated, peak reserved, the driver's count now) on a GPU; Nones on the CPU."""
    import torch

    from studio.core.hardware import process_gpu_bytes

    if device.type != "cuda":
        return None, None, None
    nvml = process_gpu_bytes(device.index or 0)
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device), torch.cuda.max_memory_reserved(device), nvml


def _put_back(model, trainable: dict, optimizer, rng, was_training: bool) -> None:
    """Everything as it was before the preflight: weights, an empty optimizer, no gradients, the same RNG."""
    import torch

    with torch.no_grad():
        for name, p in model.named_parameters():
            if name in trainable:
                p.copy_(trainable[name])
                p.grad = None
    optimizer.state.clear()
    _restore_rng(rng)
    model.train(was_training)
