"""2. Data: bring a file (or a hub dataset), see its detected format, what was kept and dropped and
why, examples as the model will see them, and how long the rows are against the sequence length.

Everything shown belongs to the data named at the top: a new file clears the old one's report, and
a file that cannot be used shows only its own problems — and, when its columns were read, pickers to
say which column holds what (saved in the recipe's data.mapping)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from studio.core.data import FORMATS, ROLES
from studio.core.models import is_demo
from studio.core.wording import count
from studio.ui.pages.base import Page
from studio.ui.state import DataFailure
from studio.ui.widgets.buttons import add_buttons
from studio.ui.widgets.column_pickers import ColumnPickers
from studio.ui.widgets.data_report import ReportTabs, summary_html
from studio.ui.widgets.golden_questions import GoldenQuestionsRow
from studio.ui.widgets.histogram import TokenHistogram
from studio.ui.widgets.text import help_label, set_state_style
from studio.ui.widgets.text_split import TextSplitBox

DATA_FILTER = "Data files (*.jsonl *.json *.csv *.tsv *.parquet *.txt *.md);;All files (*)"
FORMAT_HELP = {
    "alpaca": "alpaca: instruction, input, output",
    "sharegpt": "sharegpt: conversations of from/value turns",
    "messages": "messages: role/content turns (chat)",
    "prompt_completion": "prompt → completion: two text columns",
    "text": "text: plain text (the loss is on every token)",
}
DETECTED = "Detected automatically"
PICKER_FORMATS = ("prompt_completion", "alpaca")  # a mapping for these sets the recipe's format only if needed


class DataPage(Page):
    title = "2. Training data"
    intro = ("Examples of what the model should learn to answer. Drop a file here (JSONL, JSON, CSV, Parquet, text) or "
             "pick one; the studio detects its format, checks every row and shows exactly what the model will be trained on.")

    def __init__(self, state, parent=None):
        super().__init__(state, parent)
        self.setAcceptDrops(True)
        self._shown_source: str | None = None  # the data the report on screen belongs to
        self._shown_format: str | None = None  # the format in effect for it (None: not read)
        self._reinspect = QTimer(self)
        self._reinspect.setSingleShot(True)
        self._reinspect.setInterval(900)
        self._reinspect.timeout.connect(self._reload_for_seq_len)
        self.body.addLayout(self._source_row())
        self.body.addLayout(self._options_row())
        self.golden = GoldenQuestionsRow(state, self)
        self.body.addWidget(self.golden)
        self.body.addWidget(self._columns_box())
        self.body.addWidget(self._busy_bar())
        self.summary_label = QLabel("", self)
        self.summary_label.setWordWrap(True)
        self.summary_label.setToolTip("What the data is (its layout, and what is trained), what was read, kept and dropped.")
        self.body.addWidget(self.summary_label)
        self.advice_label = QLabel("", self)
        self.advice_label.setWordWrap(True)
        self.advice_label.setTextFormat(Qt.TextFormat.PlainText)
        self.advice_label.setToolTip("What to do so that the data can be used.")
        self.advice_label.setVisible(False)
        self.body.addWidget(self.advice_label)
        self.body.addWidget(self._lengths_and_examples(), 1)
        state.data_loading.connect(self._loading)
        state.data_changed.connect(self._show)
        state.training_changed.connect(self._show_seq_len)
        state.data_settings_changed.connect(self._show_data_settings)
        state.model_changed.connect(self._model_changed)
        self._show_seq_len()
        self._show_data_settings()

    # ---- building the page ----

    def _source_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.source = QLineEdit(self)
        self.source.setPlaceholderText("A data file, a folder of files, or a hub dataset id (e.g. tatsu-lab/alpaca)")
        self.source.setToolTip("Where the training data is. Press Enter to load it.")
        self.source.returnPressed.connect(self._load_typed)
        row.addWidget(self.source, 1)
        add_buttons(self, row, (
            ("open_button", "&Open file…", "Pick a data file on this computer (you can also drop one onto this page).",
             self._pick_file),
            ("load_button", "&Load", "Load the file or hub dataset typed on the left.", self._load_typed),
            ("demo_button", "Demo data", "The built-in plant-care conversations that go with the demo model.",
             lambda: self.load("demo")),
            ("documents_button", "From &documents…", "No dataset yet? Turn your PDF, Word, web pages and notes into "
             "question–answer pairs that a model writes and you review.", self.open_documents),
        ))
        return row

    def _options_row(self) -> QHBoxLayout:
        opts = QHBoxLayout()
        opts.addWidget(QLabel("Format:", self))
        self.format = QComboBox(self)
        self.format.setToolTip("How the rows are laid out. Detected automatically; choose another to override it.")
        self.format.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)  # the first item's text changes
        self.format.addItem(DETECTED, None)
        for f in FORMATS:
            self.format.addItem(FORMAT_HELP[f], f)
        self.format.activated.connect(self._format_chosen)
        opts.addWidget(self.format)
        self.text_split = TextSplitBox(self)  # shown for plain text files only
        self.text_split.chosen.connect(self._text_split_chosen)
        self.text_split.setVisible(False)
        opts.addWidget(self.text_split)
        opts.addStretch(1)
        self.skip_bad = QCheckBox("Skip broken lines", self)
        self.skip_bad.setToolTip("Leave out lines that cannot be read (e.g. invalid JSON) instead of refusing the whole file. "
                                 "They are listed under Problems.")
        self.skip_bad.toggled.connect(self._skip_toggled)
        opts.addWidget(self.skip_bad)
        self.answers_only = QCheckBox("Learn only the answers", self)
        self.answers_only.setToolTip("Compute the loss only on the assistant's turns (recommended for chat data), "
                                     "so the model learns to answer rather than to ask.")
        self.answers_only.toggled.connect(self._answers_toggled)
        opts.addWidget(self.answers_only)
        return opts

    def _columns_box(self) -> QWidget:
        self.mapping_box = QWidget(self)
        box = QVBoxLayout(self.mapping_box)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(2)
        box.addWidget(help_label("Which column holds what: the first row's value is shown under each choice.",
                                 self.mapping_box))
        self.pickers = ColumnPickers(self.mapping_box)
        self.pickers.column_chosen.connect(self._column_chosen)
        self.mapping = self.pickers.combos  # role → its combo box
        box.addWidget(self.pickers)
        self.mapping_box.setVisible(False)
        return self.mapping_box

    def _busy_bar(self) -> QProgressBar:
        self.busy = QProgressBar(self)
        self.busy.setRange(0, 0)
        self.busy.setMaximumHeight(10)
        self.busy.setTextVisible(False)
        self.busy.setToolTip("Reading and checking the data…")
        self.busy.setVisible(False)
        return self.busy

    def _lengths_and_examples(self) -> QSplitter:
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.setChildrenCollapsible(False)
        split.addWidget(self._lengths_panel(split))
        split.addWidget(self._tabs_panel(split))
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        split.setSizes([400, 600])
        return split

    def _lengths_panel(self, parent: QWidget) -> QWidget:
        left = QWidget(parent)
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 6, 0)
        self.histogram = TokenHistogram(left)
        self.histogram.seq_len_dragged.connect(self._seq_len_dragged)
        self.histogram.setMinimumHeight(180)
        lv.addWidget(self.histogram, 1)
        srow = QHBoxLayout()
        srow.addWidget(QLabel("Sequence length:", left))
        self.seq_len = QSpinBox(left)
        self.seq_len.setRange(16, 131072)
        self.seq_len.setSingleStep(128)
        self.seq_len.setSuffix(" tokens")
        self.seq_len.setToolTip("The longest row, in tokens, the model sees in training; longer rows are cut. "
                                "Longer needs more GPU memory (see the Memory page).")
        self.seq_len.valueChanged.connect(self._seq_len_changed)
        srow.addWidget(self.seq_len)
        srow.addStretch(1)
        lv.addLayout(srow)
        self.truncation = QLabel("", left)
        self.truncation.setWordWrap(True)
        self.truncation.setToolTip("Rows longer than the sequence length lose their end in training.")
        lv.addWidget(self.truncation)
        return left

    def _tabs_panel(self, parent: QWidget) -> ReportTabs:
        self.tabs = ReportTabs(parent)  # Examples | Problems
        self.example_tabs, self.example_views = self.tabs.example_tabs, self.tabs.example_views
        self.problems, self.problem_counts = self.tabs.problems, self.tabs.problem_counts
        self.export_problems_button = self.tabs.export_problems_button
        self.tabs.export_requested.connect(self._export_problems)
        return self.tabs

    # ---- choosing data ----

    def open_documents(self) -> None:
        from studio.ui.documents.dialog import DocumentsDialog

        self.documents = DocumentsDialog(self._use_documents, self)
        self.documents.show()

    def _use_documents(self, train: Path, golden: Path | None) -> None:
        """The reviewed pairs become the data; the held-out documents' pairs the golden questions."""
        self.source.setText(str(train))
        self.load(str(train))
        if golden is not None:
            self.golden.set_source(str(golden))

    def load(self, source: str) -> None:
        self.state.config.data.source = source
        self.state.config.data.format = None
        self.state.config.data.mapping = None
        self.state.config.data.text_split = "auto"
        self.state.changed()
        self.state.remember_data_folder(source)
        if self.state.model is None:
            self.summary_label.setText("Choose a model first: its tokenizer decides how the data is read.")
            return
        self.state.load_data()

    def _load_typed(self) -> None:
        text = self.source.text().strip()
        if text:
            self.load(text)

    def _pick_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose training data", str(self.state.data_folder()), DATA_FILTER)
        if path:
            self.load(path)

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        for url in event.mimeData().urls():
            if url.isLocalFile():
                event.acceptProposedAction()
                self.load(url.toLocalFile())
                return

    def _format_chosen(self, _index: int) -> None:
        fmt = self.format.currentData()
        data = self.state.config.data
        data.format = fmt
        if data.mapping and not set(data.mapping) <= set(ROLES.get(fmt or "prompt_completion", ())):
            data.mapping = None  # the columns chosen were for another layout
        self.state.changed()
        self.state.load_data()

    def _column_chosen(self, _role: str, _column) -> None:
        """A picker changed: once every needed column is chosen, save the mapping and read the file again."""
        if self.pickers.missing():
            return  # the preview under the empty picker asks for its column
        data = self.state.config.data
        data.mapping = self.pickers.mapping()
        if data.format is None and self._shown_format not in (None, *PICKER_FORMATS):
            data.format = self._shown_format  # keep alpaca, messages, ... as detected
        self.state.changed()
        self.state.load_data()

    def _text_split_chosen(self, value: str) -> None:
        if self.state.config.data.text_split != value:
            self.state.config.data.text_split = value
            self.state.changed()
            self.state.load_data()

    def _skip_toggled(self, on: bool) -> None:
        if self.state.config.data.skip_bad_rows != on:
            self.state.config.data.skip_bad_rows = on
            self.state.changed()
            self.state.load_data()

    def _answers_toggled(self, on: bool) -> None:
        if self.state.config.data.assistant_only != on:
            self.state.config.data.assistant_only = on
            self.state.changed()
            self.state.load_data()

    # ---- the sequence length ----

    def _seq_len_changed(self, value: int) -> None:
        if self.state.config.training.seq_len != value:
            old = self.state.config.training.seq_len
            self.state.config.training.seq_len = value
            self.state.changed()
            view = self.state.data
            if view and any(e["tokens"] > min(old, value) for e in view.report.get("examples", [])):
                self._reinspect.start()  # the examples' cut moves: render them again once the value settles

    def _seq_len_dragged(self, value: int) -> None:
        self.seq_len.setValue(value)

    def _reload_for_seq_len(self) -> None:
        if self.state.data is not None:
            self.state.load_data()

    def _show_seq_len(self) -> None:
        seq_len = self.state.config.training.seq_len
        self.seq_len.blockSignals(True)
        self.seq_len.setValue(seq_len)
        self.seq_len.blockSignals(False)
        self.histogram.set_seq_len(seq_len)
        self._show_truncation()

    def _show_data_settings(self) -> None:
        d = self.state.config.data
        for box, value in ((self.skip_bad, d.skip_bad_rows), (self.answers_only, d.assistant_only)):
            box.blockSignals(True)
            box.setChecked(value)
            box.blockSignals(False)
        if not self.source.hasFocus():
            self.source.setText(d.source)

    def _model_changed(self) -> None:
        if self.state.model is None:
            self.summary_label.setText("Choose a model first: its tokenizer decides how the data is read.")

    # ---- showing the report ----

    def _loading(self, source: str) -> None:
        self.busy.setVisible(True)
        if source != self._shown_source:  # another file: nothing of the last one stays on screen
            self._shown_source, self._shown_format = None, None
            self._clear_report()
            self._show_problems([], {})
            self.mapping_box.setVisible(False)
        shown = "the built-in demo data" if is_demo(source) else source
        self.summary_label.setTextFormat(Qt.TextFormat.PlainText)
        self.summary_label.setText(f"Reading and checking {shown}…")
        set_state_style(self.summary_label, "")

    def _show(self) -> None:
        self.busy.setVisible(False)
        self._shown_source = self.state.config.data.source
        if self.state.data is None:
            failure = self.state.data_failure or DataFailure(*(self.state.data_error or ("No data.", "")))
            self._show_failure(failure)
        else:
            self._show_report(self.state.data)
        self.summary_changed.emit()

    def _show_failure(self, failure: DataFailure) -> None:
        """Only this file's problems: the last file's format, counts, lengths and examples are gone."""
        self._shown_format = None
        self._clear_report()
        self.summary_label.setTextFormat(Qt.TextFormat.PlainText)
        self.summary_label.setText(failure.message)
        set_state_style(self.summary_label, "bad")
        self.advice_label.setText(failure.advice)
        self.advice_label.setVisible(bool(failure.advice))
        self._show_problems(failure.problems, Counter(p.get("kind") or p["message"] for p in failure.problems))
        if failure.problems:
            self.tabs.setCurrentIndex(1)
        roles = ROLES.get(self.state.config.data.format or "prompt_completion", ())
        self._show_columns(failure.columns, failure.first_row, roles, self.state.config.data.mapping or {}, bool(failure.columns))

    def _clear_report(self) -> None:
        self.advice_label.setVisible(False)
        self._select_format(DETECTED)
        self._show_text_split(None)
        self.histogram.set_histogram([], [], self.state.config.training.seq_len)
        self.truncation.setText("")
        set_state_style(self.truncation, "")
        self.tabs.clear_examples()

    def _show_report(self, view) -> None:
        r = view.report
        self._shown_format = r["format"]
        self.advice_label.setVisible(False)
        self._show_summary(r)
        detected = r.get("detected_format")
        self._select_format(f"Detected: {detected}" if detected else f"From your columns: {r['format']}")
        self._show_columns(r["columns"], r["first_row"], r["roles"], r["mapping"], len(r["columns"]) > 1)
        self._show_text_split(r.get("text_split"))
        self.histogram.set_chunked(r["format"] == "text")
        if len(view.lengths):
            self.histogram.set_lengths(view.lengths, self.state.config.training.seq_len)
        else:
            st = r["stats"]
            self.histogram.set_histogram(st["histogram"], st["bin_edges"], self.state.config.training.seq_len)
        self._show_truncation()
        self.tabs.show_examples(r["examples"])
        self._show_problems(r["problems"], r["problem_counts"], "No problems found.")

    def _show_summary(self, r: dict) -> None:
        source = "Built-in demo data (plant care)" if is_demo(self.state.config.data.source) else r["source"]
        self.summary_label.setTextFormat(Qt.TextFormat.RichText)
        self.summary_label.setText(summary_html(r, source))
        set_state_style(self.summary_label, "" if r["usable"] else "bad")

    def _select_format(self, detected_text: str) -> None:
        self.format.blockSignals(True)
        self.format.setItemText(0, detected_text)
        self.format.setCurrentIndex(max(0, self.format.findData(self.state.config.data.format)))
        self.format.blockSignals(False)

    def _show_text_split(self, used: str | None) -> None:
        """The split choice, for text files (or while a split other than auto is chosen)."""
        setting = self.state.config.data.text_split
        self.text_split.show_split(setting, used)
        self.text_split.setVisible(used is not None or setting != "auto")
        self.answers_only.setVisible(used is None)  # plain text: every token is trained, there are no answers

    def _show_columns(self, columns: list[str], first_row: dict, roles, chosen: dict, visible: bool) -> None:
        self.mapping_box.setVisible(visible)
        if visible:
            self.pickers.show_columns(columns, first_row, list(roles), chosen)

    def _show_problems(self, problems: list[dict], counts: dict, none_found: str = "") -> None:
        self.tabs.show_problems(problems, counts, none_found)

    def _show_truncation(self) -> None:
        view = self.state.data
        seq = self.state.config.training.seq_len
        if view is None or self._shown_format is None:  # no report on screen (or another file's, being replaced)
            self.truncation.setText("")
            return
        chunks = view.chunks(seq)
        if chunks is not None:  # raw text: nothing is cut, long documents become several rows
            self.truncation.setText(f"{count(chunks.documents, 'document')} → {count(chunks.chunks, 'training chunk')} of at "
                                    f"most {seq} tokens: longer documents are cut into consecutive chunks, all trained.")
            set_state_style(self.truncation, "")
            return
        share = view.truncated_share(seq)
        rows = round(share * view.report["rows"])
        verb = "is" if rows == 1 else "are"
        self.truncation.setText(f"{count(rows, 'row')} ({100 * share:.1f}%) {verb} longer than {seq} tokens and would be cut."
                                if rows else f"Every row fits in {seq} tokens: nothing is cut.")
        set_state_style(self.truncation, "warn" if share > 0.05 else "")

    def truncated_share(self) -> float:
        view = self.state.data
        return view.truncated_share(self.state.config.training.seq_len) if view else 0.0

    def _export_problems(self) -> None:
        suggested = self.state.data_folder() / "data-problems.csv"
        path, _ = QFileDialog.getSaveFileName(self, "Export the problems", str(suggested), "CSV (*.csv)")
        if path:
            self.problems.export_csv(Path(path))

    def summary(self) -> str:
        view = self.state.data
        if view is None:
            return "choose data" if self.state.data_error is None else "problem with the data"
        return f"{count(view.report['rows'], 'row')}, {view.report['format']}"
