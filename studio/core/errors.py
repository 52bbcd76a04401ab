"""Errors meant for people: what went wrong, and what to do about it."""

from __future__ import annotations


class StudioError(Exception):
    """A failure the user can act on.

    ``message`` says what happened in plain words; ``advice`` says what to do next.
    The CLI prints both (no traceback unless ``--debug``); the window shows them in a dialog.
    ``topic``, where known, says what the user changes to fix it ("data", "model", "settings", ...:
    the vocabulary of training/failures.py), so the window opens the right page without reading the message.
    """

    def __init__(self, message: str, advice: str = "", *, topic: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.advice = advice
        self.topic = topic

    def __str__(self) -> str:
        return f"{self.message}\n{self.advice}" if self.advice else self.message
