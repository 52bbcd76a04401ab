"""The Try & export page's third answer column: a GGUF file — one exported in this session (the Export
box's `gguf_exported`), or any chosen with a file dialog — answering the page's question in llama.cpp,
greedily, in a child process; once the fine-tuned model's answer is written, it says whether the file
answered the same, word for word.

The page hands the column what it reads, as callables: the question typed, the answer settings, the
question whose answers are on screen, and the fine-tuned model's finished answer. `changed` tells the
page when a file is chosen or a question to it starts or ends, so that the page's buttons follow."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QFileDialog, QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from studio.core.export.to_gguf import TYPES
from studio.core.export.to_gguf.check import common_prefix
from studio.core.wording import count
from studio.ui.pages.answer_view import AnswerView
from studio.ui.pages.export_panel import ExportedGguf, ExportPanel
from studio.ui.tasks import Task, start_task
from studio.ui.units import gb
from studio.ui.widgets.text import set_state_style


class GgufColumn(QGroupBox):
    changed = Signal()  # a file was chosen, or a question to it started or ended

    def __init__(self, state, *, question: Callable[[], str], settings: Callable[[], tuple[int, float]],
                 asked: Callable[[], str | None], fine_tuned: Callable[[], str | None], parent=None):
        """`question`: the question typed; `settings`: (the longest answer in tokens, the temperature);
        `asked`: the question whose answers are on screen (None: none); `fine_tuned`: the fine-tuned
        model's answer once it is written (None while the models answer, or before any question)."""
        super().__init__("Exported GGUF file", parent)
        self.state = state
        self._question, self._settings, self._asked, self._fine_tuned = question, settings, asked, fine_tuned
        self._exports: ExportPanel | None = None  # set by attach()
        self._task: Task | None = None
        self.files: list[ExportedGguf] = []  # the GGUF files to try: exported in this session, or chosen
        self.answer = ""
        self._said = ""
        self.setToolTip("What the exported GGUF file answers in llama.cpp (greedy, as a runner answers by "
                        "default), with the run's chat template.")
        v = QVBoxLayout(self)
        row = QHBoxLayout()
        self.combo = QComboBox(self)
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.combo.setMinimumContentsLength(8)
        self.combo.setToolTip("Which GGUF file answers: the files exported in this session, and those you chose.")
        self.combo.setPlaceholderText("No GGUF file yet")
        self.combo.activated.connect(self._file_chosen)
        row.addWidget(self.combo, 1)
        self.browse = QPushButton("Choose…", self)
        self.browse.setToolTip("Choose a .gguf file to try. Its question is written with the chosen run's chat template.")
        self.browse.clicked.connect(self._browse)
        row.addWidget(self.browse)
        v.addLayout(row)
        self.view = AnswerView(self)
        self.view.setToolTip(self.toolTip())
        v.addWidget(self.view, 1)
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        v.addWidget(self.status)

    def attach(self, exports: ExportPanel) -> None:
        """The Export box: whether llama.cpp can run here, where exports go, and the GGUF files it exports."""
        self._exports = exports
        exports.gguf_exported.connect(self.add_files)
        self._show_file()

    def header_height(self) -> int:
        """The height of the file row (the other columns' notes are as high, so the answers line up)."""
        return max(self.combo.sizeHint().height(), self.browse.sizeHint().height())

    def asking(self) -> bool:
        return self._task is not None and self._task.running

    def update_enabled(self, asking: bool) -> None:
        """`asking`: the page's models or this file are answering."""
        ready = self._exports.gguf_ready
        self.browse.setEnabled(ready)
        self.combo.setEnabled(ready and not asking and bool(self.files))

    # ---- which file ----

    def chosen(self) -> ExportedGguf | None:
        index = self.combo.currentIndex()
        return self.files[index] if 0 <= index < len(self.files) else None

    def add_files(self, files: list[ExportedGguf]) -> None:
        """Offer these files (the first one chosen); ask it what is on screen."""
        if not files:
            return
        for f in files:
            known = next((i for i, g in enumerate(self.files) if g.path == f.path), None)
            if known is None:
                self.files.append(f)
                self.combo.addItem(f.path.name)
                self.combo.setItemData(self.combo.count() - 1, str(f.path), Qt.ItemDataRole.ToolTipRole)
            else:
                self.files[known] = f
        self.combo.setCurrentIndex(next(i for i, g in enumerate(self.files) if g.path == files[0].path))
        self._file_chosen()

    def _browse(self) -> None:
        start = str(self.chosen().path.parent) if self.chosen() else str(self._exports.default_destination("gguf").parent
                                                                           if self.state.current_run else Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Try which GGUF file?", start, "GGUF files (*.gguf)")
        if path:
            self.choose_file(Path(path))

    def choose_file(self, path: Path) -> None:
        """A .gguf file the user chose: its prompts are written with the chosen run's tokenizer and chat template."""
        run = self.state.current_run
        if run is None:
            self.status.setText("Choose a run first: its chat template writes the question for the file.")
            set_state_style(self.status, "warn")
            return
        self.add_files([ExportedGguf(Path(path), _type_in_name(Path(path)), Path(run) / "adapter")])

    def _file_chosen(self, _index: int | None = None) -> None:
        self._show_file()
        self.clear_answer()
        self.changed.emit()
        asked = self._asked()
        if asked is not None and self._question() == asked:
            self.ask()  # the question on screen, answered by this file too

    def _show_file(self) -> None:
        f = self.chosen()
        if f is None:
            self.setTitle("Exported GGUF file")
            why = self._exports.gguf_missing_error
            self.status.setText("Trying a GGUF file needs llama-cpp-python (see Export below)." if why else
                                "Export a GGUF file below, or choose one, to ask it too.")
            set_state_style(self.status, "")
            return
        size = f" · {gb(f.path.stat().st_size)}" if f.path.is_file() else ""
        self.setTitle(f"GGUF {f.quant or 'file'}{size}")
        self.setToolTip(f"{f.path}\n{TYPES[f.quant].help if f.quant in TYPES else 'Type unknown'}. "
                        "Answers in llama.cpp, greedily.")
        self.status.setText(f"{f.path.name} answers in llama.cpp, greedily (as runners do by default).")
        set_state_style(self.status, "")

    # ---- its answer ----

    def clear_answer(self) -> None:
        if self._task is not None:
            self._task.cancel()  # its llama.cpp child is stopped; what it returns is not shown
            self._task = None
        self.answer = ""
        self.view.clear()

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def ask(self) -> None:
        """The chosen file answers the question typed, in llama.cpp in a child process."""
        f = self.chosen()
        prompt = self._question()
        if f is None or not prompt or not self._exports.gguf_ready:
            return
        if self._task is not None:
            self._task.cancel()
        self.answer = ""
        self.view.clear()
        max_tokens, temperature = self._settings()
        greedy = ", greedily (temperature 0)" if temperature > 0 else ""
        self.status.setText(f"Answering in llama.cpp{greedy}…")
        self.status.setToolTip("")
        set_state_style(self.status, "")
        task = start_task("try gguf", lambda state: _answer_gguf(state, f, prompt, max_tokens),
                          on_done=lambda out: self._answered(task, out), on_failed=lambda m, a: self._failed(task, m, a))
        self._task = task
        self.changed.emit()

    def _answered(self, task: Task, out) -> None:
        if task is not self._task:
            return  # an earlier question's, or another file's
        self.changed.emit()
        if out is None:
            self.status.setText("Stopped.")
            return
        text, seconds = out
        self.answer = text
        self.view.setPlainText(text)
        self._said = f"llama.cpp answered in {seconds:.1f} s"
        self.status.setText(f"{self._said}.")
        set_state_style(self.status, "")
        self.compare()

    def _failed(self, task: Task, message: str, advice: str) -> None:
        if task is not self._task:
            return
        self.status.setText(f"{message} {advice}")
        set_state_style(self.status, "bad")
        self.changed.emit()

    def compare(self) -> None:
        """With both answers there, say whether the file answers as the fine-tuned model does (at temperature 0)."""
        fine_tuned = self._fine_tuned()
        gguf, tuned = self.answer.split(), _CUT.sub("", fine_tuned or "").split()
        if not gguf or not tuned or self._settings()[1] > 0 or fine_tuned is None:
            return
        same = common_prefix(gguf, tuned)
        if same == min(len(gguf), len(tuned)):  # one may be cut at the length limit sooner than the other
            self.status.setText(f"{self._said}: the fine-tuned model's answer, word for word.")
            set_state_style(self.status, "good")
        else:
            self.status.setText(f"{self._said}: as the fine-tuned model for {count(same, 'word')}, then different.")
            self.status.setToolTip("Quantized weights, and llama.cpp's arithmetic, choose some words differently; "
                                   "the export's check in llama.cpp says how often.")
            set_state_style(self.status, "")


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
