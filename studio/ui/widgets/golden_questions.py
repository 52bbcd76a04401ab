"""The Data page's golden-questions row: the user's own questions with the answers they expect, from a
file (any format the data loader reads) or typed into a small table, kept in the recipe
(data.questions) so the run saves them and scores each checkpoint on them as it is saved."""

from __future__ import annotations

import html
import time
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.core.data.problems import ERROR
from studio.core.wording import count
from studio.ui.tasks import start_task
from studio.ui.widgets.text import help_label, set_state_style

TYPED_ROWS = 8  # empty rows the typing table starts with


def typed_folder() -> Path:
    """Where questions typed in the window are saved (a file per save, never overwritten)."""
    from studio.core.paths import user_data_dir

    return user_data_dir() / "questions"


class GoldenQuestionsRow(QWidget):
    def __init__(self, state, parent=None):
        super().__init__(parent)
        self.state = state
        self.loaded: list = []  # the questions read from the chosen file
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        title = QLabel("Golden questions:", self)
        title.setToolTip(_HELP)
        row.addWidget(title)
        self.label = help_label("", self)
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.label.setToolTip(_HELP)
        row.addWidget(self.label, 1)
        self.choose_button = self._button("Choose file…", "A file of questions with the answers you expect (any format "
                                          "the Data page reads: messages, prompt/completion, alpaca…).", self._choose)
        self.type_button = self._button("Type…", "Type a few questions and the answers you expect.", self._type)
        self.clear_button = self._button("Clear", "Train without golden questions.", lambda: self.set_source(None))
        for b in (self.choose_button, self.type_button, self.clear_button):
            row.addWidget(b)
        state.data_settings_changed.connect(self._show_source)
        self._show_source()

    def _button(self, text: str, tip: str, slot) -> QPushButton:
        b = QPushButton(text, self)
        b.setToolTip(tip)
        b.clicked.connect(slot)
        return b

    def set_source(self, path: str | None) -> None:
        if self.state.config.data.questions != path:
            self.state.config.data.questions = path
            self.state.changed()
        self._show_source()

    def _show_source(self) -> None:
        """Read the recipe's questions file in the background and say what it holds."""
        from studio.core.evaluation import load_questions

        source = self.state.config.data.questions
        self.clear_button.setEnabled(bool(source))
        if not source:
            self.loaded = []
            self._say("none (optional: each checkpoint's answers are scored against yours while it trains)", "")
            return
        self._say(f"reading {html.escape(Path(source).name)}…", "")
        start_task("golden questions", lambda _s: load_questions(source),
                   on_done=lambda out: self._read(source, *out),
                   on_failed=lambda message, advice: self._say(f"{html.escape(message)} {html.escape(advice)}", "bad"))

    def _read(self, source: str, questions: list, problems: list) -> None:
        if source != self.state.config.data.questions:
            return
        self.loaded = questions
        left_out = [p for p in problems if p.severity == ERROR]
        text = f"{count(len(questions), 'question')} from <b>{html.escape(Path(source).name)}</b>"
        if left_out:
            first = left_out[0]
            text += (f"; {count(len(left_out), 'row')} left out (line {first.line}: {html.escape(first.message)})")
        self._say(text if questions else f"{html.escape(Path(source).name)} holds no question with an expected answer",
                  "warn" if left_out or not questions else "")

    def _say(self, text: str, state: str) -> None:
        self.label.setText(text)
        set_state_style(self.label, state)

    def _choose(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Golden questions: questions with the answers you expect", str(Path.home()),
                                              "Data files (*.jsonl *.json *.csv *.tsv *.parquet);;All files (*)")
        if path:
            self.set_source(path)

    def _type(self) -> None:
        dialog = TypedQuestionsDialog(self.loaded, self)
        if dialog.exec() == QDialog.DialogCode.Accepted and dialog.saved is not None:
            self.set_source(str(dialog.saved))


class TypedQuestionsDialog(QDialog):
    """A table of questions and expected answers, saved as a messages file the recipe points to."""

    def __init__(self, questions: list, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Golden questions")
        self.saved: Path | None = None
        v = QVBoxLayout(self)
        v.addWidget(help_label("Each row: a question you would ask the fine-tuned model, and the answer you expect. "
                               "Rows with an empty answer are not scored.", self))
        self.table = QTableWidget(0, 2, self)
        self.table.setHorizontalHeaderLabels(("Question", "Expected answer"))
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setWordWrap(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        for q in questions:
            self._add(q.question, q.expected)
        for _ in range(max(0, TYPED_ROWS - len(questions))):
            self._add("", "")
        v.addWidget(self.table, 1)
        add = QPushButton("Add a row", self)
        add.setToolTip("One more question.")
        add.clicked.connect(lambda: self._add("", ""))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.addButton(add, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        v.addWidget(buttons)
        self.resize(760, 420)

    def _add(self, question: str, expected: str) -> None:
        r = self.table.rowCount()
        self.table.insertRow(r)
        self.table.setItem(r, 0, QTableWidgetItem(question))
        self.table.setItem(r, 1, QTableWidgetItem(expected))

    def rows(self) -> list[tuple[str, str]]:
        """(question, expected answer) of each row with a question."""
        out = []
        for r in range(self.table.rowCount()):
            q, a = (self.table.item(r, c).text().strip() if self.table.item(r, c) else "" for c in (0, 1))
            if q:
                out.append((q, a))
        return out

    def save(self) -> None:
        from studio.core.evaluation import GoldenQuestion, save_questions_file

        rows = self.rows()
        if not rows:
            self.reject()
            return
        path = typed_folder() / f"typed-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
        save_questions_file(path, [GoldenQuestion(({"role": "user", "content": q},), a) for q, a in rows])
        self.saved = path
        self.accept()


_HELP = ("Your own questions, with the answers you expect. Each checkpoint answers them as it is saved; the Runs page's "
         "Scores tab shows which checkpoint answers them best. They are saved with the run (eval/questions.jsonl).")
