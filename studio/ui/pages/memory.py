"""4. Memory: will the run fit the GPU? The plan as a stacked bar against the card's memory, the
verdict, the changes that would make it fit (as buttons), and the same run in other precisions.

Everything here follows the plan: it is shown again when the plan's inputs or the card change
(`plan_changed`, `gpu_changed`). `memory.plan` is a pure function that takes well under a
millisecond, and the state works each answer out once per configuration, so the bar follows each
slider without a thread."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QPalette
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
    QWidget,
)

from studio.core.memory import Suggestion
from studio.ui.pages.base import Page
from studio.ui.state import DEFAULT_GPU_GB, GPU_SIZES_GB, GiB, GpuChoice, a_card
from studio.ui.units import gb
from studio.ui.widgets.memory_bar import MemoryBar, label_of
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
        self._fix_rows: list[QWidget] = []
        self.body.addLayout(self._gpu_row())
        self.fixes_note = help_label("", self)
        self.fixes_note.setForegroundRole(QPalette.ColorRole.WindowText)  # news about the user's settings: not muted
        self.fixes_note.setToolTip("Memory fixes belong to the model they were made for.")
        self.fixes_note.setVisible(False)
        self.body.addWidget(self.fixes_note)
        self.body.addWidget(self._verdict_label())
        self.bar = MemoryBar(self)
        self.body.addWidget(self.bar)
        self.details = help_label("", self)
        self.body.addWidget(self.details)
        self.suggest_box = QGroupBox("To make it fit", self)
        self.suggest_box.setToolTip("Each Apply button makes the change written beside it; the plan updates at once.")
        self.suggest_layout = QVBoxLayout(self.suggest_box)
        self.suggest_empty = help_label("", self.suggest_box)
        self.suggest_layout.addWidget(self.suggest_empty)
        self.body.addWidget(self.suggest_box)
        self.body.addWidget(self._comparison_box())
        self.notes = help_label("", self)
        self.body.addWidget(self.notes)
        self.body.addStretch(1)

        self._fill_gpus()
        state.plan_changed.connect(self.refresh)
        state.gpu_changed.connect(self._gpus_changed)
        self.refresh()

    # ---- building the page ----

    def _gpu_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.addWidget(QLabel("Plan for:", self))
        self.gpu = QComboBox(self)
        self.gpu.setToolTip("The GPU to check the plan against: the one found in this computer, or a card size to plan for.")
        self.gpu.activated.connect(self._gpu_chosen)
        row.addWidget(self.gpu)
        self.gpu_note = QLabel("", self)
        self.gpu_note.setWordWrap(True)
        self.gpu_note.setToolTip("Which GPU the studio found on this computer.")
        row.addWidget(self.gpu_note, 1)
        return row

    def _verdict_label(self) -> QLabel:
        self.verdict = QLabel("", self)
        self.verdict.setWordWrap(True)
        font = QFont(self.verdict.font())
        font.setPointSizeF(font.pointSizeF() * 1.35)
        self.verdict.setFont(font)
        self.verdict.setToolTip("Planned memory against the GPU's memory.")
        return self.verdict

    def _comparison_box(self) -> QGroupBox:
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
        return compare

    # ---- the GPU ----

    def _fill_gpus(self) -> None:
        self.gpu.blockSignals(True)
        self.gpu.clear()
        for g in self.state.gpus:
            choice = GpuChoice(f"{g.name} ({g.free_bytes / GiB:.1f} GB free)", g.free_bytes, g.compute_dtype, True)
            self.gpu.addItem(f"This computer: {choice.label}", choice)
        for size in GPU_SIZES_GB:
            card = a_card(size)
            self.gpu.addItem(card[:1].upper() + card[1:], GpuChoice(card, size * GiB))
        current = self.state.gpu
        index = next((i for i in range(self.gpu.count()) if self.gpu.itemData(i).bytes == current.bytes), -1)
        if index < 0:
            index = next(i for i in range(self.gpu.count()) if self.gpu.itemData(i).bytes == DEFAULT_GPU_GB * GiB)
        self.gpu.setCurrentIndex(index)
        self.gpu.blockSignals(False)
        if not self.state.gpus_detected:
            self.gpu_note.setText("Looking for GPUs…")
        elif not self.state.gpus:
            self.gpu_note.setText("No GPU found on this computer, so the plan assumes a card: choose the one you will "
                                  "train on.")
        else:
            from studio.core.hardware import planning_gpu

            self.gpu_note.setText(f"Found: {planning_gpu(self.state.gpus)[1]}.")

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
        self._clear_fixes()
        self.fixes_note.setText(self.state.fixes_note)
        self.fixes_note.setVisible(bool(self.state.fixes_note))
        if plan is None:
            self._show_no_plan()
        else:
            self._show_plan(plan)
        self.last_update_ms = (time.perf_counter() - t0) * 1000
        self.summary_changed.emit()

    def _show_no_plan(self) -> None:
        gpu = self.state.gpu
        self.verdict.setText("Choose a model to see its memory plan." if self.state.model is None else
                             "These settings cannot be planned; check the Adapter page.")
        set_state_style(self.verdict, "")
        self.bar.set_plan([], gpu.bytes, gpu.label)
        self.suggest_box.setVisible(False)

    def _show_plan(self, plan) -> None:
        gpu = self.state.gpu
        fits = plan.fits(gpu.bytes)
        self.verdict.setText(self._verdict(plan, fits))
        set_state_style(self.verdict, "good" if fits else "bad")
        self.bar.set_plan([(c.name, c.bytes, c.why) for c in plan.components], gpu.bytes, "GPU")
        s = plan.shape
        mode = {"4bit": "4-bit QLoRA", "8bit": "8-bit LoRA", "16bit": "16-bit LoRA", "full": "full fine-tuning",
                "full-bf16": "full fine-tuning in bf16"}[plan.precision.mode]
        ckpt = "with" if s.gradient_checkpointing else "without"
        largest = max((c for c in plan.components if c.name != "cuda_overhead"), key=lambda c: c.bytes).name
        self.details.setText(f"{mode}, micro-batch {s.batch_size} × {s.seq_len} tokens, {ckpt} gradient checkpointing, "
                             f"{s.optimizer} optimizer, {plan.precision.compute_dtype} compute. "
                             f"{s.method_words() + '. ' if s.method_words() else ''}"
                             f"Largest part: {label_of(largest)}.\n{needed_and_held(plan)}")
        self.suggest_box.setVisible(not fits)
        if not fits:
            self._show_fixes(self.state.suggestions())
        self._show_comparison(plan)
        self.notes.setText("\n".join(plan.notes))

    def _verdict(self, plan, fits: bool) -> str:
        gpu, total = self.state.gpu, plan.total_bytes
        assumed = self._assumed()
        if plan.shape.gpus > 1:  # the plan is one GPU's share
            assumed += f", on each of {plan.shape.gpus} GPUs ({plan.shape.strategy.upper()})"
        if fits:
            return f"Fits {gpu.label}{assumed} with {gb(gpu.bytes - total)} to spare ({gb(total)} of {gb(gpu.bytes)})."
        return f"Needs {gb(total - gpu.bytes)} more than {gpu.label}{assumed} has ({gb(total)} of {gb(gpu.bytes)})."

    def _assumed(self) -> str:
        """Whether the card planned for is not this computer's own (the note beside the card says why)."""
        if self.state.gpu.detected:
            return ""
        return " (a card you chose)" if self.state.gpus else " (assumed)"

    # ---- the fixes: one row each, its words beside its Apply button ----

    def _clear_fixes(self) -> None:
        for row in self._fix_rows:  # gone at once, deleted when the event loop next runs
            row.hide()
            self.suggest_layout.removeWidget(row)
            row.deleteLater()
        self._fix_rows, self._suggestion_buttons = [], []

    def _show_fixes(self, suggestions: list[Suggestion]) -> None:
        settings_fit = any("model" not in sug.changes and sug.gpus == 1 for sug in suggestions)
        lean = None if settings_fit else self.state.leanest_plan()
        self.suggest_empty.setText("" if lean is None else
                                   f"No change to these settings makes it fit: even the leanest run the studio can offer "
                                   f"needs {gb(lean.plan.total_bytes)}. Choose a smaller model, "
                                   f"{'train on more GPUs, ' if any(s.gpus > 1 for s in suggestions) else ''}"
                                   "or plan for a larger GPU.")
        self.suggest_empty.setVisible(lean is not None)
        for sug in suggestions:
            self._add_fix(sug)

    def _add_fix(self, sug: Suggestion) -> None:
        row = QWidget(self.suggest_box)
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 2, 0, 2)
        text = QLabel(fix_text(sug), row)
        text.setWordWrap(True)
        text.setToolTip(f"The run would then need {gb(sug.total_bytes, 2)}.")
        layout.addWidget(text, 1)
        self.suggest_layout.addWidget(row)
        self._fix_rows.append(row)
        if not self.state.can_apply(sug):  # more GPUs than this computer has: advice, without a button
            found = len(self.state.gpus)
            has = f"This computer has {found or 'no'} GPU{'' if found == 1 else 's'} found"
            text.setText(f"{text.text()}\n({has}: a change of hardware, not of settings.)")
            text.setToolTip(f"{has}: with {sug.gpus} the run would need {gb(sug.total_bytes, 2)} on each.")
            return
        button = QPushButton("Apply", row)
        button.setAccessibleName(f"Apply: {sug.change}")
        button.setToolTip(f"Apply: {sug.change}. The run would then need {gb(sug.total_bytes, 2)}.")
        button.clicked.connect(lambda _=False, s=sug: self.state.apply_suggestion(s))
        layout.addWidget(button, 0, Qt.AlignmentFlag.AlignTop)
        self._suggestion_buttons.append(button)

    # ---- the same run in other precisions ----

    def _show_comparison(self, plan) -> None:
        gpu = self.state.gpu
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

    def first_control(self):
        """Where the keyboard starts on this page: the card to plan for."""
        return self.gpu

    def verdict_text(self) -> str:
        return self.verdict.text()

    def suggestion_buttons(self) -> list[QPushButton]:
        return list(self._suggestion_buttons)

    def fix_texts(self) -> list[str]:
        """The words beside each Apply button, as shown."""
        return [row.findChild(QLabel).text() for row in self._fix_rows]

    def summary(self) -> str:
        plan = self.state.plan()
        if plan is None:
            return ""
        gpu = self.state.gpu
        fits = plan.fits(gpu.bytes)
        if not gpu.detected:  # planned for a card the user assumed (or the default one)
            card = f"an assumed {gpu.bytes // GiB} GB card"
            return f"fits {card}" if fits else f"needs {gb(plan.total_bytes - gpu.bytes)} more than {card}"
        if fits:
            return f"fits, {gb(gpu.bytes - plan.total_bytes)} spare"
        return f"needs {gb(plan.total_bytes - gpu.bytes)} more"


def fix_text(sug: Suggestion) -> str:
    """A fix in the user's words with its new total; a combination lists its changes one a line."""
    if not sug.combined:
        return f"{sug.change}  →  {gb(sug.total_bytes)}"
    lines = "\n".join(f"• {part}" for part in sug.parts)
    return f"These {len(sug.parts)} changes together  →  {gb(sug.total_bytes)}:\n{lines}"


# The step's moments in words (the planner's phase names)
MOMENTS = {"forward": "reading the examples through the model", "loss_backward": "starting to learn from the errors",
           "layer_backward": "working back through the model's layers", "optimizer": "updating the adapter",
           "reference": "scoring both answers with the base model (DPO's reference)",
           "evaluation": "checking the held-out examples", "samples": "writing a sample answer"}


def needed_and_held(plan) -> str:
    """The plan's two figures in plain words: the tensors at the busiest moment, what the card holds."""
    low, high = plan.held_bytes
    moment = MOMENTS.get(plan.peak_phase.name, plan.peak_phase.name)
    return (f"At its busiest moment ({moment}) the run's data takes {gb(plan.needed_bytes)}; with what CUDA and "
            f"PyTorch keep aside, the card holds {gb(low)} to {gb(high)}. The check uses {gb(high)}.")
