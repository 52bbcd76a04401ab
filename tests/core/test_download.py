"""Hub downloads with progress and cancel. The hub itself is replaced by a fake (the tests are offline);
what is real is how the studio drives huggingface_hub's API and its progress hook."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import pytest

from studio.core import download
from studio.core.errors import StudioError

FILES = {"config.json": 600, "tokenizer.json": 4000, "model.safetensors": 50_000, "README.md": 0}


class FakeHub:
    """snapshot_download(dry_run=True) and hf_hub_download, writing files into a fake cache."""

    def __init__(self, root: Path, files=FILES, cached=()):
        self.root = root
        self.files = dict(files)
        self.cached = set(cached)
        self.fetched: list[str] = []
        self.xet_disabled_during_download: list[bool] = []

    def snapshot_download(self, repo_id, *, allow_patterns=None, ignore_patterns=None, dry_run=False, **kw):
        import fnmatch

        assert dry_run
        out = []
        for name, size in self.files.items():
            if allow_patterns and not any(fnmatch.fnmatch(name, p) for p in allow_patterns):
                continue
            out.append(SimpleNamespace(filename=name, file_size=size, commit_hash="abc123", local_path="",
                                       is_cached=name in self.cached, will_download=name not in self.cached))
        return out

    def hf_hub_download(self, repo_id, filename, *, revision=None, cache_dir=None, token=None, tqdm_class=None, **kw):
        from huggingface_hub import constants

        self.xet_disabled_during_download.append(constants.HF_HUB_DISABLE_XET)
        folder = self.root / "snapshots" / revision
        folder.mkdir(parents=True, exist_ok=True)
        if filename not in self.cached:
            bar = tqdm_class(total=self.files[filename], initial=0, desc=filename, unit="B")
            with bar:
                left = self.files[filename]
                while left > 0:
                    chunk = min(1000, left)
                    bar.update(chunk)
                    left -= chunk
            self.fetched.append(filename)
        (folder / filename).write_bytes(b"x" * min(self.files[filename], 10))
        return str(folder / filename)


@pytest.fixture
def fake_hub(tmp_path, monkeypatch, reachable_hub):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    hub = FakeHub(tmp_path / "cache")
    monkeypatch.setattr(huggingface_hub, "snapshot_download", hub.snapshot_download)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hub.hf_hub_download)
    return hub


def test_plan_lists_what_training_needs(fake_hub, tmp_path):
    fake_hub.files["model.gguf"] = 10**9  # other formats are never fetched
    plan = download.plan_download("org/model", cache_dir=tmp_path)
    names = {f.name for f in plan.files}
    assert names == {"config.json", "tokenizer.json", "model.safetensors"}
    assert plan.total_bytes == 54_600 and plan.missing_bytes == 54_600 and plan.revision == "abc123"


def test_progress_reaches_the_total_and_the_snapshot_is_returned(fake_hub, tmp_path):
    from huggingface_hub import constants

    before = constants.HF_HUB_DISABLE_XET
    seen = []
    folder = download.download_model("org/model", on_progress=seen.append, cache_dir=tmp_path, report_every=0)
    assert (folder / "config.json").is_file()
    assert seen[-1].done_bytes == seen[-1].total_bytes == 54_600 and seen[-1].fraction == 1.0
    assert seen[-1].files_done == seen[-1].files_total == 3
    done = [p.done_bytes for p in seen]
    assert done == sorted(done)  # progress never goes back
    assert all(fake_hub.xet_disabled_during_download)  # plain HTTP: cancellable
    assert constants.HF_HUB_DISABLE_XET is before  # restored afterwards


def test_cached_files_count_as_done_and_are_not_fetched_again(fake_hub, tmp_path):
    fake_hub.cached = {"config.json", "tokenizer.json"}
    seen = []
    download.download_model("org/model", on_progress=seen.append, cache_dir=tmp_path, report_every=0)
    assert fake_hub.fetched == ["model.safetensors"]
    assert seen[0].done_bytes == 4_600


def test_cancel_stops_mid_file(fake_hub, tmp_path):
    progress = []

    def cancelled():
        return bool(progress) and progress[-1].done_bytes > 10_000

    with pytest.raises(download.DownloadCancelled) as err:
        download.download_model("org/model", on_progress=progress.append, cancelled=cancelled, cache_dir=tmp_path,
                                report_every=0)
    assert "cancelled" in err.value.message and "kept" in err.value.advice
    assert "model.safetensors" not in fake_hub.fetched
    assert progress[-1].done_bytes < 54_600


def test_offline_refuses_with_advice(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(StudioError) as err:
        download.plan_download("org/model")
    assert "offline" in err.value.message and "Settings" in err.value.advice


def test_bad_hub_id_and_pickle_only_repos(fake_hub, tmp_path):
    with pytest.raises(StudioError, match="not a hub id"):
        download.plan_download("not a hub id")
    fake_hub.files = {"config.json": 10, "pytorch_model.bin": 1000}
    with pytest.raises(StudioError, match="pickled"):
        download.plan_download("org/model", cache_dir=tmp_path)
    plan = download.plan_download("org/model", cache_dir=tmp_path, include_pickle=True)
    assert {f.name for f in plan.files} == {"config.json", "pytorch_model.bin"}


def test_hub_errors_become_advice(monkeypatch):
    from huggingface_hub.errors import LocalEntryNotFoundError

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)

    def unreachable(*a, **k):
        raise LocalEntryNotFoundError("no connection")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", unreachable)
    with pytest.raises(StudioError) as err:
        download.plan_download("org/model")
    assert "cannot be reached" in err.value.message
