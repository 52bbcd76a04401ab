"""6. Try & Export: ask the base model and the fine-tuned one the same question, side by side as
they write — and, in a third column, a GGUF file (one exported in this session, or any chosen with
a file dialog) answering in llama.cpp (`gguf_column.py`); then export the adapter, a merged model, or
GGUF files (`export_panel.py`).

Loading the models, generating and exporting all run in background tasks; text streams to the
window through signals."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
)

from studio.core.wording import count
from studio.ui.pages.answer_view import AnswerView
from studio.ui.pages.base import Page
from studio.ui.pages.export_panel import ExportPanel
from studio.ui.pages.gguf_column import GgufColumn
from studio.ui.tasks import Task, start_task
from studio.ui.widgets.text import set_state_style

NO_RUN_HINT = "Train a run first (or pick one under Runs)."


class TryExportPage(Page):
    title = "6. Try and export"
    intro = ("Ask a question: the base model, your fine-tuned model and — after a GGUF export, or choose a file — the "
             "exported GGUF file in llama.cpp answer side by side. When you like the answers, export the result.")

    def __init__(self, state, parent=None):
        super().__init__(state, parent, scroll=True)  # a short window scrolls to the Export box
        self.try_model = None
        self.try_model_dir: Path | None = None
        self._ask_task: Task | None = None
        self.asked_prompt: str | None = None  # the question whose answers are on screen
        self.answers = {"base": "", "adapter": ""}
        self.answered_run: Path | None = None  # the run whose answers are on screen
        self._hinting = False  # the status says "Train a run first"

        self.body.addLayout(self._run_row())
        self.body.addLayout(self._prompt_row())
        self.body.addLayout(self._answer_settings_row())
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.setChildrenCollapsible(False)
        self.gguf_column = GgufColumn(state, question=self._question,
                                      settings=lambda: (self.max_tokens.value(), self.temperature.value()),
                                      asked=lambda: self.asked_prompt if self.answered_run is not None else None,
                                      fine_tuned=self._fine_tuned_answer, parent=split)
        self.gguf_column.changed.connect(self._update_enabled)
        header = self.gguf_column.header_height()
        self.base_view, self.base_note = self._answer_box(split, "Base model", "What the model answered before fine-tuning.",
                                                          "Before fine-tuning", header)
        self.adapter_view, self.adapter_note = self._answer_box(split, "Fine-tuned", "What the model answers with your adapter.",
                                                                "With your adapter", header)
        split.insertWidget(0, self.base_view.parentWidget())
        split.insertWidget(1, self.adapter_view.parentWidget())
        for i in range(3):
            split.setStretchFactor(i, 1)
        split.setMinimumHeight(200)
        self.answers_split = split
        self.body.addWidget(split, 1)
        self.exports = ExportPanel(state, self)
        self.exports.busy_changed.connect(self._update_enabled)
        self.gguf_column.attach(self.exports)
        for name in ("destination", "export_buttons", "export_progress", "overwrite_button", "open_button", "export_status",
                     "folder_note"):
            setattr(self, name, getattr(self.exports, name))
        self.body.addWidget(self.exports)
        state.run_selected.connect(self._run_selected)
        state.data_changed.connect(self._suggest_prompt)
        self._update_enabled()

    # ---- building the page ----

    def _run_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.addWidget(QLabel("Run:", self))
        self.run_combo = QComboBox(self)
        self.run_combo.setToolTip("Which run's adapter to try and export (runs with a trained adapter).")
        self.run_combo.setMinimumContentsLength(30)
        self.run_combo.activated.connect(self._run_chosen)
        row.addWidget(self.run_combo, 1)
        self.refresh_button = QPushButton("Refresh", self)
        self.refresh_button.setToolTip("Look for runs again.")
        self.refresh_button.clicked.connect(self.refresh_runs)
        row.addWidget(self.refresh_button)
        return row

    def _prompt_row(self) -> QHBoxLayout:
        prompt_row = QHBoxLayout()
        self.prompt = QPlainTextEdit(self)
        self.prompt.setPlaceholderText("Ask something your data is about…")
        self.prompt.setToolTip("The question both models answer. Ctrl+Return asks.")
        self.prompt.setMaximumHeight(80)
        prompt_row.addWidget(self.prompt, 1)
        side = QVBoxLayout()
        self.ask_button = QPushButton("&Ask both", self)
        self.ask_button.setToolTip("Generate the base model's and the fine-tuned model's answers (Ctrl+Return).")
        self.ask_button.setShortcut("Ctrl+Return")
        self.ask_button.setMinimumHeight(34)
        self.ask_button.clicked.connect(self.ask)
        side.addWidget(self.ask_button)
        self.stop_button = QPushButton("Stop", self)
        self.stop_button.setToolTip("Stop generating.")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self._stop)
        side.addWidget(self.stop_button)
        prompt_row.addLayout(side)
        return prompt_row

    def _answer_settings_row(self) -> QHBoxLayout:
        settings = QHBoxLayout()
        settings.addWidget(QLabel("Answer length:", self))
        self.max_tokens = QSpinBox(self)
        self.max_tokens.setRange(8, 4096)
        self.max_tokens.setValue(96)
        self.max_tokens.setSuffix(" tokens")
        self.max_tokens.setToolTip("The longest answer, in tokens.")
        settings.addWidget(self.max_tokens)
        settings.addWidget(QLabel("Temperature:", self))
        self.temperature = QDoubleSpinBox(self)
        self.temperature.setRange(0.0, 2.0)
        self.temperature.setSingleStep(0.1)
        self.temperature.setToolTip("0: the most likely answer, the same every time (best to compare). Higher: more varied.")
        settings.addWidget(self.temperature)
        self.try_status = QLabel("", self)
        self.try_status.setWordWrap(True)
        self.try_status.setToolTip("What the models are doing.")
        settings.addWidget(self.try_status, 1)
        return settings

    def _answer_box(self, parent, title: str, tip: str, note: str, header: int) -> tuple[QTextBrowser, QLabel]:
        """A column: a line that says which model (as high as the GGUF column's file row, so the answers line up)
        and the answer."""
        box = QGroupBox(title, parent)
        box.setToolTip(tip)
        v = QVBoxLayout(box)
        label = QLabel(note, box)
        label.setFixedHeight(header)
        label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        v.addWidget(label)
        view = AnswerView(box)
        view.setToolTip(tip)
        view.setPlaceholderText("The answer appears here.")
        v.addWidget(view, 1)
        return view, label

    # ---- which run ----

    def on_shown(self) -> None:
        self.refresh_runs()

    def refresh_runs(self) -> None:
        root = self.state.runs_folder()

        def work(_state):
            from studio.core.runs import list_runs

            return [r for r in list_runs(root, with_size=False) if r.adapter is not None]  # sizes are not shown here

        start_task("list runs", work, on_done=self._fill_runs)

    def _fill_runs(self, found) -> None:
        current = self.state.current_run
        self.run_combo.blockSignals(True)
        self.run_combo.clear()
        for r in found:
            loss = f", loss {r.final_loss:.3f}" if r.final_loss is not None else ""
            self.run_combo.addItem(f"{r.name} — {r.status}, {count(r.step, 'step')}{loss}", str(r.path))
        if current is not None:
            index = self.run_combo.findData(str(current))
            if index < 0:
                self.run_combo.insertItem(0, current.name, str(current))
                index = 0
            self.run_combo.setCurrentIndex(index)
        self.run_combo.blockSignals(False)
        if current is None and found:
            self.state.select_run(_default_run(found))
        self._update_enabled()

    def _run_chosen(self, index: int) -> None:
        self.state.select_run(Path(self.run_combo.itemData(index)))

    def _run_selected(self, run_dir) -> None:
        if run_dir is None:
            return
        if self.run_combo.findData(str(run_dir)) < 0:
            self.run_combo.insertItem(0, Path(run_dir).name, str(run_dir))
        self.run_combo.setCurrentIndex(self.run_combo.findData(str(run_dir)))
        if self.try_model_dir != Path(run_dir) / "adapter":
            self.try_model = None  # another run: its models load on the next question
        if self.answered_run is not None and self.answered_run != Path(run_dir):
            self._clear_answers()
        self.exports.run_changed()
        self._update_enabled()

    def _clear_answers(self) -> None:
        """Another run is chosen: the answers on screen were the previous run's."""
        self._stop()
        self.answered_run = None
        self.asked_prompt = None
        self.answers = {"base": "", "adapter": ""}
        self.base_view.clear()
        self.adapter_view.clear()
        self.gguf_column.clear_answer()
        self.try_status.setText("")
        set_state_style(self.try_status, "")

    def _suggest_prompt(self) -> None:
        """The data's first question, as a first thing to ask (unless the user has typed one)."""
        view = self.state.data
        if self.prompt.toPlainText().strip() or view is None or not view.first_user_turn:
            return
        self.prompt.setPlainText(view.first_user_turn)

    def has_run(self) -> bool:
        """A run with a trained adapter is chosen."""
        run = self.state.current_run
        return run is not None and (Path(run) / "adapter" / "adapter_model.safetensors").is_file()

    def _asking(self) -> bool:
        return (self._ask_task is not None and self._ask_task.running) or self.gguf_column.asking()

    def _update_enabled(self) -> None:
        has_run = self.has_run()
        asking = self._asking()
        self.ask_button.setEnabled(has_run and not asking)
        self.ask_button.setText("&Ask all three" if self.gguf_column.chosen() is not None else "&Ask both")
        self.stop_button.setEnabled(asking)
        self.gguf_column.update_enabled(asking)
        self.exports.enable(has_run)
        if has_run == self._hinting:  # the hint shows exactly while no run can be tried
            self._hinting = not has_run
            self.try_status.setText("" if has_run else NO_RUN_HINT)
            set_state_style(self.try_status, "")

    def release_model(self) -> None:
        """Let go of the models loaded for trying (and their GPU memory) before a training run."""
        self._stop()
        if self.try_model is None:
            return
        self.try_model = None
        self.try_model_dir = None
        import gc
        import sys

        gc.collect()
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()

    # ---- asking ----

    def _question(self) -> str:
        return self.prompt.toPlainText().strip()

    def _fine_tuned_answer(self) -> str | None:
        """The fine-tuned model's answer once it is written (None while the models answer, or before any question)."""
        return None if self._ask_task is None or self._ask_task.running else self.answers["adapter"]

    def ask(self) -> None:
        prompt = self._question()
        run_dir = self.state.current_run
        if not prompt or not self.has_run():
            self.try_status.setText("Type a question first." if self.has_run() else NO_RUN_HINT)
            return
        from studio.core.generate import GenerationSettings

        settings = GenerationSettings(max_new_tokens=self.max_tokens.value(), temperature=self.temperature.value())
        adapter_dir = Path(run_dir) / "adapter"
        loaded = self.try_model if self.try_model_dir == adapter_dir else None
        self.base_view.clear()
        self.adapter_view.clear()
        self.answers = {"base": "", "adapter": ""}
        self.answered_run = Path(run_dir)
        self.asked_prompt = prompt
        self.gguf_column.ask()

        self.try_status.setText("Starting…")
        set_state_style(self.try_status, "")
        self._ask_task = start_task("try", lambda state: _answer_both(state, loaded, adapter_dir, prompt, settings),
                                    on_done=self._answered, on_failed=self._ask_failed, on_progress=self._streamed,
                                    interval=0.04)
        self._update_enabled()

    def _streamed(self, value) -> None:
        if self.answered_run is None:
            return  # another run was chosen meanwhile
        side, text = value
        if side == "status":
            self.try_status.setText(text)
            return
        self.answers[side] = text
        view = self.base_view if side == "base" else self.adapter_view
        view.setPlainText(text)

    def _answered(self, out: dict) -> None:
        if out["run"] != self.answered_run:
            self._update_enabled()
            return  # another run was chosen while this one answered
        self.try_model = out["model"]
        self.try_model_dir = out["run"] / "adapter"
        for side in ("base", "adapter"):
            if side in out:
                self.answers[side] = out[side]
                (self.base_view if side == "base" else self.adapter_view).setPlainText(out[side])
        same = self.answers["base"].strip() == self.answers["adapter"].strip()
        self.try_status.setText("Both answered — the same answer: the adapter changed little here." if same
                                else "Both answered.")
        set_state_style(self.try_status, "warn" if same else "good")
        self.gguf_column.compare()
        self._update_enabled()

    def _ask_failed(self, message: str, advice: str) -> None:
        self.try_status.setText(f"{message} {advice}")
        set_state_style(self.try_status, "bad")
        self._update_enabled()

    def _stop(self) -> None:
        if self._ask_task is not None:
            self._ask_task.cancel()
        self.gguf_column.stop()

    # ---- exporting (the Export box) ----

    def export(self, kind: str, force: bool = False) -> None:
        self.exports.export(kind, force)

    def default_destination(self, kind: str) -> Path:
        return self.exports.default_destination(kind)

    @property
    def _export_task(self) -> Task | None:
        return self.exports.export_task

    @property
    def last_export(self) -> Path | None:
        return self.exports.last_export

    def summary(self) -> str:
        if self.last_export is not None:
            return "exported"
        return ""


def _default_run(found) -> Path:
    """The run to try when none is chosen: the newest completed one (not one cancelled after a step)."""
    return next((r.path for r in found if r.status == "completed"), found[0].path)


class _Stopped(Exception):
    """The user pressed Stop while a model was answering."""


def _answer_both(state, loaded, adapter_dir: Path, prompt: str, settings) -> dict:
    """In a background task: the models (`loaded`, or read from `adapter_dir`), then the base model's
    and the fine-tuned model's answers, each reported as it is written: ("base" or "adapter", the text
    so far), and ("status", what is happening)."""
    model = loaded
    if model is None:
        from studio.core.generate import TryModel
        from studio.ui.tasks import heavy_imports

        state.report(("status", "Loading the base model and the adapter…"), force=True)
        with heavy_imports():
            model = TryModel.load(adapter_dir)
    out = {"model": model, "run": adapter_dir.parent}
    for side, with_adapter in (("base", False), ("adapter", True)):
        state.report(("status", "The base model is answering…" if side == "base" else "The fine-tuned model is answering…"),
                     force=True)
        pieces: list[str] = []

        def on_text(piece, side=side, pieces=pieces):
            if state.cancelled():
                raise _Stopped()
            pieces.append(piece)
            state.report((side, "".join(pieces)))

        try:
            out[side] = model.answer(prompt, settings, adapter=with_adapter, on_text=on_text, should_stop=state.cancelled)
        except _Stopped:
            out[side] = "".join(pieces) + " …"
            break
        state.report((side, out[side]), force=True)
    return out

