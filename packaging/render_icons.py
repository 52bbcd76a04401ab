"""Render resources/icons/lora-studio.svg into the raster icons the platforms want.

    QT_QPA_PLATFORM=offscreen .venv/bin/python packaging/render_icons.py

Writes lora-studio.png (256 px: the Linux desktop entry's hicolor icon and the window icon),
lora-studio-48.png, lora-studio.ico (Windows: the .exe and the Start-menu shortcut) and
lora-studio.icns (macOS .app). Run it again after changing the SVG; the results are committed.
"""

from __future__ import annotations

import sys
from pathlib import Path

ICONS = Path(__file__).resolve().parents[1] / "resources" / "icons"


def render(renderer, size: int):
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QImage, QPainter

    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    return image


def main() -> int:
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication(sys.argv[:1])  # noqa: F841 - image plugins need an application
    renderer = QSvgRenderer(str(ICONS / "lora-studio.svg"))
    if not renderer.isValid():
        print("the SVG icon cannot be read", file=sys.stderr)
        return 1
    outputs = [(256, "lora-studio.png", "PNG"), (48, "lora-studio-48.png", "PNG"),
               (256, "lora-studio.ico", "ICO"), (512, "lora-studio.icns", "ICNS")]
    for size, name, fmt in outputs:
        path = ICONS / name
        if not render(renderer, size).save(str(path), fmt):
            print(f"could not write {path}", file=sys.stderr)
            return 1
        print(f"{path} ({size} px)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
