"""6. Try & Export: ask the base model and the fine-tuned one the same question, side by side as
they write — and, in a third column, a GGUF file (one exported in this session, or any chosen with
a file dialog) answering in llama.cpp; then export the adapter, a merged model, or GGUF files.

Loading the models, generating and exporting all run in background tasks; text streams to the
window through signals."""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
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

from studio.core.export.to_gguf import TYPES
from studio.core.export.to_gguf.check import common_prefix
from studio.core.wording import count
from studio.ui.pages.base import Page
from studio.ui.pages.export_panel import ExportedGguf, ExportPanel
from studio.ui.tasks import Task, start_task
from studio.ui.units import gb
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
        self._gguf_task: Task | None = None
        self.gguf_files: list[ExportedGguf] = []  # the GGUF files to try: exported in this session, or chosen
        self.gguf_answer = ""
        self._gguf_said = ""
        self.asked_prompt: str | None = None  # the question whose answers are on screen
        self.answers = {"base": "", "adapter": ""}
        self.answered_run: Path | None = None  # the run whose answers are on screen
        self._hinting = False  # the status says "Train a run first"

        self.body.addLayout(self._run_row())
        self.body.addLayout(self._prompt_row())
        self.body.addLayout(self._answer_settings_row())
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.setChildrenCollapsible(False)
        self.gguf_view = self._gguf_box(split)
        header = max(self.gguf_combo.sizeHint().height(), self.gguf_browse.sizeHint().height())
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
        self.exports.gguf_exported.connect(self._gguf_exported)
        self._show_gguf_file()
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
        view = _AnswerView(box)
        view.setToolTip(tip)
        view.setPlaceholderText("The answer appears here.")
        v.addWidget(view, 1)
        return view, label

    def _gguf_box(self, parent) -> QTextBrowser:
        """The third column: which GGUF file (exported in this session, or chosen), and its answer in llama.cpp."""
        self.gguf_group = QGroupBox("Exported GGUF file", parent)
        self.gguf_group.setToolTip("What the exported GGUF file answers in llama.cpp (greedy, as a runner answers by "
                                   "default), with the run's chat template.")
        v = QVBoxLayout(self.gguf_group)
        row = QHBoxLayout()
        self.gguf_combo = QComboBox(self.gguf_group)
        self.gguf_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.gguf_combo.setMinimumContentsLength(8)
        self.gguf_combo.setToolTip("Which GGUF file answers: the files exported in this session, and those you chose.")
        self.gguf_combo.setPlaceholderText("No GGUF file yet")
        self.gguf_combo.activated.connect(self._gguf_chosen)
        row.addWidget(self.gguf_combo, 1)
        self.gguf_browse = QPushButton("Choose…", self.gguf_group)
        self.gguf_browse.setToolTip("Choose a .gguf file to try. Its question is written with the chosen run's chat template.")
        self.gguf_browse.clicked.connect(self._browse_gguf)
        row.addWidget(self.gguf_browse)
        v.addLayout(row)
        view = _AnswerView(self.gguf_group)
        view.setToolTip(self.gguf_group.toolTip())
        v.addWidget(view, 1)
        self.gguf_status = QLabel("", self.gguf_group)
        self.gguf_status.setWordWrap(True)
        self.gguf_status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        v.addWidget(self.gguf_status)
        return view

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
        self._clear_gguf_answer()
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
        return any(t is not None and t.running for t in (self._ask_task, self._gguf_task))

    def _update_enabled(self) -> None:
        has_run = self.has_run()
        asking = self._asking()
        self.ask_button.setEnabled(has_run and not asking)
        self.ask_button.setText("&Ask all three" if self.chosen_gguf() is not None else "&Ask both")
        self.stop_button.setEnabled(asking)
        self.gguf_browse.setEnabled(self.exports.gguf_ready)
        self.gguf_combo.setEnabled(self.exports.gguf_ready and not asking and bool(self.gguf_files))
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

    def ask(self) -> None:
        prompt = self.prompt.toPlainText().strip()
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
        self.ask_gguf()

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
        self._compare_gguf()
        self._update_enabled()

    def _ask_failed(self, message: str, advice: str) -> None:
        self.try_status.setText(f"{message} {advice}")
        set_state_style(self.try_status, "bad")
        self._update_enabled()

    def _stop(self) -> None:
        for task in (self._ask_task, self._gguf_task):
            if task is not None:
                task.cancel()

    # ---- the GGUF file's answer (the third column) ----

    def chosen_gguf(self) -> ExportedGguf | None:
        index = self.gguf_combo.currentIndex()
        return self.gguf_files[index] if 0 <= index < len(self.gguf_files) else None

    def add_gguf(self, files: list[ExportedGguf]) -> None:
        """Offer these files in the third column (the first one chosen); ask it what is on screen."""
        if not files:
            return
        for f in files:
            known = next((i for i, g in enumerate(self.gguf_files) if g.path == f.path), None)
            if known is None:
                self.gguf_files.append(f)
                self.gguf_combo.addItem(f.path.name)
                self.gguf_combo.setItemData(self.gguf_combo.count() - 1, str(f.path), Qt.ItemDataRole.ToolTipRole)
            else:
                self.gguf_files[known] = f
        self.gguf_combo.setCurrentIndex(next(i for i, g in enumerate(self.gguf_files) if g.path == files[0].path))
        self._gguf_chosen()

    def _gguf_exported(self, files: list[ExportedGguf]) -> None:
        self.add_gguf(files)

    def _browse_gguf(self) -> None:
        start = str(self.chosen_gguf().path.parent) if self.chosen_gguf() else str(self.exports.default_destination("gguf").parent
                                                                                   if self.state.current_run else Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Try which GGUF file?", start, "GGUF files (*.gguf)")
        if path:
            self.choose_gguf(Path(path))

    def choose_gguf(self, path: Path) -> None:
        """A .gguf file the user chose: its prompts are written with the chosen run's tokenizer and chat template."""
        run = self.state.current_run
        if run is None:
            self.gguf_status.setText("Choose a run first: its chat template writes the question for the file.")
            set_state_style(self.gguf_status, "warn")
            return
        self.add_gguf([ExportedGguf(Path(path), _type_in_name(Path(path)), Path(run) / "adapter")])

    def _gguf_chosen(self, _index: int | None = None) -> None:
        self._show_gguf_file()
        self._clear_gguf_answer()
        self._update_enabled()
        if self.answered_run is not None and self.prompt.toPlainText().strip() == self.asked_prompt:
            self.ask_gguf()  # the question on screen, answered by this file too

    def _show_gguf_file(self) -> None:
        f = self.chosen_gguf()
        if f is None:
            self.gguf_group.setTitle("Exported GGUF file")
            why = self.exports.gguf_missing_error
            self.gguf_status.setText("Trying a GGUF file needs llama-cpp-python (see Export below)." if why else
                                     "Export a GGUF file below, or choose one, to ask it too.")
            set_state_style(self.gguf_status, "")
            return
        size = f" · {gb(f.path.stat().st_size)}" if f.path.is_file() else ""
        self.gguf_group.setTitle(f"GGUF {f.quant or 'file'}{size}")
        self.gguf_group.setToolTip(f"{f.path}\n{TYPES[f.quant].help if f.quant in TYPES else 'Type unknown'}. "
                                   "Answers in llama.cpp, greedily.")
        self.gguf_status.setText(f"{f.path.name} answers in llama.cpp, greedily (as runners do by default).")
        set_state_style(self.gguf_status, "")

    def _clear_gguf_answer(self) -> None:
        if self._gguf_task is not None:
            self._gguf_task.cancel()  # its llama.cpp child is stopped; what it returns is not shown
            self._gguf_task = None
        self.gguf_answer = ""
        self.gguf_view.clear()

    def ask_gguf(self) -> None:
        """The chosen GGUF file answers the prompt, in llama.cpp in a child process."""
        f = self.chosen_gguf()
        prompt = self.prompt.toPlainText().strip()
        if f is None or not prompt or not self.exports.gguf_ready:
            return
        if self._gguf_task is not None:
            self._gguf_task.cancel()
        self.gguf_answer = ""
        self.gguf_view.clear()
        greedy = ", greedily (temperature 0)" if self.temperature.value() > 0 else ""
        self.gguf_status.setText(f"Answering in llama.cpp{greedy}…")
        self.gguf_status.setToolTip("")
        set_state_style(self.gguf_status, "")
        max_tokens = self.max_tokens.value()
        task = start_task("try gguf", lambda state: _answer_gguf(state, f, prompt, max_tokens),
                          on_done=lambda out: self._gguf_answered(task, out), on_failed=lambda m, a: self._gguf_failed(task, m, a))
        self._gguf_task = task
        self._update_enabled()

    def _gguf_answered(self, task: Task, out) -> None:
        if task is not self._gguf_task:
            return  # an earlier question's, or another file's
        self._update_enabled()
        if out is None:
            self.gguf_status.setText("Stopped.")
            return
        text, seconds = out
        self.gguf_answer = text
        self.gguf_view.setPlainText(text)
        self._gguf_said = f"llama.cpp answered in {seconds:.1f} s"
        self.gguf_status.setText(f"{self._gguf_said}.")
        set_state_style(self.gguf_status, "")
        self._compare_gguf()

    def _gguf_failed(self, task: Task, message: str, advice: str) -> None:
        if task is not self._gguf_task:
            return
        self.gguf_status.setText(f"{message} {advice}")
        set_state_style(self.gguf_status, "bad")
        self._update_enabled()

    def _compare_gguf(self) -> None:
        """With both answers there, say whether the file answers as the fine-tuned model does (at temperature 0)."""
        gguf, tuned = self.gguf_answer.split(), _CUT.sub("", self.answers["adapter"]).split()
        if not gguf or not tuned or self.temperature.value() > 0 or self._ask_task is None or self._ask_task.running:
            return
        same = common_prefix(gguf, tuned)
        if same == min(len(gguf), len(tuned)):  # one may be cut at the length limit sooner than the other
            self.gguf_status.setText(f"{self._gguf_said}: the fine-tuned model's answer, word for word.")
            set_state_style(self.gguf_status, "good")
        else:
            self.gguf_status.setText(f"{self._gguf_said}: as the fine-tuned model for {count(same, 'word')}, then different.")
            self.gguf_status.setToolTip("Quantized weights, and llama.cpp's arithmetic, choose some words differently; "
                                        "the export's check in llama.cpp says how often.")
            set_state_style(self.gguf_status, "")

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


class _AnswerView(QTextBrowser):
    """An answer: a few lines high by default (the page gives it what the Export box leaves; a short window scrolls)."""

    def sizeHint(self) -> QSize:
        return QSize(super().sizeHint().width(), 110)


def _default_run(found) -> Path:
    """The run to try when none is chosen: the newest completed one (not one cancelled after a step)."""
    return next((r.path for r in found if r.status == "completed"), found[0].path)


def _type_in_name(path: Path) -> str | None:
    """The GGUF type a file's name says (`name-q4_k_m.gguf`), or None."""
    stem = path.stem.lower()
    return next((t for t in sorted(TYPES, key=len, reverse=True) if stem.endswith(t)), None)


_CUT = re.compile(r" … \(cut at \d+ tokens\)$")  # generate.cut_note's words after an answer cut at the length limit


def _answer_gguf(state, f: ExportedGguf, prompt: str, max_tokens: int):
    """In a background task: (the GGUF file's answer, seconds), or None when stopped."""
    import time

    from studio.core.export.to_gguf import Cancelled, answer_with_gguf
    from studio.ui.tasks import heavy_imports

    start = time.monotonic()
    try:
        with heavy_imports():
            text = answer_with_gguf(f.path, f.tokenizer_dir, prompt, max_tokens=max_tokens, cancelled=state.cancelled)
    except Cancelled:
        return None
    return text, time.monotonic() - start


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

