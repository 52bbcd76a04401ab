"""Starting the window: the QApplication, high-DPI, light and dark palettes that follow the system.

Only Qt, pyqtgraph and the light parts of the core are imported on the way to the first paint;
torch and transformers load afterwards, in the background (see MainWindow._after_first_paint).
"""

from __future__ import annotations

import os
import sys

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPalette
from PySide6.QtWidgets import QApplication

APP_NAME = "LoRA Studio"


def dark_palette() -> QPalette:
    p = QPalette()
    window, base, alt, text = QColor(37, 38, 41), QColor(28, 29, 31), QColor(47, 48, 52), QColor(230, 230, 230)
    roles = {
        QPalette.ColorRole.Window: window,
        QPalette.ColorRole.WindowText: text,
        QPalette.ColorRole.Base: base,
        QPalette.ColorRole.AlternateBase: alt,
        QPalette.ColorRole.ToolTipBase: QColor(55, 56, 60),
        QPalette.ColorRole.ToolTipText: text,
        QPalette.ColorRole.PlaceholderText: QColor(160, 160, 165),
        QPalette.ColorRole.Text: text,
        QPalette.ColorRole.Button: QColor(52, 53, 57),
        QPalette.ColorRole.ButtonText: text,
        QPalette.ColorRole.BrightText: QColor(255, 90, 90),
        QPalette.ColorRole.Highlight: QColor(64, 120, 190),
        QPalette.ColorRole.HighlightedText: QColor(255, 255, 255),
        QPalette.ColorRole.Link: QColor(110, 170, 240),
        QPalette.ColorRole.Mid: QColor(70, 71, 75),
        QPalette.ColorRole.Dark: QColor(20, 20, 22),
        QPalette.ColorRole.Light: QColor(80, 81, 86),
    }
    for role, colour in roles.items():
        p.setColor(role, colour)
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor(120, 120, 125))
    return p


def wants_dark(app: QGuiApplication) -> bool:
    forced = os.environ.get("STUDIO_THEME", "").lower()
    if forced in ("dark", "light"):
        return forced == "dark"
    return app.styleHints().colorScheme() == Qt.ColorScheme.Dark


def apply_theme(app: QApplication) -> None:
    """Fusion everywhere (it looks the same on Linux, macOS and Windows); dark when the system is."""
    app.setStyle("Fusion")
    app.setPalette(dark_palette() if wants_dark(app) else app.style().standardPalette())


def app_icon() -> QIcon:
    """resources/icons: the same picture as the desktop entry's (packaging/)."""
    from studio.core.paths import resources_dir

    icon = QIcon()
    for name in ("lora-studio.svg", "lora-studio.png", "lora-studio-48.png"):
        path = resources_dir() / "icons" / name
        if path.is_file():
            icon.addFile(str(path))
    return icon


def create_app(argv: list[str] | None = None) -> QApplication:
    app = QApplication.instance()
    if app is not None:
        return app
    # High-DPI: Qt 6 scales by the screen's factor; pass fractional factors (125%, 150%) through as they are.
    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    app = QApplication(list(argv if argv is not None else sys.argv[:1]))
    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName(APP_NAME)
    app.setOrganizationName("lora-studio")
    app.setDesktopFileName("lora-studio")
    app.setWindowIcon(app_icon())
    apply_theme(app)
    app.styleHints().colorSchemeChanged.connect(lambda _scheme: apply_theme(app))
    return app


def run(*, model: str | None = "demo", data: str | None = "demo") -> int:
    """`studio` with no arguments: the window, with the demo model and data preselected. Where Qt
    would abort for want of system libraries, a plain message and the command that installs them."""
    from studio.core.window_libraries import uses_xcb, window_problem

    problem = window_problem() if uses_xcb() else None
    if problem is not None:
        print(f"Error: {problem.message}\nWhat to do: {problem.advice}", file=sys.stderr)
        return 2
    app = create_app()
    from studio.ui.main_window import MainWindow

    window = MainWindow(model=model, data=data)
    window.first_run_check = True  # the first start shows Help ▸ Check this computer (once)
    window.show()
    code = app.exec()
    from studio.ui import tasks

    if not tasks.wait_for_all(5000):
        # A model is still answering in a background thread: Python cannot shut down under it.
        # Nothing is left to save (a training run is its own process), so leave at once.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
