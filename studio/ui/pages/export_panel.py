"""The Try & export page's Export box: the adapter, a merged model, or the adapter for Ollama, into a
folder the user chooses (or one suggested per run and kind). An export that would overwrite files of
the user's stops and names them; the user may then export anyway.

Exporting runs in a background task; `busy_changed` says when one starts or ends."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
)

from studio.core import paths
from studio.ui.open_path import open_or_say_where, path_note
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


class ExportPanel(QGroupBox):
    busy_changed = Signal()

    def __init__(self, state, parent=None):
        super().__init__("Export", parent)
        self.state = state
        self.export_task: Task | None = None
        self._export_kind: str | None = None
        self._refused_kind: str | None = None  # the export that stopped at files in the way, to run again with force
        self.last_export: Path | None = None
        self.setToolTip("Write the result to a folder; an export is written completely before it replaces anything. "
                        "Files of yours in the folder are kept.")
        ev = QVBoxLayout(self)
        ev.addLayout(self._folder_row())
        ev.addLayout(self._buttons_row())
        self.export_status = help_label("", self)
        ev.addWidget(self.export_status)
        self.folder_note = path_note(self)  # where the export is, when nothing could open it
        ev.addWidget(self.folder_note)

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
        self.export_progress.setMaximumWidth(160)
        self.export_progress.setTextVisible(False)
        self.export_progress.setVisible(False)
        self.export_progress.setToolTip("Exporting…")
        brow.addWidget(self.export_progress)
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

    # ---- the run and the buttons ----

    @property
    def exporting(self) -> bool:
        return self.export_task is not None and self.export_task.running

    def enable(self, has_run: bool) -> None:
        for b in self.export_buttons.values():
            b.setEnabled(has_run and not self.exporting)

    def run_changed(self) -> None:
        """Another run is chosen: nothing of the last one's export stays."""
        self.destination.clear()
        self.export_status.setText("")
        self.folder_note.setVisible(False)
        self.open_button.setEnabled(False)
        self._refuse(None)

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
        self.export_progress.setRange(0, 0)
        self.export_progress.setVisible(True)
        self.export_status.setText(f"Exporting the {'merged model' if kind == 'merged' else 'adapter'} to {target}…")
        set_state_style(self.export_status, "")
        self.export_task = start_task("export", lambda state: _export(state, run_dir, target, kind, force),
                                      on_done=self._exported, on_failed=self._export_failed,
                                      on_progress=self._export_progressed)
        self.busy_changed.emit()

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
        self.busy_changed.emit()

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
        self.busy_changed.emit()

    def _export_anyway(self) -> None:
        if self._refused_kind is not None:
            self.export(self._refused_kind, force=True)

    def _export_failed(self, message: str, advice: str) -> None:
        self.export_progress.setVisible(False)
        self.export_status.setText(f"{message} {advice}")
        set_state_style(self.export_status, "bad")
        self.busy_changed.emit()

    def _open_folder(self) -> None:
        if self.last_export is not None:
            open_or_say_where(self.last_export, self.folder_note)


def _export(state, run_dir: Path, target: Path, kind: str, force: bool):
    """In a background task: the export's result, or the FilesInTheWay refusal (not a failure: the user decides)."""
    from studio.core.export import FilesInTheWay, export_run

    try:
        return export_run(run_dir, target, merged=kind == "merged", ollama=kind == "ollama", force=force,
                          progress=lambda message, fraction: state.report((message, fraction), force=True))
    except FilesInTheWay as refusal:
        return refusal
