"""4. Memory: will the run fit the GPU? The plan as a stacked bar against the card's memory, the
verdict, the changes that would make it fit (as buttons), and the same run in other precisions.

Everything here is recomputed on every edit of the recipe: `memory.plan` is a pure function that
takes well under a millisecond, so the bar follows each slider without a thread."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from studio.ui.pages.base import Page
from studio.ui.state import DEFAULT_GPU_GB, GPU_SIZES_GB, GiB, GpuChoice
from studio.ui.units import gb
from studio.ui.widgets.memory_bar import MemoryBar
from studio.ui.widgets.text import help_label, set_state_style

METHODS = (("full", "Full fine-tuning", "Every weight trained, in fp32 with AdamW: the classic, and by far the largest."),
           ("16bit", "LoRA, 16-bit base", "The base model frozen in 16-bit, an adapter trained on top."),
           ("8bit", "LoRA, 8-bit base", "The base model in 8-bit (LLM.int8)."),
           ("4bit", "QLoRA, 4-bit base", "The base model in 4-bit NF4: what the studio does by default."))


class MemoryPage(Page):
    title = "4. GPU memory"
    intro = ("How much GPU memory the run will need, worked out from the model's exact shape and your settings — "
             "before anything runs. Hover the bar to see what each part is.")

    def __init__(self, state, parent=None):
        super().__init__(state, parent, scroll=True)
        self.last_update_ms = 0.0
        self._suggestion_buttons: list[QPushButton] = []

        row = QHBoxLayout()
        row.addWidget(QLabel("Plan for:", self))
        self.gpu = QComboBox(self)
        self.gpu.setToolTip("The GPU to check the plan against: the one found in this computer, or a card size to plan for.")
        self.gpu.activated.connect(self._gpu_chosen)
        row.addWidget(self.gpu)
        self.gpu_note = QLabel("", self)
        self.gpu_note.setToolTip("Which GPU the studio found on this computer.")
        row.addWidget(self.gpu_note, 1)
        self.body.addLayout(row)

        self.verdict = QLabel("", self)
        font = QFont(self.verdict.font())
        font.setPointSizeF(font.pointSizeF() * 1.35)
        self.verdict.setFont(font)
        self.verdict.setToolTip("Planned memory against the GPU's memory.")
        self.body.addWidget(self.verdict)
        self.bar = MemoryBar(self)
        self.body.addWidget(self.bar)
        self.details = help_label("", self)
        self.body.addWidget(self.details)

        self.suggest_box = QGroupBox("To make it fit", self)
        self.suggest_box.setToolTip("Each button applies one change to your settings; the plan updates at once.")
        self.suggest_layout = QVBoxLayout(self.suggest_box)
        self.suggest_empty = help_label("", self.suggest_box)
        self.suggest_layout.addWidget(self.suggest_empty)
        self.body.addWidget(self.suggest_box)

        compare = QGroupBox("The same run, other ways", self)
        compare.setToolTip("The same model, adapter and batch with the base model held in other precisions.")
        cl = QVBoxLayout(compare)
        self.table = QTableWidget(len(METHODS), 3, compare)
        self.table.setHorizontalHeaderLabels(["Method", "GPU memory", "Fits?"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.table.setToolTip("Full fine-tuning, LoRA on a 16-bit or 8-bit base, and QLoRA on a 4-bit base, for this run.")
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        for r, (_mode, name, tip) in enumerate(METHODS):
            item = QTableWidgetItem(name)
            item.setToolTip(tip)
            self.table.setItem(r, 0, item)
            self.table.setItem(r, 1, QTableWidgetItem(""))
            self.table.setItem(r, 2, QTableWidgetItem(""))
        row_height = self.table.fontMetrics().height() + 10
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.table.verticalHeader().setDefaultSectionSize(row_height)
        height = self.table.horizontalHeader().sizeHint().height() + row_height * len(METHODS) + 4
        self.table.setFixedHeight(height)
        cl.addWidget(self.table)
        self.body.addWidget(compare)
        self.notes = help_label("", self)
        self.body.addWidget(self.notes)
        self.body.addStretch(1)

        self._fill_gpus()
        state.config_changed.connect(self.refresh)
        state.model_changed.connect(self.refresh)
        state.gpu_changed.connect(self._gpus_changed)
        self.refresh()

    # ---- the GPU ----

    def _fill_gpus(self) -> None:
        self.gpu.blockSignals(True)
        self.gpu.clear()
        for g in self.state.gpus:
            choice = GpuChoice(f"{g.name} ({g.free_bytes / GiB:.1f} GB free)", g.free_bytes, g.compute_dtype, True)
            self.gpu.addItem(f"This computer: {choice.label}", choice)
        for size in GPU_SIZES_GB:
            self.gpu.addItem(f"A {size} GB card", GpuChoice(f"a {size} GB card", size * GiB))
        current = self.state.gpu
        index = next((i for i in range(self.gpu.count()) if self.gpu.itemData(i).bytes == current.bytes), -1)
        if index < 0:
            index = next(i for i in range(self.gpu.count()) if self.gpu.itemData(i).bytes == DEFAULT_GPU_GB * GiB)
        self.gpu.setCurrentIndex(index)
        self.gpu.blockSignals(False)
        if not self.state.gpus_detected:
            self.gpu_note.setText("Looking for GPUs…")
        elif not self.state.gpus:
            self.gpu_note.setText(f"No GPU detected: planning for a {self.state.gpu.bytes // GiB} GB card.")
        else:
            self.gpu_note.setText(f"Found: {', '.join(g.name for g in self.state.gpus)}.")

    def _gpus_changed(self) -> None:
        self._fill_gpus()
        self.refresh()

    def _gpu_chosen(self, index: int) -> None:
        self.state.set_gpu(self.gpu.itemData(index))

    def choose_gpu_gb(self, size: int) -> None:
        for i in range(self.gpu.count()):
            if not self.gpu.itemData(i).detected and self.gpu.itemData(i).bytes == size * GiB:
                self.gpu.setCurrentIndex(i)
                self._gpu_chosen(i)
                return
        raise ValueError(size)

    # ---- the plan ----

    def refresh(self) -> None:
        t0 = time.perf_counter()
        plan = self.state.plan()
        gpu = self.state.gpu
        for b in self._suggestion_buttons:  # gone at once, deleted when the event loop next runs
            b.hide()
            self.suggest_layout.removeWidget(b)
            b.deleteLater()
        self._suggestion_buttons = []
        if plan is None:
            self.verdict.setText("Choose a model to see its memory plan." if self.state.model is None else
                                 "These settings cannot be planned; check the Adapter page.")
            set_state_style(self.verdict, "")
            self.bar.set_plan([], gpu.bytes, gpu.label)
            self.suggest_box.setVisible(False)
            self.last_update_ms = (time.perf_counter() - t0) * 1000
            self.summary_changed.emit()
            return
        total = plan.total_bytes
        fits = plan.fits(gpu.bytes)
        if fits:
            self.verdict.setText(f"Fits {gpu.label} with {gb(gpu.bytes - total)} to spare "
                                 f"({gb(total)} of {gb(gpu.bytes)}).")
        else:
            self.verdict.setText(f"Needs {gb(total - gpu.bytes)} more than {gpu.label} has "
                                 f"({gb(total)} of {gb(gpu.bytes)}).")
        set_state_style(self.verdict, "good" if fits else "bad")
        self.bar.set_plan([(c.name, c.bytes, c.why) for c in plan.components], gpu.bytes, "GPU")
        s = plan.shape
        mode = {"4bit": "4-bit QLoRA", "8bit": "8-bit LoRA", "16bit": "16-bit LoRA", "full": "full fine-tuning"}[plan.precision.mode]
        ckpt = "with" if s.gradient_checkpointing else "without"
        self.details.setText(f"{mode}, micro-batch {s.batch_size} × {s.seq_len} tokens, {ckpt} gradient checkpointing, "
                             f"{s.optimizer} optimizer, {plan.precision.compute_dtype} compute. "
                             f"Largest part: {max(plan.components, key=lambda c: c.bytes).name.replace('_', ' ')}.")
        # suggestions
        if fits:
            self.suggest_box.setVisible(False)
        else:
            self.suggest_box.setVisible(True)
            suggestions = self.state.suggestions()
            self.suggest_empty.setText("" if suggestions else
                                       "No single change makes it fit: choose a smaller model, or plan for a larger GPU.")
            self.suggest_empty.setVisible(not suggestions)
            for sug in suggestions:
                button = QPushButton(f"{sug.change}  →  {gb(sug.total_bytes)}", self.suggest_box)
                button.setToolTip(f"Apply: {sug.change}. The run would then need {gb(sug.total_bytes, 2)}.")
                button.setStyleSheet("text-align: left; padding: 5px 10px;")
                button.clicked.connect(lambda _=False, ch=dict(sug.changes): self.state.apply_changes(ch))
                self.suggest_layout.addWidget(button)
                self._suggestion_buttons.append(button)
        # comparison
        plans = self.state.comparison()
        for r, (mode_key, _name, _tip) in enumerate(METHODS):
            p = plans.get(mode_key)
            size = self.table.item(r, 1)
            ok = self.table.item(r, 2)
            if p is None:
                size.setText("–")
                ok.setText("")
                continue
            size.setText(gb(p.total_bytes))
            size.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            fit = p.fits(gpu.bytes)
            ok.setText("yes" if fit else f"no, {gb(p.total_bytes - gpu.bytes)} over")
            current = mode_key == plan.precision.mode
            for col in range(3):
                item = self.table.item(r, col)
                f = item.font()
                f.setBold(current)
                item.setFont(f)
            self.table.item(r, 0).setText(METHODS[r][1] + ("  (this run)" if current else ""))
        self.notes.setText("\n".join(plan.notes))
        self.last_update_ms = (time.perf_counter() - t0) * 1000
        self.summary_changed.emit()

    def verdict_text(self) -> str:
        return self.verdict.text()

    def suggestion_buttons(self) -> list[QPushButton]:
        return list(self._suggestion_buttons)

    def summary(self) -> str:
        plan = self.state.plan()
        if plan is None:
            return ""
        gpu = self.state.gpu
        if plan.fits(gpu.bytes):
            return f"fits, {gb(gpu.bytes - plan.total_bytes)} spare"
        return f"needs {gb(plan.total_bytes - gpu.bytes)} more"


