"""2. Data: bring a file (or a hub dataset), see its detected format, what was kept and dropped and
why, examples as the model will see them, and how long the rows are against the sequence length."""

from __future__ import annotations

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
    QPushButton,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from studio.core.data import FORMATS
from studio.core.models import is_demo
from studio.ui.pages.base import Page
from studio.ui.widgets.histogram import TokenHistogram
from studio.ui.widgets.problems_table import ProblemsTable
from studio.ui.widgets.text import help_label, set_state_style
from studio.ui.widgets.token_view import ExampleView

DATA_FILTER = "Data files (*.jsonl *.json *.csv *.tsv *.parquet *.txt *.md);;All files (*)"
FORMAT_HELP = {
    "alpaca": "alpaca: instruction, input, output",
    "sharegpt": "sharegpt: conversations of from/value turns",
    "messages": "messages: role/content turns (chat)",
    "prompt_completion": "prompt → completion: two text columns",
    "text": "text: plain text (the loss is on every token)",
}
TABLE_SUFFIXES = (".csv", ".tsv", ".parquet")


class DataPage(Page):
    title = "2. Training data"
    intro = ("Examples of what the model should learn to answer. Drop a file here (JSONL, JSON, CSV, Parquet, text) or "
             "pick one; the studio detects its format, checks every row and shows exactly what the model will be trained on.")

    def __init__(self, state, parent=None):
        super().__init__(state, parent)
        self.setAcceptDrops(True)
        self._reinspect = QTimer(self)
        self._reinspect.setSingleShot(True)
        self._reinspect.setInterval(900)
        self._reinspect.timeout.connect(self._reload_for_seq_len)

        # ---- where the data is ----
        row = QHBoxLayout()
        self.source = QLineEdit(self)
        self.source.setPlaceholderText("A data file, a folder of files, or a hub dataset id (e.g. tatsu-lab/alpaca)")
        self.source.setToolTip("Where the training data is. Press Enter to load it.")
        self.source.returnPressed.connect(self._load_typed)
        row.addWidget(self.source, 1)
        self.open_button = QPushButton("&Open file…", self)
        self.open_button.setToolTip("Pick a data file on this computer (you can also drop one onto this page).")
        self.open_button.clicked.connect(self._pick_file)
        row.addWidget(self.open_button)
        self.load_button = QPushButton("&Load", self)
        self.load_button.setToolTip("Load the file or hub dataset typed on the left.")
        self.load_button.clicked.connect(self._load_typed)
        row.addWidget(self.load_button)
        self.demo_button = QPushButton("Demo data", self)
        self.demo_button.setToolTip("The built-in plant-care conversations that go with the demo model.")
        self.demo_button.clicked.connect(lambda: self.load("demo"))
        row.addWidget(self.demo_button)
        self.body.addLayout(row)

        # ---- how to read it ----
        opts = QHBoxLayout()
        opts.addWidget(QLabel("Format:", self))
        self.format = QComboBox(self)
        self.format.setToolTip("How the rows are laid out. Detected automatically; choose another to override it.")
        self.format.addItem("Detected automatically", None)
        for f in FORMATS:
            self.format.addItem(FORMAT_HELP[f], f)
        self.format.activated.connect(self._format_chosen)
        opts.addWidget(self.format)
        self.mapping_box = QWidget(self)
        mb = QHBoxLayout(self.mapping_box)
        mb.setContentsMargins(8, 0, 0, 0)
        self.mapping: dict[str, QComboBox] = {}
        for key, label, tip in (("prompt", "Prompt column:", "The column that holds what the user asks."),
                                ("response", "Answer column:", "The column that holds the answer to learn."),
                                ("system", "System column:", "Optional: a column with a system prompt for each row.")):
            mb.addWidget(QLabel(label, self.mapping_box))
            combo = QComboBox(self.mapping_box)
            combo.setToolTip(tip)
            combo.activated.connect(self._mapping_chosen)
            mb.addWidget(combo)
            self.mapping[key] = combo
        self.mapping_box.setVisible(False)
        opts.addWidget(self.mapping_box)
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
        self.body.addLayout(opts)

        self.busy = QProgressBar(self)
        self.busy.setRange(0, 0)
        self.busy.setMaximumHeight(10)
        self.busy.setTextVisible(False)
        self.busy.setToolTip("Reading and checking the data…")
        self.busy.setVisible(False)
        self.body.addWidget(self.busy)
        self.summary_label = QLabel("", self)
        self.summary_label.setWordWrap(True)
        self.summary_label.setToolTip("What was read, what was kept, and what was dropped.")
        self.body.addWidget(self.summary_label)

        # ---- lengths and examples ----
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.setChildrenCollapsible(False)
        left = QWidget(split)
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 6, 0)
        self.histogram = TokenHistogram(left)
        self.histogram.seq_len_dragged.connect(self._seq_len_dragged)
        self.histogram.setMinimumHeight(220)
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

        self.tabs = QTabWidget(split)
        self.tabs.setToolTip("Examples as the model sees them, and the problems found in the data.")
        examples = QWidget(self.tabs)
        ev = QVBoxLayout(examples)
        ev.setContentsMargins(4, 4, 4, 4)
        ev.addWidget(help_label("Highlighted text is what the model is trained to write; the rest is context it reads. "
                                "↵ marks a line break.", examples))
        self.example_tabs = QTabWidget(examples)
        self.example_tabs.setToolTip("Two or three rows of your data, rendered with the model's chat template.")
        self.example_views = [ExampleView(self.example_tabs) for _ in range(3)]
        ev.addWidget(self.example_tabs, 1)
        self.tabs.addTab(examples, "Examples")
        problems = QWidget(self.tabs)
        pv = QVBoxLayout(problems)
        pv.setContentsMargins(4, 4, 4, 4)
        self.problems = ProblemsTable(problems)
        pv.addWidget(self.problems, 1)
        prow = QHBoxLayout()
        self.problem_counts = QLabel("", problems)
        self.problem_counts.setToolTip("How many problems of each kind.")
        prow.addWidget(self.problem_counts, 1)
        self.export_problems_button = QPushButton("Export as CSV…", problems)
        self.export_problems_button.setToolTip("Save the problems as a spreadsheet (CSV) to fix them in your data.")
        self.export_problems_button.clicked.connect(self._export_problems)
        prow.addWidget(self.export_problems_button)
        pv.addLayout(prow)
        self.tabs.addTab(problems, "Problems")
        split.addWidget(left)
        split.addWidget(self.tabs)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        split.setSizes([400, 600])
        self.body.addWidget(split, 1)

        self._fatal_problems: list[dict] = []
        state.data_failed.connect(self._failed)
        state.data_loading.connect(self._loading)
        state.data_changed.connect(self._show)
        state.config_changed.connect(self._sync_from_config)
        state.model_changed.connect(self._model_changed)
        self._sync_from_config()

    # ---- choosing data ----

    def load(self, source: str) -> None:
        self.state.config.data.source = source
        self.state.config.data.format = None
        self.state.config.data.mapping = None
        self.state.changed()
        if self.state.model is None:
            self.summary_label.setText("Choose a model first: its tokenizer decides how the data is read.")
            return
        self.state.load_data()

    def _load_typed(self) -> None:
        text = self.source.text().strip()
        if text:
            self.load(text)

    def _pick_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose training data", str(Path.home()), DATA_FILTER)
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
        self.state.config.data.format = self.format.currentData()
        if self.format.currentData() not in ("prompt_completion", "alpaca"):
            self.state.config.data.mapping = None
        self.state.changed()
        self.state.load_data()

    def _mapping_chosen(self, _index: int) -> None:
        mapping = {}
        for key, combo in self.mapping.items():
            column = combo.currentData()
            if column:
                mapping[key] = column
        if "prompt" in mapping and "response" in mapping:
            self.state.config.data.mapping = mapping
            if self.state.config.data.format is None:
                self.state.config.data.format = "prompt_completion"
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

    def _sync_from_config(self) -> None:
        c = self.state.config
        self.seq_len.blockSignals(True)
        self.seq_len.setValue(c.training.seq_len)
        self.seq_len.blockSignals(False)
        for box, value in ((self.skip_bad, c.data.skip_bad_rows), (self.answers_only, c.data.assistant_only)):
            box.blockSignals(True)
            box.setChecked(value)
            box.blockSignals(False)
        if not self.source.hasFocus():
            self.source.setText(c.data.source)
        self.histogram.set_seq_len(c.training.seq_len)
        self._show_truncation()

    def _model_changed(self) -> None:
        if self.state.model is None:
            self.summary_label.setText("Choose a model first: its tokenizer decides how the data is read.")

    # ---- showing the report ----

    def _loading(self, source: str) -> None:
        self.busy.setVisible(True)
        shown = "the built-in demo data" if is_demo(source) else source
        self.summary_label.setText(f"Reading and checking {shown}…")
        set_state_style(self.summary_label, "")

    def _show(self) -> None:
        self.busy.setVisible(False)
        view = self.state.data
        if view is None:
            message, advice = self.state.data_error or ("No data.", "")
            self.summary_label.setText(f"{message}\n{advice}")
            set_state_style(self.summary_label, "bad")
            self.problems.set_problems(self._fatal_problems)
            n = len(self._fatal_problems)
            self.tabs.setTabText(1, f"Problems ({n})" if n else "Problems (none)")
            if n:
                self.tabs.setCurrentIndex(1)
            self.histogram.set_histogram([], [], self.state.config.training.seq_len)
            for v in self.example_views:
                v.set_example(None)
            self.example_tabs.clear()
            self.summary_changed.emit()
            return
        r = view.report
        dropped = f"{r['rows_dropped']} dropped" + (f" ({r['duplicates']} duplicates)" if r["duplicates"] else "")
        skipped = f", {r['rows_skipped']} broken lines skipped" if r["rows_skipped"] else ""
        detected = r["format"] == r.get("detected_format")
        how = "detected" if detected else "chosen"
        source = "Built-in demo data (plant care)" if is_demo(self.state.config.data.source) else r["source"]
        self.summary_label.setText(
            f"<b>{source}</b> — format {r['format_detail']} ({how}); <b>{r['rows']} rows kept</b> of {r['rows_read']} read, "
            f"{dropped}{skipped}. Tokenized with {r['model']}'s tokenizer and {r['chat_template']} chat template; "
            f"loss on {'the answers only' if r['assistant_only_loss'] else 'every token'}.")
        set_state_style(self.summary_label, "" if r["usable"] else "bad")
        self.summary_label.setTextFormat(Qt.TextFormat.RichText)
        # format and mapping
        self.format.blockSignals(True)
        index = self.format.findData(self.state.config.data.format)
        self.format.setCurrentIndex(max(0, index))
        self.format.setItemText(0, f"Detected: {r.get('detected_format') or 'nothing'}")
        self.format.blockSignals(False)
        is_table = str(r["source"]).lower().endswith(TABLE_SUFFIXES) or r["format"] == "prompt_completion"
        self.mapping_box.setVisible(is_table)
        if is_table:
            self._fill_mapping(r["columns"], r["format_detail"])
        # lengths
        st = r["stats"]
        if len(view.lengths):
            self.histogram.set_lengths(view.lengths, self.state.config.training.seq_len)
        else:
            self.histogram.set_histogram(st["histogram"], st["bin_edges"], self.state.config.training.seq_len)
        self._show_truncation()
        # examples
        self.example_tabs.clear()
        for i, example in enumerate(r["examples"][:3]):
            self.example_views[i].set_example(example)
            turns = sum(1 for s in example["segments"] if s.get("trained"))
            self.example_tabs.addTab(self.example_views[i], f"Row {example['line']}" + (f" ({turns} answers)" if turns > 1 else ""))
        # problems
        self._fatal_problems = []
        self.problems.set_problems(r["problems"])
        n = len(r["problems"])
        counts = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in sorted(r["problem_counts"].items(), key=lambda kv: -kv[1]))
        self.problem_counts.setText(counts or "No problems found.")
        self.tabs.setTabText(1, f"Problems ({n})" if n else "Problems (none)")
        self.export_problems_button.setEnabled(n > 0)
        self.summary_changed.emit()

    def _failed(self, _message: str, _advice: str, problems) -> None:
        self._fatal_problems = list(problems or [])

    def _fill_mapping(self, columns: list[str], detail: str) -> None:
        current = self.state.config.data.mapping or {}
        for key, combo in self.mapping.items():
            combo.blockSignals(True)
            combo.clear()
            combo.addItem("(none)" if key == "system" else "(choose)", None)
            for c in columns:
                combo.addItem(c, c)
            chosen = current.get(key)
            if chosen is None and "(" in detail and "→" in detail:  # "prompt_completion (question → answer)"
                inner = detail[detail.index("(") + 1:detail.rindex(")")]
                parts = [p.strip() for p in inner.split("→")]
                chosen = {"prompt": parts[0], "response": parts[-1]}.get(key)
            combo.setCurrentIndex(max(0, combo.findData(chosen)))
            combo.blockSignals(False)

    def _show_truncation(self) -> None:
        view = self.state.data
        seq = self.state.config.training.seq_len
        if view is None:
            self.truncation.setText("")
            return
        share = view.truncated_share(seq)
        rows = round(share * view.report["rows"])
        cut = "split into pieces" if view.report["format"] == "text" else "cut"
        self.truncation.setText(f"{rows} rows ({100 * share:.1f}%) are longer than {seq} tokens and would be {cut}."
                                if rows else f"Every row fits in {seq} tokens: nothing is cut.")
        set_state_style(self.truncation, "warn" if share > 0.05 else "")

    def truncated_share(self) -> float:
        view = self.state.data
        return view.truncated_share(self.state.config.training.seq_len) if view else 0.0

    def _export_problems(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export the problems", str(Path.home() / "data-problems.csv"), "CSV (*.csv)")
        if path:
            self.problems.export_csv(Path(path))

    def summary(self) -> str:
        view = self.state.data
        if view is None:
            return "choose data" if self.state.data_error is None else "problem with the data"
        return f"{view.report['rows']} rows, {view.report['format']}"
