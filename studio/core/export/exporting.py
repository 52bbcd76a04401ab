"""The export of one run (`export_run`): checks first, then the new files are built in a hidden
staging folder inside DIR and moved into place only once they are complete, with a journal
(studio.core.atomic.write_files): an interrupted export leaves the earlier one as it was, or is
finished by the next export into DIR."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from studio.core.atomic import recover, write_files
from studio.core.errors import StudioError
from studio.core.export import contents
from studio.core.export.contents import DEFAULT_SHARD_SIZE, DTYPES
from studio.core.export.layout import MARKER, gguf_paths
from studio.core.export.ollama import OllamaTemplate
from studio.core.export.target import TargetFolder, check_target, listing, manifest, refuse_if_in_the_way, survey
from studio.core.runs import DISK_MARGIN, RunFacts, free_bytes, read_run  # free_bytes by name: tests replace it here
from studio.core.wording import count


@dataclass(frozen=True)
class ExportResult:
    path: Path
    kind: str  # "adapter", "merged" or "gguf" (GGUF files alone)
    files: tuple[str, ...]  # the export's own files (relative paths), its marker included
    size_bytes: int  # of those files (the user's files in the folder are not counted)
    replaced: bool  # an earlier export at the same place was replaced
    modelfile: bool
    template: str | None  # the Modelfile's TEMPLATE: "chatml", "studio-default" or None
    notes: tuple[str, ...] = field(default_factory=tuple)
    kept: tuple[str, ...] = field(default_factory=tuple)  # the user's files in the folder, untouched
    overwritten: tuple[str, ...] = field(default_factory=tuple)  # the user's files the export overwrote (force)
    gguf: tuple = field(default_factory=tuple)  # to_gguf.GgufFile: each GGUF file with its llama.cpp check
    checkpoint: int | None = None  # the step of the checkpoint exported; None: the final adapter
    weights: str = ""  # which weights, in words: "checkpoint-40, step 40 of 80"

    @property
    def checks_passed(self) -> bool:
        return all(f.check.passed for f in self.gguf)

    def as_dict(self) -> dict:
        return {"path": str(self.path), "kind": self.kind, "files": list(self.files), "size_bytes": self.size_bytes,
                "replaced": self.replaced, "modelfile": self.modelfile, "template": self.template, "notes": list(self.notes),
                "kept": list(self.kept), "overwritten": list(self.overwritten), "gguf": [f.as_dict() for f in self.gguf],
                "checkpoint": self.checkpoint, "weights": self.weights}


@dataclass(frozen=True)
class ExportChoice:
    """What an export writes: the adapter (nothing chosen), the merged model, GGUF files, Ollama's Modelfile."""
    merged: bool = False
    dtype: str = "bf16"  # the merged weights', and the 16-bit GGUF's when none is named
    gguf: tuple[str, ...] = ()  # GGUF types, e.g. ("q4_k_m", "q8_0")
    lmstudio: bool = False  # GGUF files under lora-studio/<name>/, the layout LM Studio reads
    ollama: bool = False  # a Modelfile FROM the GGUF file (or the merged model)
    ollama_adapter: bool = False  # the Modelfile FROM the base + ADAPTER, for Ollama before 0.34.1

    @property
    def kind(self) -> str:
        return "merged" if self.merged else "gguf" if self.gguf else "adapter"

    @property
    def modelfile(self) -> bool:
        return self.ollama or self.ollama_adapter


def export_run(run_dir: Path, target: Path, *, merged: bool = False, dtype: str = "bf16", ollama: bool = False,
               force: bool = False, max_shard_size: str | int = DEFAULT_SHARD_SIZE, gguf: Sequence[str] = (),
               lmstudio: bool = False, ollama_adapter: bool = False, checkpoint: int | None = None,
               progress: Callable[[str, float], None] | None = None,
               cancelled: Callable[[], bool] | None = None) -> ExportResult:
    """Export the run in `run_dir` to the folder `target` (see layout.py for what it holds).
    `checkpoint`: the step of a checkpoint to export instead of the final adapter (every kind of export
    takes it; its model card and studio-export.json say which). An earlier export there is updated; the
    user's other files in it are kept. `force` overwrites the user's files that have the names the export
    writes (nothing else). `progress(message, fraction)` hears of each stage, for the window's progress
    bar; `cancelled()` true stops it (to_gguf.Cancelled), with nothing written."""
    say = progress or (lambda message, fraction: None)
    say("Checking the run and the target folder", 0.0)
    choice = _choice(merged=merged, dtype=dtype, gguf=gguf, lmstudio=lmstudio, ollama=ollama, ollama_adapter=ollama_adapter)
    shard_bytes = contents.shard_size_bytes(max_shard_size)
    facts = read_run(run_dir, checkpoint)
    target = Path(target).expanduser().absolute()
    folder = _prepare(facts, target, choice, force=force)
    plan = _ExportPlan(facts, target, choice, force, shard_bytes, folder, say, cancelled)
    try:
        written = write_files(target, plan.build, plan.finish, last=MARKER)
    except Exception as exc:  # a full disk, a file too large, a folder gone: the target is as it was
        error = _disk_error(exc)
        if error is None:
            raise
        raise _write_failed(error, target, folder.earlier, contents.expected_bytes(facts, merged, choice.gguf)) from exc
    say("Done", 1.0)
    return plan.result(written)


def _choice(*, merged: bool, dtype: str, gguf: Sequence[str], lmstudio: bool, ollama: bool, ollama_adapter: bool) -> ExportChoice:
    """The export's options, checked together before anything is read."""
    from studio.core.export.to_gguf import check_types, missing_dependency

    if dtype not in DTYPES:
        raise StudioError(f"The merged model's dtype is {dtype!r}, but it must be bf16 or fp16.",
                          "Use --dtype bf16 (most GPUs since 2020) or --dtype fp16.")
    types = check_types(gguf)
    if types and (missing := missing_dependency()):
        raise missing
    if lmstudio and not types:
        raise StudioError("LM Studio opens GGUF files, and this export writes none.", "Add a GGUF type: --gguf q4_k_m.")
    if ollama and not (types or merged):
        raise StudioError("Ollama 0.34.1 and later take no adapters: a Modelfile needs the model as a GGUF file.",
                          "Add a GGUF type (--gguf q4_k_m), or, for Ollama before 0.34.1, use --ollama-adapter.")
    if ollama_adapter and (types or merged):
        raise StudioError("--ollama-adapter writes a Modelfile for the adapter alone; this export writes a whole model.",
                          "Use --ollama with --gguf (every Ollama version), or leave out --merged and --gguf.")
    return ExportChoice(merged, dtype, types, lmstudio, ollama, ollama_adapter)


def estimated_gguf_sizes(run_dir: Path, types: Sequence[str]) -> dict[str, int]:
    """The size of each GGUF file an export of this run would write, before anything is built."""
    from studio.core.export.to_gguf import check_types

    return contents.gguf_sizes(read_run(run_dir), check_types(types))


def _gguf_names(facts: RunFacts, choice: ExportChoice) -> dict[str, str]:
    return gguf_paths(facts.config.output.name, choice.gguf, lmstudio=choice.lmstudio)


def _prepare(facts: RunFacts, target: Path, choice: ExportChoice, *, force: bool) -> TargetFolder:
    """Everything that can be refused, refused before anything is built; what the target holds."""
    check_target(target, facts.run_dir)
    recover(target)  # an export that was interrupted while moving its files into place is finished first
    folder = survey(target)
    names = contents.predicted_names(facts, choice.merged, choice.modelfile, _gguf_names(facts, choice).values())
    refuse_if_in_the_way(target, folder, names, force=force)
    if choice.merged or choice.gguf:
        contents.base_for_merge(facts)
    if choice.gguf:
        _check_gguf_architecture(facts)
    _check_space(target, contents.expected_bytes(facts, choice.merged, choice.gguf))
    return folder


def _check_gguf_architecture(facts: RunFacts) -> None:
    """An architecture the GGUF writer does not know is refused before minutes of merging."""
    from transformers import AutoConfig

    from studio.core.export.to_gguf.arch import architecture_of
    from studio.core.export.to_gguf.write import text_config

    architecture_of(text_config(AutoConfig.from_pretrained(str(facts.base_path),
                                                           trust_remote_code=facts.config.model.trust_remote_code)))


def _check_space(target: Path, need: int) -> None:
    free = free_bytes(target.parent)
    if free < need + DISK_MARGIN:
        raise StudioError(f"Only {free / 1e6:,.0f} MB are free where the export goes; it needs about "
                          f"{(need + DISK_MARGIN) / 1e6:,.0f} MB.",
                          f"Free some disk space in {target.parent}, or export somewhere else (--to DIR).")


def _disk_error(exc: BaseException) -> OSError | None:
    """The system's error inside another library's: safetensors reports a full disk as 'I/O error: ... (os error 28)'."""
    if isinstance(exc, OSError):
        return exc
    m = re.search(r"\(os error (\d+)\)", str(exc)) if type(exc).__name__ == "SafetensorError" else None
    return OSError(int(m.group(1)), os.strerror(int(m.group(1)))) if m else None


def _write_failed(exc: OSError, target: Path, earlier: bool, need: int) -> StudioError:
    what = exc.strerror or str(exc)
    file = f" (writing {Path(exc.filename).name})" if getattr(exc, "filename", None) else ""
    kept = "the earlier export there is still complete, as it was" if earlier else "no file there was written or removed"
    message = f"The export stopped: {what}{file}. Nothing in {target} changed: {kept}."
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        advice = (f"The disk is full. Free some space on it (the export needs about {need / 1e6:,.0f} MB) and "
                  "export again, or export to another disk (--to DIR).")
    elif exc.errno == errno.EFBIG:
        advice = ("A file was larger than this disk or this system allows. Export to another disk (--to DIR), or, for "
                  "a merged model, use smaller weight files (--max-shard-size 1GB).")
    else:
        advice = f"Check that you can write to {target} and that its disk is connected, then export again."
    return StudioError(message, advice)


_TEMP_MERGED = ".studio-merged.tmp"  # the merged model a GGUF is made from, when the merged model is not asked for


class _ExportPlan:
    """The steps of one export: what `write_files` calls to build the new files, and to check them before the swap."""

    def __init__(self, facts: RunFacts, target: Path, choice: ExportChoice, force: bool, shard_bytes: int,
                 folder: TargetFolder, say: Callable[[str, float], None], cancelled: Callable[[], bool] | None):
        self.facts, self.target, self.choice, self.force = facts, target, choice, force
        self.shard_bytes, self.folder, self.say, self.cancelled = shard_bytes, folder, say, cancelled
        self.template: OllamaTemplate | None = None
        self.overwritten: list[str] = []
        self.sizes: dict[str, int] = {}
        self.gguf: list = []

    def build(self, work: Path) -> None:
        c = self.choice
        if c.merged or c.gguf:
            self.say("Loading the base model in 16-bit and merging the adapter", 0.1)
            merged_dir = work if c.merged else work / _TEMP_MERGED
            contents.write_merged(self.facts, merged_dir, c.dtype, self.shard_bytes)
            if c.gguf:
                self._write_gguf(merged_dir, work)
            if not c.merged:
                shutil.rmtree(merged_dir)
        else:
            self.say("Copying the adapter and tokenizer" if self.facts.checkpoint is None else
                     f"Copying checkpoint-{self.facts.checkpoint}'s adapter and the tokenizer", 0.2)
            contents.write_adapter(self.facts, work)
        self.say("Writing the model card, loss plot and recipe", 0.9)
        self.template = contents.write_extras(self.facts, work, merged=c.merged, dtype=c.dtype if c.merged else None,
                                              target=self.target, modelfile=c.modelfile, gguf_files=self.gguf)
        contents.usual_permissions(work)

    def _write_gguf(self, merged_dir: Path, work: Path) -> None:
        from studio.core.export.to_gguf import write_gguf_files

        self.gguf = write_gguf_files(merged_dir, work, _gguf_names(self.facts, self.choice),
                                     prompts=self.facts.config.training.sample_prompts,
                                     model_name=self.facts.config.output.name, say=self.say, cancelled=self.cancelled)

    def finish(self, work: Path, names: list[str]) -> list[str]:
        """The new files are complete: refuse if they would overwrite the user's files, write the marker
        with the manifest, and name the earlier export's files that go."""
        new = set(names) | {MARKER}
        self.folder = survey(self.target)  # again: a merge takes minutes, and the user may have added files meanwhile
        self.overwritten = refuse_if_in_the_way(self.target, self.folder, new.__contains__, force=self.force)
        self.say("Recording the files of this export", 0.95)
        entries = manifest(work, names)
        self.sizes = {entry["path"]: entry["size"] for entry in entries}
        (work / MARKER).write_text(json.dumps(self._marker(entries), indent=2) + "\n", encoding="utf-8")
        return sorted(self.folder.owned - new)

    def _marker(self, entries: list[dict]) -> dict:
        """studio-export.json: what this folder is, and the manifest of the files this export wrote."""
        f = self.facts
        c = self.choice
        return {"exporter": "lora-studio", "kind": c.kind, "run": str(f.run_dir.absolute()), "step": f.step,
                "checkpoint": f.checkpoint, "weights": f.weights, "dtype": DTYPES[c.dtype] if c.merged else None,
                "base_model": f.base_reference,
                "gguf": {g.quant: {"path": g.path, "check": g.check.as_dict()} for g in self.gguf},
                "time": round(time.time(), 3), "files": entries}

    def _notes(self, kept: tuple[str, ...]) -> list[str]:
        notes = [f"{g.quant}: {g.check.summary()}" for g in self.gguf if not g.check.passed]
        if self.template is not None and self.template.template is None:
            notes.append("The Modelfile has no TEMPLATE: this run's chat template is not one the studio can translate "
                         "(see the comment in the Modelfile).")
        if self.overwritten:
            notes.append(f"Overwrote {count(len(self.overwritten), 'file')} of yours with the export's own, as you asked: "
                         f"{listing(self.overwritten)}.")
        if kept:
            notes.append(f"Kept {count(len(kept), 'file')} of yours in the folder, untouched: {listing(kept)}.")
        return notes

    def result(self, written: list[str]) -> ExportResult:
        kept = tuple(name for name in self.folder.others if name not in written)
        size = sum(self.sizes.values()) + (self.target / MARKER).stat().st_size
        return ExportResult(path=self.target, kind=self.choice.kind, files=tuple(written),
                            size_bytes=size, replaced=self.folder.earlier, modelfile=self.template is not None,
                            template=self.template.kind if self.template else None, notes=tuple(self._notes(kept)),
                            kept=kept, overwritten=tuple(self.overwritten), gguf=tuple(self.gguf),
                            checkpoint=self.facts.checkpoint, weights=self.facts.weights)
