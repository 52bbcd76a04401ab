"""Test setup: headless Qt, no network, and a private data folder for every test session."""

import os
import sys

# Headless Qt when there is no display (CI, this machine).
if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Tests never reach the hub: what they need ships in resources/ or is built by the test itself.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _private_studio_home(tmp_path_factory, monkeypatch):
    """Runs and settings go to a temporary folder, never the developer's own."""
    home = tmp_path_factory.mktemp("studio-home")
    monkeypatch.setenv("STUDIO_HOME", str(home))
    yield home
