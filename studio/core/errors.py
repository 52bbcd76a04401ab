"""Errors meant for people: what went wrong, and what to do about it."""

from __future__ import annotations


class StudioError(Exception):
    """A failure the user can act on.

    ``message`` says what happened in plain words; ``advice`` says what to do next.
    The CLI prints both (no traceback unless ``--debug``); the window shows them in a dialog.
    """

    def __init__(self, message: str, advice: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.advice = advice

    def __str__(self) -> str:
        return f"{self.message}\n{self.advice}" if self.advice else self.message
