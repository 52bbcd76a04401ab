"""Gated models explained, and a hub token kept without a system keyring: in Hugging Face's own
token file, readable only by the user, after the hub (a real HTTP stand-in) accepted it."""

from __future__ import annotations

import os
import stat

import pytest

from studio.core import settings as st
from studio.core.errors import StudioError

WHOAMI = "/api/whoami-v2"
ME = {"type": "user", "name": "plant-lover", "auth": {"type": "access_token",
                                                     "accessToken": {"displayName": "studio", "role": "read"}}}


def test_without_a_keyring_the_token_goes_to_a_file_only_the_user_can_read(reachable_hub, no_keyring):
    reachable_hub.routes[WHOAMI] = (200, {}, ME)
    with pytest.raises(StudioError) as refused:
        st.set_token("hf_secret_abc")  # the keyring was asked for: the advice names the file option
    assert "only you can read" in refused.value.advice
    st.set_token("hf_secret_abc", in_file=True)
    path = st.token_file()
    assert path.read_text().strip() == "hf_secret_abc" and st.get_token() == "hf_secret_abc"
    assert st.token_storage() == "file"
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    checked = [headers for method, where, headers in reachable_hub.requests if where.startswith(WHOAMI)]
    assert checked and checked[-1].get("authorization") == "Bearer hf_secret_abc"
    assert "hf_secret" not in st.settings_path().read_text() if st.settings_path().exists() else True
    st.delete_token()
    assert not path.exists() and st.get_token() is None and st.token_storage() is None


def test_a_token_the_hub_refuses_is_not_saved(reachable_hub, no_keyring):
    reachable_hub.routes[WHOAMI] = (401, {"X-Error-Message": "Invalid credentials in Authorization header"},
                                    {"error": "Invalid credentials in Authorization header"})
    with pytest.raises(StudioError, match="did not accept"):
        st.set_token("hf_wrong", in_file=True)
    assert not st.token_file().exists()


def test_a_gated_model_is_explained_with_its_page(reachable_hub, tmp_path, monkeypatch):
    from studio.core.models import resolve_model

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    reachable_hub.routes["/some-lab/gated-model/resolve/main/config.json"] = (
        403, {"X-Error-Code": "GatedRepo", "X-Error-Message": "Access to model some-lab/gated-model is restricted."},
        {"error": "Access to model some-lab/gated-model is restricted."})
    with pytest.raises(StudioError) as err:
        resolve_model("some-lab/gated-model")
    assert "gated model" in err.value.message and "accepted its licence" in err.value.message
    assert f"{reachable_hub.url}/some-lab/gated-model" in err.value.advice and "Hub token" in err.value.advice
