"""Writing folders so that a crash never leaves half of one where a complete one was.

Two ways, for two kinds of folder:

- `write_atomically(target, build)`: the whole folder is ours (a run's adapter). It is built in a
  hidden sibling and exchanged with the old one in one step where the system can (Linux's
  renameat2 RENAME_EXCHANGE), so the target holds the old or the new folder at every instant.
  Elsewhere two renames do it, and a crash between them is finished by `recover(target)` (which the
  next write calls first).
- `write_files(target, build, finish)`: files into a folder that also holds files that are not ours
  (an export beside the user's notes). The new files are built in a hidden staging folder inside
  the target; once they are complete a journal is written (the commit point), then each file is
  renamed over its old version, the old files the new set no longer has are removed, and the
  journal goes. A crash before the journal leaves the folder as it was; a crash after it is rolled
  forward by `recover(target)`. Files not named by the journal are never touched.

Leftovers carry the writer's process id, so a write still running in another process is never
taken for a crashed one.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from studio.core.errors import StudioError
from studio.core.training.ownership import pid_alive

STAGING = ".studio-partial-"  # inside the target: `write_files`' staging folder, and its journal (+ ".swap.json")
JOURNAL = ".swap.json"


def _stamp() -> str:
    return f"{os.getpid()}-{time.monotonic_ns()}"


def _stale(stamp: str) -> bool:
    """A leftover of a write that is no longer running: its process (the stamp's first number) ended, or is this one."""
    pid = int(stamp.split("-")[0])
    return pid == os.getpid() or not pid_alive(pid)


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StudioError(f"The folder {folder} cannot be created: {exc.strerror}.", "Choose a folder you can write to.") from exc


def _fsync(path: Path) -> None:
    """Make a file (or a folder's list of names) durable before a rename depends on it."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) if path.is_dir() else os.O_RDONLY
    try:
        fd = os.open(path, flags)
    except OSError:
        return  # Windows cannot open folders; there the rename is as durable as the system makes it
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_tree(folder: Path) -> None:
    for root, _dirs, files in os.walk(folder):
        for name in files:
            _fsync(Path(root) / name)
        _fsync(Path(root))


# ---------------------------------------------------------------------------------------------
# Whole folders
# ---------------------------------------------------------------------------------------------


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 with RENAME_EXCHANGE); False where the system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False  # a C library older than glibc 2.28
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False  # a file system without the exchange
    raise OSError(code, os.strerror(code), str(a))


def _sibling(target: Path, kind: str, stamp: str) -> Path:
    return target.parent / f".{target.name}.{kind}-{stamp}"


def _recover_folder(target: Path) -> None:
    """Finish or undo what a killed `write_atomically` left beside `target`:
    partial-S (built, maybe incomplete, or the old folder after an exchange): removed;
    ready-S (complete): becomes the target if the swap had begun; old-S: removed once the target is back."""
    parent = target.parent
    if not parent.is_dir():
        return
    leftovers = {}
    for entry in parent.iterdir():
        m = re.fullmatch(re.escape(f".{target.name}.") + r"(partial|ready|old)-(\d+-\d+)", entry.name)
        if m and _stale(m.group(2)):
            leftovers[(m.group(1), m.group(2))] = entry
    for (kind, stamp), entry in sorted(leftovers.items(), key=lambda item: ("partial", "ready", "old").index(item[0][0])):
        if kind == "partial":
            shutil.rmtree(entry, ignore_errors=True)
        elif kind == "ready":
            _finish_swap(target, entry, _sibling(target, "old", stamp))
        elif not target.exists():
            entry.rename(target)  # an old folder moved aside with nothing to take its place (an older studio's swap)
        else:
            shutil.rmtree(entry, ignore_errors=True)


def _finish_swap(target: Path, ready: Path, old: Path) -> None:
    """The two-rename swap, resumable at any point: target → old, ready → target, old removed."""
    if target.exists() and old.exists():  # not our sequence: something else made the target since; it stays
        shutil.rmtree(ready, ignore_errors=True)
    else:
        if target.exists():
            target.rename(old)
        ready.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def write_text(path: Path, text: str) -> None:
    """One small file, whole or not at all: written beside `path` (a name of this process's own, so two
    writers never share it), then renamed over it. Readers see the old text or the new, never half."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    """Rows as JSON lines (UTF-8 as it is, not escaped), whole or not at all (`write_text`)."""
    write_text(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def write_atomically(target: Path, build: Callable[[Path], None]) -> bool:
    """Build the folder in a hidden sibling, then swap it in; returns whether an older folder was replaced."""
    target = Path(target)
    _make_folder(target.parent)
    _recover_folder(target)
    stamp = _stamp()
    work = _sibling(target, "partial", stamp)
    try:
        work.mkdir()
        build(work)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    _fsync_tree(work)
    if not target.exists():
        os.rename(work, target)
        _fsync(target.parent)
        return False
    if _exchange(work, target):
        shutil.rmtree(work, ignore_errors=True)  # `work` now holds the old folder
        return True
    ready = _sibling(target, "ready", stamp)
    os.rename(work, ready)  # complete: from here on, a crash is finished forward
    _finish_swap(target, ready, _sibling(target, "old", stamp))
    return True


# ---------------------------------------------------------------------------------------------
# Files in a shared folder
# ---------------------------------------------------------------------------------------------


def files_in(folder: Path) -> list[str]:
    """Every file under `folder` (links included, not followed), as sorted relative paths with '/';
    a write's own staging folders and journals are not among them."""
    found = []
    for root, dirs, files in os.walk(folder):
        rel = Path(root).relative_to(folder)
        if rel == Path("."):
            dirs[:] = [name for name in dirs if not name.startswith(STAGING)]
            files = [name for name in files if not name.startswith(STAGING)]
        found += [(rel / name).as_posix() for name in files]
        found += [(rel / name).as_posix() for name in dirs if (Path(root) / name).is_symlink()]
    return sorted(found)


def _journal_of(staging: Path) -> Path:
    return staging.parent / f"{staging.name}{JOURNAL}"


def _write_journal(staging: Path, order: list[str], remove: list[str]) -> None:
    journal = _journal_of(staging)
    tmp = journal.parent / f"{journal.name}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump({"files": order, "remove": remove}, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, journal)  # the commit point
    _fsync(journal.parent)


def _prune(target: Path, name: str) -> None:
    """Remove the folders a removed file leaves empty, up to (not including) the target."""
    folder = (target / name).parent
    while folder != target and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def _roll_forward(target: Path, staging: Path) -> None:
    journal = _journal_of(staging)
    plan = json.loads(journal.read_text(encoding="utf-8"))
    for name in plan["files"]:
        source = staging / name
        if source.exists() or source.is_symlink():  # not moved yet
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target / name)
    for name in plan["remove"]:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(target / name)
        _prune(target, name)
    shutil.rmtree(staging, ignore_errors=True)
    os.unlink(journal)
    _fsync(target)


def _leftovers(target: Path) -> list[tuple[Path, str]]:
    """(entry, stamp) of the staging folders and journals inside `target`."""
    pattern = re.escape(STAGING) + r"(\d+-\d+)(?:" + re.escape(JOURNAL) + r"(?:\.tmp)?)?"
    found = [(entry, re.fullmatch(pattern, entry.name)) for entry in sorted(target.iterdir())]
    return [(entry, m.group(1)) for entry, m in found if m]


def _recover_files(target: Path) -> None:
    if not target.is_dir():
        return
    for entry, stamp in _leftovers(target):
        if not entry.is_dir():
            continue
        if not _stale(stamp):
            raise StudioError(f"Another LoRA Studio export is writing into {target} right now "
                              f"(process {stamp.split('-')[0]}).", "Wait until it has finished, or export to another folder.")
        if _journal_of(entry).exists():
            _roll_forward(target, entry)  # committed: finish it
        else:
            shutil.rmtree(entry, ignore_errors=True)  # never committed: the folder is as it was
    for entry, stamp in _leftovers(target):  # journals whose swap had finished, and uncommitted ones
        if entry.is_file() and _stale(stamp):
            os.unlink(entry)


def recover(target: Path) -> None:
    """Finish, or undo, a write into `target` that was interrupted (the process was killed, the power failed):
    afterwards the target holds one complete folder or set of files, and no leftovers remain."""
    target = Path(target)
    _recover_folder(target)
    _recover_files(target)


def _unmake(target: Path, created: bool) -> None:
    if created:
        with contextlib.suppress(OSError):
            target.rmdir()  # only when empty: nothing of anyone else's is in it


def write_files(target: Path, build: Callable[[Path], None], finish: Callable[[Path, list[str]], Iterable[str]],
                *, last: str | None = None) -> list[str]:
    """Put the files `build(staging)` writes into `target`, replacing the files of the same names.

    `finish(staging, names)` sees the complete new files before anything at the target changes; it
    may write more files into `staging`, may refuse (raise), and returns the target's files to remove
    with the swap. `last` is moved into place after every other file (a manifest). Returns the files written."""
    target = Path(target)
    created = not target.exists()
    _make_folder(target)
    recover(target)
    staging = target / f"{STAGING}{_stamp()}"
    try:
        staging.mkdir()
        build(staging)
        remove = sorted(set(finish(staging, files_in(staging))))
        names = files_in(staging)
        order = [n for n in names if n != last] + [n for n in names if n == last]
        for name in names:
            _fsync(staging / name)
        _write_journal(staging, order, [n for n in remove if n not in names])
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.unlink(_journal_of(staging).parent / f"{_journal_of(staging).name}.tmp")
        _unmake(target, created)
        raise
    try:
        _roll_forward(target, staging)
    except OSError as exc:
        raise StudioError(f"Moving the new files into {target} stopped half way: {exc.strerror or exc}.",
                          "Run the same export again: it finishes the move first. Your other files in the folder "
                          "were not touched.") from exc
    return names
