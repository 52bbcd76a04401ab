"""The Export box's "Weights" choice: the run's final adapter, or one of the checkpoints it kept while
training (those whose adapter can be exported, read by studio.core.runs.saved_weights off the UI
thread). The Scoreboard's "Export this checkpoint" calls `choose(step)`; a step asked for before the
list is read is chosen once it is, and one the run no longer keeps is said, with the final adapter
chosen instead."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from studio.ui.tasks import start_task
from studio.ui.widgets.text import help_label, set_state_style

FINAL = -1  # the combo's data for the final adapter (a step is never negative)
TIP = ("Which weights the export writes: the final adapter the run saved when it ended, or a checkpoint it saved "
       "while training (a run keeps its last few; the Scores tab under Runs shows which answered best). Every kind "
       "of export takes it. The answers above always come from the final adapter.")


class WeightsChoice(QWidget):
    """A "Weights:" row: the final adapter first (the default), then each checkpoint by step."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._run: Path | None = None  # the run whose weights are listed (or being read)
        self._listed: Path | None = None  # the run whose weights the combo shows, once read
        self._wanted: tuple[Path | None, int] | None = None  # (run, step) asked for before the list was read
        v = QVBoxLayout(self)
        v.setContentsMargins(0, 0, 0, 0)
        v.setSpacing(2)
        row = QHBoxLayout()
        label = QLabel("Weights:", self)
        label.setToolTip(TIP)
        row.addWidget(label)
        self.combo = QComboBox(self)
        self.combo.setToolTip(TIP)
        self.combo.setMinimumContentsLength(22)
        row.addWidget(self.combo)
        row.addStretch(1)
        v.addLayout(row)
        self.note = help_label("", self)
        self.note.setToolTip("Why the weights chosen are not the ones asked for.")
        self.note.setVisible(False)
        v.addWidget(self.note)
        self._show(None, ())

    def chosen(self) -> int | None:
        """The step of the checkpoint chosen; None: the final adapter."""
        step = self.combo.currentData()
        return None if step is None or step == FINAL else int(step)

    def run_changed(self, run_dir: Path | None) -> None:
        """List a run's weights (the final adapter chosen until the list is read; the same run chosen again keeps
        the checkpoint chosen)."""
        run_dir = Path(run_dir) if run_dir is not None else None
        if run_dir is not None and run_dir == self._run and self.chosen() is not None and self._wanted is None:
            self._wanted = (run_dir, self.chosen())
        self._run = run_dir
        self._listed = None
        self._say("")
        self._show(None, ())
        if self._run is None:
            return
        run = self._run

        def work(_state):
            from studio.core.runs import saved_weights

            return run, saved_weights(run)

        start_task("saved weights", work, on_done=self._read, on_failed=lambda message, advice: self._failed(run, message))

    def choose(self, step: int | None) -> None:
        """Choose a checkpoint by its step (None: the final adapter); asked before the list is read, it is chosen then."""
        self._wanted = (self._run, FINAL if step is None else int(step))
        self._apply_wanted()

    def _read(self, out) -> None:
        run, weights = out
        if run != self._run:
            return  # another run was chosen meanwhile
        self._listed = run
        self._show(weights.final_step, weights.checkpoints)
        self._apply_wanted()

    def _failed(self, run: Path, message: str) -> None:
        if run == self._run:
            self._listed = run  # only the final adapter is offered
            self._say(f"The run's checkpoints could not be listed: {message}", "warn")
            self._apply_wanted()

    def _show(self, final_step: int | None, steps) -> None:
        self.combo.clear()
        if final_step is not None or not steps:
            self.combo.addItem("Final adapter" + (f" (step {final_step})" if final_step is not None else ""), FINAL)
            self.combo.setItemData(0, "The adapter the run saved when it ended.", Qt.ItemDataRole.ToolTipRole)
        for step in steps:
            self.combo.addItem(f"checkpoint-{step} (step {step})", step)
            self.combo.setItemData(self.combo.count() - 1, f"The adapter as it was at step {step}, saved while training.",
                                   Qt.ItemDataRole.ToolTipRole)

    def _apply_wanted(self) -> None:
        """Choose the step asked for, once this run's list is read; say so when the run no longer keeps it."""
        if self._wanted is None or self._wanted[0] != self._run:
            return
        step = self._wanted[1]
        index = self.combo.findData(step)
        if index >= 0:
            self.combo.setCurrentIndex(index)
            self._wanted = None
            self._say("")
        elif self._listed == self._run:
            self._wanted = None
            self.combo.setCurrentIndex(max(self.combo.findData(FINAL), 0))
            self._say(f"This run no longer keeps checkpoint-{step} (it keeps its last checkpoints only, and only whole "
                      "ones): the final adapter is chosen instead.", "warn")

    def _say(self, text: str, state: str = "") -> None:
        self.note.setText(text)
        set_state_style(self.note, state)
        self.note.setVisible(bool(text))

