"""What a run's events tell, read by one set of rules: where each attempt starts and ends, the curves,
the samples, how the last attempt ended. Every reader of events.jsonl (the runs list, the export, the
run view, the launcher, the window's runner, the command line's progress) asks a `RunHistory`.

The rules:
- An attempt starts at a `started` event: a run trained, cancelled and resumed has two. A resume whose
  worker failed its checks before training writes its `finished` with no `started` before it.
- The last attempt ended with the last `finished` after its `started` (or, when no attempt ever
  started, with the last `finished` at all). A `started` after it means the last attempt has not
  ended: it is still training, or it was killed without a word (interrupted).
- After a resume, a step's later value wins: the curves continue where the checkpoint left them, and
  the values the earlier attempt logged after that step are forgotten.
- A cut last line (a worker killed mid-write) is not an event (events.read_events skips it).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from studio.core.runs.folders import EVENTS
from studio.core.training.events import REWARD_FIELDS, read_events
from studio.core.training.failures import Failure

# preference tuning (DPO, ORPO): the reward margin, chosen over rejected, and how often it is positive
REWARD_SERIES = tuple(REWARD_FIELDS.values())
EVAL_REWARD_SERIES = tuple(f"eval_{name}" for name in REWARD_SERIES)
SERIES = ("loss", "eval_loss", "lr", "grad_norm", "tokens_per_s") + REWARD_SERIES + EVAL_REWARD_SERIES
_STEP_SERIES = ("loss", "lr", "grad_norm", "tokens_per_s") + REWARD_SERIES  # the values a `step` event carries
_EVAL_SERIES = ("eval_loss",) + EVAL_REWARD_SERIES
_NOT_SCORES = ("type", "time", "step") + _EVAL_SERIES  # an `eval` event's other numbers are scores


class RunHistory:
    """A run's events so far, summed up; `add` takes them one by one as they arrive (a live run),
    `from_events` or `read` all at once (a run folder)."""

    def __init__(self) -> None:
        self.count = 0  # events added
        self.first_started: dict | None = None  # the first attempt's `started`: when the run began
        self.started: dict | None = None  # the last attempt's `started`
        self.finished: dict | None = None  # how the last attempt ended; None while it has not ended
        self.finished_at: int | None = None  # how many events had been added when it came (its position + 1)
        self.last_ended: dict | None = None  # the last `finished` of any attempt: the one that saved the adapter there is
        self.samples: list[dict] = []
        self._values: dict[str, dict[int, float]] = {name: {} for name in SERIES}
        self._scores: dict[str, dict[int, float]] = {}  # an `eval` event's numbers besides eval_loss, by name

    @classmethod
    def from_events(cls, events: Iterable[dict]) -> RunHistory:
        history = cls()
        for event in events:
            history.add(event)
        return history

    @classmethod
    def read(cls, run_dir: Path, offset: int = 0) -> RunHistory:
        """The history in a run folder's events.jsonl, from byte `offset` on (where one attempt began)."""
        return cls.from_events(read_events(Path(run_dir) / EVENTS, offset))

    def add(self, event: dict) -> None:
        self.count += 1
        kind = event["type"]
        if kind == "started":
            self._start(event)
        elif kind == "finished":
            self.finished = self.last_ended = event
            self.finished_at = self.count
        elif kind == "sample":
            self.samples.append(event)
        elif event.get("step") is not None:
            self._record(kind, event)

    def _start(self, event: dict) -> None:
        """A new attempt: forget what came after the step it starts from."""
        self.first_started = self.first_started or event
        self.started, self.finished, self.finished_at = event, None, None
        start = event.get("resumed_from_step") or 0
        for values in (*self._values.values(), *self._scores.values()):
            for step in [s for s in values if s > start]:
                del values[step]

    def _record(self, kind: str, event: dict) -> None:
        step = event["step"]
        if kind == "step":
            for name in _STEP_SERIES:
                if event.get(name) is not None:
                    self._values[name][step] = event[name]
        elif kind == "eval":
            for name in _EVAL_SERIES:
                if event.get(name) is not None:
                    self._values[name][step] = event[name]
            for name, value in event.items():
                if name not in _NOT_SCORES and isinstance(value, (int, float)) and not isinstance(value, bool):
                    self._scores.setdefault(name, {})[step] = value

    # ---- what the events tell ----

    @property
    def series(self) -> dict[str, list[tuple[int, float]]]:
        """Loss, eval loss, learning rate, gradient norm, tokens per second and (preference runs) the
        rewards, as (step, value) in step order."""
        return {name: sorted(values.items()) for name, values in self._values.items()}

    @property
    def scores(self) -> dict[str, list[tuple[int, float]]]:
        """The other numbers `eval` events carry (a score, ...), by name, as (step, value) in step order."""
        return {name: sorted(values.items()) for name, values in self._scores.items() if values}

    @property
    def status(self) -> str:
        """completed, cancelled or failed (how the last attempt ended); interrupted (it started and has not
        ended); created (nothing started). A worker owning the folder makes it `running` (runs.status_of)."""
        if self.finished is not None:
            return self.finished.get("status", "failed")
        return "interrupted" if self.started is not None else "created"

    @property
    def failure(self) -> Failure | None:
        """What went wrong, when the last attempt failed (with its `topic`: what to change to fix it)."""
        return Failure.from_dict(self.finished.get("error")) if self.status == "failed" else None

    @property
    def error(self) -> dict | None:
        """The failed attempt's `error` as it was written."""
        return self.finished.get("error") if self.status == "failed" else None

    @property
    def total_steps(self) -> int | None:
        return (self.started or {}).get("total_steps")

    @property
    def last_loss(self) -> tuple[int, float] | None:
        """(step, loss) of the last training step logged."""
        losses = self.series["loss"]
        return losses[-1] if losses else None

    @property
    def last_eval_loss(self) -> float | None:
        evals = self.series["eval_loss"]
        return evals[-1][1] if evals else None

    def ended_after(self, count: int) -> bool:
        """Whether the last attempt's `finished` came after the first `count` events (a live reader that
        replayed `count` earlier events: their `finished` belongs to earlier attempts)."""
        return self.finished_at is not None and self.finished_at > count
