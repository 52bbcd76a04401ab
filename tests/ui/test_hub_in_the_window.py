"""The hub in the window: Offline applies at once, a missing network fails within seconds with what
to do, and a token can be kept without a system keyring (a file only the user can read)."""

from __future__ import annotations

import time

from studio.core import settings as st
from tests.core.test_hub import closed_port
from tests.core.test_hub_access import ME, WHOAMI
from tests.ui.conftest import close_window, make_window, wait_until


def test_choosing_a_catalog_model_without_network_fails_within_seconds(qapp, reachable_hub, monkeypatch):
    from huggingface_hub import constants

    window = make_window()
    try:
        url = f"http://127.0.0.1:{closed_port()}"  # nothing answers: as a computer with no network
        monkeypatch.setattr(constants, "ENDPOINT", url)
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}")
        started = time.monotonic()
        window.state.load_model("qwen2.5-0.5b")  # a catalog model that is not downloaded
        wait_until(lambda: window.state.data_error or window.state.model_error, 20, "the data check to give up")
        assert time.monotonic() - started < 10
        message, advice = window.state.data_error or window.state.model_error
        assert "cannot be reached" in message and "demo model" in advice
    finally:
        close_window(window)


def test_ticking_offline_applies_at_once(qapp, reachable_hub):
    from huggingface_hub import constants

    from studio.core.hub import hub_offline
    from studio.ui.settings_dialog import SettingsDialog

    window = make_window()
    try:
        assert not constants.is_offline_mode()
        dialog = SettingsDialog(window.state, window)
        dialog.offline.setChecked(True)
        dialog.accept()
        assert hub_offline() and constants.is_offline_mode()  # huggingface_hub too, without a restart
        before = len(reachable_hub.requests)
        window.state.load_model("some-lab/not-downloaded")
        wait_until(lambda: window.state.model_error, 10, "the offline refusal")
        assert "offline" in window.state.model_error[0] and len(reachable_hub.requests) == before  # never asked
    finally:
        st.apply_offline(False)
        close_window(window)


def test_without_a_keyring_the_settings_offer_a_private_file(window, reachable_hub, no_keyring):
    from studio.ui.settings_dialog import SettingsDialog

    reachable_hub.routes[WHOAMI] = (200, {}, ME)
    dialog = SettingsDialog(window.state, window)
    dialog.show()
    assert dialog.token_in_file.isVisible() and not dialog.save_token_button.isEnabled()
    assert "no system keyring" in dialog.token_status.text()
    dialog.token_in_file.setChecked(True)
    dialog.token.setText("hf_window_secret")
    dialog.save_token_button.click()
    assert st.token_file().read_text().strip() == "hf_window_secret"
    assert "readable only by you" in dialog.token_status.text() and str(st.token_file()) in dialog.token_status.text()
    assert "hf_window_secret" not in dialog.token_status.text()
    dialog.remove_token_button.click()
    assert not st.token_file().exists() and "No token saved" in dialog.token_status.text()
    dialog.close()
