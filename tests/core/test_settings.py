"""Settings on disk, offline mode, and the hub token in the system keyring (never in a file)."""

from __future__ import annotations

import os

import keyring
import pytest
from keyring.backend import KeyringBackend

from studio.core import settings as st
from studio.core.errors import StudioError


class MemoryKeyring(KeyringBackend):
    """A keyring that lives in memory, standing in for the system's."""

    priority = 10

    def __init__(self):
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service, username):
        return self.store.get((service, username))

    def set_password(self, service, username, password):
        self.store[(service, username)] = password

    def delete_password(self, service, username):
        self.store.pop((service, username), None)


@pytest.fixture
def memory_keyring(monkeypatch):
    previous = keyring.get_keyring()
    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(st, "_token_from_keyring_in_env", False)
    yield ring
    keyring.set_keyring(previous)
    os.environ.pop("HF_TOKEN", None)


def test_defaults_when_nothing_is_saved(tmp_path):
    s = st.load_settings(tmp_path / "none.toml")
    assert s == st.Settings() and s.trust_remote_code is False and s.offline is False


def test_settings_round_trip(tmp_path):
    path = tmp_path / "settings.toml"
    st.save_settings(st.Settings(runs_dir=str(tmp_path / "runs"), offline=True, trust_remote_code=True), path)
    again = st.load_settings(path)
    assert again.runs_dir == str(tmp_path / "runs") and again.offline and again.trust_remote_code
    assert again.runs_folder() == tmp_path / "runs"


def test_a_damaged_file_gives_the_defaults(tmp_path):
    path = tmp_path / "settings.toml"
    path.write_text("offline = [not toml", encoding="utf-8")
    assert st.load_settings(path) == st.Settings()
    path.write_text('offline = "yes"\nunknown = 3\n', encoding="utf-8")  # wrong type, unknown key: ignored
    assert st.load_settings(path) == st.Settings()


def test_default_location_is_under_studio_home(_private_studio_home):
    assert st.settings_path().is_relative_to(_private_studio_home)
    st.save_settings(st.Settings(offline=True))
    assert st.load_settings().offline


def test_offline_mode_reaches_the_hub_checks(monkeypatch):
    from studio.core.hub import hub_offline

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(st, "_offline_set_by_us", False)
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", constants.HF_HUB_OFFLINE)  # restored after the test
    st.apply_offline(True)
    assert hub_offline() and constants.is_offline_mode()  # huggingface_hub read the variable at its import
    st.apply_offline(False)
    assert not hub_offline() and not constants.is_offline_mode()


def test_offline_set_by_the_user_is_left_alone(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(st, "_offline_set_by_us", False)
    st.apply_offline(False)
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_token_lives_in_the_keyring_not_in_files(memory_keyring, tmp_path):
    st.set_token("hf_secret_token_123")
    assert memory_keyring.store[(st.KEYRING_SERVICE, st.KEYRING_USER)] == "hf_secret_token_123"
    assert st.get_token() == "hf_secret_token_123"
    assert os.environ["HF_TOKEN"] == "hf_secret_token_123"  # for huggingface_hub, this process only
    path = st.save_settings(st.Settings(offline=True), tmp_path / "settings.toml")
    assert "hf_secret" not in path.read_text()
    assert st.mask(st.get_token()) == "hf_s…"
    st.delete_token()
    assert st.get_token() is None and "HF_TOKEN" not in os.environ


def test_token_is_exported_to_the_environment_at_start(memory_keyring):
    memory_keyring.set_password(st.KEYRING_SERVICE, st.KEYRING_USER, "hf_from_ring")
    assert st.export_token_to_environment()
    assert os.environ["HF_TOKEN"] == "hf_from_ring"


def test_a_token_the_user_set_wins(memory_keyring, monkeypatch):
    memory_keyring.set_password(st.KEYRING_SERVICE, st.KEYRING_USER, "hf_from_ring")
    monkeypatch.setenv("HF_TOKEN", "hf_users_own")
    assert not st.export_token_to_environment()
    assert os.environ["HF_TOKEN"] == "hf_users_own"


def test_without_a_keyring_the_token_is_refused_with_advice(monkeypatch):
    from keyring.backends import fail

    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        assert not st.keyring_available()
        assert st.get_token() is None
        with pytest.raises(StudioError) as err:
            st.set_token("hf_x")
        assert "keyring" in err.value.message and "HF_TOKEN" in err.value.advice
    finally:
        keyring.set_keyring(previous)
