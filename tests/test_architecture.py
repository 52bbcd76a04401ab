"""The shape we agreed on, enforced: the core never imports Qt."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_core_never_imports_qt():
    """import-linter's contract in pyproject.toml (napari does the same for its model layer)."""
    lint = Path(sys.executable).parent / "lint-imports"
    proc = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "studio.core never imports Qt KEPT" in proc.stdout


def test_importing_the_core_loads_no_qt():
    code = ("import sys, studio.core.models, studio.core.memory, studio.core.hardware; "
            "print([m for m in sys.modules if 'PySide6' in m or 'pyqtgraph' in m])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300).stdout.strip()
    assert out == "[]"


def test_the_tree_is_clean_under_ruff():
    """The rules in pyproject.toml's [tool.ruff] (pyflakes, pycodestyle, import order, pyupgrade, bugbear),
    checked with the tests so that CI keeps the tree clean."""
    ruff = Path(sys.executable).parent / "ruff"
    proc = subprocess.run([str(ruff), "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
