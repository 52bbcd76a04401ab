"""What every page shares: one `RunConfig` (the recipe being edited), the model and data it names,
the GPU it is planned for, and the settings. Pages read it, edit it and call `changed()`; they
listen to its signals instead of to each other.

Reading a model and inspecting data run in background tasks; a result that arrives after a newer
request is dropped, so quick clicks never show a stale card.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal

from studio.core import memory
from studio.core.errors import StudioError
from studio.core.memory import MemoryPlan, Suggestion
from studio.core.models import ModelInfo, is_demo
from studio.core.recipe import RunConfig
from studio.core.settings import Settings, load_settings
from studio.ui.presets import DEMO_TRAINING, REAL_TRAINING
from studio.ui.tasks import Task, heavy_imports, start_task

GiB = 1024**3
DEFAULT_GPU_GB = 24
GPU_SIZES_GB = (8, 12, 16, 24, 32, 48, 80)


@dataclass(frozen=True)
class GpuChoice:
    """The card the plan is checked against: a detected GPU or a size the user picked."""

    label: str
    bytes: int
    compute_dtype: str = "bfloat16"
    detected: bool = False


@dataclass
class DataView:
    """What the Data page shows: the core's report, plus each row's token length (so the share cut
    by a new sequence length is exact without tokenizing again)."""

    report: dict
    lengths: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # the core's array, as it is

    def truncated_share(self, seq_len: int) -> float:
        if not len(self.lengths):
            return self.report.get("stats", {}).get("truncated_share", 0.0)
        from studio.core.data.stats import truncated_share  # not at start-up: the data package is heavy

        return truncated_share(self.lengths, seq_len)


class StudioState(QObject):
    config_changed = Signal()  # any field of the recipe
    model_loading = Signal(str)
    model_changed = Signal()  # .model is new (None after a failure)
    data_loading = Signal(str)
    data_changed = Signal()  # .data is new
    data_failed = Signal(str, str, object)  # message, advice, problems (list of dicts) or None
    gpu_changed = Signal()
    settings_changed = Signal()
    run_selected = Signal(object)  # a run folder (Path) for the Train and Try & Export pages

    def __init__(self, config: RunConfig | None = None, settings: Settings | None = None):
        super().__init__()
        self.settings = settings or load_settings()
        self.config = config or RunConfig()
        self.model: ModelInfo | None = None
        self.model_error: tuple[str, str] | None = None
        self.smaller_models: list[ModelInfo] = []
        self.data: DataView | None = None
        self.data_error: tuple[str, str] | None = None
        self.gpus: list = []
        self.gpus_detected = False
        self.gpu = GpuChoice(f"a {DEFAULT_GPU_GB} GB card", DEFAULT_GPU_GB * GiB)
        self.current_run: Path | None = None
        self._model_task: Task | None = None
        self._data_task: Task | None = None
        self._model_generation = 0
        self._data_generation = 0
        self.apply_settings(self.settings, notify=False)

    # ---- the recipe ----

    def changed(self) -> None:
        self.config_changed.emit()

    def snapshot(self) -> RunConfig:
        """A copy of the recipe to hand to a run (later edits do not reach it)."""
        return copy.deepcopy(self.config)

    def apply_changes(self, changes: dict) -> None:
        """Apply a memory suggestion's changes ("adapter.rank", "shape.batch_size", "model", ...)."""
        changes = dict(changes)
        model = changes.pop("model", None)
        self.config = self.config.with_changes(changes)
        self.changed()
        if model is not None and model != self.config.model.source:
            self.load_model(model)

    def set_config(self, config: RunConfig) -> None:
        """Replace the whole recipe (a past run's), reloading model and data when they differ."""
        model_before, data_before = self.config.model.source, (self.config.data.source, self.config.data.format)
        self.config = copy.deepcopy(config)
        self.changed()
        if self.config.model.source != model_before or self.model is None:
            self.load_model(self.config.model.source)
        elif (self.config.data.source, self.config.data.format) != data_before:
            self.load_data()

    def apply_settings(self, settings: Settings, notify: bool = True) -> None:
        from studio.core.settings import apply_offline

        self.settings = settings
        apply_offline(settings.offline)
        self.config.output.runs_dir = settings.runs_dir
        self.config.model.trust_remote_code = settings.trust_remote_code
        if notify:
            self.settings_changed.emit()
            self.changed()

    def runs_folder(self) -> Path:
        return self.settings.runs_folder()

    # ---- the model ----

    def load_model(self, source: str) -> Task:
        """Resolve `source` in the background; `model_changed` when it is known."""
        source = source.strip()
        self._model_generation += 1
        generation = self._model_generation
        if self._model_task is not None:
            self._model_task.cancel()
        previous_demo = is_demo(self.config.model.source)
        self.config.model.source = source
        trust = self.config.model.trust_remote_code
        self.model_loading.emit(source)

        def work(state):
            from studio.core.models import family_members, resolve_model

            with heavy_imports():  # torch and transformers load here the first time
                info = resolve_model(source, trust_remote_code=trust)
            smaller = []
            for entry in family_members(info):  # for "a smaller model of the same family" suggestions
                if entry.expected_total_params < info.total_params and not state.cancelled():
                    try:
                        smaller.append(resolve_model(entry.name))
                    except StudioError:
                        pass
            smaller.sort(key=lambda m: -m.total_params)  # the largest that fits is the mildest change
            return info, smaller

        def done(result):
            if generation != self._model_generation:
                return
            self.model, self.smaller_models = result
            self.model_error = None
            self._adapt_training(previous_demo)
            self._drop_unknown_targets()
            self.model_changed.emit()
            self.changed()
            if self.config.data.source:
                self.load_data()

        def failed(message, advice):
            if generation != self._model_generation:
                return
            self.model, self.smaller_models = None, []
            self.model_error = (message, advice)
            self.model_changed.emit()
            self.changed()

        self._model_task = start_task("resolve model", work, on_done=done, on_failed=failed)
        return self._model_task

    def _adapt_training(self, previous_demo: bool) -> None:
        """Demo settings for the demo, the recipe's defaults for a real model (unless changed by hand)."""
        now_demo = is_demo(self.config.model.source)
        if previous_demo == now_demo:
            return
        old, new = (DEMO_TRAINING, REAL_TRAINING) if previous_demo else (REAL_TRAINING, DEMO_TRAINING)
        t = self.config.training
        for key, value in new.items():
            if getattr(t, key) == old[key]:
                setattr(t, key, value)

    def _drop_unknown_targets(self) -> None:
        targets = [t for t in self.config.adapter.targets if t == "all-linear" or t in self.model.lora_targets]
        self.config.adapter.targets = targets or ["all-linear"]

    # ---- the data ----

    def load_data(self) -> Task | None:
        """Inspect the recipe's data with the model's tokenizer, in the background."""
        d = self.config.data
        if self.model is None:
            return None
        self._data_generation += 1
        generation = self._data_generation
        if self._data_task is not None:
            self._data_task.cancel()
        source, fmt, mapping, skip = d.source, d.format, d.mapping, d.skip_bad_rows
        split, subset, assistant_only = d.split, d.subset, d.assistant_only
        seq_len, model = self.config.training.seq_len, self.model
        self.data_loading.emit(source)

        def work(state):
            from studio.core.data import inspect_data
            from studio.core.models import load_tokenizer

            with heavy_imports():  # datasets and the tokenizer load here the first time
                tokenizer = load_tokenizer(model)
                report = inspect_data(source, model=model, fmt=fmt, mapping=mapping, seq_len=seq_len, skip_bad_rows=skip,
                                      split=split, subset=subset, assistant_only=assistant_only, tokenizer=tokenizer)
            return DataView(report.as_dict(), report.lengths if report.lengths is not None else np.zeros(0, dtype=np.int64))

        def done(view):
            if generation != self._data_generation:
                return
            self.data, self.data_error = view, None
            self.data_changed.emit()

        holder: dict = {}

        def failed(message, advice):
            if generation != self._data_generation:
                return
            problems = holder.get("problems")
            self.data, self.data_error = None, (message, advice)
            self.data_failed.emit(message, advice, problems)
            self.data_changed.emit()

        def work_keeping_problems(state):
            try:
                return work(state)
            except StudioError as exc:  # fatal data problems carry their list: the table shows them
                problems = getattr(exc, "problems", None)
                if problems:
                    holder["problems"] = [p.as_dict() for p in problems]
                raise

        self._data_task = start_task("inspect data", work_keeping_problems, on_done=done, on_failed=failed)
        return self._data_task

    # ---- the GPU and the plan ----

    def set_gpus(self, gpus: list) -> None:
        self.gpus, self.gpus_detected = list(gpus), True
        if gpus and not self.gpu.detected:
            g = gpus[0]
            self.gpu = GpuChoice(f"{g.name} ({g.free_bytes / GiB:.1f} GB free)", g.free_bytes, g.compute_dtype, True)
        self.gpu_changed.emit()

    def set_gpu(self, choice: GpuChoice) -> None:
        self.gpu = choice
        self.gpu_changed.emit()

    def _plan_inputs(self) -> tuple:
        """(model, adapter, shape, precision) as the planner takes them, for the current settings."""
        c = self.config
        return (self.model, c.adapter_spec(), c.train_shape(on_gpu=True, model_type=self.model.model_type),
                c.precision_for(self.gpu.compute_dtype))

    def plan(self) -> MemoryPlan | None:
        if self.model is None:
            return None
        try:
            return memory.plan(*self._plan_inputs())
        except StudioError:
            return None

    def suggestions(self) -> list[Suggestion]:
        if self.model is None:
            return []
        try:
            return memory.suggest_changes(*self._plan_inputs(), self.gpu.bytes, self.smaller_models)
        except StudioError:
            return []

    def comparison(self) -> dict[str, MemoryPlan]:
        if self.model is None:
            return {}
        try:
            return memory.compare_precisions(*self._plan_inputs())
        except StudioError:
            return {}

    def smallest_plan(self, model: ModelInfo | None = None) -> MemoryPlan | None:
        """The leanest sensible QLoRA run of a model: if even this does not fit, the model is too large."""
        model = model or self.model
        if model is None:
            return None
        return memory.plan(model, memory.AdapterSpec(rank=8, alpha=16), memory.TrainShape(batch_size=1, seq_len=512, grad_accum=8),
                           memory.Precision(mode="4bit", compute_dtype=self.gpu.compute_dtype))

    def select_run(self, run_dir: Path | None) -> None:
        self.current_run = Path(run_dir) if run_dir else None
        self.run_selected.emit(self.current_run)
