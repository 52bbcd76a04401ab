"""The studio window: a step list on the left (model → data → adapter → memory → train → try &
export, and the runs), one page per step, free to go back; a status bar with the GPU gauge;
settings; and care for a run that is still training when the window closes or opens."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from PySide6.QtCore import QEvent, QSize, Qt, QTimer
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from studio.core import runs
from studio.core.errors import StudioError
from studio.ui.pages.adapter import AdapterPage
from studio.ui.pages.data import DataPage
from studio.ui.pages.memory import MemoryPage
from studio.ui.pages.model import ModelPage
from studio.ui.pages.runs_list import RunsPage
from studio.ui.pages.train import TrainPage
from studio.ui.pages.try_export import TryExportPage
from studio.ui.state import StudioState
from studio.ui.tasks import start_task
from studio.ui.widgets.gauges import GpuStatusGauge

STEPS = (("model", "Model"), ("data", "Data"), ("adapter", "Adapter"), ("memory", "Memory"), ("train", "Train"),
         ("try", "Try & export"), ("runs", "Runs"))
KEY_ROLE = Qt.ItemDataRole.UserRole


class MainWindow(QMainWindow):

    def __init__(self, state: StudioState | None = None, *, model: str | None = "demo", data: str | None = "demo",
                 parent=None):
        super().__init__(parent)
        if state is None:
            from studio.core.presets import first_run_config

            state = StudioState(first_run_config(model or "demo", data or "demo"))
        elif data is not None:
            state.config.data.source = data
        self.state = state
        self._initial_model = model
        self._painted = False
        self.close_policy: str | None = None  # tests answer the "a run is going" question in advance
        self.first_run_check = False  # `studio` (app.run) turns it on: the computer check on the first start
        self.doctor_dialog = None
        self.setWindowTitle("LoRA Studio")
        self.setMinimumSize(QSize(960, 640))
        self.resize(self._first_size())

        self._build_pages()
        self._build_steps()
        right = self._pages_and_nav()
        central = QWidget(self)
        h = QHBoxLayout(central)
        h.setContentsMargins(8, 8, 0, 0)
        h.addWidget(self.steps)
        h.addWidget(right, 1)
        self.setCentralWidget(central)
        self._build_shortcuts()
        self._build_menus()
        self._build_status_bar()
        self._wire()
        self.show_page("model")
        self._update_steps()

    # ---- building the window ----

    def _build_pages(self) -> None:
        self.pages = {
            "model": ModelPage(self.state),
            "data": DataPage(self.state),
            "adapter": AdapterPage(self.state),
            "memory": MemoryPage(self.state),
            "train": TrainPage(self.state),
            "try": TryExportPage(self.state),
            "runs": RunsPage(self.state),
        }
        self.stack = QStackedWidget(self)
        for page in self.pages.values():
            self.stack.addWidget(page)
            page.summary_changed.connect(self._update_steps)
            page.go_to.connect(self.show_page)

    def _build_steps(self) -> None:
        self.steps = QListWidget(self)
        self.steps.setToolTip("The steps from a base model to a tried and exported adapter. Go back to any step at any time "
                              "(Ctrl+1 … Ctrl+7).")
        self.steps.setAccessibleName("Steps")
        self.steps.setFixedWidth(220)
        self.steps.setSpacing(2)
        self.steps.setWordWrap(True)
        for i, (key, title) in enumerate(STEPS):
            item = QListWidgetItem(self.steps)
            item.setData(KEY_ROLE, key)
            item.setToolTip(f"{title} (Ctrl+{i + 1})")
            if key == "runs":
                spacer = QListWidgetItem(self.steps)
                spacer.setFlags(Qt.ItemFlag.NoItemFlags)
                spacer.setSizeHint(QSize(10, 14))
                self.steps.takeItem(self.steps.row(item))
                self.steps.addItem(item)
        self.steps.currentItemChanged.connect(self._step_chosen)

    def _pages_and_nav(self) -> QWidget:
        """The page shown, with Back and Next under it."""
        nav = QHBoxLayout()
        self.back_button = QPushButton("← &Back", self)
        self.back_button.setToolTip("The previous step (Alt+Left).")
        self.back_button.clicked.connect(lambda: self._move(-1))
        self.next_button = QPushButton("&Next →", self)
        self.next_button.setToolTip("The next step (Alt+Right).")
        self.next_button.clicked.connect(lambda: self._move(1))
        nav.addStretch(1)
        nav.addWidget(self.back_button)
        nav.addWidget(self.next_button)
        right = QWidget(self)
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 10, 8)
        rv.addWidget(self.stack, 1)
        rv.addLayout(nav)
        return right

    def _build_shortcuts(self) -> None:
        for i, (key, _title) in enumerate(STEPS):
            QShortcut(QKeySequence(f"Ctrl+{i + 1}"), self, activated=lambda k=key: self.show_page(k))
        QShortcut(QKeySequence("Alt+Left"), self, activated=lambda: self._move(-1))
        QShortcut(QKeySequence("Alt+Right"), self, activated=lambda: self._move(1))

    def _build_status_bar(self) -> None:
        self.status_label = QLabel("", self)
        self.status_label.setToolTip("What the studio is doing.")
        self.statusBar().addWidget(self.status_label, 1)
        self.gpu_gauge = GpuStatusGauge(self)
        self.statusBar().addPermanentWidget(self.gpu_gauge)

    def _wire(self) -> None:
        """The status line follows the model and the data; the pages tell each other about runs."""
        self.state.model_loading.connect(lambda s: self.status(f"Reading the model {s}…"))
        self.state.model_changed.connect(self._model_ready)
        self.state.data_loading.connect(lambda s: self.status("Reading and checking the data…"))
        self.state.data_changed.connect(lambda: self.status("Data ready." if self.state.data else "The data has a problem."))
        train: TrainPage = self.pages["train"]
        runs_page: RunsPage = self.pages["runs"]
        runs_page.resume_requested.connect(self._resume_from_runs)
        runs_page.export_requested.connect(self._export_checkpoint)
        train.run_completed.connect(lambda _d: runs_page.refresh())
        train.run_starting.connect(self.pages["try"].release_model)

    def _first_size(self) -> QSize:
        """1280 × 820, or the screen's free area where that is smaller (a 1024 × 768 laptop): the
        window never opens hanging off the screen."""
        wanted = QSize(1280, 820)
        screen = self.screen() or QGuiApplication.primaryScreen()
        if screen is None:
            return wanted
        free = screen.availableGeometry().size() - QSize(16, 48)  # the window manager's frame and title bar
        return wanted.boundedTo(free).expandedTo(self.minimumSize())

    # ---- menus ----

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        open_recipe = QAction("&Open recipe…", self, shortcut=QKeySequence.StandardKey.Open)
        open_recipe.setToolTip("Load a run.toml recipe into the pages.")
        open_recipe.triggered.connect(self._open_recipe)
        save_recipe = QAction("&Save recipe as…", self, shortcut=QKeySequence.StandardKey.Save)
        save_recipe.setToolTip("Save the current settings as a run.toml recipe (`studio train --recipe` runs it).")
        save_recipe.triggered.connect(self._save_recipe)
        settings = QAction("Se&ttings…", self, shortcut=QKeySequence("Ctrl+,"))
        settings.setToolTip("Runs folder, hub token, offline mode, remote code.")
        settings.triggered.connect(self.open_settings)
        quit_action = QAction("&Quit", self, shortcut=QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        for a in (open_recipe, save_recipe):
            file_menu.addAction(a)
        file_menu.addSeparator()
        file_menu.addAction(settings)
        file_menu.addSeparator()
        file_menu.addAction(quit_action)
        help_menu = self.menuBar().addMenu("&Help")
        about = QAction("&About LoRA Studio", self)
        about.triggered.connect(self._about)
        keys = QAction("&Keyboard", self)
        keys.triggered.connect(self._keys)
        doctor = QAction("&Check this computer…", self)
        doctor.setToolTip("Whether a GPU was found, its memory, whether 4-bit training is available, and what to do if not.")
        doctor.triggered.connect(self.open_doctor)
        help_menu.addAction(doctor)
        help_menu.addAction(keys)
        help_menu.addAction(about)
        self.doctor_action = doctor

    def open_settings(self) -> None:
        from studio.ui.settings_dialog import SettingsDialog

        SettingsDialog(self.state, self).exec()

    def open_doctor(self):
        """Help ▸ Check this computer: the GPU, 4-bit training, and what to do (a new check each time)."""
        from studio.ui.doctor_dialog import DoctorDialog

        if self.doctor_dialog is None:
            self.doctor_dialog = DoctorDialog(self)
        elif not self.doctor_dialog.isVisible():
            self.doctor_dialog.refresh()
        self.doctor_dialog.show()
        self.doctor_dialog.raise_()
        self.doctor_dialog.activateWindow()
        return self.doctor_dialog

    def _open_recipe(self) -> None:
        from studio.core.recipe import RunConfig

        path, _ = QFileDialog.getOpenFileName(self, "Open a recipe", str(Path.home()), "Recipes (*.toml)")
        if not path:
            return
        try:
            self.state.set_config(RunConfig.load(Path(path)))
        except StudioError as exc:
            QMessageBox.warning(self, "The recipe cannot be used", f"{exc.message}\n\n{exc.advice}")

    def _save_recipe(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the recipe", str(Path.home() / "run.toml"), "Recipes (*.toml)")
        if path:
            try:
                self.state.config.save(Path(path))
            except OSError as exc:
                QMessageBox.warning(self, "The recipe was not saved", str(exc))

    def _about(self) -> None:
        from studio import __version__

        QMessageBox.about(self, "About LoRA Studio", f"LoRA Studio {__version__}\n\nFine-tune an open language model with "
                          "QLoRA on your own GPU: choose a model, bring your data, see whether it fits, train, try, export.")

    def _keys(self) -> None:
        QMessageBox.information(self, "Keyboard", "Ctrl+1 … Ctrl+7: go to a step\nAlt+Left / Alt+Right: back / next\n"
                                "Ctrl+Return: start training (Train) or ask (Try)\nCtrl+,: settings\nTab: move between controls")

    # ---- pages ----

    def page(self, key: str):
        return self.pages[key]

    def show_page(self, key: str) -> None:
        for i in range(self.steps.count()):
            if self.steps.item(i).data(KEY_ROLE) == key:
                self.steps.setCurrentRow(i)
                break
        self._set_page(key)
        self._focus_first_control(self.pages[key])

    def _focus_first_control(self, page) -> None:
        """After Ctrl+1 … 7, Next or Back the keyboard starts on the page's first control (its own
        choice, `first_control()`, else the first in Tab order); the step list keeps the focus when
        the user moves through it."""
        from PySide6.QtWidgets import QScrollArea

        target = page.first_control() if hasattr(page, "first_control") else None
        widget = page.nextInFocusChain()
        while target is None and widget is not page and page.isAncestorOf(widget):
            takes_tab = bool(widget.focusPolicy().value & Qt.FocusPolicy.TabFocus.value)
            if takes_tab and widget.isVisibleTo(page) and widget.isEnabled() and not isinstance(widget, QScrollArea):
                target = widget
            widget = widget.nextInFocusChain()
        if target is not None:
            target.setFocus(Qt.FocusReason.TabFocusReason)

    def current_key(self) -> str:
        for key, page in self.pages.items():
            if page is self.stack.currentWidget():
                return key
        return ""

    def _step_chosen(self, item, _previous=None) -> None:
        if item is not None and item.data(KEY_ROLE):
            self._set_page(item.data(KEY_ROLE))

    def _set_page(self, key: str) -> None:
        page = self.pages[key]
        if self.stack.currentWidget() is not page:
            self.stack.setCurrentWidget(page)
            page.on_shown()
        keys = [k for k, _ in STEPS]
        i = keys.index(key)
        self.back_button.setEnabled(i > 0)
        self.next_button.setEnabled(i < len(keys) - 1)

    def _move(self, delta: int) -> None:
        keys = [k for k, _ in STEPS]
        i = keys.index(self.current_key() or "model")
        self.show_page(keys[max(0, min(len(keys) - 1, i + delta))])

    def _update_steps(self) -> None:
        n = 0
        for i in range(self.steps.count()):
            item = self.steps.item(i)
            key = item.data(KEY_ROLE)
            if not key:
                continue
            n += 1
            title = dict(STEPS)[key]
            summary = self.pages[key].summary()
            label = f"{n}. {title}" if key != "runs" else title
            item.setText(f"{label}\n    {summary}" if summary else label)

    def status(self, text: str) -> None:
        self.status_label.setText(text)

    # ---- start-up ----

    def event(self, event) -> bool:
        if event.type() == QEvent.Type.Paint and not self._painted:
            self._painted = True
            QTimer.singleShot(0, self._after_first_paint)
        return super().event(event)

    def _after_first_paint(self) -> None:
        self._report_startup()
        # Only now the heavy work begins, off the UI thread: torch and transformers load in the
        # background while the window is already there.
        start_task("hub token", lambda s: _export_token(), on_done=self._token_ready, on_failed=self._token_ready)
        start_task("detect gpus", lambda s: _detect_gpus(), on_done=self._gpus_found)
        self.gpu_gauge.start()
        self.check_runs()
        if self.first_run_check:
            QTimer.singleShot(400, self._first_run_check)

    def _first_run_check(self) -> None:
        from studio.ui.doctor_dialog import show_on_first_run

        self.doctor_dialog = show_on_first_run(self) or self.doctor_dialog

    def _report_startup(self) -> None:
        probe = os.environ.get("STUDIO_STARTUP_PROBE")
        if not probe:
            return
        Path(probe).write_text(json.dumps({"painted_at": time.time(), "process_started_at": _process_start_time(),
                                           "torch_loaded": "torch" in __import__("sys").modules,
                                           "page": self.current_key(), "title": self.windowTitle()}), encoding="utf-8")
        shot = os.environ.get("STUDIO_STARTUP_SCREENSHOT")  # packaging/smoke.sh: what the first paint showed
        if shot:
            self.grab().save(shot)
        if os.environ.get("STUDIO_STARTUP_EXIT"):
            from PySide6.QtWidgets import QApplication

            QTimer.singleShot(0, QApplication.instance().quit)

    def _token_ready(self, *_args) -> None:
        """The keyring's hub token is in the environment (if there is one): now the hub may be asked."""
        if self._initial_model:
            self.state.load_model(self._initial_model)

    def _gpus_found(self, gpus) -> None:
        self.state.set_gpus(gpus)

    def _model_ready(self) -> None:
        if self.state.model is not None:
            self.status(f"Model ready: {self.state.model.name}.")
        else:
            message, _advice = self.state.model_error or ("", "")
            self.status(f"The model cannot be used: {message}")

    def check_runs(self) -> None:
        """A run still going, or one that can be resumed, from an earlier session."""
        root = self.state.runs_folder()
        start_task("check runs", lambda s: runs.list_runs(root, with_size=False), on_done=self._runs_checked)

    def _runs_checked(self, summaries) -> None:
        train: TrainPage = self.pages["train"]
        if train.running:
            return
        going = [s for s in summaries if s.status == "running"]
        if going:
            train.attach(going[0].path)
            self.status(f"The run {going[0].name} is still training: following it on the Train page.")
            self.show_page("train")
            return
        for s in summaries[:1]:
            if s.status in ("interrupted", "failed", "cancelled") and runs.resume_point(s.path) is not None:
                train.offer_resume(s)
                self.status(f"The run {s.name} stopped at step {s.step} and can be resumed (Train page).")

    def _resume_from_runs(self, run_dir) -> None:
        self.show_page("train")
        self.pages["train"].resume_run(Path(run_dir))

    def _export_checkpoint(self, run_dir, step) -> None:
        """The Scores tab's "Export this checkpoint": Try & export, with that run and checkpoint chosen."""
        self.state.select_run(Path(run_dir))
        self.pages["try"].exports.choose_checkpoint(step)
        self.show_page("try")

    # ---- closing ----

    def closeEvent(self, event) -> None:
        train: TrainPage = self.pages["train"]
        if train.running:
            choice = self.close_policy or self._ask_about_run()
            if choice == "cancel":
                event.ignore()
                return
            if choice == "stop" and train.thread is not None and train.thread.handle is not None:
                from studio.core.training import launcher

                launcher.cancel(train.thread.handle)  # polite: the worker saves and ends on its own
            train.detach()
        self.gpu_gauge.stop()
        from studio.ui import tasks

        tasks.wait_for_all(3000)
        super().closeEvent(event)

    def _ask_about_run(self) -> str:
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("A run is training")
        box.setText("A run is still training. What should happen to it?")
        box.setInformativeText("Left running, it goes on in the background and the studio shows it again when you reopen it.")
        stop = box.addButton("Stop it (save the adapter)", QMessageBox.ButtonRole.DestructiveRole)
        leave = box.addButton("Leave it running", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(leave)
        box.exec()
        clicked = box.clickedButton()
        if clicked is stop:
            return "stop"
        if clicked is leave:
            return "leave"
        return "cancel"


def _export_token() -> bool:
    from studio.core.settings import export_token_to_environment

    return export_token_to_environment()


def _detect_gpus() -> list:
    from studio.core.hardware import detect_gpus

    return detect_gpus()


def _process_start_time() -> float | None:
    """When this process started (Linux: its age from /proc, to 10 ms), to measure start-up to first paint."""
    try:
        with open("/proc/self/stat", encoding="ascii") as fh:
            ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime", encoding="ascii") as fh:
            uptime = float(fh.read().split()[0])
        return time.time() - (uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None
