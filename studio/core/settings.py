"""The studio's settings: where runs go, offline mode, and whether models may run their own code.

Settings live in `settings.toml` in the user's config folder. The Hugging Face token is *not* a
setting: it is kept in the system keyring (Secret Service, macOS Keychain, Windows Credential
Locker) through the `keyring` package — or, where there is no keyring and the user asks for it, in
Hugging Face's own token file (readable only by the user, written by huggingface_hub's login) — and
only ever handed to the hub through the process environment. It is never written to a settings
file, a recipe, an event or a log.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from studio.core import paths
from studio.core.errors import StudioError
from studio.core.hub import hub_offline

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

log = logging.getLogger(__name__)

SETTINGS_FILE = "settings.toml"
KEYRING_SERVICE = "lora-studio"
KEYRING_USER = "huggingface-token"
TOKEN_ENV = "HF_TOKEN"
OFFLINE_ENV = "HF_HUB_OFFLINE"

TRUST_REMOTE_CODE_WARNING = (
    "A model that ships its own Python code runs that code on your computer when it is loaded. "
    "Allow it only for models from people you trust; most popular models work without it."
)


@dataclass
class Settings:
    runs_dir: str | None = None  # None: the studio's data folder (see paths.runs_dir)
    offline: bool = False  # never contact the Hugging Face hub
    trust_remote_code: bool = False  # allow a model's own Python code (off by default)
    data_dir: str | None = None  # the folder the last data file came from: where the next file dialog opens

    def runs_folder(self) -> Path:
        return Path(self.runs_dir).expanduser() if self.runs_dir else paths.runs_dir()


def settings_path() -> Path:
    return paths.user_config_dir() / SETTINGS_FILE


def load_settings(path: Path | None = None) -> Settings:
    """The saved settings; the defaults when there are none. A damaged file is reported and ignored."""
    path = Path(path) if path else settings_path()
    if not path.is_file():
        return Settings()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        log.warning("ignoring the damaged settings file %s: %s", path, exc)
        return Settings()
    known = {f.name for f in fields(Settings)}
    values = {k: v for k, v in data.items() if k in known}
    settings = Settings()
    for key, value in values.items():
        default = getattr(settings, key)
        if isinstance(default, bool) and not isinstance(value, bool):
            continue
        setattr(settings, key, value)
    return settings


def save_settings(settings: Settings, path: Path | None = None) -> Path:
    """Write the settings atomically (the token is never among them)."""
    import tomli_w

    from studio.core.atomic import write_text

    path = Path(path) if path else settings_path()
    data = {k: v for k, v in asdict(settings).items() if v is not None}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, "# LoRA Studio settings. The Hugging Face token is kept in the system keyring, not here.\n"
                   + tomli_w.dumps(data))
    except OSError as exc:
        raise StudioError(f"The settings could not be saved in {path.parent}: {exc.strerror}.",
                          "Check that you can write to that folder (or set STUDIO_HOME to another one).") from exc
    return path


# ---------------------------------------------------------------------------------------------
# Offline mode
# ---------------------------------------------------------------------------------------------

_offline_set_by_us = False
_token_from_keyring_in_env = False


def apply_offline(offline: bool) -> None:
    """Turn the hub off (or back on) for this process: `hub.hub_offline()` reads the environment.

    Offline set from outside (HF_HUB_OFFLINE in the user's environment) is left alone.
    """
    global _offline_set_by_us
    if offline:
        if not os.environ.get(OFFLINE_ENV):
            os.environ[OFFLINE_ENV] = "1"
            _offline_set_by_us = True
    elif _offline_set_by_us:
        os.environ.pop(OFFLINE_ENV, None)
        _offline_set_by_us = False
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:  # it read the variable once, at its import: tell it the new state too
        constants.HF_HUB_OFFLINE = hub_offline()


# ---------------------------------------------------------------------------------------------
# The hub token, in the system keyring or Hugging Face's token file
# ---------------------------------------------------------------------------------------------


def keyring_available() -> bool:
    """Whether a real system keyring is there (not keyring's "fail" or plaintext fallbacks)."""
    try:
        import keyring
        from keyring.backends import fail

        backend = keyring.get_keyring()
    except Exception:
        return False
    if isinstance(backend, fail.Keyring):
        return False
    return getattr(backend, "priority", 1) > 0


def _keyring_token() -> str | None:
    if not keyring_available():
        return None
    try:
        import keyring

        return keyring.get_password(KEYRING_SERVICE, KEYRING_USER) or None
    except Exception as exc:  # a locked or broken keyring must not stop the studio
        log.warning("could not read the token from the keyring: %s", type(exc).__name__)
        return None


def token_file() -> Path:
    """Hugging Face's own token file (huggingface_hub writes it readable only by its owner)."""
    from huggingface_hub import constants

    return Path(constants.HF_TOKEN_PATH)


def token_storage() -> str | None:
    """Where the saved token is: "keyring", "file" (Hugging Face's token file) or None."""
    if _keyring_token():
        return "keyring"
    try:
        return "file" if token_file().read_text(encoding="utf-8").strip() else None
    except OSError:
        return None


def get_token() -> str | None:
    """The saved hub token (the keyring's, else the token file's), or None."""
    where = token_storage()
    if where == "keyring":
        return _keyring_token()
    return token_file().read_text(encoding="utf-8").strip() if where == "file" else None


def set_token(token: str, *, in_file: bool = False) -> None:
    """Keep `token` in the system keyring — or, `in_file`, in Hugging Face's token file, readable only
    by this user, after the hub has accepted it — and hand it to the hub for this session."""
    token = (token or "").strip()
    if not token:
        delete_token()
        return
    if in_file:
        _save_to_token_file(token)
    else:
        _save_to_keyring(token)
    global _token_from_keyring_in_env
    if not os.environ.get(TOKEN_ENV) or _token_from_keyring_in_env:
        os.environ[TOKEN_ENV] = token
        _token_from_keyring_in_env = True


def _save_to_keyring(token: str) -> None:
    if not keyring_available():
        raise StudioError(
            "This computer has no system keyring to keep the token in.",
            f"Tick \"Save it in a file only you can read\" to keep it in Hugging Face's token file ({token_file()}), "
            "or set the HF_TOKEN environment variable before starting the studio.",
        )
    try:
        import keyring

        keyring.set_password(KEYRING_SERVICE, KEYRING_USER, token)
    except Exception as exc:
        raise StudioError(f"The keyring refused to store the token ({type(exc).__name__}).",
                          "Unlock your keyring and try again.") from exc


def _save_to_token_file(token: str) -> None:
    """huggingface_hub's own login: it checks the token with the hub and writes the file (mode 0600)."""
    from huggingface_hub import login
    from huggingface_hub.errors import HfHubHTTPError

    from studio.core.hub import require_hub

    require_hub("the check of your token")
    try:
        login(token=token, add_to_git_credential=False)
    except (HfHubHTTPError, ValueError) as exc:
        raise StudioError("The Hugging Face hub did not accept this token.",
                          "Copy it again from your account's Access Tokens page (huggingface.co/settings/tokens); "
                          "an organisation's token does not work, a personal one does.") from exc


def delete_token() -> None:
    """Remove the saved token from wherever the studio keeps it (the keyring and the token file)."""
    global _token_from_keyring_in_env
    if keyring_available():
        try:
            import keyring

            keyring.delete_password(KEYRING_SERVICE, KEYRING_USER)
        except Exception:  # nothing stored, or a locked keyring: nothing to delete then
            pass
    if token_storage() == "file":
        _forget_token_file()
    if _token_from_keyring_in_env:
        os.environ.pop(TOKEN_ENV, None)
        _token_from_keyring_in_env = False


def _forget_token_file() -> None:
    """The active token leaves the token file through huggingface_hub (its other saved tokens stay)."""
    from huggingface_hub import logout
    from huggingface_hub.utils import get_stored_tokens

    active = token_file().read_text(encoding="utf-8").strip()
    for name, stored in get_stored_tokens().items():
        if stored == active:
            try:
                logout(token_name=name)
            except OSError:  # "still logged in": HF_TOKEN is set in the environment, which the user controls
                pass
    token_file().unlink(missing_ok=True)


def export_token_to_environment() -> bool:
    """Put the keyring's token into this process's environment (HF_TOKEN) for huggingface_hub and
    the training worker, unless the user set HF_TOKEN themselves. True when a token was exported.
    (The token file needs no export: huggingface_hub reads it itself, in the worker too.)"""
    global _token_from_keyring_in_env
    if os.environ.get(TOKEN_ENV):
        return False
    token = _keyring_token()
    if not token:
        return False
    os.environ[TOKEN_ENV] = token
    _token_from_keyring_in_env = True
    return True


def mask(token: str | None) -> str:
    """What may be shown of a token: its first four characters."""
    if not token:
        return ""
    return token[:4] + "…" if len(token) > 4 else "…"
