"""How numbers read in the window: bytes, parameters, durations."""

from __future__ import annotations

GiB = 1024**3
MiB = 1024**2


def gb(n: int | float | None, digits: int = 1) -> str:
    """GPU makers' GB are binary: a 24 GB card holds 24 GiB. The window says GB, as the cards do."""
    if n is None:
        return "–"
    if abs(n) < GiB and abs(n) >= MiB:
        return f"{n / MiB:,.0f} MB"
    if abs(n) < MiB:
        return f"{n / 1024:,.0f} KB"
    return f"{n / GiB:,.{digits}f} GB"


def params(n: int | None) -> str:
    if n is None:
        return "–"
    if n >= 1e9:
        return f"{n / 1e9:.2f} B"
    if n >= 1e6:
        return f"{n / 1e6:.1f} M"
    if n >= 1e3:
        return f"{n / 1e3:.1f} K"
    return str(n)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    return f"{seconds // 60}:{seconds % 60:02d}"


def share(part: float, whole: float) -> str:
    if not whole:
        return "–"
    value = 100 * part / whole
    return f"{value:.2f}%" if value < 10 else f"{value:.1f}%"
