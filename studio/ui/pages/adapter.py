"""3. Adapter: how much the model can change (rank), how strongly (alpha / rank), which layers get an
adapter, how long to train and how (supervised or preference tuning: adapter_method.py) — with three
presets for a first run and the rest folded away."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QDoubleSpinBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
)

from studio.core.presets import PRESETS, apply_preset, matching_preset
from studio.core.recipe import AdapterSection, TrainingSection, help_of
from studio.core.wording import count
from studio.ui.pages.adapter_advanced import AdvancedOptions
from studio.ui.pages.adapter_method import MethodBox
from studio.ui.pages.base import Page
from studio.ui.units import params, share
from studio.ui.widgets.collapsible import Collapsible
from studio.ui.widgets.text import help_label, set_state_style

ATTENTION_WORDS = ("attn", "attention")
ADVANCED = ("lr", "scheduler", "warmup", "batch", "accum", "adv_seq_len", "grad_ckpt", "preflight", "chunked_loss",
            "packing", "upcast_frozen", "optimizer", "precision", "eval_every", "save_every", "sample_every",
            "eval_fraction", "dora", "rslora", "seed", "run_name", "gpus")  # the advanced fields, reachable from the page

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
        self.body.addWidget(self._presets_box())
        self.method_box = MethodBox(state, self)  # supervised or preference tuning, and what the data allows: near the top,
        self.method, self.beta = self.method_box.method, self.method_box.beta  # where data with pairs is offered DPO
        self.body.addWidget(self.method_box)
        self.adapter_group = self._adapter_box()
        self.body.addWidget(self.adapter_group)
        self.targets_group = self._targets_box()
        self.body.addWidget(self.targets_group)
        self.trainable = QLabel("", self)
        self.trainable.setToolTip("Parameters the adapter trains, and their share of the whole model. Updated as you change things.")
        self.trainable.setTextFormat(Qt.TextFormat.RichText)
        self.body.addWidget(self.trainable)
        self.body.addWidget(self._length_box())
        self.options = AdvancedOptions(self)
        self.options.edited.connect(self._advanced_edited)
        for name in ADVANCED:
            setattr(self, name, getattr(self.options, name))
        self.advanced = Collapsible("Advanced options", self.options, tooltip="Learning rate, batch, precision, "
                                    "checkpoints and more. The defaults are sensible.")
        self.body.addWidget(self.advanced)
        self.body.addStretch(1)

        state.adapter_changed.connect(self._show_adapter)
        state.training_changed.connect(self._show_training)
        state.data_settings_changed.connect(self._show_data_settings)
        state.output_changed.connect(lambda: self.options.show_output(self.state.config.output))
        state.plan_changed.connect(self._show_trainable)
        state.model_changed.connect(self._fill_targets)
        state.data_changed.connect(self._show_length)
        state.gpu_changed.connect(self._show_gpus)
        self._fill_targets()
        self._show_gpus()

    # ---- building the page ----

    def _presets_box(self) -> QGroupBox:
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
        return presets

    def _adapter_box(self) -> QGroupBox:
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
        return adapter

    def _targets_box(self) -> QGroupBox:
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
        return targets

    def _length_box(self) -> QGroupBox:
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
        return length

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

    def _show_gpus(self) -> None:
        self.options.set_gpu_count(len(self.state.gpus), self.state.config.training)

    def _advanced_edited(self) -> None:
        self.options.write_to(self.state.config)
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

    # ---- the recipe → widgets, one section at a time ----

    def sync_from_config(self) -> None:
        """Every field from the recipe (a new model's layers are listed)."""
        self._show_adapter()
        self._show_training()
        self._show_data_settings()
        self.options.show_output(self.state.config.output)
        self._show_trainable()

    def _quietly(self, show) -> None:
        """Set fields from the recipe without taking it for the user's edit."""
        self._syncing = True
        try:
            show()
        finally:
            self._syncing = False

    def _show_adapter(self) -> None:
        a = self.state.config.adapter
        self._quietly(lambda: self._set_adapter_fields(a))
        self.options.show_adapter(a)
        for group in (self.adapter_group, self.targets_group):  # an adapter gone on from keeps its own shape
            group.setEnabled(not a.start_from)
        self.strength.setText(f"Strength (alpha ÷ rank): {a.alpha / max(1, a.rank):.2g}")
        self.summary_changed.emit()

    def _set_adapter_fields(self, a: AdapterSection) -> None:
        self.rank.setValue(a.rank)
        self.alpha.setValue(a.alpha)
        self.dropout.setValue(a.dropout)
        everything = "all-linear" in a.targets
        for i in range(self.targets.count()):
            item = self.targets.item(i)
            item.setCheckState(Qt.CheckState.Checked if everything or item.text() in a.targets else Qt.CheckState.Unchecked)
        self._show_preset()

    def _show_preset(self) -> None:
        preset = self.matching_preset()
        for key, button in self.preset_buttons.items():
            button.setChecked(key == preset)
        if preset is None:
            self.preset_group.setExclusive(False)
            for button in self.preset_buttons.values():
                button.setChecked(False)
            self.preset_group.setExclusive(True)

    def _show_training(self) -> None:
        t = self.state.config.training
        self._quietly(lambda: self._set_length_fields(t))
        self.options.show_training(t)
        self._show_length()

    def _set_length_fields(self, t: TrainingSection) -> None:
        by_steps = t.steps is not None
        self.by_steps.setChecked(by_steps)
        self.by_epochs.setChecked(not by_steps)
        self.steps.setValue(t.steps or max(1, self.estimated_steps() or 1))
        if t.epochs is not None:
            self.epochs.setValue(t.epochs)
        self.steps.setEnabled(by_steps)
        self.epochs.setEnabled(not by_steps)

    def _show_data_settings(self) -> None:
        self.options.show_data(self.state.config.data)
        self._show_length()

    def _show_trainable(self) -> None:
        a = self.state.config.adapter
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

    def _show_length(self) -> None:
        """The steps the run will take (estimated from the data when it trains for passes over it)."""
        steps = self.estimated_steps()
        t = self.state.config.training
        if steps is not None and t.steps is None:
            self._quietly(lambda: self.steps.setValue(steps))  # what "Stop after" would start from
        if steps is not None:
            eff = t.batch_size * t.grad_accum
            each = f"{count(steps, 'step')} of {count(eff, 'row')} each."
            self.length_note.setText(f"≈ {each}" if t.steps is None else each)
        else:
            self.length_note.setText("")
        self.summary_changed.emit()

    def first_control(self):
        """Where the keyboard starts on this page: the preset in use, else the first preset."""
        return self.preset_buttons.get(self.matching_preset() or "quick")

    def matching_preset(self) -> str | None:
        return matching_preset(self.state.config)

    def estimated_steps(self) -> int | None:
        """The run's optimizer steps on the data shown, counted as the worker counts them (a preference
        run trains on the preference pairs)."""
        view = self.state.data
        if view is None:
            return None
        c = self.state.config
        rows = view.training_rows(c.training.seq_len) if c.training.method == "sft" else view.pairs
        return c.total_steps(rows - c.data.held_out_rows(rows))

    def summary(self) -> str:
        a, t = self.state.config.adapter, self.state.config.training
        preset = self.matching_preset()
        name = PRESETS[preset]["label"].replace("&", "") if preset else f"rank {a.rank}"
        length = count(t.steps, "step") if t.steps is not None else _epochs(t.epochs)
        method = f", {t.method.upper()}" if t.method != "sft" else ""  # "Quick, 30 steps, DPO"
        return f"{name}, {length}{method}"


def _epochs(epochs: float) -> str:
    """"1 epoch", "2 epochs", "1.5 epochs"."""
    return count(int(epochs), "epoch") if float(epochs).is_integer() else f"{epochs:g} epochs"
