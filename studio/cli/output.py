"""What every command prints alike: sizes in GiB, exit statuses, indented text, durations."""

from __future__ import annotations

GiB = 1024**3
EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1


def gib(n: int) -> str:
    return f"{n / GiB:.2f}"


def indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in text.rstrip("\n").split("\n"))


def duration(seconds) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"
