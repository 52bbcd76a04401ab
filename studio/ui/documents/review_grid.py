"""The review grid: every generated pair — question, answer, where it comes from, its checks — with
the chunk it was written from beside it and the supporting quote highlighted there. Keys: A accepts,
R rejects, E edits (an edited pair is accepted as edited, its checks run again), U undoes the decision.
"Accept all that pass" accepts every undecided pair that passes every check; "Review 30 at random"
shows a random sample of those, to estimate how many accepted pairs would be wrong. The decisions are
the core's Review (studio/core/documents/review.py), saved as they are made."""

from __future__ import annotations

import html

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from studio.core.documents.review import ACCEPTED, REJECTED, Review
from studio.core.wording import count
from studio.ui.widgets.buttons import add_buttons

COLUMNS = ("Decision", "Question", "Answer", "Source", "Checks")
MARKS = {ACCEPTED: "✓ accepted", REJECTED: "✗ rejected", None: ""}
SAMPLE = 30
SHOWN = 180  # characters of a cell; the whole text is its tooltip (and in Edit…)


class ReviewGrid(QWidget):
    changed = Signal()  # a decision or an edit was made

    def __init__(self, parent=None):
        super().__init__(parent)
        self.review: Review | None = None
        self.shown: list = []  # the rows in the table, in order
        self.sampling = False  # showing a random sample of the passing pairs
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self._buttons())
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.addWidget(self._table())
        self.chunk = QTextBrowser(self)
        self.chunk.setToolTip("The text the pair was written from; its supporting quote is highlighted.")
        split.addWidget(self.chunk)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        layout.addWidget(split, 1)
        self.keys = {Qt.Key.Key_A: lambda: self.decide(ACCEPTED), Qt.Key.Key_R: lambda: self.decide(REJECTED),
                     Qt.Key.Key_U: lambda: self.decide(None), Qt.Key.Key_E: self.edit_current}
        self.table.installEventFilter(self)

    def eventFilter(self, watched, event) -> bool:
        """A, R, U and E in the table decide the selected pair (plain keys: a reviewer's hands stay put)."""
        if (watched is self.table and event.type() == QEvent.Type.KeyPress and event.key() in self.keys
                and not event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier):
            self.keys[event.key()]()
            return True
        return super().eventFilter(watched, event)

    def _buttons(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.counts = QLabel("", self)
        row.addWidget(self.counts, 1)
        add_buttons(self, row, (
            ("accept_button", "&Accept (A)", "Accept the selected pair.", lambda: self.decide(ACCEPTED)),
            ("reject_button", "&Reject (R)", "Reject the selected pair.", lambda: self.decide(REJECTED)),
            ("edit_button", "&Edit… (E)", "Correct the selected pair in your own words; it is then accepted.",
             self.edit_current),
            ("passing_button", "Accept all that pass", "Accept every pair not yet decided that passes every check.",
             self.accept_passing),
            ("sample_button", f"Review {SAMPLE} at random", f"Show {SAMPLE} pairs that pass every check, drawn at "
             "random: how many of them are wrong estimates how many accepted pairs would be.", self.toggle_sample),
        ))
        return row

    def _table(self) -> QTableWidget:
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(True)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        for col, mode in enumerate((QHeaderView.ResizeMode.ResizeToContents, QHeaderView.ResizeMode.Stretch,
                                    QHeaderView.ResizeMode.Stretch, QHeaderView.ResizeMode.ResizeToContents,
                                    QHeaderView.ResizeMode.Stretch)):
            header.setSectionResizeMode(col, mode)
        self.table.currentCellChanged.connect(lambda row, *_: self._show_chunk(row))
        return self.table

    # ---- what is shown ----

    def set_review(self, review: Review | None) -> None:
        self.review = review
        self.shown = list(review.rows) if review else []
        self.sampling = False
        self.sample_button.setText(f"Review {SAMPLE} at random")
        self._fill()

    def _fill(self) -> None:
        self.table.setRowCount(len(self.shown))
        for r, row in enumerate(self.shown):
            self._fill_row(r, row)
        self.table.resizeRowsToContents()
        self._say_counts()
        if self.shown:
            self.table.setCurrentCell(0, 1)

    def _fill_row(self, r: int, row) -> None:
        decision = self.review.decisions.get(row.id)
        checks = "passes every check" if row.passed else "; ".join(row.failed)
        source = row.source + (" · held out" if row.side == "eval" else "")  # a golden question, not a training row
        for col, text in enumerate((MARKS[decision], row.question, row.answer, source, checks)):
            item = QTableWidgetItem(text if len(text) <= SHOWN else text[:SHOWN].rstrip() + " …")
            item.setToolTip(text)
            if col == 4:
                item.setForeground(QColor("#2e7d32" if row.passed else "#b23b3b"))
            self.table.setItem(r, col, item)

    def _say_counts(self) -> None:
        if self.review is None:
            self.counts.setText("")
            return
        rows, d = self.review.rows, self.review.decisions
        passing = sum(r.passed for r in rows)
        accepted = sum(1 for r in rows if d.get(r.id) == ACCEPTED)
        rejected = sum(1 for r in rows if d.get(r.id) == REJECTED)
        text = (f"{count(len(rows), 'pair')}, {passing} pass every check · {accepted} accepted, {rejected} rejected, "
                f"{len(rows) - accepted - rejected} to decide")
        if self.sampling:
            text += " · " + self.error_rate()
        self.counts.setText(text)

    def error_rate(self) -> str:
        """What the random sample says so far: the share of the pairs that pass the checks that are wrong."""
        decided = [r for r in self.shown if r.id in self.review.decisions]
        wrong = sum(1 for r in decided if self.review.decisions[r.id] == REJECTED)
        if not decided:
            return f"the {len(self.shown)} drawn at random: accept or reject each to estimate the error rate"
        return (f"of {len(decided)} of the {len(self.shown)} drawn decided, {wrong} rejected: about "
                f"{100 * wrong / len(decided):.0f}% of the pairs that pass every check would be wrong")

    def _show_chunk(self, r: int) -> None:
        if not 0 <= r < len(self.shown):
            self.chunk.clear()
            return
        row = self.shown[r]
        text = self.review.chunks.get(row.chunk_id, {}).get("text", "")
        if row.quote_span:
            start, end = row.quote_span
            body = (html.escape(text[:start]) + '<span style="background:#ffe082">' + html.escape(text[start:end])
                    + "</span>" + html.escape(text[end:]))
        else:
            body = html.escape(text)
        note = "" if row.quote_span else f'<p style="color:#b23b3b">Its quote is not in this text: “{html.escape(row.quote)}”</p>'
        self.chunk.setHtml(f"<p><b>{html.escape(row.source)}</b></p>{note}<p>{body.replace(chr(10), '<br>')}</p>")

    def current_row(self):
        r = self.table.currentRow()
        return self.shown[r] if 0 <= r < len(self.shown) else None

    # ---- decisions ----

    def decide(self, decision: str | None) -> None:
        row = self.current_row()
        if row is None:
            return
        self.review.decide(row.id, decision)
        r = self.table.currentRow()
        self._fill_row(r, row)
        self._say_counts()
        if r + 1 < len(self.shown):  # on to the next pair, as a reviewer goes down the list
            self.table.setCurrentCell(r + 1, 1)
        self.changed.emit()

    def edit_current(self) -> None:
        row = self.current_row()
        if row is None:
            return
        dialog = EditPair(row, self)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        self.review.edit(row.id, *dialog.values())
        r = self.table.currentRow()
        self._fill_row(r, row)
        self._show_chunk(r)
        self._say_counts()
        self.changed.emit()

    def accept_passing(self) -> None:
        if self.review is not None:
            self.review.accept_passing()
            self._fill()
            self.changed.emit()

    def toggle_sample(self) -> None:
        if self.review is None:
            return
        if self.sampling:
            self.set_review(self.review)
            return
        self.shown, self.sampling = self.review.sample(SAMPLE), True
        self.sample_button.setText(f"Show all {count(len(self.review.rows), 'pair')}")
        self._fill()


class EditPair(QDialog):
    """The expert's own words for a pair: question, answer and the quote from the source."""

    def __init__(self, row, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Edit the pair")
        form = QFormLayout(self)
        self.fields = []
        for label, text in (("Question:", row.question), ("Answer:", row.answer), ("Quote from the source:", row.quote)):
            edit = QPlainTextEdit(text, self)
            edit.setTabChangesFocus(True)
            edit.setMinimumWidth(480)
            edit.setFixedHeight(70)
            form.addRow(label, edit)
            self.fields.append(edit)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def values(self) -> tuple[str, str, str]:
        return tuple(f.toPlainText().strip() for f in self.fields)
