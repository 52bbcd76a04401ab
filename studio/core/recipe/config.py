"""`RunConfig`: the five sections of a recipe together, the views the planner and the worker take of
them, and the recipe ⇄ TOML (`version` first, then one table per section)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import Field, asdict, dataclass, field, fields, replace
from pathlib import Path

from studio.core.memory import AdapterSpec, Precision, TrainShape
from studio.core.recipe.adapter import AdapterSection
from studio.core.recipe.data import DataSection
from studio.core.recipe.migrations import VERSION, migrated
from studio.core.recipe.model import ModelSection
from studio.core.recipe.output import OutputSection
from studio.core.recipe.reading import read_toml, sections_from
from studio.core.recipe.training import TrainingSection

SECTIONS = {"model": ModelSection, "data": DataSection, "adapter": AdapterSection, "training": TrainingSection,
            "output": OutputSection}


def iter_settings() -> Iterator[tuple[str, Field]]:
    """(section name, field) for every setting of a recipe, in the recipe's order."""
    for name, section in SECTIONS.items():
        for spec in fields(section):
            yield name, spec


@dataclass
class RunConfig:
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    adapter: AdapterSection = field(default_factory=AdapterSection)
    training: TrainingSection = field(default_factory=TrainingSection)
    output: OutputSection = field(default_factory=OutputSection)

    # ---- views the planner and the worker use ----

    def adapter_spec(self) -> AdapterSpec:
        """The adapter the run trains: the recipe's, or the one it starts from (its own shape)."""
        a = self.adapter
        if a.start_from:
            from studio.core.recipe.start_from import saved_lora, start_adapter

            return AdapterSpec(**saved_lora(start_adapter(a.start_from)), saved=True)
        return AdapterSpec(rank=a.rank, alpha=a.alpha, dropout=a.dropout, targets=tuple(a.targets), use_dora=a.use_dora,
                           use_rslora=a.use_rslora)

    def train_shape(self, on_gpu: bool = True, model_type: str | None = None, attention: str | None = None) -> TrainShape:
        """The planner's view of the training settings; with `model_type`, the chunked loss counts only
        where the worker can use it; `attention`: the implementation the run really gets (the worker
        falls back from flash attention to SDPA where flash-attn is missing)."""
        from studio.core.training.chunked_loss import planned_chunk

        t = self.training
        attention = attention or t.attention
        sft = t.method == "sft"  # TRL's preference trainers pad their batches and compute their own loss
        packing = sft and (t.packing == "on" or (t.packing == "auto" and attention == "flash_attention_2"))
        chunk = planned_chunk(t.chunked_loss, t.loss_chunk_tokens, model_type) if sft else 0
        return TrainShape(batch_size=t.batch_size, seq_len=t.seq_len, grad_accum=t.grad_accum,
                          gradient_checkpointing=t.gradient_checkpointing, optimizer=self.optimizer_for(on_gpu),
                          attention=attention, loss_chunk_tokens=chunk, packing=packing, method=t.method,
                          reference_adapter=t.method == "dpo" and bool(self.adapter.start_from),
                          gpus=max(1, t.num_processes), strategy=t.strategy)

    def precision_for(self, compute_dtype: str) -> Precision:
        t = self.training
        return Precision(mode=t.precision, quant_type=t.quant_type, double_quant=t.double_quant, compute_dtype=compute_dtype,
                         upcast_frozen=t.upcast_frozen)

    def optimizer_for(self, on_gpu: bool) -> str:
        t = self.training
        if t.optimizer != "auto":
            return t.optimizer
        sharded = t.strategy == "fsdp" and t.num_processes > 1  # bitsandbytes' 8-bit states are not sharded by FSDP
        return "paged-adamw-8bit" if on_gpu and not sharded else "adamw"

    def total_steps(self, train_rows: int, world: int | None = None) -> int:
        """Optimizer steps for `train_rows` training rows (the eval hold-out already taken out:
        `data.held_out_rows`), as the worker sets them: the step count if one is set, else
        ceil(epochs × rows / (micro-batch × accumulation × processes)), at least 1. `world`: the
        processes really training (default: the recipe's num_processes)."""
        t = self.training
        if t.steps:
            return t.steps
        per_step = t.batch_size * t.grad_accum * max(1, world or t.num_processes)
        return max(1, math.ceil((t.epochs or 1) * train_rows / per_step))

    # ---- checks ----

    def validate(self) -> RunConfig:
        """Each section's checks; a StudioError names the first bad value and the flag that changes it."""
        for name in SECTIONS:
            getattr(self, name).validate()
        return self

    # ---- TOML ----

    def to_dict(self) -> dict:
        def clean(d: dict) -> dict:  # TOML has no null: leave unset values out
            return {k: (clean(v) if isinstance(v, dict) else v) for k, v in d.items() if v is not None}

        return {"version": VERSION, **clean(asdict(self))}

    def to_toml(self) -> str:
        import tomli_w

        header = "# LoRA Studio recipe: `studio train --recipe run.toml` runs it again.\n"
        return header + tomli_w.dumps(self.to_dict())

    def save(self, path: Path) -> None:
        from studio.core.atomic import write_text

        write_text(path, self.to_toml())

    @classmethod
    def from_dict(cls, data: dict) -> RunConfig:
        """A recipe from its TOML tables, of this studio's version or an older one (migrations.py);
        every value is checked against its field's type first (reading.py)."""
        return cls(**sections_from(migrated(data), SECTIONS))

    @classmethod
    def load(cls, path: Path) -> RunConfig:
        return cls.from_dict(read_toml(path))

    def with_changes(self, changes: dict) -> RunConfig:
        """Apply planner-style changes ("adapter.rank", "shape.batch_size", "precision.mode", "model")."""
        config = replace(self, adapter=replace(self.adapter), training=replace(self.training), model=replace(self.model))
        for key, value in changes.items():
            group, _, name = key.partition(".")
            if key == "model":
                config.model.source = value
            elif group == "adapter":
                setattr(config.adapter, name, list(value) if name == "targets" else value)
            elif group == "shape":
                setattr(config.training, {"gpus": "num_processes"}.get(name, name), value)
                if name == "loss_chunk_tokens":
                    config.training.chunked_loss = bool(value)
            elif group == "precision":
                setattr(config.training, {"mode": "precision"}.get(name, name), value)
        return config
