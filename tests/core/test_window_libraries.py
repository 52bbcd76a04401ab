"""A desktop without Qt's xcb libraries gets the apt line, not Qt's abort: checked with `ldd` on a
real shared library whose dependency is missing (built here with the C compiler)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from studio.core import doctor
from studio.core import window_libraries as wl

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux") or not shutil.which("gcc") or not shutil.which("ldd"),
                                reason="needs Linux, gcc and ldd")


@pytest.fixture(scope="module")
def broken_plugin(tmp_path_factory):
    """A plugin linked against libstudio-xcb-test.so.0, which is then removed: as libqxcb.so without libxcb-cursor0."""
    folder = tmp_path_factory.mktemp("plugin")
    (folder / "dep.c").write_text("int studio_dep(void) { return 1; }\n")
    (folder / "plugin.c").write_text("int studio_dep(void);\nint studio_plugin(void) { return studio_dep(); }\n")
    dep = folder / "libstudio-xcb-test.so.0"
    subprocess.run(["gcc", "-shared", "-fPIC", "-Wl,-soname,libstudio-xcb-test.so.0", "-o", str(dep), str(folder / "dep.c")],
                   check=True)
    (folder / "libstudio-xcb-test.so").symlink_to(dep.name)
    plugin = folder / "libqxcb.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(plugin), str(folder / "plugin.c"), f"-L{folder}",
                    "-lstudio-xcb-test"], check=True)
    dep.unlink()
    return plugin


def test_the_missing_library_and_its_package_are_named(broken_plugin):
    assert wl.missing_libraries(broken_plugin) == ["libstudio-xcb-test.so.0"]
    problem = wl.window_problem(broken_plugin)
    assert "libstudio-xcb-test.so.0" in problem.message
    assert "sudo apt install libstudio-xcb-test0" in problem.advice
    assert wl.debian_package("libxkbcommon-x11.so.0") == "libxkbcommon-x11-0"
    assert wl.window_problem(wl.xcb_plugin()) is None  # this machine has them (the README's apt line)


def test_the_launcher_says_so_instead_of_aborting(broken_plugin, monkeypatch, capsys):
    from studio.ui import app

    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.setattr(wl, "xcb_plugin", lambda: broken_plugin)
    assert app.run() == 2
    err = capsys.readouterr().err
    assert "The window cannot open" in err and "sudo apt install libstudio-xcb-test0" in err


def test_the_computer_check_gives_the_apt_line(broken_plugin):
    report = {"gpus": [], "torch": "2.13.0", "window_libraries_missing": wl.missing_libraries(broken_plugin)}
    finding = next(f for f in doctor.explain(report).findings if f.key == "window")
    assert not finding.ok and finding.fixes == ("sudo apt install libstudio-xcb-test0",)
