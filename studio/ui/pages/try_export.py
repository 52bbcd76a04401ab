"""6. Try & Export: ask the base model and the fine-tuned one the same question, side by side as
they write; then export the adapter, a merged model, or an Ollama Modelfile.

Loading the models, generating and exporting all run in background tasks; text streams to the
window through signals."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
)

from studio.core import paths
from studio.core.wording import count
from studio.ui.open_path import open_or_say_where, path_note
from studio.ui.pages.base import Page
from studio.ui.tasks import Task, start_task
from studio.ui.units import gb
from studio.ui.widgets.text import help_label, set_state_style

EXPORTS = {
    "adapter": ("Export &adapter", ("The trained adapter (small), with a model card and the recipe. Load it on top of the "
                                    "base model with PEFT, or share it.")),
    "merged": ("Export &merged model", ("The base model with the adapter merged in, as a standalone 16-bit model "
                                        "(as large as the base; needs its weights on this computer).")),
    "ollama": ("Export for &Ollama", "The adapter plus an Ollama Modelfile: `ollama create NAME -f Modelfile` in the folder."),
}


NO_RUN_HINT = "Train a run first (or pick one under Runs)."


class TryExportPage(Page):
    title = "6. Try and export"
    intro = ("Ask a question: the base model answers on the left, your fine-tuned model on the right, with the same settings. "
             "When you like the answers, export the result.")

    def __init__(self, state, parent=None):
        super().__init__(state, parent)
        self.try_model = None
        self.try_model_dir: Path | None = None
        self._ask_task: Task | None = None
        self._export_task: Task | None = None
        self._export_kind: str | None = None
        self._refused_kind: str | None = None  # the export that stopped at files in the way, to run again with force
        self.last_export: Path | None = None
        self.answers = {"base": "", "adapter": ""}
        self.answered_run: Path | None = None  # the run whose answers are on screen
        self._hinting = False  # the status says "Train a run first"

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
        self.body.addLayout(row)

        # ---- the prompt ----
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
        self.body.addLayout(prompt_row)
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
        self.body.addLayout(settings)

        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.setChildrenCollapsible(False)
        self.base_view = self._answer_box(split, "Base model", "What the model answered before fine-tuning.")
        self.adapter_view = self._answer_box(split, "Fine-tuned", "What the model answers with your adapter.")
        self.body.addWidget(split, 1)

        # ---- export ----
        export = QGroupBox("Export", self)
        export.setToolTip("Write the result to a folder; an export is written completely before it replaces anything. "
                          "Files of yours in the folder are kept.")
        ev = QVBoxLayout(export)
        drow = QHBoxLayout()
        drow.addWidget(QLabel("Folder:", export))
        self.destination = QLineEdit(export)
        self.destination.setToolTip("Where the export goes. Each kind of export suggests its own folder.")
        self.destination.setPlaceholderText("Chosen for you when you export; or type a folder")
        drow.addWidget(self.destination, 1)
        self.browse_button = QPushButton("Choose…", export)
        self.browse_button.setToolTip("Choose the folder to export to.")
        self.browse_button.clicked.connect(self._browse)
        drow.addWidget(self.browse_button)
        ev.addLayout(drow)
        brow = QHBoxLayout()
        self.export_buttons: dict[str, QPushButton] = {}
        for kind, (label, tip) in EXPORTS.items():
            b = QPushButton(label, export)
            b.setToolTip(tip)
            b.clicked.connect(lambda _=False, k=kind: self.export(k))
            brow.addWidget(b)
            self.export_buttons[kind] = b
        self.export_progress = QProgressBar(export)
        self.export_progress.setRange(0, 0)
        self.export_progress.setMaximumWidth(160)
        self.export_progress.setTextVisible(False)
        self.export_progress.setVisible(False)
        self.export_progress.setToolTip("Exporting…")
        brow.addWidget(self.export_progress)
        self.overwrite_button = QPushButton("Over&write and export", export)
        self.overwrite_button.setToolTip("Export into this folder anyway: only the files named above are overwritten; "
                                         "your other files in it stay as they are.")
        self.overwrite_button.setVisible(False)
        self.overwrite_button.clicked.connect(self._export_anyway)
        brow.addWidget(self.overwrite_button)
        self.open_button = QPushButton("Open &folder", export)
        self.open_button.setToolTip("Show the exported folder in your file manager.")
        self.open_button.setEnabled(False)
        self.open_button.clicked.connect(self._open_folder)
        brow.addWidget(self.open_button)
        brow.addStretch(1)
        ev.addLayout(brow)
        self.export_status = help_label("", export)
        ev.addWidget(self.export_status)
        self.folder_note = path_note(export)  # where the export is, when nothing could open it
        ev.addWidget(self.folder_note)
        self.body.addWidget(export)

        state.run_selected.connect(self._run_selected)
        state.data_changed.connect(self._suggest_prompt)
        self._update_enabled()

    def _answer_box(self, parent, title: str, tip: str) -> QTextBrowser:
        box = QGroupBox(title, parent)
        box.setToolTip(tip)
        v = QVBoxLayout(box)
        view = QTextBrowser(box)
        view.setToolTip(tip)
        view.setPlaceholderText("The answer appears here as it is written.")
        v.addWidget(view)
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
        self.destination.clear()
        self.export_status.setText("")
        self.folder_note.setVisible(False)
        self.open_button.setEnabled(False)
        self._refuse(None)
        self._update_enabled()

    def _clear_answers(self) -> None:
        """Another run is chosen: the answers on screen were the previous run's."""
        self._stop()
        self.answered_run = None
        self.answers = {"base": "", "adapter": ""}
        self.base_view.clear()
        self.adapter_view.clear()
        self.try_status.setText("")
        set_state_style(self.try_status, "")

    def _suggest_prompt(self) -> None:
        view = self.state.data
        if self.prompt.toPlainText().strip() or view is None or not view.report.get("examples"):
            return
        first = view.report["examples"][0]["segments"]
        text = first[0]["text"] if first else ""
        # the user's first turn, without the chat template's markers
        import re

        parts = re.split(r"<\|im_start\|>user\n|### User:\n|\[INST\]|<\|user\|>\n?", text)
        question = re.split(r"<\|im_end\|>|<\|end\|>|\[/INST\]|\n\n### ", parts[-1])[0].strip() if len(parts) > 1 else ""
        if question:
            self.prompt.setPlainText(question)

    def has_run(self) -> bool:
        """A run with a trained adapter is chosen."""
        run = self.state.current_run
        return run is not None and (Path(run) / "adapter" / "adapter_model.safetensors").is_file()

    def _update_enabled(self) -> None:
        has_run = self.has_run()
        asking = self._ask_task is not None and self._ask_task.running
        exporting = self._export_task is not None and self._export_task.running
        self.ask_button.setEnabled(has_run and not asking)
        self.stop_button.setEnabled(asking)
        for b in self.export_buttons.values():
            b.setEnabled(has_run and not exporting)
        if has_run == self._hinting:  # the hint shows exactly while no run can be tried
            self._hinting = not has_run
            self.try_status.setText("" if has_run else NO_RUN_HINT)
            set_state_style(self.try_status, "")

    def release_model(self) -> None:
        """Let go of the models loaded for trying (and their GPU memory) before a training run."""
        if self._ask_task is not None and self._ask_task.running:
            self._ask_task.cancel()
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

        def work(state):
            from studio.core.generate import TryModel

            model = loaded
            if model is None:
                state.report(("status", "Loading the base model and the adapter…"), force=True)
                from studio.ui.tasks import heavy_imports

                with heavy_imports():
                    model = TryModel.load(adapter_dir)
            out = {"model": model, "run": Path(run_dir)}
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

        self.try_status.setText("Starting…")
        set_state_style(self.try_status, "")
        self._ask_task = start_task("try", work, on_done=self._answered, on_failed=self._ask_failed,
                                    on_progress=self._streamed, interval=0.04)
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
        self._update_enabled()

    def _ask_failed(self, message: str, advice: str) -> None:
        self.try_status.setText(f"{message} {advice}")
        set_state_style(self.try_status, "bad")
        self._update_enabled()

    def _stop(self) -> None:
        if self._ask_task is not None:
            self._ask_task.cancel()

    # ---- exporting ----

    def default_destination(self, kind: str) -> Path:
        run = Path(self.state.current_run)
        return paths.user_data_dir() / "exports" / f"{run.name}-{kind}"

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export to which folder?", str(paths.user_data_dir()))
        if folder:
            self.destination.setText(folder)

    def export(self, kind: str, force: bool = False) -> None:
        """Export; `force` overwrites the user's files that have the names the export writes (nothing else)."""
        run_dir = self.state.current_run
        if run_dir is None:
            return
        target = Path(self.destination.text().strip()) if self.destination.text().strip() else self.default_destination(kind)
        self.destination.setText(str(target))
        self._export_kind = kind
        self._refuse(None)

        def work(state):
            from studio.core.export import FilesInTheWay, export_run

            try:
                return export_run(run_dir, target, merged=kind == "merged", ollama=kind == "ollama", force=force,
                                  progress=lambda message, fraction: state.report((message, fraction), force=True))
            except FilesInTheWay as refusal:
                return refusal  # not a failure: the user decides (see _exported)

        self.export_progress.setRange(0, 0)
        self.export_progress.setVisible(True)
        self.export_status.setText(f"Exporting the {'merged model' if kind == 'merged' else 'adapter'} to {target}…")
        set_state_style(self.export_status, "")
        self._export_task = start_task("export", work, on_done=self._exported, on_failed=self._export_failed,
                                       on_progress=self._export_progressed)
        self._update_enabled()

    def _export_progressed(self, value) -> None:
        message, fraction = value
        self.export_progress.setRange(0, 100)
        self.export_progress.setValue(int(100 * fraction))
        self.export_status.setText(f"{message}…" if fraction < 1 else message)

    def _exported(self, result) -> None:
        self.export_progress.setVisible(False)
        from studio.core.export import FilesInTheWay

        if isinstance(result, FilesInTheWay):
            self._refuse(result)
            return
        self.last_export = result.path
        verb = "Replaced the earlier export in" if result.replaced else "Exported to"
        extra = " Ollama: `ollama create NAME -f Modelfile` in that folder." if result.modelfile else ""
        notes = (" " + " ".join(result.notes)) if result.notes else ""
        self.export_status.setText(f"{verb} {result.path} ({gb(result.size_bytes)}: {', '.join(result.files)}).{extra}{notes}")
        set_state_style(self.export_status, "good")
        self.open_button.setEnabled(True)
        self.destination.clear()
        self._update_enabled()

    def _refuse(self, refusal) -> None:
        """Show which files are in the way and offer to export anyway (None: hide the offer)."""
        if refusal is None:
            self._refused_kind = None
            self.overwrite_button.setVisible(False)
            return
        self._refused_kind = self._export_kind
        if refusal.files:
            choice = (f"Press “Overwrite and export” to replace {'it' if len(refusal.files) == 1 else 'these'} "
                      "with the export's own; your other files stay as they are. Or choose another folder.")
            self.overwrite_button.setText("Over&write and export")
        else:
            choice = "Press “Export into this folder” to add the export beside them (nothing is overwritten), or choose another folder."
            self.overwrite_button.setText("Export into &this folder")
        self.export_status.setText(f"{refusal.message} {choice}")
        set_state_style(self.export_status, "warn")
        self.overwrite_button.setVisible(True)
        self._update_enabled()

    def _export_anyway(self) -> None:
        if self._refused_kind is not None:
            self.export(self._refused_kind, force=True)

    def _export_failed(self, message: str, advice: str) -> None:
        self.export_progress.setVisible(False)
        self.export_status.setText(f"{message} {advice}")
        set_state_style(self.export_status, "bad")
        self._update_enabled()

    def _open_folder(self) -> None:
        if self.last_export is not None:
            open_or_say_where(self.last_export, self.folder_note)

    def summary(self) -> str:
        if self.last_export is not None:
            return "exported"
        return ""


def _default_run(found) -> Path:
    """The run to try when none is chosen: the newest completed one (not one cancelled after a step)."""
    return next((r.path for r in found if r.status == "completed"), found[0].path)


class _Stopped(Exception):
    """The user pressed Stop while a model was answering."""

