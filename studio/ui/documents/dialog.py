"""From documents (the Data page's "From documents…"): choose a folder and the model that writes the
pairs, preview 10 chunks (with the time all of them would take) or run them all, then read the parse
report, review the pairs and see the split; "Use as training data" writes the accepted pairs and puts
them on the Data page, the held-out documents' pairs as golden questions.

The work is `studio data from-docs … --json` in a child process (a model that crashes costs the child,
never the window; Stop ends it after the chunk being written, and running again goes on from there).
What the window shows comes from the files it writes, read by the core (report.json, the Review)."""

from __future__ import annotations

import html
import json
import sys
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QProcess, Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.wording import count
from studio.ui.documents.review_grid import ReviewGrid
from studio.ui.widgets.text import help_label, set_state_style

PREVIEW_CHUNKS = 10


def default_out(folder: str) -> Path:
    from studio.core.paths import user_data_dir

    return user_data_dir() / "documents" / (Path(folder).name or "documents")


class DocumentsDialog(QDialog):
    def __init__(self, use: Callable[[Path, Path | None], None], parent=None):
        super().__init__(parent)
        self.use = use  # (training file, golden questions file or None): what "Use as training data" does
        self.process: QProcess | None = None
        self._errors: list[str] = []  # the running command's stderr lines that are not progress
        self.setWindowTitle("From documents to a dataset")
        screen = (parent.screen() if parent is not None else self.screen()).availableGeometry()
        self.resize(min(1100, screen.width() - 40), min(720, screen.height() - 60))  # fits a 1024 × 700 screen
        layout = QVBoxLayout(self)
        layout.addWidget(help_label("Turn PDF, Word, web pages, Markdown and text files into question–answer pairs: a "
                                    "model writes them from each part of your documents with the sentence that supports "
                                    "them, the studio checks every pair, and you review them.", self))
        layout.addLayout(self._settings())
        layout.addLayout(self._run_row())
        self._say_missing()
        self.tabs = QTabWidget(self)
        self.report = self._report_table()
        self.grid = ReviewGrid(self)
        self.grid.changed.connect(self._say_use)
        self.split = QLabel("", self)
        self.split.setTextFormat(Qt.TextFormat.RichText)
        self.split.setWordWrap(True)
        self.split.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.split.setMargin(8)
        self.tabs.addTab(self.report, "Documents")
        self.tabs.addTab(self.grid, "Pairs")
        self.tabs.addTab(self.split, "Split")
        layout.addWidget(self.tabs, 1)
        layout.addLayout(self._use_row())

    # ---- building ----

    def _settings(self) -> QFormLayout:
        form = QFormLayout()
        self.folder = QLineEdit(self)
        self.folder.setPlaceholderText("A folder of PDF, DOCX, HTML, Markdown or text files")
        self.folder.textChanged.connect(lambda text: self.out.setText(str(default_out(text))) if text else None)
        choose = QPushButton("Choose folder…", self)
        choose.clicked.connect(self._choose_folder)
        form.addRow("Documents:", _row(self.folder, choose))
        self.model = QComboBox(self)
        self.model.setEditable(True)
        self.model.addItems(["demo"])
        self.model.setToolTip("The model that writes the pairs: a model the server offers, a .gguf file (run by "
                              "llama.cpp), or a model folder or hub id the studio loads itself.")
        self.server = QLineEdit(self)
        self.server.setPlaceholderText("optional: http://localhost:11434/v1 (Ollama), http://localhost:8080/v1 (llama.cpp)")
        self.find_button = QPushButton("Find servers", self)
        self.find_button.setToolTip("Look for Ollama, a llama.cpp server, vLLM and LM Studio on this computer.")
        self.find_button.clicked.connect(self.find_servers)
        form.addRow("Model:", _row(self.model, self.server, self.find_button))
        self.servers_note = help_label("", self)
        form.addRow("", self.servers_note)
        self.servers_note.setVisible(False)  # until servers are looked for
        self.chunk_chars = _spin(QSpinBox(self), 200, 20000, 1200, "Characters per part of a document the model "
                                 "reads at a time (~4 a token).")
        self.pairs = _spin(QSpinBox(self), 1, 8, 3, "Pairs asked for per part.")
        self.eval_share = _spin(QDoubleSpinBox(self), 0.0, 0.5, 0.2, "Share of the documents held out before anything "
                                "is generated: their pairs become golden questions, never training rows.")
        self.open_book = QCheckBox("Open book: the source text before each question", self)
        self.open_book.setToolTip("The model learns to read the text it is given. Off (closed book): it learns the facts.")
        form.addRow("Parts:", _row(self.chunk_chars, QLabel("characters,", self), self.pairs, QLabel("pairs each; hold out",
                                   self), self.eval_share, QLabel("of the documents", self), self.open_book))
        self.judge = QCheckBox("Judge: also ask the model whether the source supports each pair", self)
        self.judge.setToolTip("The model sees the source and says yes or no for each pair that passes the checks; a no "
                              "is a reason on the row. It doubles the model's work.")
        form.addRow("", self.judge)
        self.out = QLineEdit(self)
        self.out.setToolTip("Where the parts, the pairs, the report and the dataset are written.")
        form.addRow("Save to:", self.out)
        return form

    def _run_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.preview_button = QPushButton(f"Preview {PREVIEW_CHUNKS} parts", self)
        self.preview_button.setToolTip("Ask for a few parts only: see the pairs and how long all would take.")
        self.preview_button.clicked.connect(lambda: self.start(preview=PREVIEW_CHUNKS))
        self.run_button = QPushButton("Run all", self)
        self.run_button.clicked.connect(lambda: self.start(preview=0))
        self.stop_button = QPushButton("Stop", self)
        self.stop_button.setToolTip("Stop after the part being written; Run all goes on from there.")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        self.progress = QProgressBar(self)
        self.progress.setVisible(False)
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        for w in (self.preview_button, self.run_button, self.stop_button, self.progress):
            row.addWidget(w)
        row.addWidget(self.status, 1)
        return row

    def _report_table(self) -> QTableWidget:
        table = QTableWidget(0, 5, self)
        table.setHorizontalHeaderLabels(["File", "Side", "Pages", "Characters", "What was read"])
        table.verticalHeader().setVisible(False)
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        table.setWordWrap(True)
        header = table.horizontalHeader()
        for col in range(4):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        return table

    def _use_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.use_note = help_label("", self)
        row.addWidget(self.use_note, 1)
        self.use_button = QPushButton("Use as training data", self)
        self.use_button.setToolTip("Write the accepted pairs as the dataset and put it on the Data page; the held-out "
                                   "documents' pairs become the golden questions.")
        self.use_button.setEnabled(False)
        self.use_button.clicked.connect(self.use_dataset)
        row.addWidget(self.use_button)
        close = QPushButton("Close", self)
        close.clicked.connect(self.close)
        row.addWidget(close)
        return row

    def _say_missing(self) -> None:
        """Without the documents extra nothing can be read: said at once, with the command that adds it."""
        from studio.core.documents.reading import EXTRA, missing_libraries

        missing = missing_libraries()
        if missing:
            self._say(f"Reading documents needs the documents extra ({', '.join(missing)} missing). Install it: "
                      f"{EXTRA} — then open this again.", "bad")
            self.preview_button.setEnabled(False)
            self.run_button.setEnabled(False)

    # ---- running ----

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of documents")
        if folder:
            self.folder.setText(folder)

    def find_servers(self) -> None:
        """Ask each known address in the background (a server that does not answer takes its timeout)."""
        from studio.core.documents.generation import health
        from studio.ui.tasks import start_task

        self.find_button.setEnabled(False)
        self.servers_note.setVisible(True)
        self.servers_note.setText("Looking for servers on this computer…")
        self._find_task = start_task("find servers", lambda _state: health(), on_done=self._show_servers,
                                     on_failed=lambda message, advice: self._show_servers([]))

    def _show_servers(self, found: list[dict]) -> None:
        self.find_button.setEnabled(True)
        live = [f for f in found if f["models"]]
        for f in live:
            for model in f["models"]:
                if self.model.findText(model) < 0:
                    self.model.addItem(model)
        if live:
            self.server.setText(live[0]["url"])
            self.servers_note.setText("; ".join(f"{f['server']} at {f['url']}: {', '.join(f['models'])}" for f in live))
        else:
            self.servers_note.setText("No server answers on this computer (Ollama, llama.cpp server, vLLM, LM Studio). "
                                      "Start one, or let the studio load a model itself: a .gguf file or a model folder.")

    def command(self, preview: int) -> list[str]:
        args = ["-m", "studio", "data", "from-docs", self.folder.text().strip(), "--model", self.model.currentText().strip(),
                "--out", self.out.text().strip(), "--chunk-chars", str(self.chunk_chars.value()), "--pairs",
                str(self.pairs.value()), "--eval-share", f"{self.eval_share.value():g}", "--json"]
        if self.server.text().strip():
            args += ["--server", self.server.text().strip()]
        if self.judge.isChecked():
            args.append("--judge")
        return args + (["--preview", str(preview)] if preview else [])

    def start(self, preview: int) -> None:
        if not self.folder.text().strip() or not self.model.currentText().strip() or not self.out.text().strip():
            self._say("Choose the documents, the model and where to save first.", "bad")
            return
        self.process = QProcess(self)
        self.process.setProgram(sys.executable)
        self.process.setArguments(self.command(preview))
        self.process.readyReadStandardError.connect(self._read_progress)
        self.process.finished.connect(self._finished)
        self._errors = []
        self._running(True)
        self._say("Reading the documents and loading the model…", "")
        self.process.start()

    def stop(self) -> None:
        if self.process is not None and self.process.state() != QProcess.ProcessState.NotRunning:
            self.process.terminate()  # the command stops after the part being written
            self._say("Stopping after the part being written…", "")

    def _read_progress(self) -> None:
        for line in bytes(self.process.readAllStandardError()).decode("utf-8", "replace").splitlines():
            try:
                step = json.loads(line)
            except ValueError:
                self._errors.append(line)
                continue
            if isinstance(step, dict) and "done" in step:
                self.progress.setRange(0, step["total"])
                self.progress.setValue(step["done"])
                self._say(f"Part {step['done']} of {step['total']}…", "")

    def _finished(self, code: int, _status) -> None:
        self._running(False)
        report_file = Path(self.out.text().strip()) / "report.json"
        if not report_file.is_file():
            tail = "\n".join(line for line in self._errors if line.strip())[-600:]
            self._say(f"It stopped before writing anything: {tail or f'exit status {code}'}", "bad")
            return
        self.show_results(json.loads(report_file.read_text(encoding="utf-8")))

    def _running(self, running: bool) -> None:
        for w in (self.preview_button, self.run_button):
            w.setEnabled(not running)
        self.stop_button.setEnabled(running)
        self.progress.setVisible(running)
        if running:
            self.progress.setRange(0, 0)

    # ---- results ----

    def show_results(self, report: dict) -> None:
        from studio.core.documents.review import Review

        self._fill_report(report)
        self.split.setText(_split_text(report))
        try:
            self.grid.set_review(Review.open(Path(self.out.text().strip())))
        except StudioError as exc:
            self._say(exc.message, "bad")
            return
        done = (f"{report['chunks_done']} of {report['chunks']} parts done: {count(report['pairs'], 'pair')}, "
                f"{report['passing']} pass every check.")
        if report["stopped"]:
            done += " Stopped: Run all goes on from there."
        elif report.get("estimate_seconds_all") and report["chunks_done"] < report["chunks"]:
            done += f" All {report['chunks']} parts would take about {report['estimate_seconds_all'] / 60:.0f} min."
        if report["skipped"]:
            first = report["skipped"][0]
            done += f" {count(len(report['skipped']), 'part')} gave no pairs (e.g. {first['source']}: {first['reason']})."
        self._say(done, "good" if report["passing"] else "warn")
        self.tabs.setCurrentWidget(self.grid if report["pairs"] else self.report)
        self._say_use()

    def _fill_report(self, report: dict) -> None:
        held = set(report["eval_documents"])
        docs = report["documents"]
        self.report.setRowCount(len(docs))
        for r, d in enumerate(docs):
            side = "–" if not d.get("chars") else "held out" if d["file"] in held else "training"
            cells = (d["file"], side, str(d.get("pages", "–")), f"{d.get('chars', 0):,}",
                     d.get("verdict") or f"{d['problem']} {d['advice']}")
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                self.report.setItem(r, c, item)
        self.report.resizeRowsToContents()

    def _say_use(self) -> None:
        """Whether the accepted pairs make a dataset: it needs at least one from a training document (the held-out
        documents' pairs are golden questions, never training rows)."""
        accepted = self.grid.review.accepted() if self.grid.review else []
        train = sum(r.side == "train" for r in accepted)
        held = len(accepted) - train
        self.use_button.setEnabled(train > 0)
        if train:
            text = f"{count(train, 'accepted pair')} for training"
            text += f", {count(held, 'golden question')} from the held-out documents." if held else "."
        elif held:
            text = (f"The {count(held, 'accepted pair')} {'is' if held == 1 else 'are'} from held-out documents: golden "
                    "questions, not training rows. Accept pairs from the training documents to make a dataset.")
        else:
            text = "Accept pairs (A, or Accept all that pass) to make a dataset of them."
        self.use_note.setText(text)

    def use_dataset(self) -> None:
        review = self.grid.review
        counts = review.write_dataset(open_book=self.open_book.isChecked())
        out = Path(self.out.text().strip())
        self.use(out / "train.jsonl", out / "eval.jsonl" if counts["eval"] else None)
        self.accept()

    def _say(self, text: str, kind: str) -> None:
        self.status.setText(text)
        set_state_style(self.status, kind)


def _split_text(report: dict) -> str:
    """The split in words (file names escaped: they are the user's)."""
    def names(key: str) -> str:
        return html.escape(", ".join(report[key])) or "none"

    lines = [f"<b>Training documents</b> ({len(report['train_documents'])}): {names('train_documents')}",
             f"<b>Held out for evaluation</b> ({len(report['eval_documents'])}): {names('eval_documents')} — drawn "
             "before anything was generated: their pairs become golden questions, never training rows."]
    shared = report["shared_text"]
    if shared:
        lines.append("<b>Text both sides share</b> (runs of 8 words: a paragraph copied into both lets evaluation "
                     "leak into training): " + "; ".join(html.escape(f"{s['train']} and {s['eval']}: {s['runs']}")
                                                         for s in shared[:8]))
    else:
        lines.append("No text is shared between the two sides.")
    return "<br><br>".join(lines)


def _row(*widgets: QWidget) -> QHBoxLayout:
    row = QHBoxLayout()
    for w in widgets:
        row.addWidget(w, 1 if isinstance(w, (QLineEdit, QComboBox)) else 0)
    return row


def _spin(box, lo, hi, value, tip):
    box.setRange(lo, hi)
    box.setValue(value)
    box.setToolTip(tip)
    if isinstance(box, QDoubleSpinBox):
        box.setSingleStep(0.05)
    return box
