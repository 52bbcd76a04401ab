"""A problem in the user's data: where it is, what is wrong, and how to fix it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

FATAL = "fatal"  # nothing usable: the data cannot be trained on until this is fixed
ERROR = "error"  # this row is dropped (or, for bad lines, skipped when the user allows it)
WARNING = "warning"  # the row is kept, but the user should know


@dataclass(frozen=True)
class Problem:
    line: int | None  # 1-based line in the file (JSONL, CSV, text) or record/row number (JSON, Parquet, hub)
    field: str | None  # the column or turn the problem is in, e.g. "output", "messages[3].content"
    message: str
    fix: str
    severity: str = ERROR
    file: str | None = None  # the file's name, for folders of several files
    kind: str = ""  # a stable key for counting ("malformed_json", "empty_response", ...)

    def where(self) -> str:
        place = f"{self.file}:" if self.file else ""
        return f"{place}{self.line}" if self.line is not None else (self.file or "")

    def as_dict(self) -> dict:
        return {"line": self.line, "field": self.field, "message": self.message, "fix": self.fix,
                "severity": self.severity, "file": self.file, "kind": self.kind}


@dataclass
class ProblemLog:
    """Collects problems; keeps every count but only the first `limit` problems themselves, so a
    million broken rows cannot fill the memory."""

    limit: int = 5000
    problems: list[Problem] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)

    def add(self, problem: Problem) -> None:
        self.counts[problem.kind or problem.message] += 1
        if len(self.problems) < self.limit:
            self.problems.append(problem)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def has_fatal(self) -> bool:
        return any(p.severity == FATAL for p in self.problems)
