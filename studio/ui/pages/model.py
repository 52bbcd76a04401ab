"""1. Model: pick the base model (built-in demo, Hugging Face cache, catalog, a folder, a hub id) and
read its card: architecture, parameters, context, license, size, chat template, and whether it can
fit the GPU at all."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.models import is_demo
from studio.ui.pages.base import Page
from studio.ui.tasks import start_task
from studio.ui.units import gb, params
from studio.ui.widgets.text import help_label, set_state_style, subheading

SOURCE_ROLE = Qt.ItemDataRole.UserRole
CHOOSE_AFTER_MS = 250  # arrow keys through the list: the model is read once the highlight rests
CARD_FIELDS = (
    ("architecture", "Architecture", "The model's design, as transformers names it."),
    ("parameters", "Parameters", "Exact count, from building the model on PyTorch's meta device (no memory used)."),
    ("layers", "Layers", "Decoder layers, hidden size and vocabulary."),
    ("context", "Context length", "The longest text, in tokens, the model was built for."),
    ("license", "License", "What you may do with the model and what you train from it."),
    ("size", "Size on disk", "The weight files on this computer."),
    ("template", "Chat template", "A chat model formats conversations with its own template; a base model gets the studio's."),
    ("targets", "Adapter targets", "The layers an adapter can be attached to."),
    ("where", "Location", "Where the studio found the model."),
)


class ModelPage(Page):
    title = "1. Base model"
    intro = ("The model you start from. The adapter you train sits on top of it and only works with it. "
             "Smaller models train faster and fit smaller GPUs; the demo model trains in a minute on any computer.")

    def __init__(self, state, parent=None):
        super().__init__(state, parent)
        self.setAcceptDrops(True)
        self._download = None
        self._too_large = False
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.setChildrenCollapsible(False)
        self.body.addWidget(split, 1)
        split.addWidget(self._finder(split))
        split.addWidget(self._card(split))
        split.setStretchFactor(0, 5)
        split.setStretchFactor(1, 4)
        split.setSizes([560, 440])

        state.model_loading.connect(self._loading)
        state.model_changed.connect(self._show_model)
        state.gpu_changed.connect(self._update_warning)
        state.plan_changed.connect(self._update_warning)
        state.settings_changed.connect(self.update_online)
        self._fill_list()
        self.update_online()

    # ---- building the page: find a model (left), its card (right) ----

    def _finder(self, parent: QWidget) -> QWidget:
        left = QWidget(parent)
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 8, 0)
        self.search = QLineEdit(left)
        self.search.setPlaceholderText("Search models (name, family, hub id)…")
        self.search.setToolTip("Type to filter the list: the built-in demo, models already on this computer, and the catalog.")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._filter)
        lv.addWidget(self.search)
        lv.addWidget(self._model_list(left), 1)
        lv.addLayout(self._hub_row(left))
        folder_row = QHBoxLayout()
        self.folder_button = QPushButton("&Folder…", left)
        self.folder_button.setToolTip("Use a model folder on this computer (it holds config.json and *.safetensors). "
                                      "You can also drag a folder onto this page.")
        self.folder_button.clicked.connect(self._pick_folder)
        folder_row.addWidget(self.folder_button)
        folder_row.addWidget(help_label("or drag a model folder from your file manager onto this page.", left), 1)
        lv.addLayout(folder_row)
        lv.addLayout(self._download_row(left))
        self.download_label = help_label("", left)
        self.download_label.setVisible(False)
        lv.addWidget(self.download_label)
        return left

    def _model_list(self, parent: QWidget) -> QTreeWidget:
        self.tree = QTreeWidget(parent)
        self.tree.setHeaderLabels(["Model", "Parameters", "Where"])
        self.tree.setRootIsDecorated(False)
        self.tree.setToolTip("Click a model, or move to it with the arrow keys, to use it. Catalog models are planned from "
                             "their real configuration; their weights download when you train or press Download.")
        self.tree.setAlternatingRowColors(True)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)  # the name takes what the others leave
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self._choose_timer = QTimer(self)
        self._choose_timer.setSingleShot(True)
        self._choose_timer.setInterval(CHOOSE_AFTER_MS)
        self._choose_timer.timeout.connect(self._use_highlighted)
        self.tree.itemSelectionChanged.connect(self._choose_timer.start)
        self.tree.itemActivated.connect(self._activated)
        self.tree.itemClicked.connect(self._activated)
        return self.tree

    def _hub_row(self, parent: QWidget) -> QHBoxLayout:
        row = QHBoxLayout()
        self.hub_id = QLineEdit(parent)
        self.hub_id.setPlaceholderText("or a hub id, e.g. Qwen/Qwen3-4B")
        self.hub_id.setToolTip("A model on the Hugging Face hub: organisation/name. Use reads its configuration only; "
                               "Download fetches the weights too.")
        self.hub_id.returnPressed.connect(self._use_hub_id)
        row.addWidget(self.hub_id, 1)
        self.use_button = QPushButton("&Use", parent)
        self.use_button.setToolTip("Read this hub model's configuration (from the cache, the catalog, or — online — the hub).")
        self.use_button.clicked.connect(self._use_hub_id)
        row.addWidget(self.use_button)
        self.download_button = QPushButton("&Download", parent)
        self.download_button.setToolTip("Download the model's weights and tokenizer into the Hugging Face cache (needs internet).")
        self.download_button.clicked.connect(self._start_download)
        row.addWidget(self.download_button)
        return row

    def _download_row(self, parent: QWidget) -> QHBoxLayout:
        row = QHBoxLayout()
        self.download_bar = QProgressBar(parent)
        self.download_bar.setToolTip("Download progress")
        self.download_bar.setVisible(False)
        row.addWidget(self.download_bar, 1)
        self.cancel_download_button = QPushButton("Cancel download", parent)
        self.cancel_download_button.setToolTip("Stop the download; what was downloaded is kept and the next download continues it.")
        self.cancel_download_button.setVisible(False)
        self.cancel_download_button.clicked.connect(self._cancel_download)
        row.addWidget(self.cancel_download_button)
        return row

    def _card(self, parent: QWidget) -> QGroupBox:
        card = QGroupBox("Model card", parent)
        card.setToolTip("What the studio read from the model's configuration, without loading its weights.")
        cv = QVBoxLayout(card)
        self.card_title = subheading("", card)
        cv.addWidget(self.card_title)
        self.busy = QProgressBar(card)
        self.busy.setRange(0, 0)
        self.busy.setMaximumHeight(10)
        self.busy.setTextVisible(False)
        self.busy.setToolTip("Reading the model's configuration…")
        self.busy.setVisible(False)
        cv.addWidget(self.busy)
        cv.addLayout(self._card_fields(card))
        self.warning = QLabel("", card)
        self.warning.setWordWrap(True)
        self.warning.setVisible(False)
        self.warning.setToolTip("Checked against the GPU chosen on the Memory page, with the same plan as its fixes.")
        cv.addWidget(self.warning)
        self.fixes_note = help_label("", card)
        self.fixes_note.setForegroundRole(QPalette.ColorRole.WindowText)  # news about the user's settings: not muted
        self.fixes_note.setToolTip("Memory fixes belong to the model they were made for.")
        self.fixes_note.setVisible(False)
        cv.addWidget(self.fixes_note)
        self.notes = help_label("", card)
        cv.addWidget(self.notes)
        cv.addStretch(1)
        return card

    def _card_fields(self, card: QGroupBox) -> QFormLayout:
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.fields: dict[str, QLabel] = {}
        for key, label, tip in CARD_FIELDS:
            value = QLabel("–", card)
            value.setWordWrap(True)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            value.setToolTip(tip)
            name = QLabel(label + ":", card)
            name.setToolTip(tip)
            form.addRow(name, value)
            self.fields[key] = value
        return form

    # ---- the list ----

    def _item(self, name: str, n_params: str, where: str, source: str, tip: str) -> QTreeWidgetItem:
        item = QTreeWidgetItem([name, n_params, where])
        item.setData(0, SOURCE_ROLE, source)
        for col in range(3):
            item.setToolTip(col, tip)
        item.setTextAlignment(1, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.tree.addTopLevelItem(item)
        return item

    def _fill_list(self) -> None:
        from studio.core.models import catalog

        self.tree.clear()
        self._item("Demo: plant-care assistant", "tiny", "built in", "demo",
                   "A tiny model that trains in a minute on any computer: try the whole path with it first.")
        for entry in catalog():
            gated = ", gated" if entry.gated else ""
            self._item(entry.display_name, params(entry.expected_total_params), f"catalog{gated}", entry.name,
                       f"{entry.hub_id} — {entry.license}{gated}. Planned from its real configuration; weights download when needed.")
        start_task("list cached models", lambda s: _cached(), on_done=self._add_cached)
        self._select_current()

    def _add_cached(self, models) -> None:
        for i, m in enumerate(models):
            where = f"downloaded, {gb(m.size_on_disk)}" if m.has_weights else "no weights yet"
            item = QTreeWidgetItem([m.hub_id, "", where])
            item.setData(0, SOURCE_ROLE, m.hub_id)
            for col in range(3):
                item.setToolTip(col, f"In the Hugging Face cache: {m.path}")
            self.tree.insertTopLevelItem(1 + i, item)
        self._filter(self.search.text())
        self._select_current()

    def _filter(self, text: str) -> None:
        words = text.lower().split()
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            hay = " ".join([item.text(0), item.text(2), str(item.data(0, SOURCE_ROLE)), item.toolTip(0)]).lower()
            item.setHidden(not all(w in hay for w in words))

    def _select_current(self) -> None:
        source = self.state.config.model.source
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item.data(0, SOURCE_ROLE) == source or (is_demo(source) and item.data(0, SOURCE_ROLE) == "demo"):
                self.tree.blockSignals(True)
                self.tree.setCurrentItem(item)
                self.tree.blockSignals(False)
                return

    def _activated(self, item: QTreeWidgetItem, _column: int = 0) -> None:
        self._choose_timer.stop()
        source = item.data(0, SOURCE_ROLE)
        if source and source != self.state.config.model.source:
            self.use(source)

    def _use_highlighted(self) -> None:
        """The highlighted model is the chosen one (arrow keys move the highlight; the card follows)."""
        items = self.tree.selectedItems()
        if items and not items[0].isHidden():
            self._activated(items[0])

    def first_control(self):
        """Where the keyboard starts on this page: the list, so that arrow keys choose a model."""
        return self.tree

    def use(self, source: str) -> None:
        self.state.load_model(source)

    def select_source(self, source: str) -> None:
        """Pick a model in the list as a user would (tests, keyboard)."""
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item.data(0, SOURCE_ROLE) == source:
                self.tree.setCurrentItem(item)
                self.tree.itemActivated.emit(item, 0)
                return
        self.use(source)

    # ---- folder, drag and drop, hub id ----

    def _pick_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a model folder (with config.json)")
        if folder:
            self.use(folder)

    def dragEnterEvent(self, event) -> None:
        if _local_model_path(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        path = _local_model_path(event.mimeData())
        if path:
            event.acceptProposedAction()
            self.use(str(path))

    def _use_hub_id(self) -> None:
        text = self.hub_id.text().strip()
        if text:
            self.use(text)

    def update_online(self) -> None:
        """Downloads need the hub: offline (Settings, or HF_HUB_OFFLINE), the button says why it is off."""
        from studio.core.hub import hub_offline

        offline = hub_offline()
        busy = self._download is not None and self._download.running
        self.download_button.setEnabled(not offline and not busy)
        self.download_button.setToolTip(
            "Offline: turn offline mode off in Settings to download models." if offline else
            "Download the model's weights and tokenizer into the Hugging Face cache (needs internet).")

    def _start_download(self) -> None:
        from studio.core import download

        hub_id = self.hub_id.text().strip() or (self.state.model.hub_id if self.state.model else "") or ""
        if not hub_id:
            self._download_message("Type a hub id first (organisation/name).", "bad")
            return
        allow_pickle = self.state.config.model.allow_pickle

        def work(state):
            return download.download_model(hub_id, on_progress=state.report, cancelled=state.cancelled,
                                           include_pickle=allow_pickle)

        self.download_bar.setRange(0, 1000)
        self.download_bar.setValue(0)
        self.download_bar.setVisible(True)
        self.cancel_download_button.setVisible(True)
        self.download_button.setEnabled(False)
        self._download_message(f"Asking the hub about {hub_id}…", "")
        self._download = start_task("download", work, on_done=lambda _: self._downloaded(hub_id),
                                    on_failed=self._download_failed, on_progress=self._download_progress)

    def _download_progress(self, p) -> None:
        self.download_bar.setValue(int(1000 * p.fraction))
        self.download_bar.setFormat(f"{gb(p.done_bytes)} of {gb(p.total_bytes)}")
        self.download_bar.setTextVisible(True)
        self._download_message(f"Downloading {p.file} ({p.files_done} of {p.files_total} files)…", "")

    def _downloaded(self, hub_id: str) -> None:
        self._download_done()
        self._download_message(f"{hub_id} is downloaded.", "good")
        self.use(hub_id)
        self._fill_list()

    def _download_failed(self, message: str, advice: str) -> None:
        self._download_done()
        self._download_message(f"{message} {advice}", "bad")

    def _cancel_download(self) -> None:
        if self._download is not None:
            self._download.cancel()
            self._download_message("Cancelling…", "")

    def _download_done(self) -> None:
        self.download_bar.setVisible(False)
        self.cancel_download_button.setVisible(False)
        self._download = None
        self.update_online()

    def _download_message(self, text: str, kind: str) -> None:
        self.download_label.setText(text)
        self.download_label.setVisible(bool(text))
        set_state_style(self.download_label, kind)

    # ---- the card ----

    def _loading(self, source: str) -> None:
        self.busy.setVisible(True)
        self.card_title.setText(f"Reading {source}…")
        set_state_style(self.warning, "")
        self.warning.setVisible(False)
        self._too_large = False

    def _show_model(self) -> None:
        self.busy.setVisible(False)
        info = self.state.model
        if info is None:
            self._show_unusable()
        else:
            self._select_current()
            if is_demo(info.source) and self.tree.topLevelItemCount():
                self.tree.topLevelItem(0).setText(1, params(info.total_params))
            self._fill_card(info)
            notes = list(info.notes)
            if info.needs_trust_remote_code:
                notes.append("This model runs its own code (allowed in Settings).")
            self.notes.setText("\n".join(notes))
            self.fixes_note.setText(self.state.fixes_note)
            self.fixes_note.setVisible(bool(self.state.fixes_note))
            self._update_warning()
        self.summary_changed.emit()

    def _show_unusable(self) -> None:
        message, advice = self.state.model_error or ("No model.", "")
        self.card_title.setText("This model cannot be used")
        for value in self.fields.values():
            value.setText("–")
        self.warning.setText(f"{message}\n{advice}")
        set_state_style(self.warning, "bad")
        self.warning.setVisible(True)
        self._too_large = False

    def _fill_card(self, info) -> None:
        f = self.fields
        self.card_title.setText("Demo: plant-care assistant" if is_demo(info.source) else info.name)
        f["architecture"].setText(f"{info.architecture} ({info.model_type})")
        f["parameters"].setText(f"{params(info.total_params)} ({info.total_params:,}); "
                                f"{params(info.quantizable_params)} in layers that 4-bit quantizes")
        f["layers"].setText(f"{info.num_layers} layers, hidden size {info.hidden_size:,}, vocabulary {info.vocab_size:,}")
        f["context"].setText(f"{info.context_length:,} tokens" if info.context_length else "not stated")
        f["license"].setText(info.license or ("see the model card (README.md)" if info.path else "not stated"))
        if info.weights_bytes:
            f["size"].setText(f"{gb(info.weights_bytes, 2)} ({info.weights_format})")
        else:
            f["size"].setText(f"not downloaded (about {gb(info.total_params * 2)} in 16-bit)")
        f["template"].setText("yes, the model's own" if info.has_chat_template else
                              "no — the studio's simple template is used (fine for training a base model)")
        f["targets"].setText(", ".join(info.lora_targets))
        f["where"].setText(str(info.path) if info.path else (f"catalog ({info.hub_id})" if info.hub_id else info.source))

    def _update_warning(self) -> None:
        """Whether the model can fit the GPU: the same leanest run as the Memory page's fixes (worked
        out only when the run as set does not fit)."""
        info = self.state.model
        if info is None or self.busy.isVisibleTo(self):  # another model is being read: its card decides
            return
        gpu = self.state.gpu
        try:
            now = self.state.plan()
            lean = self.state.leanest_plan(info) if now is None or not now.fits(gpu.bytes) else None
        except StudioError as exc:  # e.g. nothing an adapter can attach to
            self._show_warning(f"{exc.message} {exc.advice}", "bad")
            return
        if lean is None or now is None:
            self._show_warning("", "")
        elif not lean.fits(gpu.bytes):
            self._show_warning(f"Too large for {gpu.label}: even the leanest run the studio can offer ({leanest_words(lean)}) "
                               f"needs {gb(lean.plan.total_bytes)}. Choose a smaller model, or a larger GPU on the Memory page.",
                               "bad", too_large=True)
        else:
            self._show_warning(f"Fits {gpu.label} only with leaner settings: the Memory page lists the changes "
                               f"(the run needs {gb(now.total_bytes)} as it is set now).", "warn")

    def _show_warning(self, text: str, style: str, too_large: bool = False) -> None:
        self.warning.setText(text)
        set_state_style(self.warning, style)
        self.warning.setVisible(bool(text))
        self._too_large = too_large

    def too_large_warning(self) -> str:
        return self.warning.text() if self._too_large else ""

    def summary(self) -> str:
        info = self.state.model
        if info is None:
            return "choose a model"
        return f"{'demo' if is_demo(info.source) else info.name}, {params(info.total_params)}"


def leanest_words(lean) -> str:
    """The leanest run in a few words: "4-bit, rank 4, examples cut at 256 tokens, one at a time"."""
    p = lean.plan
    at_once = "one at a time" if p.shape.batch_size == 1 else f"{p.shape.batch_size} at a time"
    held = {"4bit": "4-bit", "8bit": "8-bit", "16bit": "16-bit"}.get(p.precision.mode, p.precision.mode)
    return f"{held}, rank {p.adapter.rank}, examples cut at {p.shape.seq_len} tokens, {at_once}"


def _cached():
    from studio.core.models import cached_models

    try:
        return cached_models()
    except Exception:
        return []


def _local_model_path(mime) -> Path | None:
    if not mime.hasUrls():
        return None
    for url in mime.urls():
        if url.isLocalFile():
            path = Path(url.toLocalFile())
            if path.is_dir() or path.name == "config.json":
                return path
    return None

