"""Download a model from the Hugging Face hub into the local cache, with progress and cancel.

`download_model(hub_id, on_progress=..., cancelled=...)` fetches what training needs — the
configuration, tokenizer files, chat template and the safetensors weights (pickled `.bin` weights
only when asked) — file by file into the ordinary hub cache, so `resolve_model(hub_id)` finds it
afterwards. Progress is reported in bytes over the whole download; `cancelled()` is checked after
every chunk, and a cancelled download leaves its partial file for huggingface_hub to resume later.

Downloads go over plain HTTP rather than the xet protocol: xet reports progress from native
threads, where a cancel cannot stop it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from studio.core.errors import StudioError
from studio.core.hub import hub_error

# What training needs from a model repository: never the other formats (GGUF, ONNX, original/ ...).
NEEDED_PATTERNS = ("*.json", "*.safetensors", "*.jinja", "tokenizer.model", "*.tiktoken", "*.txt", "*.py")
PICKLE_PATTERNS = ("*.bin",)
SKIPPED = ("original/*", "onnx/*", "*.gguf", "*.onnx", "*.msgpack", "*.h5", "*.ot", "consolidated*")


class DownloadCancelled(StudioError):
    def __init__(self, hub_id: str):
        super().__init__(f"The download of {hub_id} was cancelled.",
                         "Start it again to continue: the files already downloaded are kept.")


@dataclass(frozen=True)
class RemoteFile:
    name: str
    size: int
    cached: bool


@dataclass(frozen=True)
class DownloadPlan:
    hub_id: str
    revision: str
    files: tuple[RemoteFile, ...]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def missing_bytes(self) -> int:
        return sum(f.size for f in self.files if not f.cached)


@dataclass(frozen=True)
class DownloadProgress:
    hub_id: str
    done_bytes: int
    total_bytes: int
    file: str
    files_done: int
    files_total: int

    @property
    def fraction(self) -> float:
        return self.done_bytes / self.total_bytes if self.total_bytes else 0.0


def _patterns(include_pickle: bool) -> list[str]:
    return list(NEEDED_PATTERNS) + (list(PICKLE_PATTERNS) if include_pickle else [])


def plan_download(hub_id: str, *, token: str | None = None, include_pickle: bool = False,
                  cache_dir: Path | None = None) -> DownloadPlan:
    """Which files a download of `hub_id` fetches, their sizes, and which are already cached."""
    import huggingface_hub as hub

    from studio.core.hub import require_hub
    from studio.core.models import HUB_ID, hf_cache_dir

    hub_id = hub_id.strip()
    if not HUB_ID.match(hub_id):
        raise StudioError(f"'{hub_id}' is not a hub id.", "Write it as organisation/name, e.g. Qwen/Qwen2.5-0.5B-Instruct.")
    require_hub(f"the files of {hub_id}")
    try:
        infos = hub.snapshot_download(hub_id, cache_dir=str(cache_dir or hf_cache_dir()), token=token,
                                      allow_patterns=_patterns(include_pickle), ignore_patterns=list(SKIPPED), dry_run=True)
    except Exception as exc:
        raise hub_error(hub_id, exc, "the file list") from exc
    files = tuple(RemoteFile(i.filename, int(i.file_size or 0), bool(i.is_cached and not i.will_download)) for i in infos)
    if not any(f.name == "config.json" for f in files):
        raise StudioError(f"{hub_id} has no config.json, so it is not a transformers model.", "Pick another model.")
    if not any(f.name.endswith(".safetensors") for f in files) and not include_pickle:
        raise StudioError(f"{hub_id} has no safetensors weights; its weights are pickled files, which can run code when loaded.",
                          "Allow pickled weights only if you trust the source (the download asks), or pick another model.")
    revision = infos[0].commit_hash if infos else "main"
    return DownloadPlan(hub_id, revision, files)


@contextlib.contextmanager
def _plain_http():
    """Download over plain HTTP (see the module docstring), restoring the setting afterwards."""
    from huggingface_hub import constants

    before = constants.HF_HUB_DISABLE_XET
    constants.HF_HUB_DISABLE_XET = True
    try:
        yield
    finally:
        constants.HF_HUB_DISABLE_XET = before


def _bar_class(count: Callable[[int], None], cancelled: Callable[[], bool], hub_id: str):
    """A stand-in for tqdm that huggingface_hub feeds byte counts: it reports them and stops on cancel."""

    class _Progress:
        def __init__(self, *args, **kwargs):
            self.n = 0
            self.total = kwargs.get("total")
            self.disable = False
            initial = int(kwargs.get("initial") or 0)
            if initial:
                self.update(initial)

        def update(self, n=1):
            if cancelled():
                raise DownloadCancelled(hub_id)
            n = int(n or 0)
            self.n += n
            count(n)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def close(self):
            pass

        def refresh(self, *a, **k):
            pass

        def set_description(self, *a, **k):
            pass

        def set_postfix(self, *a, **k):
            pass

        def reset(self, total=None):
            self.total = total

        @classmethod
        def get_lock(cls):
            import threading

            return threading.RLock()

        @classmethod
        def set_lock(cls, lock):
            pass

    return _Progress


def download_model(hub_id: str, *, on_progress: Callable[[DownloadProgress], None] | None = None,
                   cancelled: Callable[[], bool] = lambda: False, token: str | None = None,
                   include_pickle: bool = False, cache_dir: Path | None = None,
                   report_every: float = 0.1) -> Path:
    """Download `hub_id` into the hub cache; the snapshot folder. Raises DownloadCancelled on cancel."""
    import huggingface_hub as hub

    from studio.core.models import hf_cache_dir

    plan = plan_download(hub_id, token=token, include_pickle=include_pickle, cache_dir=cache_dir)
    folder = str(cache_dir or hf_cache_dir())
    total = plan.total_bytes
    state = {"done": sum(f.size for f in plan.files if f.cached), "file": "", "files_done": 0, "last": 0.0}

    def report(force: bool = False) -> None:
        now = time.monotonic()
        if on_progress is not None and (force or now - state["last"] >= report_every):
            state["last"] = now
            on_progress(DownloadProgress(plan.hub_id, min(state["done"], total), total, state["file"],
                                         state["files_done"], len(plan.files)))

    def count(n: int) -> None:
        state["done"] += n
        report()

    bar = _bar_class(count, cancelled, plan.hub_id)
    snapshot: Path | None = None
    report(force=True)
    with _plain_http():
        for remote in sorted(plan.files, key=lambda f: f.size):  # small files first: the card fills in early
            if cancelled():
                raise DownloadCancelled(plan.hub_id)
            state["file"] = remote.name
            try:
                path = hub.hf_hub_download(plan.hub_id, remote.name, revision=plan.revision, cache_dir=folder,
                                           token=token, tqdm_class=bar)
            except DownloadCancelled:
                raise
            except Exception as exc:
                raise hub_error(plan.hub_id, exc, "the files") from exc
            state["files_done"] += 1
            report(force=True)
            if remote.name == "config.json":
                snapshot = Path(path).parent
    state["done"] = total
    report(force=True)
    if snapshot is None:
        raise StudioError(f"Nothing was downloaded for {plan.hub_id}.", "Check the hub id.")
    return snapshot
