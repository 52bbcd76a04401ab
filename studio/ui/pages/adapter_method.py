"""The Adapter page's training method: supervised (SFT) or preference tuning (DPO, ORPO) with its
strength (beta); what the loaded data allows, in plain words (its preference pairs, counted by the
core); and the earlier adapter a run may go on training instead of a new one.

Each field edits its one recipe field and calls `state.changed()`; the box shows the recipe again
when the training or adapter section changes, and the data's pairs when new data is loaded."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
)

from studio.core.errors import StudioError
from studio.core.recipe import AdapterSection, TrainingSection, help_of
from studio.core.recipe.fields import spec_of
from studio.core.wording import count
from studio.ui.widgets.text import help_label, set_state_style

METHOD_WORDS = {"sft": "Supervised (SFT)", "dpo": "Preference: DPO", "orpo": "Preference: ORPO"}
WHAT_IT_TEACHES = {"dpo": "DPO teaches the model to prefer each chosen answer over its rejected one",
                   "orpo": "ORPO learns the chosen answers and the preference for them at once"}
NEW_ADAPTER = "A new adapter"


def _tip(section: type, name: str) -> str:
    text = help_of(section, name)
    return text[:1].upper() + text[1:] + "."


def _label(section: type, name: str) -> str:
    return spec_of(section, name).metadata["label"]


def is_preference(method: str) -> bool:
    return method != "sft"


class MethodBox(QGroupBox):
    def __init__(self, state, parent=None):
        super().__init__("How the adapter learns", parent)
        self.state = state
        self._showing = False
        self.setToolTip("Supervised training imitates the answers; preference tuning (DPO, ORPO) teaches the model "
                        "to prefer the chosen answer of each pair over the rejected one.")
        self.method = QComboBox(self)
        for method in spec_of(TrainingSection, "method").metadata["choices"]:
            self.method.addItem(METHOD_WORDS.get(method, method), method)
        self.method.setToolTip(_tip(TrainingSection, "method"))
        self.method.activated.connect(self._method_edited)
        self.beta = QDoubleSpinBox(self)
        self.beta.setRange(0.001, 10.0)
        self.beta.setDecimals(3)
        self.beta.setSingleStep(0.05)
        self.beta.setToolTip(_tip(TrainingSection, "beta"))
        self.beta.valueChanged.connect(self._beta_edited)
        self.pairs_note = help_label("", self)
        self.pairs_note.setToolTip("What your data allows: preference tuning needs a chosen and a rejected answer per row.")
        self._lay_out()
        state.training_changed.connect(self.show_recipe)
        state.adapter_changed.connect(self.show_recipe)
        state.data_changed.connect(self._show_pairs)
        self.show_recipe()

    def _lay_out(self) -> None:
        self.form = QFormLayout(self)
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        for field, widget in (("method", self.method), ("beta", self.beta)):
            name = QLabel(_label(TrainingSection, field) + ":", self)
            name.setToolTip(widget.toolTip())
            self.form.addRow(name, widget)
        self.form.addRow(self.pairs_note)
        start = QLabel(_label(AdapterSection, "start_from") + ":", self)
        start.setToolTip(_tip(AdapterSection, "start_from"))
        self.form.addRow(start, self._start_from_row())
        self.start_note = help_label("", self)
        self.start_note.setToolTip(start.toolTip())
        self.form.addRow(self.start_note)

    def _start_from_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.start_from = QLabel(NEW_ADAPTER, self)
        self.start_from.setToolTip(_tip(AdapterSection, "start_from"))
        self.choose_start = QPushButton("Choose a run…", self)
        self.choose_start.setToolTip("Go on training a finished run's adapter: choose its run folder (or an adapter folder).")
        self.choose_start.clicked.connect(self._choose_start)
        self.new_adapter = QPushButton("New adapter", self)
        self.new_adapter.setToolTip("Train a new adapter, shaped by the settings above.")
        self.new_adapter.clicked.connect(lambda: self.set_start_from(None))
        for widget in (self.start_from, self.choose_start, self.new_adapter):
            row.addWidget(widget)
        return row

    # ---- edits → the recipe, one field each ----

    def _method_edited(self, _index: int = 0) -> None:
        if self._showing:
            return
        self.state.config.training.method = self.method.currentData()
        self.state.changed()

    def _beta_edited(self, value: float) -> None:
        if self._showing:
            return
        self.state.config.training.beta = round(value, 4)
        self.state.changed()

    def set_start_from(self, folder: str | Path | None) -> None:
        """Go on from a run or adapter folder (None: a new adapter). A folder with no adapter to go on
        from is refused, in words, and the recipe is left as it was."""
        if folder is not None:
            try:
                self._start_adapter(folder)
            except StudioError as exc:
                self.start_note.setText(f"{exc.message} {exc.advice}")
                self.start_note.setVisible(True)
                set_state_style(self.start_note, "bad")
                return
        self.state.config.adapter.start_from = str(folder) if folder is not None else None
        self.state.changed()
        self._show_start_from()

    def _choose_start(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose the run to go on from", str(self.state.runs_folder()))
        if folder:
            self.set_start_from(folder)

    # ---- the recipe → the fields ----

    def show_recipe(self) -> None:
        t = self.state.config.training
        self._showing = True
        try:
            self.method.setCurrentIndex(max(0, self.method.findData(t.method)))
            self.beta.setValue(t.beta)
        finally:
            self._showing = False
        self.form.setRowVisible(self.beta, is_preference(t.method))
        self._show_pairs()
        self._show_start_from()

    def _show_pairs(self) -> None:
        """The data's preference pairs and the method, in plain words (hidden when there is nothing to say)."""
        text, style = pairs_words(self.state.config.training.method, self.state.data)
        self.pairs_note.setText(text)
        self.pairs_note.setVisible(bool(text))
        set_state_style(self.pairs_note, style)

    def _show_start_from(self) -> None:
        source = self.state.config.adapter.start_from
        self.start_from.setText(Path(source).name if source else NEW_ADAPTER)
        self.new_adapter.setEnabled(bool(source))
        if not source:
            self.start_note.setText("")
            self.start_note.setVisible(False)
            return
        self.start_note.setVisible(True)
        try:
            shape = self._start_adapter(source)
        except StudioError as exc:
            self.start_note.setText(f"{exc.message} {exc.advice}")
            set_state_style(self.start_note, "bad")
            return
        layers = ", ".join(shape["targets"])
        self.start_note.setText(f"Goes on training the adapter of {Path(source).name}: rank {shape['rank']}, alpha "
                                f"{shape['alpha']}, on {layers}. Its own shape is used, not the adapter settings above.")
        set_state_style(self.start_note, "")

    @staticmethod
    def _start_adapter(folder: str | Path) -> dict:
        """The saved adapter's shape; StudioError when the folder holds none."""
        from studio.core.recipe.start_from import saved_lora, start_adapter

        return saved_lora(start_adapter(folder))


def pairs_words(method: str, data) -> tuple[str, str]:
    """(the sentence about the data's preference pairs and the method, its style: "", "bad"); `data`:
    the state's DataView, or None before any data is loaded."""
    name = method.upper()
    if data is None:
        return ((f"{name} needs preference pairs: a chosen and a rejected answer per row. Load such data on the "
                 "Data page.", "") if is_preference(method) else ("", ""))
    pairs = data.pairs
    if not pairs:
        return ((f"{name} needs preference pairs (a chosen and a rejected answer per row), and your data has none. "
                 "Choose such data on the Data page, or train supervised (SFT).", "bad")
                if is_preference(method) else ("", ""))
    has = f"Your data has {count(pairs, 'preference pair')}"
    if not is_preference(method):
        return (f"{has}: train on the preferred answers only (supervised), or teach the preference "
                "(DPO, or ORPO without a reference pass).", "")
    rows = int(data.report.get("rows") or 0)
    left = f" The {count(rows - pairs, 'row')} without a rejected answer {'is' if rows - pairs == 1 else 'are'} left out." \
        if rows > pairs else ""
    return f"{has}: {WHAT_IT_TEACHES.get(method, name)}.{left}", ""
