"""The Try & export page's Export box: the adapter, a merged model, or GGUF files for llama.cpp, Ollama
and LM Studio, into a folder the user chooses (or one suggested per run, weights and kind). An export that
would overwrite files of the user's stops and names them; the user may then export anyway.

Weights (`export_weights.py`): the run's final adapter, or a checkpoint it kept; `choose_checkpoint`
chooses one (the Scoreboard's "Export this checkpoint").

GGUF: a checkbox per type, each with its file's estimated size (computed for the chosen run before
anything runs) and LM Studio's folder layout or an Ollama Modelfile as options. Where the optional
packages are missing the GGUF controls are off and the box says what to install. After a GGUF export
each file's check in llama.cpp is shown, and `gguf_exported` hands the files to the Try page.

Exporting runs in a background task with a progress bar and Cancel (nothing is written when it
stops); `busy_changed` says when one starts or ends."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from studio.core import paths
from studio.core.export.to_gguf import INSTALL, TYPES
from studio.ui.open_path import open_or_say_where, path_note
from studio.ui.pages.export_weights import WeightsChoice
from studio.ui.tasks import Task, start_task
from studio.ui.units import duration, gb
from studio.ui.widgets.flow import flow_row
from studio.ui.widgets.text import help_label, set_state_style

EXPORTS = {
    "adapter": ("Export &adapter", ("The trained adapter (small), with a model card and the recipe. Load it on top of the "
                                    "base model with PEFT, or share it.")),
    "merged": ("Export &merged model", ("The base model with the adapter merged in, as a standalone 16-bit model "
                                        "(as large as the base; needs its weights on this computer).")),
    "gguf": ("Export &GGUF", ("The merged model as one GGUF file per type ticked below, for llama.cpp, Ollama and LM Studio "
                              "(needs the base model's weights on this computer). Each file is then loaded in llama.cpp and "
                              "its answers compared with transformers'.")),
}
GGUF_TITLE = "GGUF for llama.cpp, Ollama and LM Studio:"
GGUF_DEFAULT = ("q4_k_m",)
GGUF_ORDER = tuple(sorted(TYPES, key=lambda name: TYPES[name].bits))  # the smallest file first
GOOD, BAD = "#2e9d48", "#d64541"  # as set_state_style's


@dataclass(frozen=True)
class ExportedGguf:
    """A GGUF file to try: where it is, its type (None: unknown), and the tokenizer its prompts are rendered with."""
    path: Path
    quant: str | None
    tokenizer_dir: Path


class _Cancelled:
    """The user pressed Cancel: the export stopped and wrote nothing."""


class ExportPanel(QGroupBox):
    busy_changed = Signal()
    gguf_exported = Signal(object)  # list[ExportedGguf]: the files of a GGUF export that just finished

    def __init__(self, state, parent=None):
        super().__init__("Export", parent)
        self.state = state
        self.export_task: Task | None = None
        self._export_kind: str | None = None
        self._export_options: dict = {}
        self._export_run: Path | None = None
        self._export_target: Path | None = None
        self._refused: tuple[str, dict] | None = None  # the export that stopped at files in the way, to run again with force
        self._has_run = False
        self._sizes_for: Path | None = None  # the run whose GGUF sizes the checkboxes show
        self.last_export: Path | None = None
        from studio.core.export.to_gguf import missing_dependency

        self.gguf_missing_error = missing_dependency()
        self.setToolTip("Write the result to a folder; an export is written completely before it replaces anything. "
                        "Files of yours in the folder are kept.")
        ev = QVBoxLayout(self)
        ev.setSpacing(6)
        self.weights = WeightsChoice(self)
        ev.addWidget(self.weights)
        ev.addLayout(self._folder_row())
        ev.addLayout(self._buttons_row())
        ev.addWidget(self._gguf_choice())
        self.export_status = help_label("", self)
        ev.addWidget(self.export_status)
        self.gguf_checks = QLabel("", self)
        self.gguf_checks.setWordWrap(True)
        self.gguf_checks.setTextFormat(Qt.TextFormat.RichText)
        self.gguf_checks.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.gguf_checks.setToolTip("Each GGUF file, loaded in llama.cpp, answered the run's sample prompts beside the "
                                    "merged model in transformers.")
        self.gguf_checks.setVisible(False)
        ev.addWidget(self.gguf_checks)
        self.folder_note = path_note(self)  # where the export is, when nothing could open it
        ev.addWidget(self.folder_note)
        self._show_dependency()

    def _folder_row(self) -> QHBoxLayout:
        drow = QHBoxLayout()
        drow.addWidget(QLabel("Folder:", self))
        self.destination = QLineEdit(self)
        self.destination.setToolTip("Where the export goes. Each kind of export suggests its own folder.")
        self.destination.setPlaceholderText("Chosen for you when you export; or type a folder")
        drow.addWidget(self.destination, 1)
        self.browse_button = QPushButton("Choose…", self)
        self.browse_button.setToolTip("Choose the folder to export to.")
        self.browse_button.clicked.connect(self._browse)
        drow.addWidget(self.browse_button)
        return drow

    def _buttons_row(self) -> QHBoxLayout:
        brow = QHBoxLayout()
        self.export_buttons: dict[str, QPushButton] = {}
        for kind, (label, tip) in EXPORTS.items():
            b = QPushButton(label, self)
            b.setToolTip(tip)
            b.clicked.connect(lambda _=False, k=kind: self.export(k))
            brow.addWidget(b)
            self.export_buttons[kind] = b
        self.export_progress = QProgressBar(self)
        self.export_progress.setRange(0, 0)
        self.export_progress.setMinimumWidth(100)
        self.export_progress.setMaximumWidth(160)
        self.export_progress.setTextVisible(False)
        self.export_progress.setVisible(False)
        self.export_progress.setToolTip("Exporting…")
        brow.addWidget(self.export_progress, 1)
        self.cancel_button = QPushButton("&Cancel", self)
        self.cancel_button.setToolTip("Stop the export: nothing is written, and an earlier export in the folder stays as it was.")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.cancel)
        brow.addWidget(self.cancel_button)
        self.overwrite_button = QPushButton("Over&write and export", self)
        self.overwrite_button.setToolTip("Export into this folder anyway: only the files named above are overwritten; "
                                         "your other files in it stay as they are.")
        self.overwrite_button.setVisible(False)
        self.overwrite_button.clicked.connect(self._export_anyway)
        brow.addWidget(self.overwrite_button)
        self.open_button = QPushButton("Open &folder", self)
        self.open_button.setToolTip("Show the exported folder in your file manager.")
        self.open_button.setEnabled(False)
        self.open_button.clicked.connect(self._open_folder)
        brow.addWidget(self.open_button)
        brow.addStretch(1)
        return brow

    def _gguf_choice(self) -> QWidget:
        """The GGUF types (sizes follow the run), LM Studio's layout and Ollama's Modelfile; or what to install."""
        box = QWidget(self)
        v = QVBoxLayout(box)
        v.setContentsMargins(0, 2, 0, 0)
        v.setSpacing(4)
        self.gguf_title = QLabel(f"<b>{GGUF_TITLE}</b>", box)
        self.gguf_title.setToolTip(EXPORTS["gguf"][1])
        holder, flow = flow_row(box)
        flow.addWidget(self.gguf_title)
        self.gguf_boxes: dict[str, QCheckBox] = {}
        for name in GGUF_ORDER:
            check = QCheckBox(name, holder)
            check.setChecked(name in GGUF_DEFAULT)
            check.setToolTip(f"{name}: {TYPES[name].help}.")
            check.toggled.connect(self._gguf_choice_changed)
            flow.addWidget(check)
            self.gguf_boxes[name] = check
        self.lmstudio_box = QCheckBox("LM Studio folder layout", holder)
        self.lmstudio_box.setToolTip("Put the GGUF files under lora-studio/NAME/, the publisher/model layout LM Studio reads: "
                                     "copy that folder into LM Studio's models folder (~/.lmstudio/models), or `lms import` a file.")
        self.ollama_box = QCheckBox("Ollama Modelfile", holder)
        self.ollama_box.setToolTip("Write a Modelfile FROM the first GGUF file, with the prompt template and stop words "
                                   "training used: `ollama create NAME -f Modelfile` in the folder.")
        for option in (self.lmstudio_box, self.ollama_box):
            flow.addWidget(option)
        v.addWidget(holder)
        missing = QHBoxLayout()
        self.gguf_missing = QLabel("", box)
        self.gguf_missing.setWordWrap(True)
        self.gguf_missing.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                                  | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        self.gguf_missing.setToolTip("Select the command to copy it, or press “Copy the command”.")
        missing.addWidget(self.gguf_missing, 1)
        self.copy_install_button = QPushButton("Copy the command", box)
        self.copy_install_button.setToolTip(f"Put `{INSTALL}` on the clipboard.")
        self.copy_install_button.clicked.connect(lambda: QApplication.clipboard().setText(INSTALL))
        missing.addWidget(self.copy_install_button, 0, Qt.AlignmentFlag.AlignTop)
        v.addLayout(missing)
        return box

    def _show_dependency(self) -> None:
        """Without the optional packages, the GGUF controls are off and the box says what to install."""
        error = self.gguf_missing_error
        self.gguf_missing.setText(f"{error.message} {error.advice}" if error else "")
        set_state_style(self.gguf_missing, "warn" if error else "")
        self.gguf_missing.setVisible(error is not None)
        self.copy_install_button.setVisible(error is not None)
        self._update()

    @property
    def gguf_ready(self) -> bool:
        return self.gguf_missing_error is None

    def chosen_types(self) -> list[str]:
        return [name for name, check in self.gguf_boxes.items() if check.isChecked()]

    def _gguf_choice_changed(self) -> None:
        self._update()

    # ---- the run and the buttons ----

    @property
    def exporting(self) -> bool:
        return self.export_task is not None and self.export_task.running

    def enable(self, has_run: bool) -> None:
        self._has_run = has_run
        self._update()

    def _update(self) -> None:
        idle = self._has_run and not self.exporting
        for kind, b in self.export_buttons.items():
            b.setEnabled(idle and (kind != "gguf" or (self.gguf_ready and bool(self.chosen_types()))))
        for check in (*self.gguf_boxes.values(), self.lmstudio_box, self.ollama_box):
            check.setEnabled(self.gguf_ready and not self.exporting)
        self.weights.setEnabled(not self.exporting)
        self.gguf_title.setEnabled(self.gguf_ready)
        if self._has_run and self.state.current_run is not None and Path(self.state.current_run) != self._sizes_for:
            self._estimate_sizes(Path(self.state.current_run))

    def run_changed(self) -> None:
        """Another run is chosen: nothing of the last one's export stays; the GGUF sizes are the new run's."""
        self.destination.clear()
        self.export_status.setText("")
        self.gguf_checks.setVisible(False)
        self.folder_note.setVisible(False)
        self.open_button.setEnabled(False)
        self._refuse(None)
        self.weights.run_changed(self.state.current_run)

    def choose_checkpoint(self, step: int | None) -> None:
        """Export the checkpoint saved at `step` (None: the final adapter); chosen once the run's list is read."""
        self.weights.choose(step)

    def _estimate_sizes(self, run_dir: Path) -> None:
        """Each GGUF file's size for this run, off the UI thread (the base model's configuration is read)."""
        self._sizes_for = run_dir
        for name, check in self.gguf_boxes.items():
            check.setText(name)

        def work(_state):
            from studio.core.export import estimated_gguf_sizes

            return run_dir, estimated_gguf_sizes(run_dir, list(GGUF_ORDER))

        start_task("gguf sizes", work, on_done=self._sizes_estimated, on_failed=self._sizes_failed)

    def _sizes_estimated(self, out) -> None:
        run_dir, sizes = out
        if run_dir != self._sizes_for:
            return  # another run was chosen meanwhile
        for name, check in self.gguf_boxes.items():
            if name in sizes:
                check.setText(f"{name} · {gb(sizes[name])}")
                check.setToolTip(f"{name}: {TYPES[name].help}. About {gb(sizes[name])} for this run's model.")

    def _sizes_failed(self, message: str, advice: str) -> None:
        for name, check in self.gguf_boxes.items():
            check.setToolTip(f"{name}: {TYPES[name].help}. Its size is not known: {message}")

    # ---- exporting ----

    def default_destination(self, kind: str) -> Path:
        run = Path(self.state.current_run)
        step = self.weights.chosen()
        which = "" if step is None else f"-checkpoint-{step}"
        return paths.user_data_dir() / "exports" / f"{run.name}{which}-{kind}"

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export to which folder?", str(paths.user_data_dir()))
        if folder:
            self.destination.setText(folder)

    def _options(self, kind: str) -> dict:
        which = {"checkpoint": self.weights.chosen()}
        if kind == "merged":
            return {"merged": True, **which}
        if kind == "gguf":
            return {"gguf": tuple(self.chosen_types()), "lmstudio": self.lmstudio_box.isChecked(),
                    "ollama": self.ollama_box.isChecked(), **which}
        return which

    def export(self, kind: str, force: bool = False, options: dict | None = None) -> None:
        """Export; `force` overwrites the user's files that have the names the export writes (nothing else)."""
        run_dir = self.state.current_run
        if run_dir is None or self.exporting:
            return
        options = self._options(kind) if options is None else options
        if kind == "gguf" and not options["gguf"]:
            self.export_status.setText("Tick at least one GGUF type.")
            set_state_style(self.export_status, "warn")
            return
        target = Path(self.destination.text().strip()) if self.destination.text().strip() else self.default_destination(kind)
        self.destination.setText(str(target))
        self._export_kind, self._export_options = kind, options
        self._export_run, self._export_target = Path(run_dir), target
        self._refuse(None)
        self.gguf_checks.setVisible(False)
        self.export_progress.setRange(0, 0)
        self.export_progress.setVisible(True)
        self.cancel_button.setEnabled(True)
        self.cancel_button.setVisible(True)
        self.export_status.setText(f"Exporting {_what(kind, options)} to {target}…")
        set_state_style(self.export_status, "")
        self.export_task = start_task("export", lambda state: _export(state, run_dir, target, options, force),
                                      on_done=self._exported, on_failed=self._export_failed,
                                      on_progress=self._export_progressed)
        self._update()
        self.busy_changed.emit()

    def cancel(self) -> None:
        """Stop the export at its next step (a llama.cpp child process is stopped at once); nothing is written."""
        if not self.exporting:
            return
        self.export_task.cancel()
        self.cancel_button.setEnabled(False)
        self.export_status.setText("Cancelling the export…")
        set_state_style(self.export_status, "")

    def _export_progressed(self, value) -> None:
        if self.export_task is not None and self.export_task.state.cancelled():
            return  # "Cancelling…" stays until it has stopped
        message, fraction = value
        self.export_progress.setRange(0, 100)
        self.export_progress.setValue(int(100 * fraction))
        self.export_status.setText(f"{message}…" if fraction < 1 else message)

    def _finished(self) -> None:
        self.export_progress.setVisible(False)
        self.cancel_button.setVisible(False)
        self._update()

    def _exported(self, result) -> None:
        self._finished()
        from studio.core.export import FilesInTheWay

        if isinstance(result, FilesInTheWay):
            self._refuse(result)
            return
        if isinstance(result, _Cancelled):
            self.export_status.setText(f"Export cancelled: nothing was written to {self._export_target}.")
            set_state_style(self.export_status, "warn")
            self.busy_changed.emit()
            return
        self.last_export = result.path
        verb = "Replaced the earlier export in" if result.replaced else "Exported to"
        which = "" if result.checkpoint is None else f" with {result.weights}"
        extra = " Ollama: `ollama create NAME -f Modelfile` in that folder." if result.modelfile else ""
        if self._export_options.get("lmstudio"):
            extra += " LM Studio: copy the lora-studio folder into LM Studio's models folder (~/.lmstudio/models)."
        shown = {f"{g.quant}: {g.check.summary()}" for g in result.gguf}  # a failed check's note: shown below instead
        notes = " ".join(n for n in result.notes if n not in shown)
        files = ", ".join(result.files)
        if result.gguf:  # the GGUF files are listed below with their checks; the rest is in the tooltip
            files = f"{len(result.files)} files"
        notes = f" {notes}" if notes else ""
        self.export_status.setText(f"{verb} {result.path}{which} ({gb(result.size_bytes)}: {files}).{extra}{notes}")
        self.export_status.setToolTip("\n".join(result.files))
        set_state_style(self.export_status, "good" if result.checks_passed else "bad")
        self._show_checks(result)
        self.open_button.setEnabled(True)
        self.destination.clear()
        if result.gguf:
            run_dir = self._export_run
            self.gguf_exported.emit([ExportedGguf(result.path / g.path, g.quant, run_dir / "adapter") for g in result.gguf])
        self.busy_changed.emit()

    def _show_checks(self, result) -> None:
        """Each GGUF file with its check in llama.cpp: a tick for a passed check, a cross and CHECK FAILED in red."""
        lines = []
        for g in result.gguf:
            colour, mark = (GOOD, "✓") if g.check.passed else (BAD, "✗")
            head = f"<b style='color:{colour}'>{mark} {html.escape(g.quant)}</b>"
            took = f"{g.seconds:.1f} s" if g.seconds < 60 else duration(g.seconds)
            where = f"{html.escape(g.path)}, {gb(g.size_bytes)}, written in {took}"
            summary = html.escape(g.check.summary())
            if not g.check.passed:
                summary = f"<span style='color:{BAD}'>{summary}</span>"
            lines.append(f"{head} {where}: {summary}")
        self.gguf_checks.setText("<br>".join(lines))
        self.gguf_checks.setVisible(bool(lines))

    def _refuse(self, refusal) -> None:
        """Show which files are in the way and offer to export anyway (None: hide the offer)."""
        if refusal is None:
            self._refused = None
            self.overwrite_button.setVisible(False)
            return
        self._refused = (self._export_kind, self._export_options)
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
        self.busy_changed.emit()

    def _export_anyway(self) -> None:
        if self._refused is not None:
            kind, options = self._refused
            self.export(kind, force=True, options=options)

    def _export_failed(self, message: str, advice: str) -> None:
        self._finished()
        self.export_status.setText(f"{message} {advice}")
        set_state_style(self.export_status, "bad")
        self.busy_changed.emit()

    def _open_folder(self) -> None:
        if self.last_export is not None:
            open_or_say_where(self.last_export, self.folder_note)


def _what(kind: str, options: dict) -> str:
    if kind == "gguf":
        what = "the GGUF " + ", ".join(options["gguf"]) + (" file" if len(options["gguf"]) == 1 else " files")
    else:
        what = "the merged model" if kind == "merged" else "the adapter"
    step = options.get("checkpoint")
    return what if step is None else f"{what} of checkpoint-{step}"


def _export(state, run_dir: Path, target: Path, options: dict, force: bool):
    """In a background task: the export's result, the FilesInTheWay refusal (not a failure: the user
    decides), or _Cancelled."""
    from studio.core.export import FilesInTheWay, export_run
    from studio.core.export.to_gguf import Cancelled

    try:
        return export_run(run_dir, target, force=force, cancelled=state.cancelled,
                          progress=lambda message, fraction: state.report((message, fraction), force=True), **options)
    except FilesInTheWay as refusal:
        return refusal
    except Cancelled:
        return _Cancelled()
