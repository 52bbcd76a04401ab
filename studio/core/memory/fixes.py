"""What to change so that a run fits: `suggest_changes` (the fixes, each in the user's words, with the
total it leads to), `leanest` (every setting at its leanest) and `apply_changes`.

Every setting the studio may change to save memory is an axis of steps, mildest first. The fixes
move one axis (or, when no single change is enough, the fewest axes together); the leanest run is
every axis at its last step. Both come from the same axes, so "too large even for the leanest run"
and "no fix makes it fit" are one answer.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from studio.core.memory.choices import AdapterSpec, Precision, TrainShape
from studio.core.memory.components import MemoryPlan
from studio.core.memory.planner import plan
from studio.core.models import ModelInfo
from studio.core.wording import count

LOSS_CHUNK_TOKENS = 1024  # the loss chunk a fix proposes (training.chunked_loss's default)
MIN_RANK = 4  # the smallest adapter a fix proposes
MIN_SEQ_LEN = 256  # the shortest examples a fix proposes (tokens)


@dataclass(frozen=True)
class Change:
    """One change to the user's settings, in their words ("Shorter examples: cut at 512 tokens instead
    of 2048"), with the machine-readable settings it makes ({"shape.seq_len": 512})."""

    words: str
    changes: dict
    same_result: bool = True  # False: what the run learns changes too (a smaller adapter, shorter examples, ...)


@dataclass(frozen=True)
class Suggestion:
    """A fix that makes the run fit, and the total it leads to: one change, or — when no single change
    is enough — a listed combination. `change` says it in the user's words (the window's button, the
    CLI's line); `parts` lists each change of a combination on its own; `changes` is machine-readable:
    keys are "adapter.rank", "shape.batch_size", "precision.mode", "model" ... for the window's buttons."""

    change: str
    total_bytes: int
    changes: dict = field(default_factory=dict)
    parts: tuple[str, ...] = ()
    gpus: int = 1  # the GPUs it takes: more than the computer has, and it is advice, not a button

    @property
    def combined(self) -> bool:
        return len(self.parts) > 1


@dataclass(frozen=True)
class Leanest:
    """The leanest run of a model the studio can offer (see `leanest`): its plan, and the changes
    from the user's settings that lead to it."""

    plan: MemoryPlan
    changes: tuple[Change, ...]

    def fits(self, gpu_bytes: int) -> bool:
        return self.plan.fits(gpu_bytes)


def _halvings(value: int, floor: int) -> list[int]:
    out = []
    while value // 2 >= floor:
        value //= 2
        out.append(value)
    return out


def _checkpointing(shape: TrainShape) -> list[Change]:
    if shape.gradient_checkpointing:
        return []
    return [Change("Recompute instead of store: turn on gradient checkpointing (about 30% slower, same result)",
                   {"shape.gradient_checkpointing": True})]


def _loss_in_pieces(shape: TrainShape, chunkable: bool) -> list[Change]:
    """The studio's chunked loss; TRL's preference trainers compute their own (DPO's in tiles already)."""
    if shape.loss_chunk_tokens or not chunkable or shape.method != "sft":
        return []
    return [Change(f"Work out the loss {LOSS_CHUNK_TOKENS} tokens at a time (same result)",
                   {"shape.loss_chunk_tokens": LOSS_CHUNK_TOKENS})]


def _no_fp32_copy(precision: Precision) -> list[Change]:
    if not precision.upcast_frozen or precision.compute_bytes >= 4:
        return []
    bits = 8 * precision.compute_bytes
    return [Change(f"Keep the input and output layers in {bits}-bit, without a 32-bit copy (trains as well)",
                   {"precision.upcast_frozen": False})]


def _eight_bit_optimizer(shape: TrainShape) -> list[Change]:
    if shape.optimizer != "adamw" or shape.sharded:  # FSDP does not shard bitsandbytes' 8-bit states
        return []
    return [Change("Use the 8-bit optimizer: its running averages take a quarter of the memory",
                   {"shape.optimizer": "paged-adamw-8bit"})]


def _fewer_at_once(shape: TrainShape) -> list[Change]:
    steps = []
    for b in _halvings(shape.batch_size, 1):
        accum = math.ceil(shape.effective_batch / b)
        per_step = b * accum
        same = "the same" if per_step == shape.effective_batch else f"now {per_step}, not"
        steps.append(Change(f"Fewer examples at once: {b} instead of {shape.batch_size} "
                            f"({same} {count(shape.effective_batch, 'example')} per training step)",
                            {"shape.batch_size": b, "shape.grad_accum": accum}))
    return steps


def _quantize(precision: Precision) -> list[Change]:
    order = ["full", "16bit", "8bit", "4bit"]
    if precision.mode == "4bit":
        return []
    return [Change(_held_in(precision.mode, mode), {"precision.mode": mode}, same_result=False)
            for mode in order[order.index(precision.mode) + 1:]]


def _held_in(before: str, after: str) -> str:
    bits = {"16bit": "16-bit", "8bit": "8-bit", "4bit": "4-bit"}
    qlora = " (QLoRA)" if after == "4bit" else ""
    if before == "full":
        return f"Train a small adapter on a {bits[after]} copy of the model instead of every weight{qlora}"
    return f"Hold the base model in {bits[after]} instead of {bits[before]}{qlora}"


def _smaller_adapter(adapter: AdapterSpec, precision: Precision) -> list[Change]:
    if precision.mode == "full" or adapter.saved:  # an adapter trained further keeps its rank
        return []
    return [Change(f"Smaller adapter: rank {r} instead of {adapter.rank} (it can change the model less)",
                   {"adapter.rank": r, "adapter.alpha": max(1, round(adapter.alpha * r / adapter.rank))}, same_result=False)
            for r in _halvings(adapter.rank, MIN_RANK)]


def _shorter_examples(shape: TrainShape) -> list[Change]:
    return [Change(f"Shorter examples: cut at {s} tokens instead of {shape.seq_len}", {"shape.seq_len": s}, same_result=False)
            for s in _halvings(shape.seq_len, MIN_SEQ_LEN)]


def _axes(model: ModelInfo, adapter: AdapterSpec, shape: TrainShape, precision: Precision) -> list[list[Change]]:
    """Each setting a fix may change, least disruptive first; each lists its steps, mildest first."""
    from studio.core.training.chunked_loss import supports

    axes = [_checkpointing(shape), _loss_in_pieces(shape, supports(model.model_type)), _no_fp32_copy(precision),
            _eight_bit_optimizer(shape), _fewer_at_once(shape), _quantize(precision), _smaller_adapter(adapter, precision),
            _shorter_examples(shape)]
    return [axis for axis in axes if axis]


def _merged(chosen: Sequence[Change]) -> dict:
    return {key: value for change in chosen for key, value in change.changes.items()}


def _total(model: ModelInfo, chosen: Sequence[Change], settings: tuple) -> int:
    """The planned total with the `chosen` changes made to `settings` (adapter, shape, precision)."""
    return plan(model, *apply_changes(_merged(chosen), *settings)).total_bytes


def _suggestion(chosen: Sequence[Change], total: int) -> Suggestion:
    parts = tuple(change.words for change in chosen)
    if len(parts) == 1:
        return Suggestion(parts[0], total, _merged(chosen), parts)
    listed = "; ".join(part[:1].lower() + part[1:] for part in parts)
    return Suggestion(f"{count(len(parts), 'change')} together: {listed}", total, _merged(chosen), parts)


def leanest(model: ModelInfo, adapter: AdapterSpec, shape: TrainShape, precision: Precision) -> Leanest:
    """The leanest run the studio can offer from these settings: every setting a fix may change, at
    its last step. If it does not fit a GPU, no fix does (a smaller model aside)."""
    furthest = tuple(axis[-1] for axis in _axes(model, adapter, shape, precision))
    return Leanest(plan(model, *apply_changes(_merged(furthest), adapter, shape, precision)), furthest)


def _single_fixes(model: ModelInfo, axes: list[list[Change]], settings: tuple, gpu_bytes: int) -> list[Suggestion]:
    """One fix per setting: its mildest step that fits."""
    out = []
    for axis in axes:
        for change in axis:
            total = _total(model, [change], settings)
            if total <= gpu_bytes:
                out.append(_suggestion([change], total))
                break
    return out


def _combined_fix(model: ModelInfo, axes: list[list[Change]], settings: tuple, gpu_bytes: int) -> list[Suggestion]:
    """When no single change is enough: a group of settings that together make it fit — the fewest
    that change what the run learns, then the fewest in all, then the least disruptive — each eased
    back to its mildest step that still fits."""
    if not leanest(model, *settings).fits(gpu_bytes):
        return []
    for group in sorted(_groups(axes), key=lambda g: (sum(not axis[0].same_result for axis in g), len(g))):
        if _total(model, [axis[-1] for axis in group], settings) <= gpu_bytes:
            chosen = _eased(model, list(group), settings, gpu_bytes)
            return [_suggestion(chosen, _total(model, chosen, settings))]
    return []


def _groups(axes: list[list[Change]]) -> list[tuple[list[Change], ...]]:
    """Every group of two or more axes, smaller groups and less disruptive axes first."""
    return [group for size in range(2, len(axes) + 1) for group in itertools.combinations(axes, size)]


def _eased(model: ModelInfo, group: list[list[Change]], settings: tuple, gpu_bytes: int) -> list[Change]:
    """Each setting of `group` at its mildest step that still fits, the most disruptive eased first."""
    chosen = [axis[-1] for axis in group]
    for i in reversed(range(len(group))):
        for change in group[i]:
            trial = chosen[:i] + [change] + chosen[i + 1:]
            if _total(model, trial, settings) <= gpu_bytes:
                chosen = trial
                break
    return chosen


def _smaller_model(model: ModelInfo, smaller_models: Sequence[ModelInfo], settings: tuple, gpu_bytes: int) -> list[Suggestion]:
    for smaller in smaller_models:
        if smaller.total_params >= model.total_params:
            continue
        total = plan(smaller, *settings).total_bytes
        if total <= gpu_bytes:
            words = f"Use the smaller {smaller.name} ({smaller.total_params / 1e9:.1f} B parameters)"
            return [Suggestion(words, total, {"model": smaller.catalog_name or smaller.source}, (words,))]
    return []


def suggest_changes(
    model: ModelInfo,
    adapter: AdapterSpec,
    shape: TrainShape,
    precision: Precision,
    gpu_bytes: int,
    smaller_models: Sequence[ModelInfo] = (),
) -> list[Suggestion]:
    """The fixes that make the run fit `gpu_bytes`, each with its new total and in the user's words.

    One fix per setting (its mildest step that fits). When no single change is enough, one listed
    combination: the fewest settings changed together. None when even the leanest run
    (`leanest`) does not fit. `smaller_models` (same family, e.g. from the catalog) are offered last.
    """
    settings = (adapter, shape, precision)
    if plan(model, *settings).fits(gpu_bytes):
        return []
    axes = _axes(model, *settings)
    fixes = _single_fixes(model, axes, settings, gpu_bytes) or _combined_fix(model, axes, settings, gpu_bytes)
    return (fixes or _more_gpus(model, settings, gpu_bytes)) + _smaller_model(model, smaller_models, settings, gpu_bytes)


def _more_gpus(model: ModelInfo, settings: tuple, gpu_bytes: int) -> list[Suggestion]:
    """When no change of settings is enough: the fewest GPUs like this one (2 or 4, a workstation's)
    among which FSDP shards the run so that it fits each."""
    adapter, shape, precision = settings
    if shape.gpus > 1 or precision.mode == "8bit":  # already several; 8-bit weights do not shard
        return []
    for n in (2, 4):
        changes = {"shape.gpus": n, "shape.strategy": "fsdp"}
        if "8bit" in shape.optimizer:
            changes["shape.optimizer"] = "adamw"  # FSDP does not shard bitsandbytes' 8-bit states
        total = plan(model, *apply_changes(changes, *settings)).total_bytes
        if total <= gpu_bytes:
            words = f"Train on {n} GPUs like this one with FSDP, the model shared out among them (the figure is each GPU's)"
            return [Suggestion(words, total, changes, (words,), gpus=n)]
    return []


def apply_changes(changes: dict, adapter: AdapterSpec, shape: TrainShape, precision: Precision):
    """Apply "adapter.rank"-style changes (a `Suggestion.changes`) to the three choice dataclasses."""
    parts = {"adapter": {}, "shape": {}, "precision": {}}
    for key, value in changes.items():
        group, _, name = key.partition(".")
        if group in parts:
            parts[group][name] = value
    return (replace(adapter, **parts["adapter"]), replace(shape, **parts["shape"]), replace(precision, **parts["precision"]))
