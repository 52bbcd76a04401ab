"""3. Adapter: how much the model can change (rank), how strongly (alpha / rank), which layers get an
adapter, and how long to train — with three presets for a first run and the rest folded away."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QDoubleValidator
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.core.recipe import AdapterSection, DataSection, OutputSection, TrainingSection, help_of
from studio.core.wording import count
from studio.ui.pages.base import Page
from studio.ui.presets import PRESETS, apply_preset, matching_preset
from studio.ui.units import params, share
from studio.ui.widgets.collapsible import Collapsible
from studio.ui.widgets.text import help_label, set_state_style

ATTENTION_WORDS = ("attn", "attention")

RANK_HELP = ("<b>Rank — how much the model can change.</b> The adapter's capacity: 8–16 is plenty to teach a tone, a format "
             "or a narrow task; 32–64 for broader new skills. Higher rank means more memory and more risk of memorising "
             "the examples.")
ALPHA_HELP = ("<b>Alpha — how strongly the change applies.</b> The adapter's effect is scaled by alpha ÷ rank "
              "(the strength). The common rule is alpha = 2 × rank; raise it if the model barely changes, lower it if "
              "training is unstable.")
DROPOUT_HELP = ("<b>Dropout</b> hides a random share of the adapter's input during training so it memorises less. "
                "0.05 is a good default; 0.1 for small datasets.")


class AdapterPage(Page):
    title = "3. Adapter"
    intro = ("LoRA trains a small adapter instead of the whole model: a few million numbers that steer it. "
             "Pick a preset, or set the adapter yourself.")

    def __init__(self, state, parent=None):
        super().__init__(state, parent, scroll=True)
        self._syncing = False

        # ---- presets ----
        presets = QGroupBox("Presets", self)
        presets.setToolTip("Sensible settings for a first run: they set rank, alpha, dropout and the training length.")
        pl = QHBoxLayout(presets)
        self.preset_group = QButtonGroup(self)
        self.preset_group.setExclusive(True)
        self.preset_buttons: dict[str, QPushButton] = {}
        for key, p in PRESETS.items():
            box = QVBoxLayout()
            button = QPushButton(p["label"], presets)
            button.setCheckable(True)
            button.setMinimumHeight(34)
            button.setStyleSheet("QPushButton:checked { background-color: palette(highlight); "
                                 "color: palette(highlighted-text); font-weight: bold; border-radius: 3px; }")
            button.setToolTip(f"{p['text']} (rank {p['rank']}, alpha {p['alpha']}, "
                              f"{count(round(p['epochs']), 'pass', 'passes')} over the data)")
            button.clicked.connect(lambda _=False, k=key: self.apply_preset(k))
            self.preset_group.addButton(button)
            self.preset_buttons[key] = button
            box.addWidget(button)
            box.addWidget(help_label(p["text"], presets))
            box.addStretch(1)
            pl.addLayout(box, 1)
        self.body.addWidget(presets)

        # ---- the adapter ----
        adapter = QGroupBox("The adapter", self)
        adapter.setToolTip("Rank, alpha and dropout of the LoRA adapter.")
        grid = QGridLayout(adapter)
        grid.setColumnStretch(2, 1)
        self.rank = QSpinBox(adapter)
        self.rank.setRange(1, 1024)
        self.rank.setToolTip(help_of(AdapterSection, "rank").capitalize() + ". Typical: 8, 16, 32 or 64.")
        self.alpha = QSpinBox(adapter)
        self.alpha.setRange(1, 4096)
        self.alpha.setToolTip(help_of(AdapterSection, "alpha").capitalize() + ". Typical: 2 × rank.")
        self.dropout = QDoubleSpinBox(adapter)
        self.dropout.setRange(0.0, 0.5)
        self.dropout.setSingleStep(0.05)
        self.dropout.setDecimals(2)
        self.dropout.setToolTip(help_of(AdapterSection, "dropout").capitalize() + ".")
        self.strength = QLabel("", adapter)
        self.strength.setToolTip("alpha ÷ rank: how strongly the adapter's change is applied.")
        for row, (label, widget, text) in enumerate((("Rank", self.rank, RANK_HELP), ("Alpha", self.alpha, ALPHA_HELP),
                                                     ("Dropout", self.dropout, DROPOUT_HELP))):
            name = QLabel(label + ":", adapter)
            name.setToolTip(widget.toolTip())
            grid.addWidget(name, row, 0, Qt.AlignmentFlag.AlignTop)
            grid.addWidget(widget, row, 1, Qt.AlignmentFlag.AlignTop)
            grid.addWidget(help_label(text, adapter), row, 2)
        grid.addWidget(self.strength, 3, 1, 1, 2)
        self.rank.valueChanged.connect(self._adapter_edited)
        self.alpha.valueChanged.connect(self._adapter_edited)
        self.dropout.valueChanged.connect(self._adapter_edited)
        self.body.addWidget(adapter)

        # ---- target layers ----
        targets = QGroupBox("Layers that get an adapter", self)
        targets.setToolTip("Each checked layer type gets its own small adapter in every decoder layer.")
        tl = QHBoxLayout(targets)
        self.targets = QListWidget(targets)
        self.targets.setToolTip("Layer types found in this model. All linear layers train best; attention only is lighter.")
        self.targets.itemChanged.connect(self._targets_edited)
        tl.addWidget(self.targets, 1)
        tb = QVBoxLayout()
        self.all_linear_button = QPushButton("All linear layers", targets)
        self.all_linear_button.setToolTip("Every linear layer (attention and MLP): the QLoRA paper's choice, the best quality.")
        self.all_linear_button.clicked.connect(lambda: self.set_targets(None))
        self.attention_button = QPushButton("Attention only", targets)
        self.attention_button.setToolTip("Only the attention projections: fewer trainable parameters, a lighter change.")
        self.attention_button.clicked.connect(self._attention_only)
        tb.addWidget(self.all_linear_button)
        tb.addWidget(self.attention_button)
        self.targets_note = help_label("", targets)
        tb.addWidget(self.targets_note)
        tb.addStretch(1)
        tl.addLayout(tb, 1)
        self.body.addWidget(targets)

        self.trainable = QLabel("", self)
        self.trainable.setToolTip("Parameters the adapter trains, and their share of the whole model. Updated as you change things.")
        self.trainable.setTextFormat(Qt.TextFormat.RichText)
        self.body.addWidget(self.trainable)

        # ---- training length ----
        length = QGroupBox("How long to train", self)
        length.setToolTip("One pass over the data is an epoch; or stop after a number of optimizer steps.")
        ll = QGridLayout(length)
        self.by_epochs = QRadioButton("Passes over the data:", length)
        self.by_epochs.setToolTip(help_of(TrainingSection, "epochs").capitalize())
        self.by_steps = QRadioButton("Stop after:", length)
        self.by_steps.setToolTip(help_of(TrainingSection, "steps").capitalize())
        self.epochs = QDoubleSpinBox(length)
        self.epochs.setRange(0.1, 100)
        self.epochs.setSingleStep(0.5)
        self.epochs.setDecimals(1)
        self.epochs.setToolTip("How many times the model sees every training row.")
        self.steps = QSpinBox(length)
        self.steps.setRange(1, 10_000_000)
        self.steps.setSuffix(" steps")
        self.steps.setToolTip("Optimizer steps; each step sees micro-batch × accumulation rows.")
        self.length_note = QLabel("", length)
        self.length_note.setToolTip("Estimated from the number of training rows and the batch.")
        ll.addWidget(self.by_epochs, 0, 0)
        ll.addWidget(self.epochs, 0, 1)
        ll.addWidget(self.by_steps, 1, 0)
        ll.addWidget(self.steps, 1, 1)
        ll.addWidget(self.length_note, 0, 2, 2, 1)
        ll.setColumnStretch(2, 1)
        group = QButtonGroup(length)
        group.addButton(self.by_epochs)
        group.addButton(self.by_steps)
        self.by_epochs.toggled.connect(self._length_edited)
        self.epochs.valueChanged.connect(self._length_edited)
        self.steps.valueChanged.connect(self._length_edited)
        self.body.addWidget(length)

        # ---- advanced ----
        self.advanced = Collapsible("Advanced options", self._advanced_widget(), tooltip="Learning rate, batch, precision, "
                                    "checkpoints and more. The defaults are sensible.")
        self.body.addWidget(self.advanced)
        self.body.addStretch(1)

        state.config_changed.connect(self.sync_from_config)
        state.model_changed.connect(self._fill_targets)
        state.data_changed.connect(self._update_live)
        self._fill_targets()
        self.sync_from_config()

    # ---- advanced options ----

    def _advanced_widget(self) -> QWidget:
        w = QWidget(self)
        form = QFormLayout(w)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        t = TrainingSection
        self.lr = QLineEdit(w)
        validator = QDoubleValidator(1e-8, 0.99, 10, self.lr)
        validator.setNotation(QDoubleValidator.Notation.ScientificNotation)
        self.lr.setValidator(validator)
        self.lr.setToolTip(help_of(t, "learning_rate").capitalize() + ": 1e-4 to 3e-4 is typical for LoRA (write e.g. 2e-4).")
        self.lr.editingFinished.connect(self._advanced_edited)
        self.scheduler = self._combo(w, ["cosine", "linear", "constant"], help_of(t, "scheduler"))
        self.warmup = self._dspin(w, 0, 0.5, 0.01, 2, help_of(t, "warmup_ratio"))
        self.batch = self._spin(w, 1, 512, help_of(t, "batch_size") + ". More is faster and needs more memory.")
        self.accum = self._spin(w, 1, 1024, help_of(t, "grad_accum") + ". Effective batch = micro-batch × this.")
        self.adv_seq_len = self._spin(w, 16, 131072, help_of(t, "seq_len"))
        self.adv_seq_len.setSingleStep(128)
        self.grad_ckpt = QCheckBox("Gradient checkpointing", w)
        self.grad_ckpt.setToolTip(help_of(t, "gradient_checkpointing").capitalize())
        self.grad_ckpt.toggled.connect(self._advanced_edited)
        self.preflight = QCheckBox("Check the longest batch first", w)
        self.preflight.setToolTip(help_of(t, "preflight").capitalize() + ": a run that cannot fit stops in seconds, not hours.")
        self.preflight.toggled.connect(self._advanced_edited)
        self.chunked_loss = QCheckBox("Chunked loss (no vocabulary-sized peak)", w)
        self.chunked_loss.setToolTip(help_of(t, "chunked_loss").capitalize() + ".")
        self.chunked_loss.toggled.connect(self._advanced_edited)
        self.packing = QCheckBox("Join examples without padding (with flash attention)", w)
        self.packing.setToolTip(help_of(t, "packing").capitalize() + ".")
        self.packing.toggled.connect(self._advanced_edited)
        self.upcast_frozen = QCheckBox("Keep an fp32 copy of embeddings and output layer", w)
        self.upcast_frozen.setToolTip(help_of(t, "upcast_frozen").capitalize()
                                      + ". Off saves ~2 bytes per embedding weight (≈2 GB on Llama 3 8B).")
        self.upcast_frozen.toggled.connect(self._advanced_edited)
        self.optimizer = self._combo(w, ["auto", "adamw", "adamw-8bit", "paged-adamw-8bit"], help_of(t, "optimizer"))
        self.precision = self._combo(w, ["4bit", "8bit", "16bit"], help_of(t, "precision"))
        self.eval_every = self._spin(w, 0, 1_000_000, help_of(t, "eval_every"))
        self.save_every = self._spin(w, 0, 1_000_000, help_of(t, "save_every"))
        self.sample_every = self._spin(w, 0, 1_000_000, help_of(t, "sample_every"))
        self.eval_fraction = self._dspin(w, 0, 0.5, 0.05, 2, help_of(DataSection, "eval_fraction"))
        self.dora = QCheckBox("DoRA", w)
        self.dora.setToolTip(help_of(AdapterSection, "use_dora").capitalize())
        self.dora.toggled.connect(self._advanced_edited)
        self.rslora = QCheckBox("Rank-stabilised LoRA", w)
        self.rslora.setToolTip(help_of(AdapterSection, "use_rslora").capitalize())
        self.rslora.toggled.connect(self._advanced_edited)
        self.seed = self._spin(w, 0, 2**31 - 1, help_of(t, "seed"))
        self.run_name = QLineEdit(w)
        self.run_name.setToolTip(help_of(OutputSection, "name").capitalize())
        self.run_name.setMaxLength(64)
        self.run_name.editingFinished.connect(self._advanced_edited)
        rows = [("Learning rate:", self.lr), ("Schedule:", self.scheduler), ("Warm-up share:", self.warmup),
                ("Micro-batch:", self.batch), ("Gradient accumulation:", self.accum), ("Sequence length:", self.adv_seq_len),
                ("", self.grad_ckpt), ("", self.preflight), ("", self.chunked_loss), ("", self.packing),
                ("", self.upcast_frozen), ("Optimizer:", self.optimizer), ("Base model in:", self.precision),
                ("Eval loss every:", self.eval_every), ("Checkpoint every:", self.save_every),
                ("Sample answers every:", self.sample_every), ("Held-out share:", self.eval_fraction),
                ("", self.dora), ("", self.rslora), ("Seed:", self.seed), ("Run name:", self.run_name)]
        for label, widget in rows:
            if label:
                name = QLabel(label, w)
                name.setToolTip(widget.toolTip())
                form.addRow(name, widget)
            else:
                form.addRow(widget)
        return w

    def _spin(self, parent, lo, hi, tip) -> QSpinBox:
        s = QSpinBox(parent)
        s.setRange(lo, hi)
        s.setToolTip(tip[:1].upper() + tip[1:])
        s.valueChanged.connect(self._advanced_edited)
        return s

    def _dspin(self, parent, lo, hi, step, decimals, tip) -> QDoubleSpinBox:
        s = QDoubleSpinBox(parent)
        s.setRange(lo, hi)
        s.setSingleStep(step)
        s.setDecimals(decimals)
        s.setToolTip(tip[:1].upper() + tip[1:])
        s.valueChanged.connect(self._advanced_edited)
        return s

    def _combo(self, parent, values, tip) -> QComboBox:
        c = QComboBox(parent)
        for v in values:
            c.addItem(v, v)
        c.setToolTip(tip[:1].upper() + tip[1:])
        c.activated.connect(self._advanced_edited)
        return c

    # ---- edits → the recipe ----

    def apply_preset(self, key: str) -> None:
        apply_preset(self.state.config, key)
        self.preset_buttons[key].setChecked(True)
        self.state.changed()

    def _adapter_edited(self) -> None:
        if self._syncing:
            return
        a = self.state.config.adapter
        a.rank, a.alpha, a.dropout = self.rank.value(), self.alpha.value(), round(self.dropout.value(), 3)
        self.state.changed()

    def _length_edited(self) -> None:
        if self._syncing:
            return
        t = self.state.config.training
        if self.by_steps.isChecked():
            t.steps, t.epochs = self.steps.value(), None
        else:
            t.steps, t.epochs = None, self.epochs.value()
        self.state.changed()

    def set_steps(self, steps: int) -> None:
        """Train for a number of steps (what a user does with the 'Stop after' field)."""
        self.by_steps.setChecked(True)
        self.steps.setValue(steps)
        self._length_edited()

    def _advanced_edited(self, *_args) -> None:
        if self._syncing:
            return
        c = self.state.config
        t, a = c.training, c.adapter
        try:
            lr = float(self.lr.text().replace(",", "."))
            if 0 < lr < 1:
                t.learning_rate = lr
        except ValueError:
            pass
        t.scheduler = self.scheduler.currentData()
        t.warmup_ratio = round(self.warmup.value(), 3)
        t.batch_size, t.grad_accum, t.seq_len = self.batch.value(), self.accum.value(), self.adv_seq_len.value()
        t.gradient_checkpointing = self.grad_ckpt.isChecked()
        t.preflight = self.preflight.isChecked()
        t.chunked_loss = self.chunked_loss.isChecked()
        t.packing = ("on" if t.packing == "on" else "auto") if self.packing.isChecked() else "off"
        t.upcast_frozen = self.upcast_frozen.isChecked()
        t.optimizer = self.optimizer.currentData()
        t.precision = self.precision.currentData()
        t.eval_every, t.save_every, t.sample_every = self.eval_every.value(), self.save_every.value(), self.sample_every.value()
        t.seed = self.seed.value()
        c.data.eval_fraction = round(self.eval_fraction.value(), 3)
        a.use_dora, a.use_rslora = self.dora.isChecked(), self.rslora.isChecked()
        name = self.run_name.text().strip()
        if name:
            c.output.name = name
        self.state.changed()

    # ---- targets ----

    def _fill_targets(self) -> None:
        self.targets.blockSignals(True)
        self.targets.clear()
        info = self.state.model
        names = info.lora_targets if info else []
        attention = self._attention_names()
        for name in names:
            item = QListWidgetItem(name, self.targets)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            kind = "attention" if name in attention else "MLP / other"
            item.setToolTip(f"{name} ({kind}): one adapter per decoder layer")
            item.setCheckState(Qt.CheckState.Unchecked)
        self.targets.blockSignals(False)
        rows = max(1, min(self.targets.count(), 9))
        row_height = max(self.targets.sizeHintForRow(0), self.targets.fontMetrics().height() + 3)
        self.targets.setFixedHeight(rows * row_height + 2 * self.targets.frameWidth() + 4)
        self.sync_from_config()

    def _attention_names(self) -> list[str]:
        info = self.state.model
        if info is None:
            return []
        names: dict[str, None] = {}
        for layer in info.linear_layers:
            if any(w in layer.name.lower() for w in ATTENTION_WORDS):
                names.setdefault(layer.suffix, None)
        return list(names)

    def _attention_only(self) -> None:
        names = self._attention_names()
        if names:
            self.set_targets(names)

    def set_targets(self, names: list[str] | None) -> None:
        """None: all linear layers."""
        self.state.config.adapter.targets = ["all-linear"] if names is None else list(names)
        self.state.changed()

    def _targets_edited(self, _item) -> None:
        if self._syncing:
            return
        checked = [self.targets.item(i).text() for i in range(self.targets.count())
                   if self.targets.item(i).checkState() == Qt.CheckState.Checked]
        if not checked:
            self.targets_note.setText("Check at least one layer type.")
            set_state_style(self.targets_note, "bad")
            return
        everything = len(checked) == self.targets.count()
        self.state.config.adapter.targets = ["all-linear"] if everything else checked
        self.state.changed()

    # ---- recipe → widgets ----

    def sync_from_config(self) -> None:
        self._syncing = True
        try:
            c = self.state.config
            a, t = c.adapter, c.training
            self.rank.setValue(a.rank)
            self.alpha.setValue(a.alpha)
            self.dropout.setValue(a.dropout)
            everything = "all-linear" in a.targets
            for i in range(self.targets.count()):
                item = self.targets.item(i)
                item.setCheckState(Qt.CheckState.Checked if everything or item.text() in a.targets else Qt.CheckState.Unchecked)
            by_steps = t.steps is not None
            self.by_steps.setChecked(by_steps)
            self.by_epochs.setChecked(not by_steps)
            self.steps.setValue(t.steps or max(1, self.estimated_steps() or 1))
            if t.epochs is not None:
                self.epochs.setValue(t.epochs)
            self.steps.setEnabled(by_steps)
            self.epochs.setEnabled(not by_steps)
            if self.lr.hasFocus() is False:
                self.lr.setText(f"{t.learning_rate:g}")
            self.scheduler.setCurrentIndex(max(0, self.scheduler.findData(t.scheduler)))
            self.warmup.setValue(t.warmup_ratio)
            self.batch.setValue(t.batch_size)
            self.accum.setValue(t.grad_accum)
            self.adv_seq_len.setValue(t.seq_len)
            self.grad_ckpt.setChecked(t.gradient_checkpointing)
            self.preflight.setChecked(t.preflight)
            self.chunked_loss.setChecked(t.chunked_loss)
            self.packing.setChecked(t.packing != "off")
            self.upcast_frozen.setChecked(t.upcast_frozen)
            self.optimizer.setCurrentIndex(max(0, self.optimizer.findData(t.optimizer)))
            self.precision.setCurrentIndex(max(0, self.precision.findData(t.precision)))
            self.eval_every.setValue(t.eval_every)
            self.save_every.setValue(t.save_every)
            self.sample_every.setValue(t.sample_every)
            self.eval_fraction.setValue(c.data.eval_fraction)
            self.dora.setChecked(a.use_dora)
            self.rslora.setChecked(a.use_rslora)
            self.seed.setValue(t.seed)
            if not self.run_name.hasFocus():
                self.run_name.setText(c.output.name)
            preset = self.matching_preset()
            for key, button in self.preset_buttons.items():
                button.setChecked(key == preset)
            if preset is None:
                self.preset_group.setExclusive(False)
                for button in self.preset_buttons.values():
                    button.setChecked(False)
                self.preset_group.setExclusive(True)
        finally:
            self._syncing = False
        self._update_live()

    def first_control(self):
        """Where the keyboard starts on this page: the preset in use, else the first preset."""
        return self.preset_buttons.get(self.matching_preset() or "quick")

    def matching_preset(self) -> str | None:
        return matching_preset(self.state.config)

    def estimated_steps(self) -> int | None:
        view = self.state.data
        if view is None:
            return None
        c = self.state.config
        t = c.training
        if t.steps is not None:
            return t.steps
        rows = view.report["rows"]
        train_rows = rows - int(rows * c.data.eval_fraction) if c.data.eval_fraction else rows
        per_step = t.batch_size * t.grad_accum * max(1, t.num_processes)
        import math

        return max(1, math.ceil((t.epochs or 1) * train_rows / per_step))

    def _update_live(self) -> None:
        a = self.state.config.adapter
        self.strength.setText(f"Strength (alpha ÷ rank): {a.alpha / max(1, a.rank):.2g}")
        plan = self.state.plan()
        info = self.state.model
        if plan is not None and info is not None:
            layers = len(info.target_layers(a.targets))
            self.trainable.setText(f"<b>Trainable: {params(plan.trainable_params)} parameters</b> "
                                   f"({share(plan.trainable_params, info.total_params)} of the model's {params(info.total_params)}), "
                                   f"in {count(layers, 'adapted layer')}.")
            self.targets_note.setText("")
        else:
            self.trainable.setText("Trainable parameters appear once the model is read.")
        steps = self.estimated_steps()
        t = self.state.config.training
        if steps is not None and t.steps is None:
            self._syncing = True
            self.steps.setValue(steps)  # what "Stop after" would start from
            self._syncing = False
        if steps is not None:
            eff = t.batch_size * t.grad_accum
            each = f"{count(steps, 'step')} of {count(eff, 'row')} each."
            self.length_note.setText(f"≈ {each}" if t.steps is None else each)
        else:
            self.length_note.setText("")
        self.summary_changed.emit()

    def summary(self) -> str:
        a, t = self.state.config.adapter, self.state.config.training
        preset = self.matching_preset()
        name = PRESETS[preset]["label"].replace("&", "") if preset else f"rank {a.rank}"
        length = count(t.steps, "step") if t.steps is not None else _epochs(t.epochs)
        return f"{name}, {length}"


def _epochs(epochs: float) -> str:
    """"1 epoch", "2 epochs", "1.5 epochs"."""
    return count(int(epochs), "epoch") if float(epochs).is_integer() else f"{epochs:g} epochs"
