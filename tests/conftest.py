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


@pytest.fixture(autouse=True)
def _fresh_hub_answer():
    """Each test asks afresh whether the hub is reachable (hub.py remembers the answer for a while)."""
    from studio.core import hub

    hub._answer = None
    yield
    hub._answer = None


@pytest.fixture
def reachable_hub(monkeypatch):
    """A real HTTP server on this machine at the hub's address, so the studio's "can the hub be
    reached?" question gets a real answer; what it serves is up to each test's stand-in."""
    import http.server
    import threading

    from huggingface_hub import constants

    class Quiet(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # read once at import, from this file's setdefault
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    yield constants.ENDPOINT
    server.shutdown()
    server.server_close()
