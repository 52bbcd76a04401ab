"""How a run fails: the `error` of a failed run's `finished` event (events.py), its kinds, their titles
and what each failure is about.

    {"type": "finished", "status": "failed",
     "error": {"kind": "bad_input", "message": "...", "advice": "...", "topic": "data"}}

`kind` says what happened (the window shows kind-specific help and a title); `topic` says what the
user would change to fix it, so the window opens the right page without reading the message:

    "data"      the data: its file, rows, format, or examples too long for the sequence length (Data page)
    "model"     the base model: it cannot be found, read or loaded (Model page)
    "settings"  the recipe's training settings: an unreadable run.toml, a learning rate that diverged
    "memory"    GPU memory or RAM ran out (Memory page)
    "disk"      the disk is full
    None        nothing the user set: a crash, a kill, a hard cancel, a run with nothing to resume

A failure's topic is set where the failure is made (the worker's RunFailure and check_inputs, the
launcher's `classify`); a kind that is always about one thing has it by default (KIND_TOPICS). Events
written before topics existed have none: `Failure.from_dict` gives them their kind's default.
"""

from __future__ import annotations

from dataclasses import dataclass

FAILURE_KINDS = ("out_of_memory", "nan_loss", "disk_full", "bad_input", "cancelled_hard", "crash", "killed")
# The window's own kind for a run the launcher refused to start (a StudioError before any worker
# ran): never written to an events file.
COULD_NOT_START = "could_not_start"
FAILURE_TITLES = {
    "out_of_memory": "The GPU ran out of memory",
    "nan_loss": "Training diverged (the loss became not-a-number)",
    "disk_full": "The disk is full",
    "bad_input": "The model or the data cannot be used",
    "cancelled_hard": "The run was stopped at once",
    "crash": "The training process stopped unexpectedly",
    "killed": "The training process was ended from outside",
    COULD_NOT_START: "The run could not start",
}
UNKNOWN_TITLE = "The run failed"
TOPICS = ("data", "model", "settings", "memory", "disk")
KIND_TOPICS = {"out_of_memory": "memory", "disk_full": "disk", "nan_loss": "settings"}


def title_of(kind: str | None) -> str:
    """The heading the window shows for a failure of this kind."""
    return FAILURE_TITLES.get(kind or "", UNKNOWN_TITLE)


def topic_of(kind: str, topic: str | None = None) -> str | None:
    """`topic` when given, else the one a failure of this kind is always about (None if it has none)."""
    if topic is not None and topic not in TOPICS:
        raise ValueError(f"unknown failure topic {topic!r}: one of {', '.join(TOPICS)} or None")
    return topic or KIND_TOPICS.get(kind)


@dataclass(frozen=True)
class Failure:
    """A failed run's error: what happened (`kind`), for people (`message`, `advice`), and what to change (`topic`)."""

    kind: str
    message: str
    advice: str = ""
    topic: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "topic", topic_of(self.kind, self.topic))

    @property
    def title(self) -> str:
        return title_of(self.kind)

    def as_dict(self) -> dict:
        """The `error` of the `finished` event."""
        return {"kind": self.kind, "message": self.message, "advice": self.advice, "topic": self.topic}

    @classmethod
    def from_dict(cls, error: dict | None) -> Failure | None:
        """The error of a `finished` event as written (by this studio or an older one); None when there is none."""
        if not isinstance(error, dict):
            return None
        topic = error.get("topic")
        return cls(str(error.get("kind") or "crash"), str(error.get("message") or ""), str(error.get("advice") or ""),
                   topic if topic in TOPICS else None)


class RunFailure(Exception):
    """A failure raised inside the worker; it ends the run with `failure` as the `finished` event's error."""

    def __init__(self, kind: str, message: str, advice: str = "", topic: str | None = None):
        super().__init__(message)
        self.failure = Failure(kind, message, advice, topic)
        self.kind, self.message, self.advice, self.topic = kind, message, advice, self.failure.topic

    def error(self) -> dict:
        """The `error` of the `finished` event."""
        return self.failure.as_dict()
