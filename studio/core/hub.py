"""Whether the Hugging Face hub can be reached, asked once and quickly before any hub request.

Without a connection huggingface_hub retries each request five times with growing waits (about
25 seconds) and logs a line per try. An offline user should instead hear one plain sentence at once,
with what is already on this computer. The question is one HEAD request through huggingface_hub's
own HTTP client (so proxies and HF_ENDPOINT count), without retries; any HTTP answer means reachable.
"""

from __future__ import annotations

import os
import time

from studio.core.errors import StudioError

REACH_TIMEOUT_S = 4.0
REMEMBER_S = {True: 60.0, False: 10.0}  # how long an answer is trusted before asking again
_answer: tuple[float, str, bool] | None = None  # (when, endpoint, reachable)


def hub_offline() -> bool:
    """The user (or the Settings dialog) switched the hub off: HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE."""
    value = os.environ.get("HF_HUB_OFFLINE", "") or os.environ.get("TRANSFORMERS_OFFLINE", "")
    return value.strip().lower() in ("1", "true", "yes", "on")


def endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def hub_reachable() -> bool:
    global _answer
    url = endpoint()
    if _answer is not None and _answer[1] == url and time.monotonic() - _answer[0] < REMEMBER_S[_answer[2]]:
        return _answer[2]
    from huggingface_hub.utils import get_session

    try:
        get_session().head(url, timeout=REACH_TIMEOUT_S)
        reachable = True
    except Exception:  # no DNS, refused, timed out, TLS: not reachable, whatever the reason
        reachable = False
    _answer = (time.monotonic(), url, reachable)
    return reachable


def _cached_names(limit: int = 8) -> str:
    from studio.core.models import cached_models

    names = [m.hub_id for m in cached_models() if m.has_weights]
    if not names:
        return "No hub model is cached on this computer yet"
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return "Cached on this computer: " + ", ".join(names[:limit]) + more


def require_hub(what: str) -> None:
    """Raise one plain StudioError when `what` (e.g. "the configuration of org/name") would need the
    hub and it is switched off or cannot be reached."""
    if hub_offline():
        raise StudioError(f"The studio is offline (HF_HUB_OFFLINE is set), so {what} cannot be fetched.",
                          f"Turn offline mode off in Settings, or use what is here. {_cached_names()}; the demo "
                          "model and local folders always work.")
    if not hub_reachable():
        raise StudioError(f"The Hugging Face hub ({endpoint()}) cannot be reached, so {what} cannot be fetched.",
                          f"Check the internet connection and try again, or use what is here. {_cached_names()}; "
                          "the demo model and local folders always work.")


def hub_error(hub_id: str, exc: Exception, what: str) -> StudioError:
    """A hub failure while fetching `what` of `hub_id`, in plain words (downloads and planning alike)."""
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    page = f"{endpoint()}/{hub_id}"
    if isinstance(exc, GatedRepoError):
        return StudioError(f"{hub_id} is a gated model: its makers share it only with people who have accepted its "
                           "licence on its page, signed in to Hugging Face.",
                           f"Open {page}, sign in and accept the licence (approval can take from minutes to days); then "
                           f"create an access token at {endpoint()}/settings/tokens, save it in Settings ▸ Hub token, and "
                           "try again.")
    if isinstance(exc, RepositoryNotFoundError):
        return StudioError(f"There is no model called {hub_id} on the Hugging Face hub (or it is private).",
                           "Check the spelling (organisation/name); for a private model of yours save your access token "
                           "in Settings ▸ Hub token.")
    if isinstance(exc, (LocalEntryNotFoundError, OSError)):  # LocalEntryNotFoundError is an EntryNotFoundError: first
        return StudioError(f"The Hugging Face hub cannot be reached, so {what} of {hub_id} cannot be fetched.",
                           "Check the internet connection (and that Offline is off in Settings), then try again; "
                           "the demo model and local folders always work.")
    if isinstance(exc, EntryNotFoundError):
        return StudioError(f"{hub_id} has no config.json, so it is not a transformers model.", "Pick another model.")
    return StudioError(f"Fetching {what} of {hub_id} failed: {exc}", "Try again; if it keeps failing, pick a local folder instead.")
