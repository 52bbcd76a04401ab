"""Test setup: headless Qt, no network, and a private data folder for every test session."""

import os
import sys

# Headless Qt when there is no display (CI, this machine), on a virtual 1920 × 1200 screen (the
# offscreen plugin's own is 800 × 800, smaller than the window's first size).
if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
    import json
    import tempfile

    _screen = os.path.join(tempfile.gettempdir(), "lora-studio-test-screen.json")
    with open(_screen, "w", encoding="utf-8") as _fh:
        json.dump({"screens": [{"name": "test", "x": 0, "y": 0, "width": 1920, "height": 1200, "logicalDpi": 96,
                                "logicalBaseDpi": 96, "dpr": 1}]}, _fh)
    os.environ.setdefault("QT_QPA_PLATFORM", f"offscreen:configfile={_screen}")
# Tests never reach the hub: what they need ships in resources/ or is built by the test itself.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from pathlib import Path

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _private_studio_home(tmp_path_factory, monkeypatch):
    """Runs and settings go to a temporary folder, never the developer's own."""
    home = tmp_path_factory.mktemp("studio-home")
    monkeypatch.setenv("STUDIO_HOME", str(home))
    yield home


@pytest.fixture(autouse=True)
def _fresh_hub_answer(monkeypatch, tmp_path_factory):
    """Each test asks afresh whether the hub is reachable (hub.py remembers the answer for a while),
    and Hugging Face's token files are private to the test, never the developer's own."""
    from huggingface_hub import constants

    from studio.core import hub

    hub._answer = None
    tokens = tmp_path_factory.mktemp("hf-tokens")
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tokens / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tokens / "stored_tokens"))
    yield
    hub._answer = None


class HubStandIn:
    """A real HTTP server on this machine standing at the hub's address: anything not in `routes`
    answers 200 with an empty body; `routes` maps a path to (status, headers, JSON body)."""

    def __init__(self):
        import http.server
        import json
        import threading

        routes = self.routes = {}
        self.requests: list[tuple[str, str, dict]] = []
        requests = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self, with_body: bool):
                requests.append((self.command, self.path, dict(self.headers)))
                status, headers, body = routes.get(self.path.split("?")[0], (200, {}, None))
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                for key, value in {"Content-Type": "application/json", "Content-Length": str(len(data)), **headers}.items():
                    self.send_header(key, value)
                self.end_headers()
                if with_body:
                    self.wfile.write(data)

            def do_HEAD(self):
                self._answer(False)

            def do_GET(self):
                self._answer(True)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def reachable_hub(monkeypatch):
    """The hub's address points at a HubStandIn, so the studio's "can the hub be reached?" question
    and huggingface_hub's own requests get real HTTP answers."""
    from huggingface_hub import constants, hf_api

    hub = HubStandIn()
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # read once at import, from this file's setdefault
    monkeypatch.setattr(constants, "ENDPOINT", hub.url)  # as HF_ENDPOINT sets both at import
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(hf_api.api, "endpoint", hub.url)  # the module-level HfApi read ENDPOINT at import
    yield hub
    hub.close()


@pytest.fixture
def no_keyring(monkeypatch):
    """A computer without a system keyring (keyring's own "fail" backend)."""
    import keyring
    from keyring.backends import fail

    from studio.core import settings as st

    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    monkeypatch.setattr(st, "_token_from_keyring_in_env", False)
    yield
    keyring.set_keyring(previous)
    os.environ.pop("HF_TOKEN", None)


@pytest.fixture(scope="session")
def rate_runs_home(tmp_path_factory) -> Path:
    """A home whose runs folder holds three finished demo runs at different learning rates (12 steps,
    eval every 4), shared by the comparison tests of the core and of the window: they only read them."""
    from tests.demo_runs import learning_rate_runs

    home = tmp_path_factory.mktemp("rate-runs-home")
    learning_rate_runs(home, steps=12, eval_every=4)
    return home
