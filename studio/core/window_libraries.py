"""Can Qt open a window on this Linux desktop? Qt's X11 ("xcb") platform plugin needs system
libraries that minimal desktops lack (libxcb-cursor0 since Qt 6.5, libxcb-icccm4, libxcb-keysyms1
...). Without them Qt aborts the whole program with "could not load the Qt platform plugin xcb".
The studio asks the dynamic linker first (`ldd` on the plugin: it lists every library it cannot
find) and says which packages to install instead. No Qt is imported here.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from studio.core.errors import StudioError


def xcb_plugin() -> Path | None:
    """PySide6's xcb platform plugin, found without importing Qt; None when there is none."""
    spec = importlib.util.find_spec("PySide6")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        plugin = Path(folder) / "Qt" / "plugins" / "platforms" / "libqxcb.so"
        if plugin.is_file():
            return plugin
    return None


def missing_libraries(plugin: Path | None) -> list[str]:
    """The shared libraries (e.g. "libxcb-cursor.so.0") the plugin needs and the system lacks."""
    ldd = shutil.which("ldd")
    if plugin is None or ldd is None:
        return []
    try:
        out = subprocess.run([ldd, str(plugin)], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return sorted({m.group(1) for m in re.finditer(r"^\s*(\S+)\s+=>\s+not found", out, re.MULTILINE)})


def debian_package(library: str) -> str:
    """Debian's and Ubuntu's package for a library: libxcb-cursor.so.0 → libxcb-cursor0,
    libxkbcommon-x11.so.0 → libxkbcommon-x11-0 (a name that ends in a digit gets a hyphen)."""
    name, _, version = library.partition(".so.")
    version = version.split(".")[0]
    return f"{name}{'-' if name[-1:].isdigit() else ''}{version}"


def uses_xcb(environ=os.environ) -> bool:
    """Whether Qt will open its windows through xcb here (X11, not Wayland, not offscreen)."""
    if not sys.platform.startswith("linux"):
        return False
    platform = environ.get("QT_QPA_PLATFORM", "")
    if platform:
        return platform.startswith("xcb")
    return not environ.get("WAYLAND_DISPLAY") or environ.get("XDG_SESSION_TYPE") == "x11"


def window_problem(plugin: Path | None = None) -> StudioError | None:
    """A plain error when Qt could not open a window here, with the one command that fixes it."""
    missing = missing_libraries(plugin or xcb_plugin())
    if not missing:
        return None
    packages = " ".join(debian_package(lib) for lib in missing)
    return StudioError(f"The window cannot open: Qt needs system libraries this computer lacks ({', '.join(missing)}).",
                       f"Install them, then start the studio again. On Debian or Ubuntu: sudo apt install {packages} "
                       "(on Fedora: sudo dnf install xcb-util-cursor xcb-util-wm xcb-util-keysyms). The command line "
                       "(studio plan, train, export) works without them.")
