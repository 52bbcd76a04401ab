"""The Runs page's Scores tab: a run's scoreboard — the base model and each checkpoint, their scores on
the golden questions, held-out loss and the forgetting check — with the best checkpoint marked by the
rule it states; a row's answers beside the expected ones; scoring started, stopped and resumed here;
and "Export this checkpoint".

Everything shown comes from the core's Scoreboard (evaluation.saved_scoreboard when the run is opened,
evaluation.evaluate_run when the user scores it); nothing is computed here.
"""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.core import runs
from studio.core.evaluation.metrics import HIGHER, LOWER, SCORE, measure
from studio.ui.tasks import start_task
from studio.ui.widgets.text import help_label, set_state_style

ARROW = {LOWER: "↓", HIGHER: "↑"}


def _measured(title: str, name: str, read) -> tuple:
    """A column for one of the core's measures: its meaning and direction from evaluation.metrics.MEASURES."""
    m = measure(name)
    return (f"{title} {ARROW[m.direction]}", f"{m.about} ({m.direction.capitalize()}.)", read)


# (title, what it means, how to read it from a TargetScores)
COLUMNS = (
    ("Model", "The base model (what the run started from) or a checkpoint saved while training.", None),
    _measured("Score", SCORE, lambda r: r.score),
    _measured("F1", "f1", lambda r: r.golden.get("f1")),
    _measured("Contains", "contains", lambda r: r.golden.get("contains")),
    _measured("Exact", "exact", lambda r: r.golden.get("exact")),
    _measured("Judge (opinion)", "judge", lambda r: r.golden.get("judge")),
    ("Words", "The answers' mean length in words.", lambda r: _rounded(r.golden.get("words"))),
    ("Held-out loss ↓", "The loss on rows held out of training: lower means the model predicts your data better.",
     lambda r: r.heldout_loss),
    ("Perplexity ↓", "The held-out loss as perplexity (e to the loss).", lambda r: r.perplexity),
    _measured("Forgetting", "general_loss", lambda r: r.general_loss),
)
JUDGE_COLUMN = 5  # hidden unless a judge graded the answers
ANSWER_COLUMNS = ("Question", "Expected answer", "This model's answer", "Score ↑")
ANSWER_ROW_HEIGHT = 132  # at most, in pixels: a long answer shows its start (all of it on hover)
HELD_AS = {"4bit": "the base model in 4-bit, as training held it", "float32": "the base model in 32-bit floats, as the Try "
           "page loads it on a CPU", "bfloat16": "the base model in 16-bit, as the Try page loads it on a GPU"}


def _rounded(value):
    return None if value is None else round(value)


def _number(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


class ScoreboardView(QWidget):
    export_requested = Signal(object, object)  # run folder, checkpoint step (None: the final adapter)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.run_dir: Path | None = None
        self.board = None  # evaluation.Scoreboard shown
        self._task = None
        self._questions_file: str | None = None
        v = QVBoxLayout(self)
        v.setContentsMargins(0, 4, 0, 0)
        v.addLayout(self._build_controls())
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 100)
        self.progress.setVisible(False)
        v.addWidget(self.progress)
        self.status = help_label("", self)
        self.status.setTextFormat(Qt.TextFormat.RichText)
        v.addWidget(self.status)
        split = QSplitter(Qt.Orientation.Vertical, self)
        split.setChildrenCollapsible(False)
        split.addWidget(self._build_rows(split))
        split.addWidget(self._build_answers(split))
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        v.addWidget(split, 1)
        self._update_buttons()

    # ---- building ----

    def _build_controls(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.questions_button = QPushButton("Golden &questions…", self)
        self.questions_button.setToolTip("Choose a file of questions with the answers you expect (any format the Data "
                                         "page reads). Without one, the questions saved with the run are used.")
        self.questions_button.clicked.connect(self._choose_questions)
        self.score_button = QPushButton("&Score", self)
        self.score_button.setToolTip("Score the base model and every checkpoint, on this computer. Checkpoints already "
                                     "scored on the same questions are not scored again.")
        self.score_button.clicked.connect(self.score)
        self.stop_button = QPushButton("Stop", self)
        self.stop_button.setToolTip("Stop after the model being scored: the scores so far are kept, and Score goes on "
                                    "from there.")
        self.stop_button.clicked.connect(self.stop)
        self.judge = QLineEdit(self)
        self.judge.setPlaceholderText("Judge (optional): ollama:MODEL or a model folder")
        self.judge.setClearButtonEnabled(True)
        self.judge.setToolTip("Optional, off when empty: a model on this computer grades each answer 1 to 5 against the "
                              "expected one — an Ollama model (ollama:qwen2.5:7b, with `ollama serve` running) or a "
                              "model folder. Its grade is a judge's opinion, shown apart from the measured scores.")
        self.export_button = QPushButton("&Export this checkpoint…", self)
        self.export_button.setToolTip("Export the checkpoint selected above (not only the final adapter): opens "
                                      "Try & export with it chosen.")
        self.export_button.clicked.connect(self._export)
        for b in (self.questions_button, self.score_button, self.stop_button):
            row.addWidget(b)
        row.addWidget(self.judge, 1)
        row.addWidget(self.export_button)
        return row

    def _build_rows(self, parent) -> QTableWidget:
        self.table = QTableWidget(0, len(COLUMNS), parent)
        for c, (title, tip, _) in enumerate(COLUMNS):
            item = QTableWidgetItem(title)
            item.setToolTip(tip)
            self.table.setHorizontalHeaderItem(c, item)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setToolTip("The base model and each checkpoint. ★ marks the best checkpoint by the rule above; "
                              "select a row to read its answers.")
        self.table.itemSelectionChanged.connect(self._row_selected)
        self.table.setMinimumHeight(96)  # the header and three rows: the base and two checkpoints
        return self.table

    def _build_answers(self, parent) -> QTableWidget:
        self.answers = QTableWidget(0, len(ANSWER_COLUMNS), parent)
        self.answers.setHorizontalHeaderLabels(ANSWER_COLUMNS)
        self.answers.verticalHeader().setVisible(False)
        self.answers.setWordWrap(True)
        self.answers.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.answers.horizontalHeader()
        for c in range(3):
            header.setSectionResizeMode(c, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.ResizeToContents)
        self.answers.setToolTip("The selected model's answers to the golden questions, beside the answers you expect.")
        return self.answers

    # ---- a run ----

    def show_run(self, run_dir: Path) -> None:
        """The scores the run saved (read in the background; no model is loaded). Scoring another run
        goes on meanwhile; its scores show when that run is opened again."""
        from studio.core.evaluation import saved_scoreboard

        self.run_dir = Path(run_dir)
        self._questions_file = None
        self._show(None)
        self._say("Reading the run's scores…", "")
        start_task("read scores", lambda _s: saved_scoreboard(run_dir),
                   on_done=lambda board: self._read(run_dir, board),
                   on_failed=lambda message, advice: self._say(f"{message} {advice}", "bad"))

    def _read(self, run_dir: Path, board) -> None:
        if Path(run_dir) != self.run_dir:
            return
        self._show(board)
        if board is None:
            self._say("Not scored yet. <b>Score</b> answers your golden questions with the base model and each "
                      "checkpoint (choose them with <b>Golden questions…</b>; the run's own are used when it has some), "
                      "and measures the held-out loss and the forgetting check.", "")

    def _show(self, board) -> None:
        self.board = board
        rows = board.rows if board else []
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            best = board.best == row.name
            for c, (_, _, read) in enumerate(COLUMNS):
                text = ("★ " if best else "") + row.name if read is None else _number(read(row))
                item = QTableWidgetItem(text)
                if best:
                    font = QFont(item.font())
                    font.setBold(True)
                    item.setFont(font)
                self.table.setItem(r, c, item)
        self.table.setColumnHidden(JUDGE_COLUMN, not any(r.golden.get("judge") is not None for r in rows))
        if board is not None:
            self._say(self._board_text(board), "")
            best = next((r for r, row in enumerate(rows) if row.name == board.best), 0 if rows else None)
            if best is not None:
                self.table.selectRow(best)
        self._fill_answers()
        self._update_buttons()

    def _board_text(self, board) -> str:
        questions = f"{board.questions} golden questions" if board.questions else "no golden questions (losses only)"
        best = (f"Best: <b>★ {html.escape(board.best)}</b> (the best score; hover for the rule)." if board.best
                else "No checkpoint is scored yet.")
        self.status.setToolTip(f"The best checkpoint is chosen by {board.rule}.")
        base, top = board.row("base"), board.row(board.best) if board.best else None
        if base and top and base.score is not None and top.score is not None and top.score <= base.score:
            best += " <b>No checkpoint answers the golden questions better than the base model.</b>"
        held = f" Scored with {HELD_AS.get(board.held_as, board.held_as)}." if board.held_as else ""
        more = "" if board.complete else " Some checkpoints are not scored yet: <b>Score</b> goes on where it stopped."
        skipped = "".join(f"<br>Skipped {html.escape(s)}" for s in board.skipped)
        return f"{questions}. {best}{held}{more}{skipped}"

    def _row_selected(self) -> None:
        self._fill_answers()
        self._update_buttons()

    def selected_row(self):
        rows = self.table.selectionModel().selectedRows()
        if not rows or self.board is None:
            return None
        return self.board.rows[rows[0].row()]

    def _fill_answers(self) -> None:
        row = self.selected_row()
        answers = row.answers if row else []
        self.answers.setRowCount(len(answers))
        top = Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft
        for r, a in enumerate(answers):
            for c, text in enumerate((a["question"], a["expected"], a["answer"], _number(a.get("rouge_l")))):
                item = QTableWidgetItem(text)
                item.setTextAlignment(top)  # a tall cell starts where its text starts
                item.setToolTip(text if c < 3 else (a.get("judge_reason") or ""))
                self.answers.setItem(r, c, item)
        self.answers.resizeRowsToContents()
        self.table.resizeRowsToContents()
        for r in range(len(answers)):
            self.answers.setRowHeight(r, min(self.answers.rowHeight(r), ANSWER_ROW_HEIGHT))

    # ---- scoring ----

    def scoring(self) -> bool:
        return self._task is not None and self._task.running

    def _choose_questions(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Golden questions: a file of questions with expected answers",
                                              str(self.run_dir or Path.home()),
                                              "Data files (*.jsonl *.json *.csv *.tsv *.parquet *.txt);;All files (*)")
        if path:
            self._questions_file = path
            self._say(f"Golden questions: {html.escape(path)}. <b>Score</b> to answer them.", "")
            self._update_buttons()

    def score(self) -> None:
        """Score the run in the background (the questions chosen, else the run's own)."""
        from studio.core.evaluation import evaluate_run, load_questions

        if self.run_dir is None or self.scoring():
            return
        run_dir, source, judge = self.run_dir, self._questions_file, self.judge.text().strip()

        def work(state):
            from studio.core.evaluation.judge import open_judge

            questions = load_questions(source)[0] if source else None
            return evaluate_run(run_dir, questions=questions, should_stop=state.cancelled, judge=open_judge(judge) if judge else None,
                                on_progress=lambda message, fraction: state.report((message, fraction), force=True))

        self.progress.setValue(0)
        self.progress.setVisible(True)
        self._task = start_task("score run", work, on_done=lambda board: self._scored(run_dir, board),
                                on_failed=self._failed, on_progress=self._progressed)
        self._questions_file = None
        self._update_buttons()

    def stop(self) -> None:
        if self.scoring():
            self._task.cancel()
            self._say("Stopping after the model being scored…", "")

    def _progressed(self, value) -> None:
        message, fraction = value
        self.progress.setValue(int(100 * fraction))
        self._say(html.escape(message) + " (the base model and each checkpoint answer every question)", "")

    def _scored(self, run_dir: Path, board) -> None:
        self.progress.setVisible(False)
        if Path(run_dir) == self.run_dir:
            self._show(board)
        self._update_buttons()

    def _failed(self, message: str, advice: str) -> None:
        self.progress.setVisible(False)
        self._say(f"{html.escape(message)} {html.escape(advice)}", "bad")
        self._update_buttons()

    def _say(self, text: str, state: str) -> None:
        self.status.setText(text)
        set_state_style(self.status, state)

    def _update_buttons(self) -> None:
        busy = self.scoring()
        row = self.selected_row()
        self.questions_button.setEnabled(self.run_dir is not None and not busy)
        self.judge.setEnabled(not busy)
        self.score_button.setEnabled(self.run_dir is not None and not busy)
        self.stop_button.setEnabled(busy)
        exists = row is not None and row.step is not None and self.run_dir is not None and \
            (self.run_dir / runs.CHECKPOINTS / row.name).is_dir()
        self.export_button.setEnabled(exists and not busy)
        if row is not None and row.step is not None and not exists:
            self.export_button.setToolTip(f"{row.name} was deleted (the run keeps its last checkpoints only).")

    def _export(self) -> None:
        row = self.selected_row()
        if row is not None and row.step is not None and self.run_dir is not None:
            self.export_requested.emit(self.run_dir, row.step)
