"""Settings: the runs folder, the Hugging Face token (kept in the system keyring, or where there is
none and the user asks, in Hugging Face's token file readable only by them),
offline mode, and whether models may run their own code (off by default, with the reason shown)."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
)

from studio.core import paths
from studio.core import settings as core_settings
from studio.core.errors import StudioError
from studio.ui.widgets.text import help_label, set_state_style


class SettingsDialog(QDialog):
    def __init__(self, state, parent=None):
        super().__init__(parent)
        self.state = state
        self.setWindowTitle("Settings — LoRA Studio")
        self.setMinimumSize(640, 330)
        layout = QVBoxLayout(self)
        form = QFormLayout()

        runs_row = QHBoxLayout()
        self.runs_dir = QLineEdit(self)
        self.runs_dir.setPlaceholderText(str(paths.runs_dir()))
        self.runs_dir.setText(state.settings.runs_dir or "")
        self.runs_dir.setToolTip("Where new runs are saved (one folder per run). Empty: the studio's data folder.")
        runs_row.addWidget(self.runs_dir, 1)
        browse = QPushButton("Choose…", self)
        browse.setToolTip("Choose the runs folder.")
        browse.clicked.connect(self._browse)
        runs_row.addWidget(browse)
        form.addRow("Runs folder:", runs_row)

        token_row = QHBoxLayout()
        self.token = QLineEdit(self)
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.token.setPlaceholderText("hf_… (only needed for gated or private models)")
        self.token.setToolTip("Your Hugging Face access token, for gated or private models. It is kept in the system keyring "
                              "(or, if you ask, a file only you can read) and never written to a recipe, a log or a settings file.")
        token_row.addWidget(self.token, 1)
        self.save_token_button = QPushButton("Save token", self)
        self.save_token_button.setToolTip("Keep the token in the system keyring (or the file, when ticked below).")
        self.save_token_button.clicked.connect(self._save_token)
        token_row.addWidget(self.save_token_button)
        self.remove_token_button = QPushButton("Remove", self)
        self.remove_token_button.setToolTip("Delete the saved token (from the keyring or the file).")
        self.remove_token_button.clicked.connect(self._remove_token)
        token_row.addWidget(self.remove_token_button)
        form.addRow("Hub token:", token_row)
        self.token_in_file = QCheckBox("Save it in a file only you can read (no keyring on this computer)", self)
        self.token_in_file.setToolTip(f"Hugging Face's own token file, {core_settings.token_file()}: readable only by your "
                                      "user account, also used by the hf command-line tool. The hub checks the token first.")
        form.addRow("", self.token_in_file)
        self.token_status = help_label("", self)
        form.addRow("", self.token_status)

        self.offline = QCheckBox("Offline: never contact the Hugging Face hub", self)
        self.offline.setChecked(state.settings.offline)
        self.offline.setToolTip("Use only the built-in catalog, the local model cache and local files.")
        form.addRow("", self.offline)

        self.trust = QCheckBox("Allow models to run their own code (trust_remote_code)", self)
        self.trust.setChecked(state.settings.trust_remote_code)
        self.trust.setToolTip(core_settings.TRUST_REMOTE_CODE_WARNING)
        self.trust.toggled.connect(self._trust_toggled)
        form.addRow("", self.trust)
        self.trust_warning = QLabel(core_settings.TRUST_REMOTE_CODE_WARNING, self)
        self.trust_warning.setWordWrap(True)
        form.addRow("", self.trust_warning)
        layout.addLayout(form)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setToolTip("Save the settings.")
        buttons.button(QDialogButtonBox.StandardButton.Cancel).setToolTip("Close without saving.")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self._trust_toggled(self.trust.isChecked())
        self.token_in_file.toggled.connect(lambda _on: self._show_token_status())
        self._show_token_status()

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Runs folder", self.runs_dir.text() or str(paths.runs_dir()))
        if folder:
            self.runs_dir.setText(folder)

    def _trust_toggled(self, on: bool) -> None:
        set_state_style(self.trust_warning, "bad" if on else "")

    def _show_token_status(self, error: str = "") -> None:
        has_keyring = core_settings.keyring_available()
        self.token_in_file.setVisible(not has_keyring)
        if error:
            self.token_status.setText(error)
            set_state_style(self.token_status, "bad")
            return
        set_state_style(self.token_status, "")
        where = core_settings.token_storage()
        token = core_settings.get_token()
        if where == "keyring":
            text = f"A token is saved in the system keyring ({core_settings.mask(token)})."
        elif where == "file":
            text = (f"A token is saved in Hugging Face's token file, readable only by you: {core_settings.token_file()} "
                    f"({core_settings.mask(token)}).")
        elif has_keyring:
            text = "No token saved. It will be kept in the system keyring."
        else:
            text = ("No token saved. This computer has no system keyring: tick the box above to keep the token in a "
                    "file only you can read, or set HF_TOKEN in the environment before starting the studio.")
        self.token_status.setText(text)
        self.remove_token_button.setEnabled(bool(where))
        self.save_token_button.setEnabled(has_keyring or self.token_in_file.isChecked())

    def _save_token(self) -> None:
        try:
            core_settings.set_token(self.token.text(), in_file=self.token_in_file.isVisible() and self.token_in_file.isChecked())
        except StudioError as exc:
            self._show_token_status(f"{exc.message} {exc.advice}")
            return
        self.token.clear()
        self._show_token_status()

    def _remove_token(self) -> None:
        core_settings.delete_token()
        self._show_token_status()

    def settings(self) -> core_settings.Settings:
        return replace(self.state.settings, runs_dir=self.runs_dir.text().strip() or None, offline=self.offline.isChecked(),
                       trust_remote_code=self.trust.isChecked())

    def accept(self) -> None:
        new = self.settings()
        try:
            core_settings.save_settings(new)
        except StudioError as exc:
            self._show_token_status(f"{exc.message} {exc.advice}")
            return
        self.state.apply_settings(new)
        super().accept()
