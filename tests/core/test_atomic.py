"""Folders written whole or not at all, killed at every step of the swap.

Each write runs in a child process that ends itself (os._exit: no cleanup, no `finally`) just
before its k-th file-system step (rename, replace, unlink, rmtree, exchange); the test then looks at
what a real crash at that point leaves, and at what `recover` (which the next write runs first)
makes of it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from studio.core import atomic
from studio.core.errors import StudioError

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import json, os, shutil, sys
from pathlib import Path
from studio.core import atomic

target, crash_at, how, spec = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])
steps = 0

def step(fn):
    def counted(*args, **kwargs):
        global steps
        steps += 1
        if steps == crash_at:
            os._exit(17)  # the process dies here: nothing after this line runs, no cleanup
        return fn(*args, **kwargs)
    return counted

os.rename, os.replace, os.unlink, shutil.rmtree = (step(f) for f in (os.rename, os.replace, os.unlink, shutil.rmtree))
exchange = getattr(atomic, "_exchange", None)  # the one-step swap, where the system has one
if exchange is not None:
    atomic._exchange = (lambda a, b: False) if how == "two renames" else step(exchange)

def build(folder):
    for name, text in spec["new"].items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)

if how == "files":
    atomic.write_files(target, build, lambda staging, names: spec["remove"], last="manifest.json")
else:
    atomic.write_atomically(target, build)
print(json.dumps({"steps": steps}))
"""

OLD = {"a.bin": "old a", "b.bin": "old b", "c.bin": "old c", "manifest.json": "old"}
NEW = {"a.bin": "new a", "b.bin": "new b", "sub/d.bin": "new d", "manifest.json": "new"}
USERS = {"notes.txt": "my notes", "model.gguf": "gguf bytes", "mine/x.txt": "x"}


def _write(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)


def _contents(folder: Path, skip=()) -> dict[str, str]:
    """The visible files under `folder` and what they hold (a write's hidden leftovers are not among them)."""
    files = [p for p in folder.rglob("*") if p.is_file() and not p.relative_to(folder).parts[0].startswith(".")]
    return {p.relative_to(folder).as_posix(): p.read_text() for p in files if p.relative_to(folder).as_posix() not in skip}


def _run_child(target: Path, crash_at: int, how: str) -> subprocess.CompletedProcess:
    spec = json.dumps({"new": NEW, "remove": ["c.bin"]})
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", CHILD, str(target), str(crash_at), how, spec],
                          capture_output=True, text=True, env=env, timeout=120)


def _steps(tmp_path: Path, how: str, setup) -> int:
    """How many file-system steps one uninterrupted write takes."""
    target = tmp_path / "count" / "out"
    setup(target)
    done = _run_child(target, 0, how)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["steps"]


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# ---------------------------------------------------------------------------------------------
# Files into a folder that also holds the user's files (exports)
# ---------------------------------------------------------------------------------------------


def _export_folder(target: Path) -> None:
    target.mkdir(parents=True)
    _write(target, {**OLD, **USERS})


def test_write_files_killed_at_every_step_keeps_the_users_files_and_recovers_one_complete_set(tmp_path):
    total = _steps(tmp_path, "files", _export_folder)
    assert total >= 6  # journal, four moves, one removal, the staging folder, the journal again
    for k in range(1, total + 1):
        target = tmp_path / f"crash-{k}" / "out"
        _export_folder(target)
        mtimes = {name: (target / name).stat().st_mtime_ns for name in USERS}
        done = _run_child(target, k, "files")
        assert done.returncode == 17, (k, done.stderr)
        theirs = _contents(target, skip=NEW.keys() | OLD.keys())
        assert theirs == USERS, k  # the user's files are never touched, at any step
        committed = any(name.endswith(atomic.JOURNAL) for name in _hidden(target))
        ours = _contents(target, skip=USERS)
        if not committed:
            assert ours == OLD, (k, ours)  # before the journal: the earlier set, complete
        atomic.recover(target)  # what the next write does first
        assert _hidden(target) == [], k
        assert _contents(target, skip=USERS) == (NEW if committed else OLD), k
        assert _contents(target, skip=NEW.keys() | OLD.keys()) == USERS
        assert {name: (target / name).stat().st_mtime_ns for name in USERS} == mtimes
        # and the next write goes through
        atomic.write_files(target, lambda folder: _write(folder, NEW), lambda staging, names: ["c.bin"], last="manifest.json")
        assert _contents(target, skip=USERS) == NEW and _hidden(target) == []


def test_write_files_puts_the_manifest_last_and_removes_only_what_it_is_told(tmp_path):
    target = tmp_path / "out"
    _export_folder(target)
    seen = []

    def finish(staging, names):
        seen.append(names)
        return ["c.bin", "not-there.bin"]

    written = atomic.write_files(target, lambda folder: _write(folder, NEW), finish, last="manifest.json")
    assert seen == [sorted(NEW)] and written == sorted(NEW)
    assert _contents(target) == {**NEW, **USERS}
    assert (target / "manifest.json").stat().st_mtime_ns >= max((target / n).stat().st_mtime_ns for n in NEW)


def test_a_refusal_before_the_swap_changes_nothing(tmp_path):
    target = tmp_path / "out"
    _export_folder(target)
    before = _contents(target)

    def refuse(staging, names):
        raise StudioError("in the way", "move it")

    with pytest.raises(StudioError):
        atomic.write_files(target, lambda folder: _write(folder, NEW), refuse)
    assert _contents(target) == before and _hidden(target) == []
    # a folder the write created is gone again when nothing was written
    with pytest.raises(StudioError):
        atomic.write_files(tmp_path / "new", lambda folder: _write(folder, NEW), refuse)
    assert not (tmp_path / "new").exists()


def test_a_write_still_running_in_another_process_is_not_taken_for_a_crash(tmp_path):
    target = tmp_path / "out"
    _export_folder(target)
    other = target / f"{atomic.STAGING}{os.getppid()}-1"  # a live process that is not this one
    other.mkdir()
    (other / "a.bin").write_text("theirs, half written")
    with pytest.raises(StudioError) as err:
        atomic.write_files(target, lambda folder: _write(folder, NEW), lambda staging, names: [])
    assert "right now" in err.value.message and err.value.advice
    assert (other / "a.bin").read_text() == "theirs, half written" and _contents(target, skip=["a.bin"]) != NEW


# ---------------------------------------------------------------------------------------------
# Whole folders (a run's adapter)
# ---------------------------------------------------------------------------------------------


def _adapter_folder(target: Path) -> None:
    target.mkdir(parents=True)
    _write(target, OLD)


@pytest.mark.parametrize("how", ["exchange", "two renames"])
def test_write_atomically_killed_at_every_step_leaves_a_complete_folder(tmp_path, how):
    if how == "exchange" and not sys.platform.startswith("linux"):
        pytest.skip("renameat2 is Linux's")
    total = _steps(tmp_path, how, _adapter_folder)
    assert total >= 2
    crashed = []
    for k in range(1, total + 1):
        target = tmp_path / f"crash-{k}" / "adapter"
        _adapter_folder(target)
        done = _run_child(target, k, how)
        assert done.returncode == 17, (k, done.stderr)
        if how == "exchange":
            # one step: at every instant the folder is there, old or new, complete
            assert _contents(target) in (OLD, NEW), (k, _contents(target) if target.exists() else None)
        crashed.append(target)
    for k, target in enumerate(crashed, 1):
        finished = target.exists() and _contents(target) == NEW
        atomic.recover(target)
        assert _contents(target) in (OLD, NEW), k
        if finished:
            assert _contents(target) == NEW, k  # recovery never undoes a finished swap
        assert _hidden(target.parent) == [], k
        assert atomic.write_atomically(target, lambda folder: _write(folder, NEW)) is True
        assert _contents(target) == NEW and _hidden(target.parent) == []
