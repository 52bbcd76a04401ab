"""What every page shares: one `RunConfig` (the recipe being edited), the model and data it names,
the GPU it is planned for, and the settings. Pages read it, edit it and call `changed()`; they
listen to its signals instead of to each other, each to the ones it shows: one signal per section
of the recipe that an edit changed (`adapter_changed`, `training_changed`, ...), and `plan_changed`
when the memory plan's inputs did (the plan itself is worked out once per configuration: plans.py).

Reading a model and inspecting data run in background tasks; a result that arrives after a newer
request is dropped, so quick clicks never show a stale card.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal

from studio.core.errors import StudioError
from studio.core.memory import Leanest, MemoryPlan, Suggestion
from studio.core.models import ModelInfo, is_demo
from studio.core.presets import swap_training
from studio.core.recipe import RunConfig
from studio.core.settings import Settings, load_settings, save_settings
from studio.ui.model_fixes import FixesByModel
from studio.ui.plans import PlanCache, PlanInputs
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


def a_card(size_gb: int) -> str:
    """"a 24 GB card", "an 8 GB card": the article as the number is said."""
    spoken_with_vowel = str(size_gb).startswith("8") or size_gb in (11, 18)
    return f"{'an' if spoken_with_vowel else 'a'} {size_gb} GB card"


@dataclass
class DataView:
    """What the Data page shows: the core's report, plus each row's token length (so the share cut
    by a new sequence length is exact without tokenizing again), what the user says first in the
    first example, as the data holds it (the Try page's first question), and its preference pairs
    (rows with a chosen and a rejected answer: what DPO and ORPO train on)."""

    report: dict
    lengths: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # the core's array, as it is
    first_user_turn: str = ""
    pairs: int = 0  # data.layout.pair_count

    def truncated_share(self, seq_len: int) -> float:
        if self.report.get("format") == "text":
            return 0.0  # raw text is cut into sequence-length chunks that are all trained: nothing is lost
        if not len(self.lengths):
            return self.report.get("stats", {}).get("truncated_share", 0.0)
        from studio.core.data.stats import (
            truncated_share,  # not at start-up: the data package is heavy
        )

        return truncated_share(self.lengths, seq_len)

    def chunks(self, seq_len: int):
        """Raw text: the sequence-length chunks training makes of its documents (data/chunks.py ChunkCounts);
        None for chat data, or when the lengths are not known."""
        if self.report.get("format") != "text" or not len(self.lengths):
            return None
        from studio.core.data.chunks import count_chunks

        return count_chunks(self.lengths, seq_len)

    def training_rows(self, seq_len: int) -> int:
        """The rows the worker trains on (before the held-out share): raw text's chunks, else the rows."""
        chunks = self.chunks(seq_len)
        return chunks.chunks if chunks is not None else self.report["rows"]


@dataclass(frozen=True)
class StartBlocker:
    """Why Start is refused: what is wrong, what to do, and the page ("data", "model") that fixes it."""

    message: str
    advice: str
    page: str


@dataclass
class DataFailure:
    """Why the data cannot be used, as the Data page shows it: message and advice in the window's
    words, the problems line by line, and — when the file was read that far — its columns and first
    row, so that the user can say which column holds what."""

    message: str
    advice: str
    problems: list[dict] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    first_row: dict = field(default_factory=dict)


SECTIONS = ("data", "adapter", "training", "output")  # the recipe's sections the pages edit, each with its signal


class StudioState(QObject):
    data_settings_changed = Signal()  # .config.data: the source, format, mapping, skipping, held-out share
    adapter_changed = Signal()  # .config.adapter
    training_changed = Signal()  # .config.training
    output_changed = Signal()  # .config.output: the run's name and folder
    plan_changed = Signal()  # the memory plan's inputs: the model, adapter, training shape or precision
    model_loading = Signal(str)
    model_changed = Signal()  # .model is new (None after a failure)
    data_loading = Signal(str)
    data_changed = Signal()  # .data (the report) is new
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
        self.data_failure: DataFailure | None = None  # the same failure, with its problems and columns
        self.gpus: list = []
        self.gpus_detected = False
        self.gpu = GpuChoice(a_card(DEFAULT_GPU_GB), DEFAULT_GPU_GB * GiB)
        self.current_run: Path | None = None
        self._fixes = FixesByModel()
        self._plans = PlanCache()
        self._model_task: Task | None = None
        self._data_task: Task | None = None
        self._model_generation = 0
        self._data_generation = 0
        self.apply_settings(self.settings, notify=False)
        self._published = self._sections()  # what the pages were last told, by section
        self._published_plan = self._planned_inputs()

    @property
    def fixes_note(self) -> str:
        """What happened to the memory fixes at the last change of model, in the user's words."""
        return self._fixes.note

    # ---- the recipe ----

    def changed(self) -> None:
        """The recipe was edited: one signal for each section that differs from what the pages were
        last told, then `plan_changed` if the plan's inputs differ."""
        sections = self._sections()
        signals = {"data": self.data_settings_changed, "adapter": self.adapter_changed,
                   "training": self.training_changed, "output": self.output_changed}
        for name in SECTIONS:
            if sections[name] != self._published[name]:
                self._published[name] = sections[name]
                signals[name].emit()
        self._publish_plan()

    def _sections(self) -> dict:
        return {name: copy.deepcopy(getattr(self.config, name)) for name in SECTIONS}

    def _publish_plan(self) -> None:
        inputs = self._planned_inputs()
        if inputs != self._published_plan:
            self._published_plan = inputs
            self.plan_changed.emit()

    def snapshot(self) -> RunConfig:
        """A copy of the recipe to hand to a run (later edits do not reach it)."""
        return copy.deepcopy(self.config)

    def apply_changes(self, changes: dict, words: tuple[str, ...] = ()) -> None:
        """Apply a memory suggestion's changes ("adapter.rank", "shape.batch_size", "model", ...),
        remembered as made for the current model (`words`: the suggestion's, for the note)."""
        changes = dict(changes)
        model = changes.pop("model", None)
        before = self.config
        self.config = self.config.with_changes(changes)
        if self.model is not None:
            self._fixes.remember(before, self.config, self.model.name, words)
        self.changed()
        if model is not None and model != self.config.model.source:
            self.load_model(model)

    def set_config(self, config: RunConfig) -> None:
        """Replace the whole recipe (a past run's), reloading model and data when they differ."""
        model_before, data_before = self.config.model.source, (self.config.data.source, self.config.data.format)
        self.config = copy.deepcopy(config)
        self._fixes.clear()
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
            undone = self._fixes.undo(self.config, source)
            self._adapt_training(previous_demo)
            self._fixes.redo(self.config, source, undone)
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
        swap_training(self.config, to_demo=now_demo)

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
        split, subset, assistant_only, text_split = d.split, d.subset, d.assistant_only, d.text_split
        seq_len, model = self.config.training.seq_len, self.model
        self.data_loading.emit(source)

        def work(state):
            from studio.core.data import inspect_data
            from studio.core.data.layout import pair_count
            from studio.core.models import load_tokenizer

            with heavy_imports():  # datasets and the tokenizer load here the first time
                tokenizer = load_tokenizer(model)
                report = inspect_data(source, model=model, fmt=fmt, mapping=mapping, seq_len=seq_len, skip_bad_rows=skip,
                                      split=split, subset=subset, assistant_only=assistant_only, tokenizer=tokenizer,
                                      text_split=text_split)
            lengths = report.lengths if report.lengths is not None else np.zeros(0, dtype=np.int64)
            return DataView(report.as_dict("window"), lengths, _first_user_turn(report), pair_count(report.loaded))

        def done(view):
            if generation != self._data_generation:
                return
            self.data, self.data_error, self.data_failure = view, None, None
            self.data_changed.emit()

        holder: dict = {}

        def failed(message, advice):
            if generation != self._data_generation:
                return
            failure = holder.get("failure") or DataFailure(message, advice)
            self.data, self.data_error, self.data_failure = None, (failure.message, failure.advice), failure
            self.data_failed.emit(failure.message, failure.advice, failure.problems or None)
            self.data_changed.emit()

        def work_keeping_problems(state):
            try:
                return work(state)
            except StudioError as exc:  # what the window shows of it: its words, its problems and columns
                holder["failure"] = _data_failure(exc)
                raise

        self._data_task = start_task("inspect data", work_keeping_problems, on_done=done, on_failed=failed)
        return self._data_task

    def remember_data_folder(self, source: str) -> None:
        """Keep the folder of a local data file (or the folder given) in the settings: the next file
        dialog opens there. Nothing is kept for a hub dataset or the demo."""
        path = Path(source).expanduser()
        if is_demo(source) or not path.exists():
            return
        folder = str((path if path.is_dir() else path.parent).resolve())
        if folder == self.settings.data_dir:
            return
        self.settings.data_dir = folder
        try:
            save_settings(self.settings)
        except StudioError:
            pass  # a folder that cannot be remembered must not stop the data from loading

    def data_folder(self) -> Path:
        """Where a data file dialog opens: the last data folder, else the home folder."""
        saved = self.settings.data_dir
        return Path(saved) if isinstance(saved, str) and Path(saved).is_dir() else Path.home()

    # ---- the GPU and the plan ----

    def set_gpus(self, gpus: list) -> None:
        self.gpus, self.gpus_detected = list(gpus), True
        if gpus and not self.gpu.detected:
            from studio.core.hardware import planning_gpu

            g = planning_gpu(gpus)[0]  # several cards: the plan is for the one with the least free memory
            self.gpu = GpuChoice(f"{g.name} ({g.free_bytes / GiB:.1f} GB free)", g.free_bytes, g.compute_dtype, True)
        self.gpu_changed.emit()
        self._publish_plan()  # a detected card may compute in another dtype

    def set_gpu(self, choice: GpuChoice) -> None:
        self.gpu = choice
        self.gpu_changed.emit()
        self._publish_plan()

    def _plan_inputs(self, model: ModelInfo | None = None) -> PlanInputs | None:
        """What the planner takes for the current settings (None: no model). Raises StudioError for
        settings the planner cannot take."""
        c = self.config
        model = model or self.model
        if model is None:
            return None
        return PlanInputs(model, c.adapter_spec(), c.train_shape(on_gpu=True, model_type=model.model_type),
                          c.precision_for(self.gpu.compute_dtype))

    def _planned_inputs(self) -> PlanInputs | None:
        try:
            return self._plan_inputs()
        except StudioError:
            return None

    def plan(self) -> MemoryPlan | None:
        try:
            inputs = self._plan_inputs()
            return self._plans.plan(inputs) if inputs else None
        except StudioError:
            return None

    def suggestions(self, target_bytes: int | None = None) -> list[Suggestion]:
        """The changes that make the run fit the GPU (or `target_bytes`)."""
        try:
            inputs = self._plan_inputs()
            return self._plans.suggestions(inputs, target_bytes or self.gpu.bytes, self.smaller_models) if inputs else []
        except StudioError:
            return []

    def comparison(self) -> dict[str, MemoryPlan]:
        try:
            inputs = self._plan_inputs()
            return self._plans.comparison(inputs) if inputs else {}
        except StudioError:
            return {}

    def leanest_plan(self, model: ModelInfo | None = None) -> Leanest | None:
        """The leanest run of a model the studio can offer from the current settings: the Model page's
        "too large" and the Memory page's fixes both come from it (memory.leanest). Raises StudioError
        when the model cannot be planned (e.g. nothing an adapter can attach to)."""
        inputs = self._plan_inputs(model)
        if inputs is None:
            return None
        if inputs.model is not self.model:
            from studio.core import memory

            return memory.leanest(*inputs.args())
        return self._plans.leanest(inputs)

    # ---- fixes, runs, and whether a run may start ----

    def apply_suggestion(self, suggestion: Suggestion) -> None:
        self.apply_changes(suggestion.changes, suggestion.parts)

    def can_apply(self, suggestion: Suggestion) -> bool:
        """Whether this computer can make the change: a suggestion of more GPUs than it has is advice."""
        return suggestion.gpus <= max(1, len(self.gpus))

    def select_run(self, run_dir: Path | None) -> None:
        self.current_run = Path(run_dir) if run_dir else None
        self.run_selected.emit(self.current_run)

    def start_blocker(self) -> StartBlocker | None:
        """Why a new run would only fail at once, from the checks already done (None: it may start).
        While the data is still being checked nothing is known yet: the worker checks it again."""
        if self.model is None and self.model_error is not None:
            return StartBlocker(f"The model cannot be used: {self.model_error[0]}", self.model_error[1], "model")
        if not self.config.data.source.strip():
            return StartBlocker("No training data is chosen yet.", "Choose a file or a hub dataset on the Data page.", "data")
        if self._data_task is not None and self._data_task.running:
            return None
        if self.data_error is not None:
            return StartBlocker(f"The data cannot be used: {self.data_error[0]}", self.data_error[1], "data")
        if self.data is not None and not self.data.report.get("usable", True):
            return StartBlocker("The data has no row that can be trained on.",
                                "The Data page lists its problems and what to change.", "data")
        method = self.config.training.method
        if self.data is not None and method != "sft" and not self.data.pairs:
            return StartBlocker(f"{method.upper()} needs preference pairs (a chosen and a rejected answer per row), "
                                "and the data has none.", "Choose such data on the Data page, or train supervised "
                                "(SFT) on the Adapter page.", "data")
        return None


def _data_failure(error: StudioError) -> DataFailure:
    """A failure to load data as the window shows it (a DataError names settings in the window's words)."""
    from studio.core.data import WINDOW, DataError

    if not isinstance(error, DataError):
        return DataFailure(error.message, error.advice)
    preview = error.preview
    return DataFailure(error.message, error.advice_for(WINDOW), [p.as_dict(WINDOW) for p in error.problems],
                       list(preview.columns) if preview else [], dict(preview.first_row) if preview else {})


def _first_user_turn(report) -> str:
    """What the user says first in the report's first example (a chat row), as the data holds it."""
    if not report.examples:
        return ""
    row = report.loaded.dataset[report.examples[0].index]
    turns = row.get("messages") or ()
    return next((str(t.get("content") or "").strip() for t in turns if t.get("role") == "user"), "")
