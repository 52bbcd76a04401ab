"""The Data page's report, as the core gives it: the summary (the layout in words, then what was read,
kept and dropped) and the tabs with the rendered examples and the problems table."""

from __future__ import annotations

import html

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QTabWidget, QVBoxLayout, QWidget

from studio.core.data import count_kinds
from studio.core.wording import count
from studio.ui.widgets.problems_table import ProblemsTable
from studio.ui.widgets.text import help_label
from studio.ui.widgets.token_view import ExampleView


def layout_html(layout: dict | None) -> str:
    """ "Layout: preference pairs ('chosen' over 'rejected'): 100 rows, trained on the chosen answer; …", the
    layout's name in bold (before the words when they do not start with it, e.g. "tool calling — conversations …")."""
    if not layout:
        return ""
    name, words = layout["name"], layout["words"]
    if words.startswith(name):
        rest = html.escape(words[len(name):], quote=False)
    else:
        rest = " — " + html.escape(words, quote=False)
    end = "" if words.endswith(".") else "."
    return f"<b>Layout: {html.escape(name, quote=False)}</b>{rest}{end}"


def summary_html(r: dict, source: str) -> str:
    """The summary of a report (`as_dict(audience="window")`): its layout on a line of its own, then the
    source, its format, the rows kept and dropped, the tokenizer and where the loss is."""
    dropped = f"{r['rows_dropped']:,} dropped" + (f" ({count(r['duplicates'], 'duplicate')})" if r["duplicates"] else "")
    skipped = f", {count(r['rows_skipped'], 'broken line')} skipped" if r["rows_skipped"] else ""
    how = "detected" if r["format"] == r.get("detected_format") else "chosen"
    loss = "the answers only" if r["assistant_only_loss"] else "every token"
    layout = layout_html(r.get("layout"))
    return ((f"{layout}<br>" if layout else "")
            + f"<b>{html.escape(source)}</b> — format {html.escape(r['format_detail'])} ({how}); "
            f"<b>{count(r['rows'], 'row')} kept</b> of {r['rows_read']:,} read, {dropped}{skipped}. "
            f"Tokenized with {html.escape(r['model'])}'s tokenizer and {r['chat_template']} chat template; loss on {loss}.")


class ReportTabs(QTabWidget):
    """Examples (two or three rows, rendered, trained text highlighted) | Problems (the table, counts, CSV)."""

    export_requested = Signal()  # "Export as CSV…": the page asks where

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setToolTip("Examples as the model sees them, and the problems found in the data.")
        examples = QWidget(self)
        ev = QVBoxLayout(examples)
        ev.setContentsMargins(4, 4, 4, 4)
        ev.addWidget(help_label("Highlighted text is what the model is trained to write; the rest is context it reads. "
                                "↵ marks a line break.", examples))
        self.example_tabs = QTabWidget(examples)
        self.example_tabs.setToolTip("Two or three rows of your data, rendered with the model's chat template.")
        self.example_views = [ExampleView(self.example_tabs) for _ in range(3)]
        ev.addWidget(self.example_tabs, 1)
        self.addTab(examples, "Examples")
        self.addTab(self._problems_panel(), "Problems")

    def _problems_panel(self) -> QWidget:
        problems = QWidget(self)
        pv = QVBoxLayout(problems)
        pv.setContentsMargins(4, 4, 4, 4)
        self.problems = ProblemsTable(problems)
        pv.addWidget(self.problems, 1)
        prow = QHBoxLayout()
        self.problem_counts = QLabel("", problems)
        self.problem_counts.setWordWrap(True)
        self.problem_counts.setToolTip("How many problems of each kind.")
        prow.addWidget(self.problem_counts, 1)
        self.export_problems_button = QPushButton("Export as CSV…", problems)
        self.export_problems_button.setToolTip("Save the problems as a spreadsheet (CSV) to fix them in your data.")
        self.export_problems_button.clicked.connect(self.export_requested)
        prow.addWidget(self.export_problems_button)
        pv.addLayout(prow)
        return problems

    def show_examples(self, examples: list[dict]) -> None:
        self.example_tabs.clear()
        for view, example in zip(self.example_views, examples, strict=False):
            view.set_example(example)
            answers = sum(1 for s in example["segments"] if s.get("trained"))
            more = f" ({count(answers, 'answer')})" if answers > 1 else ""
            self.example_tabs.addTab(view, f"Row {example['line']}{more}")

    def clear_examples(self) -> None:
        self.example_tabs.clear()
        for view in self.example_views:
            view.set_example(None)

    def show_problems(self, problems: list[dict], counts: dict, none_found: str = "") -> None:
        self.problems.set_problems(problems)
        n = len(problems)
        self.problem_counts.setText(count_kinds(counts) if counts else none_found)
        self.setTabText(1, f"Problems ({n:,})" if n else "Problems (none)")
        self.export_problems_button.setEnabled(n > 0)
