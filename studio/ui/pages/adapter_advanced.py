"""The Adapter page's advanced options, folded away: learning rate, batch, precision, memory savers,
the GPUs to train on (with several), checkpoints, samples, held-out share, DoRA / rank-stabilised LoRA, seed and the run's name.

`edited` says the user changed one; `write_to` puts them all in the recipe, and the `show_*`
methods put one section of the recipe back in the fields (they never emit `edited`)."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QDoubleValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QWidget,
)

from studio.core.recipe import (
    AdapterSection,
    DataSection,
    OutputSection,
    RunConfig,
    TrainingSection,
    help_of,
)


def _tip(text: str) -> str:
    return text[:1].upper() + text[1:]


class AdvancedOptions(QWidget):
    edited = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self._showing = False
        t = TrainingSection
        self.lr = self._learning_rate()
        self.scheduler = self._combo(["cosine", "linear", "constant"], help_of(t, "scheduler"))
        self.warmup = self._dspin(0, 0.5, 0.01, 2, help_of(t, "warmup_ratio"))
        self.batch = self._spin(1, 512, help_of(t, "batch_size") + ". More is faster and needs more memory.")
        self.accum = self._spin(1, 1024, help_of(t, "grad_accum") + ". Effective batch = micro-batch × this.")
        self.adv_seq_len = self._spin(16, 131072, help_of(t, "seq_len"))
        self.adv_seq_len.setSingleStep(128)
        self.grad_ckpt = self._check("Gradient checkpointing", help_of(t, "gradient_checkpointing").capitalize())
        self.preflight = self._check("Check the longest batch first", help_of(t, "preflight").capitalize() +
                                     ": a run that cannot fit stops in seconds, not hours.")
        self.chunked_loss = self._check("Chunked loss (no vocabulary-sized peak)", help_of(t, "chunked_loss").capitalize() + ".")
        self.packing = self._check("Join examples without padding (with flash attention)", help_of(t, "packing").capitalize() + ".")
        self.upcast_frozen = self._check("Keep an fp32 copy of embeddings and output layer", help_of(t, "upcast_frozen").capitalize()
                                         + ". Off saves ~2 bytes per embedding weight (≈2 GB on Llama 3 8B).")
        self.optimizer = self._combo(["auto", "adamw", "adamw-8bit", "paged-adamw-8bit"], help_of(t, "optimizer"))
        self.precision = self._combo(["4bit", "8bit", "16bit"], help_of(t, "precision"))
        self.gpus = self._combo([], f"{_tip(help_of(t, 'num_processes'))}. {_tip(help_of(t, 'strategy'))}.")
        self.eval_every = self._spin(0, 1_000_000, help_of(t, "eval_every"))
        self.save_every = self._spin(0, 1_000_000, help_of(t, "save_every"))
        self.sample_every = self._spin(0, 1_000_000, help_of(t, "sample_every"))
        self.eval_fraction = self._dspin(0, 0.5, 0.05, 2, help_of(DataSection, "eval_fraction"))
        self.dora = self._check("DoRA", help_of(AdapterSection, "use_dora").capitalize())
        self.rslora = self._check("Rank-stabilised LoRA", help_of(AdapterSection, "use_rslora").capitalize())
        self.seed = self._spin(0, 2**31 - 1, help_of(t, "seed"))
        self.run_name = QLineEdit(self)
        self.run_name.setToolTip(help_of(OutputSection, "name").capitalize())
        self.run_name.setMaxLength(64)
        self.run_name.editingFinished.connect(self._edited)
        self._lay_out()

    def _lay_out(self) -> None:
        form = self._form = QFormLayout(self)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        rows = [("Learning rate:", self.lr), ("Schedule:", self.scheduler), ("Warm-up share:", self.warmup),
                ("Micro-batch:", self.batch), ("Gradient accumulation:", self.accum), ("Sequence length:", self.adv_seq_len),
                ("", self.grad_ckpt), ("", self.preflight), ("", self.chunked_loss), ("", self.packing),
                ("", self.upcast_frozen), ("Optimizer:", self.optimizer), ("Base model in:", self.precision),
                ("Train on:", self.gpus),
                ("Eval loss every:", self.eval_every), ("Checkpoint every:", self.save_every),
                ("Sample answers every:", self.sample_every), ("Held-out share:", self.eval_fraction),
                ("", self.dora), ("", self.rslora), ("Seed:", self.seed), ("Run name:", self.run_name)]
        for label, widget in rows:
            if label:
                name = QLabel(label, self)
                name.setToolTip(widget.toolTip())
                form.addRow(name, widget)
            else:
                form.addRow(widget)

    # ---- the fields ----

    def set_gpu_count(self, found: int, t: TrainingSection) -> None:
        """The "Train on" choices for the GPUs this computer has (1 GPU; N with DDP or with FSDP), shown
        only when there are several (or the recipe already asks for several)."""
        most = max(found, t.num_processes)
        self._quietly(lambda: self._fill_gpus(most, t))
        self._form.setRowVisible(self.gpus, most > 1)

    def _fill_gpus(self, most: int, t: TrainingSection) -> None:
        self.gpus.clear()
        self.gpus.addItem("1 GPU", (1, "ddp"))
        for n in range(2, most + 1):
            self.gpus.addItem(f"{n} GPUs, DDP: a whole copy of the model on each (fastest, when it fits one)", (n, "ddp"))
            self.gpus.addItem(f"{n} GPUs, FSDP: the model shared out among them (a model too big for one)", (n, "fsdp"))
        self._show_gpus(t)

    def _show_gpus(self, t: TrainingSection) -> None:
        wanted = (t.num_processes, t.strategy if t.num_processes > 1 else "ddp")
        self.gpus.setCurrentIndex(max(0, next((i for i in range(self.gpus.count()) if self.gpus.itemData(i) == wanted), 0)))

    def _learning_rate(self) -> QLineEdit:
        lr = QLineEdit(self)
        validator = QDoubleValidator(1e-8, 0.99, 10, lr)
        validator.setNotation(QDoubleValidator.Notation.ScientificNotation)
        lr.setValidator(validator)
        lr.setToolTip(help_of(TrainingSection, "learning_rate").capitalize() + ": 1e-4 to 3e-4 is typical for LoRA (write e.g. 2e-4).")
        lr.editingFinished.connect(self._edited)
        return lr

    def _check(self, text: str, tip: str) -> QCheckBox:
        box = QCheckBox(text, self)
        box.setToolTip(tip)
        box.toggled.connect(self._edited)
        return box

    def _spin(self, lo, hi, tip) -> QSpinBox:
        s = QSpinBox(self)
        s.setRange(lo, hi)
        s.setToolTip(_tip(tip))
        s.valueChanged.connect(self._edited)
        return s

    def _dspin(self, lo, hi, step, decimals, tip) -> QDoubleSpinBox:
        s = QDoubleSpinBox(self)
        s.setRange(lo, hi)
        s.setSingleStep(step)
        s.setDecimals(decimals)
        s.setToolTip(_tip(tip))
        s.valueChanged.connect(self._edited)
        return s

    def _combo(self, values, tip) -> QComboBox:
        c = QComboBox(self)
        for v in values:
            c.addItem(v, v)
        c.setToolTip(_tip(tip))
        c.activated.connect(self._edited)
        return c

    def _edited(self, *_args) -> None:
        if not self._showing:
            self.edited.emit()

    # ---- fields → the recipe ----

    def write_to(self, c: RunConfig) -> None:
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
        if self.gpus.count():
            t.num_processes, t.strategy = self.gpus.currentData()
        t.eval_every, t.save_every, t.sample_every = self.eval_every.value(), self.save_every.value(), self.sample_every.value()
        t.seed = self.seed.value()
        c.data.eval_fraction = round(self.eval_fraction.value(), 3)
        a.use_dora, a.use_rslora = self.dora.isChecked(), self.rslora.isChecked()
        name = self.run_name.text().strip()
        if name:
            c.output.name = name

    # ---- the recipe → fields ----

    def _quietly(self, show) -> None:
        self._showing = True
        try:
            show()
        finally:
            self._showing = False

    def show_training(self, t: TrainingSection) -> None:
        self._quietly(lambda: self._show_training(t))

    def _show_training(self, t: TrainingSection) -> None:
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
        self._show_gpus(t)
        self.eval_every.setValue(t.eval_every)
        self.save_every.setValue(t.save_every)
        self.sample_every.setValue(t.sample_every)
        self.seed.setValue(t.seed)

    def show_adapter(self, a: AdapterSection) -> None:
        self._quietly(lambda: (self.dora.setChecked(a.use_dora), self.rslora.setChecked(a.use_rslora)))

    def show_data(self, d: DataSection) -> None:
        self._quietly(lambda: self.eval_fraction.setValue(d.eval_fraction))

    def show_output(self, o: OutputSection) -> None:
        if not self.run_name.hasFocus():
            self._quietly(lambda: self.run_name.setText(o.name))
