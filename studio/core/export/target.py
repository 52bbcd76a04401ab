"""The folder an export goes to: what in it is an earlier export's (its marker's manifest, unchanged
since), what is the user's, and whether the export may write there. DIR may hold the user's own files
too (notes, a GGUF converted from the export): they are kept. Only the files an earlier export wrote,
unchanged since, are replaced or removed; a file of the user's with a name the export writes is "in the
way", and the export refuses and names it unless --force."""

from __future__ import annotations

import hashlib
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from studio.core.atomic import files_in
from studio.core.errors import StudioError
from studio.core.export.layout import MARKER
from studio.core.runs import ADAPTER
from studio.core.runs.facts import read_json
from studio.core.wording import count


def is_export(folder: Path) -> bool:
    return (Path(folder) / MARKER).is_file() and read_json(Path(folder) / MARKER).get("exporter") == "lora-studio"


def check_target(target: Path, run_dir: Path) -> None:
    target, run_dir = Path(target).resolve(), Path(run_dir).resolve()
    adapter = run_dir / ADAPTER
    if target == run_dir or target in run_dir.parents or target == adapter or adapter in target.parents:
        raise StudioError(f"{target} would replace the run's own files.", "Export to a folder outside the run folder (--to DIR).")
    if target.exists() and not target.is_dir():
        raise StudioError(f"{target} is a file, not a folder.", "Choose a new or empty folder for the export (--to DIR).")


class FilesInTheWay(StudioError):
    """The export would overwrite files that are not an earlier export's, or land among someone's files.
    `files`: what it would overwrite (with --force); `others`: every file in the folder that is not an export's."""

    def __init__(self, message: str, advice: str, *, target: Path, files: list[str], others: list[str]):
        super().__init__(message, advice)
        self.target, self.files, self.others = target, tuple(files), tuple(others)


@dataclass(frozen=True)
class TargetFolder:
    earlier: bool  # it holds an earlier export (its marker)
    owned: frozenset[str]  # that export's files, unchanged since: the new export replaces or removes them
    changed: frozenset[str]  # that export's files that were changed since: the user's now
    others: tuple[str, ...]  # every file that is not the earlier export's: kept, unless the export writes its name


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def manifest(folder: Path, names: list[str]) -> list[dict]:
    """What an export wrote, so the next one knows which files are its own and whether they were changed."""
    entries = []
    for name in names:
        st = (folder / name).stat()
        entries.append({"path": name, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": _digest(folder / name)})
    return entries


def _inside(name: object) -> bool:
    """A manifest's path that stays inside the folder (a hand-edited marker must not reach elsewhere)."""
    return isinstance(name, str) and bool(name) and not Path(name).is_absolute() and ".." not in Path(name).parts


def _unchanged(target: Path, entry: dict) -> bool:
    path = target / entry["path"]
    try:
        st = path.lstat()
    except OSError:
        return False
    if not stat.S_ISREG(st.st_mode) or st.st_size != entry.get("size"):
        return False
    return st.st_mtime_ns == entry.get("mtime_ns") or _digest(path) == entry.get("sha256")


# What exports before the manifest wrote: the only names such a folder's export could have had.
_LEGACY_NAMES = re.compile(r"adapter_model\.safetensors|adapter_config\.json|studio\.json|(generation_)?config\.json|"
                           r"model(-\d+-of-\d+)?\.safetensors(\.index\.json)?|tokenizer.*|special_tokens_map\.json|"
                           r"added_tokens\.json|chat_template\.jinja|vocab\.json|merges\.txt|README\.md|loss\.svg|"
                           r"run\.toml|Modelfile")


def _legacy_owned(target: Path, present: list[str]) -> set[str]:
    """An export from before the manifest: its files are the export-named ones no newer than its marker
    (written last); a file changed or added since is the user's."""
    written = (target / MARKER).stat().st_mtime_ns
    return {name for name in present if "/" not in name and _LEGACY_NAMES.fullmatch(name)
            and (target / name).lstat().st_mtime_ns <= written}


def survey(target: Path) -> TargetFolder:
    """What is in the folder an export goes to."""
    target = Path(target)
    present = files_in(target) if target.is_dir() else []
    if not is_export(target):
        return TargetFolder(False, frozenset(), frozenset(), tuple(present))
    entries = read_json(target / MARKER).get("files")
    if isinstance(entries, list):
        listed = [e for e in entries if isinstance(e, dict) and _inside(e.get("path"))]
        owned = {e["path"] for e in listed if _unchanged(target, e)}
        changed = {e["path"] for e in listed if e["path"] in present} - owned
    else:
        owned, changed = _legacy_owned(target, present), set()
    owned.add(MARKER)
    return TargetFolder(True, frozenset(owned), frozenset(changed), tuple(p for p in present if p not in owned))


def listing(names, limit: int = 6) -> str:
    names = list(names)
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def refuse_if_in_the_way(target: Path, folder: TargetFolder, writes: Callable[[str], bool], *, force: bool) -> list[str]:
    """The user's files the export would overwrite (`writes(name)`: whether it writes that name); refused
    unless `force`. A folder that is not an earlier export and holds files is refused unless `force` too."""
    in_way = [name for name in folder.others if writes(name)]
    # a folder where the export writes a file: not even --force removes a folder
    blocked = [p.name for p in target.iterdir() if p.is_dir() and not p.is_symlink() and writes(p.name)] if target.is_dir() else []
    if blocked:
        raise StudioError(f"{target} holds folders where the export writes files: {listing(blocked)}.",
                          "Move or rename them, or export to another folder (--to DIR).")
    if force or not (in_way or (folder.others and not folder.earlier)):
        return in_way
    raise _in_the_way(target, folder, in_way)


def _in_the_way(target: Path, folder: TargetFolder, in_way: list[str]) -> FilesInTheWay:
    """The refusal: the user's files the export would overwrite, or a folder of someone's files."""
    changed = [name for name in in_way if name in folder.changed]
    why = f" ({listing(changed)} changed since the earlier export)" if changed else ""
    if folder.earlier:
        message = (f"{target} holds {count(len(in_way), 'file')} of yours with the names this export writes: "
                   f"{listing(in_way)}{why}. Nothing was written.")
        advice = ("Move or rename them and export again, or add --force to overwrite just these files "
                  "(your other files in the folder stay as they are).")
    else:
        message = (f"{target} is not an earlier LoRA Studio export and already holds {count(len(folder.others), 'file')}: "
                   f"{listing(folder.others)}. Nothing was written.")
        overwrite = f"only {listing(in_way)} would be overwritten" if in_way else "none of them is overwritten"
        advice = (f"Choose a new or empty folder, or add --force to write the export into this one: your files stay, "
                  f"{overwrite}.")
    return FilesInTheWay(message, advice, target=target, files=in_way, others=list(folder.others))
