"""Without a connection to the hub: one plain message at once, with what is cached, never half a
minute of retry lines (studio/core/hub.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from studio.core import hub
from tests.tiny_models import save_tiny_model


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens here once the socket is closed


def cache_with_one_model(root: Path) -> Path:
    """A hub cache as huggingface_hub lays it out, holding org/tiny-llama."""
    repo = root / "models--org--tiny-llama"
    save_tiny_model(repo / "snapshots" / "0123abcd", "llama")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    return root


def test_reachable_and_unreachable_hub_answer_at_once(reachable_hub, monkeypatch):
    assert hub.hub_reachable()
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    started = time.monotonic()
    assert not hub.hub_reachable()
    assert time.monotonic() - started < hub.REACH_TIMEOUT_S


def test_a_hub_id_without_the_hub_is_one_plain_message_with_what_is_cached(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(HF_ENDPOINT=f"http://127.0.0.1:{closed_port()}", HF_HUB_CACHE=str(cache_with_one_model(tmp_path / "hub")),
               STUDIO_HOME=str(tmp_path / "home"))
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "studio", "plan", "someorg/somemodel", "--gpu", "24GB"], env=env,
                          capture_output=True, text=True, timeout=120)
    took = time.monotonic() - started
    assert done.returncode == 2, done.stderr
    assert "Retry" not in done.stderr and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("Error: ") and lines[1].startswith("What to do: "), done.stderr
    assert "cannot be reached" in lines[0] and "org/tiny-llama" in lines[1]
    assert took < 15, took  # python and torch start-up included; the retries alone took 23 s
