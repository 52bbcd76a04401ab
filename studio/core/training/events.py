"""The events a worker writes: one JSON object per line in events.jsonl (and on its stdout).

Readers are tolerant: a worker killed mid-write leaves a partial last line, which is skipped.
Fields may be added freely; never rename one without updating every reader. The one reader of what
the events mean is `runs.RunHistory` (where an attempt starts and ends, the curves, the samples, the
status); a `finished` event's status is completed, cancelled or failed, and the `error` of a failed
one is described in failures.py.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

EVENT_TYPES = ("started", "preflight", "step", "eval", "sample", "checkpoint", "finished", "log")
# A preference run's (DPO, ORPO) rewards: the key in TRL's logs → the field a `step` event carries it in;
# an `eval` event has "eval_" before both.
REWARD_FIELDS = {"rewards/margins": "reward_margin", "rewards/accuracies": "reward_accuracy",
                 "rewards/chosen": "reward_chosen", "rewards/rejected": "reward_rejected"}


def _clean(value):
    """JSON has no NaN/inf: write them as null (a NaN loss is reported by its own event)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def is_main_process() -> bool:
    """Whether this process is rank 0 of a (possibly multi-GPU) run: the one that speaks for it."""
    return int(os.environ.get("RANK", "0")) == 0


class EventWriter:
    """Appends events to events.jsonl, flushed at once, and echoes them to a stream (stdout).

    Only the main process of a multi-GPU run writes: on the other ranks a writer writes nothing
    (`emit` still returns the event), so the code that reports needs no rank guards."""

    def __init__(self, path: Path, echo: IO | None = sys.stdout, *, active: bool | None = None):
        self.path = Path(path)
        self.active = is_main_process() if active is None else active
        self.echo = echo if self.active else None
        self._fh = self.path.open("a", encoding="utf-8") if self.active else None
        if self._fh is not None and not _ends_a_line(self.path):
            self._fh.write("\n")  # a killed writer's cut line stays alone; the next event starts its own
            self._fh.flush()

    def emit(self, type: str, **fields) -> dict:
        event = {"type": type, "time": round(time.time(), 3), **_clean(fields)}
        if self._fh is None:
            return event
        line = json.dumps(event, ensure_ascii=False)
        self._fh.write(line + "\n")
        self._fh.flush()
        if self.echo is not None:
            try:
                self.echo.write(line + "\n")
                self.echo.flush()
            except (OSError, ValueError):  # a closed pipe must not stop training
                self.echo = None
        return event

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


def parse_line(line: str) -> dict | None:
    line = line.strip()
    if not line:
        return None
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        return None  # a partial line from a killed worker
    return event if isinstance(event, dict) and "type" in event else None


def _ends_a_line(path: Path) -> bool:
    """Whether the file is empty or ends with a newline."""
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        if fh.tell() == 0:
            return True
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"


def _lines(path: Path, offset: int = 0) -> Iterator[tuple[int, str]]:
    """(byte offset, text) of each line from `offset` on."""
    with path.open("rb") as fh:
        fh.seek(offset)
        for raw in fh:
            yield offset, raw.decode("utf-8", errors="replace")
            offset += len(raw)


def read_events(path: Path, offset: int = 0) -> list[dict]:
    """The events in the file, from byte `offset` on (where one attempt of a run began)."""
    path = Path(path)
    if not path.is_file():
        return []
    return [e for e in (parse_line(line) for _, line in _lines(path, offset)) if e is not None]


def size_of(path: Path) -> int:
    """Bytes in the events file (0 if there is none): where the next attempt's events will begin."""
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def last_attempt_offset(path: Path) -> int:
    """Where the last attempt's events begin: the line of the last `started` event (0 if none)."""
    path = Path(path)
    if not path.is_file():
        return 0
    found = 0
    for offset, line in _lines(path):
        event = parse_line(line)
        if event is not None and event["type"] == "started":
            found = offset
    return found


class EventTail:
    """Follows events.jsonl as it grows (like `tail -f`), yielding only complete new events, from
    byte `offset` on."""

    def __init__(self, path: Path, offset: int = 0):
        self.path = Path(path)
        self._offset = offset
        self._partial = b""

    def poll(self) -> list[dict]:
        if not self.path.is_file():
            return []
        with self.path.open("rb") as fh:
            fh.seek(self._offset)
            chunk = fh.read()
            self._offset = fh.tell()
        if not chunk:
            return []
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()  # the last piece has no newline yet (or is empty)
        events = (parse_line(line.decode("utf-8", errors="replace")) for line in lines)
        return [e for e in events if e is not None]

    def follow(self, alive, interval: float = 0.2) -> Iterator[dict]:
        """Yield events until `alive()` is false and nothing new is left."""
        while True:
            events = self.poll()
            yield from events
            if not events:
                if not alive():
                    yield from self.poll()
                    return
                time.sleep(interval)
