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
from studio.core.memory import Leanest, MemoryPlan, Suggestion
from studio.core.models import ModelInfo, is_demo
from studio.core.recipe import RunConfig
from studio.core.settings import Settings, load_settings, save_settings
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


def a_card(size_gb: int) -> str:
    """"a 24 GB card", "an 8 GB card": the article as the number is said."""
    spoken_with_vowel = str(size_gb).startswith("8") or size_gb in (11, 18)
    return f"{'an' if spoken_with_vowel else 'a'} {size_gb} GB card"


@dataclass
class AppliedFixes:
    """Memory fixes applied so that one model fits: undone when another model is chosen, made again
    when it comes back. `fields`: (section, name) → (before, after) in the recipe."""

    model_name: str
    words: list[str] = field(default_factory=list)
    fields: dict = field(default_factory=dict)


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
        self.data_failure: DataFailure | None = None  # the same failure, with its problems and columns
        self.gpus: list = []
        self.gpus_detected = False
        self.gpu = GpuChoice(a_card(DEFAULT_GPU_GB), DEFAULT_GPU_GB * GiB)
        self.current_run: Path | None = None
        self._fixes: dict[str, AppliedFixes] = {}  # by model source: the memory fixes made for it
        self._fixed_source: str | None = None  # the model whose fixes are in the recipe now
        self.fixes_note = ""  # what happened to them at the last change of model, in the user's words
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

    def apply_changes(self, changes: dict, words: tuple[str, ...] = ()) -> None:
        """Apply a memory suggestion's changes ("adapter.rank", "shape.batch_size", "model", ...),
        remembered as made for the current model (`words`: the suggestion's, for the note)."""
        changes = dict(changes)
        model = changes.pop("model", None)
        before = self.config
        self.config = self.config.with_changes(changes)
        self._remember_fix(before, words)
        self.changed()
        if model is not None and model != self.config.model.source:
            self.load_model(model)

    def set_config(self, config: RunConfig) -> None:
        """Replace the whole recipe (a past run's), reloading model and data when they differ."""
        model_before, data_before = self.config.model.source, (self.config.data.source, self.config.data.format)
        self.config = copy.deepcopy(config)
        self._fixes.clear()  # the recipe says what it wants: no fix is undone or made again on it
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
            undone = self._undo_fixes(source)
            self._adapt_training(previous_demo)
            self._redo_fixes(source, undone)
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
            lengths = report.lengths if report.lengths is not None else np.zeros(0, dtype=np.int64)
            return DataView(report.as_dict("window"), lengths)

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
            g = gpus[0]
            self.gpu = GpuChoice(f"{g.name} ({g.free_bytes / GiB:.1f} GB free)", g.free_bytes, g.compute_dtype, True)
        self.gpu_changed.emit()

    def set_gpu(self, choice: GpuChoice) -> None:
        self.gpu = choice
        self.gpu_changed.emit()

    def _plan_inputs(self, model: ModelInfo | None = None) -> tuple:
        """(model, adapter, shape, precision) as the planner takes them, for the current settings."""
        c = self.config
        model = model or self.model
        return (model, c.adapter_spec(), c.train_shape(on_gpu=True, model_type=model.model_type),
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

    def leanest_plan(self, model: ModelInfo | None = None) -> Leanest | None:
        """The leanest run of a model the studio can offer from the current settings: the Model page's
        "too large" and the Memory page's fixes both come from it (memory.leanest)."""
        model = model or self.model
        if model is None:
            return None
        return memory.leanest(*self._plan_inputs(model))

    # ---- memory fixes belong to the model they were made for ----

    def apply_suggestion(self, suggestion: Suggestion) -> None:
        self.apply_changes(suggestion.changes, suggestion.parts)

    def _remember_fix(self, before: RunConfig, words: tuple[str, ...]) -> None:
        changed = _changed_fields(before, self.config)
        if not changed or self.model is None:
            return
        self.fixes_note = ""
        record = self._fixes.setdefault(self._fixed_source or self.config.model.source, AppliedFixes(self.model.name))
        record.words.extend(words)
        for key, (old, new) in changed.items():
            record.fields[key] = (record.fields.get(key, (old, new))[0], new)

    def _undo_fixes(self, source: str) -> AppliedFixes | None:
        """Put back what the fixes for the previous model changed (what the user changed since stays)."""
        record = self._fixes.get(self._fixed_source) if self._fixed_source != source else None
        self._fixed_source = source
        self.fixes_note = ""
        if record is None:
            return None
        for (section, name), (old, new) in list(record.fields.items()):
            if getattr(getattr(self.config, section), name) == new:
                setattr(getattr(self.config, section), name, old)
            else:
                del record.fields[(section, name)]  # changed by hand since: the user's now
        return record if record.fields else None

    def _redo_fixes(self, source: str, undone: AppliedFixes | None) -> None:
        """Make the fixes remembered for `source` again, and say what happened in `fixes_note`."""
        record = self._fixes.get(source)
        redone = 0
        for (section, name), (old, new) in (record.fields.items() if record else ()):
            if getattr(getattr(self.config, section), name) == old:
                setattr(getattr(self.config, section), name, new)
                redone += 1
        notes = []
        if undone is not None:
            notes.append(_fixes_words(undone, f"made so {undone.model_name} would fit", "undone for this model") +
                         f" They come back if you choose {undone.model_name} again.")
        if redone:
            notes.append(_fixes_words(record, f"made earlier so {record.model_name} fits", "back"))
        self.fixes_note = " ".join(notes)

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
        return None


def _data_failure(error: StudioError) -> DataFailure:
    """A failure to load data as the window shows it (a DataError names settings in the window's words)."""
    from studio.core.data import WINDOW, DataError

    if not isinstance(error, DataError):
        return DataFailure(error.message, error.advice)
    preview = error.preview
    return DataFailure(error.message, error.advice_for(WINDOW), [p.as_dict(WINDOW) for p in error.problems],
                       list(preview.columns) if preview else [], dict(preview.first_row) if preview else {})


def _changed_fields(before: RunConfig, after: RunConfig) -> dict:
    """(section, name) → (before, after) for each adapter and training setting that differs."""
    from dataclasses import fields

    changed = {}
    for section in ("adapter", "training"):
        old, new = getattr(before, section), getattr(after, section)
        for f in fields(old):
            if getattr(old, f.name) != getattr(new, f.name):
                changed[(section, f.name)] = (getattr(old, f.name), getattr(new, f.name))
    return changed


def _fixes_words(record: AppliedFixes, made: str, now: str) -> str:
    """"The 2 changes made so Llama 3.1 8B would fit are undone for this model: ...; ...."""
    from studio.core.wording import count

    n = len(record.words) or len(record.fields)
    what = "; ".join(w[:1].lower() + w[1:] for w in record.words) if record.words else "its memory settings"
    return f"The {count(n, 'change')} {made} {'is' if n == 1 else 'are'} {now}: {what}."
