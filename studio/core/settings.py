"""The studio's settings: where runs go, offline mode, and whether models may run their own code.

Settings live in `settings.toml` in the user's config folder. The Hugging Face token is *not* a
setting: it is kept in the system keyring (Secret Service, macOS Keychain, Windows Credential
Locker) through the `keyring` package, and only ever handed to the hub through the process
environment. It is never written to a settings file, a recipe, an event or a log.
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

    path = Path(path) if path else settings_path()
    data = {k: v for k, v in asdict(settings).items() if v is not None}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text("# LoRA Studio settings. The Hugging Face token is kept in the system keyring, not here.\n"
                       + tomli_w.dumps(data), encoding="utf-8")
        tmp.replace(path)
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
# The hub token, in the system keyring
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


def get_token() -> str | None:
    """The saved hub token, or None (also when there is no keyring, or it is locked)."""
    if not keyring_available():
        return None
    try:
        import keyring

        return keyring.get_password(KEYRING_SERVICE, KEYRING_USER) or None
    except Exception as exc:  # a locked or broken keyring must not stop the studio
        log.warning("could not read the token from the keyring: %s", type(exc).__name__)
        return None


def set_token(token: str) -> None:
    """Keep `token` in the system keyring and hand it to the hub for this session."""
    token = (token or "").strip()
    if not token:
        delete_token()
        return
    if not keyring_available():
        raise StudioError(
            "This computer has no system keyring to keep the token in safely.",
            "Install and unlock a keyring (GNOME Keyring, KWallet, macOS Keychain), or set the HF_TOKEN "
            "environment variable before starting the studio. The studio never writes the token to a file.",
        )
    try:
        import keyring

        keyring.set_password(KEYRING_SERVICE, KEYRING_USER, token)
    except Exception as exc:
        raise StudioError(f"The keyring refused to store the token ({type(exc).__name__}).",
                          "Unlock your keyring and try again.") from exc
    global _token_from_keyring_in_env
    if not os.environ.get(TOKEN_ENV) or _token_from_keyring_in_env:
        os.environ[TOKEN_ENV] = token
        _token_from_keyring_in_env = True


def delete_token() -> None:
    global _token_from_keyring_in_env
    if keyring_available():
        try:
            import keyring

            keyring.delete_password(KEYRING_SERVICE, KEYRING_USER)
        except Exception:  # nothing stored, or a locked keyring: nothing to delete then
            pass
    if _token_from_keyring_in_env:
        os.environ.pop(TOKEN_ENV, None)
        _token_from_keyring_in_env = False


def export_token_to_environment() -> bool:
    """Put the keyring's token into this process's environment (HF_TOKEN) for huggingface_hub and
    the training worker, unless the user set HF_TOKEN themselves. True when a token was exported."""
    global _token_from_keyring_in_env
    if os.environ.get(TOKEN_ENV):
        return False
    token = get_token()
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
