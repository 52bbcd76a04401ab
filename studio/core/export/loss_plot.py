"""The loss plot of an export (loss.svg): the training loss per step and the eval loss, drawn as a
small SVG by the core itself, which imports neither Qt nor matplotlib."""

from __future__ import annotations

import math
from dataclasses import dataclass
from xml.sax.saxutils import escape

TRAIN_COLOR, EVAL_COLOR = "#1f77b4", "#ff7f0e"


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round values from `lo` to `hi`, about `count` of them, 1, 2, 2.5 or 5 times a power of ten apart."""
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks, value = [], first
    while value <= hi + 1e-9 * step:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _finite(points) -> list[tuple[int, float]]:
    return [(s, v) for s, v in points if v is not None and math.isfinite(v)]


@dataclass(frozen=True)
class _Frame:
    """The plot area and the steps and losses it spans: where a (step, loss) is drawn."""

    left: float
    top: float
    width: float
    height: float
    x_lo: float
    x_hi: float
    y_lo: float
    y_hi: float

    @classmethod
    def around(cls, points: list[tuple[int, float]], left: float, top: float, width: float, height: float) -> _Frame:
        x_lo, x_hi = min(s for s, _ in points), max(s for s, _ in points)
        y_lo, y_hi = min(v for _, v in points), max(v for _, v in points)
        if x_hi == x_lo:
            x_lo, x_hi = x_lo - 1, x_hi + 1
        pad = (y_hi - y_lo) * 0.05 or max(abs(y_hi) * 0.05, 0.05)
        return cls(left, top, width, height, x_lo, x_hi, y_lo - pad, y_hi + pad)

    def x(self, step: float) -> float:
        return round(self.left + (step - self.x_lo) / (self.x_hi - self.x_lo) * self.width, 2)

    def y(self, value: float) -> float:
        return round(self.top + (self.y_hi - value) / (self.y_hi - self.y_lo) * self.height, 2)


def loss_svg(losses: list[tuple[int, float]], eval_losses: list[tuple[int, float]], *, title: str = "Loss",
             width: int = 640, height: int = 360) -> str:
    """The training loss per step (a line) and the eval loss (points joined by a dashed line)."""
    left, right, top, bottom = 56, 16, 36, 40
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           'font-family="sans-serif" font-size="12">',
           f'<title>{escape(title)}</title>',
           f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>',
           f'<text x="{left}" y="22" font-size="14" font-weight="bold">{escape(title)}</text>']
    train, evals = _finite(losses), _finite(eval_losses)
    points = train + evals
    if not points:
        out.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">No loss was recorded.</text>')
        return "\n".join(out + ["</svg>"]) + "\n"
    frame = _Frame.around(points, left, top, width - left - right, height - top - bottom)
    out += _axes(frame, height) + _curves(frame, train, evals) + _legend(frame, bool(evals))
    return "\n".join(out + ["</svg>"]) + "\n"


def _axes(f: _Frame, height: int) -> list[str]:
    out = [f'<rect x="{f.left}" y="{f.top}" width="{f.width}" height="{f.height}" fill="none" stroke="#888"/>']
    for tick in nice_ticks(f.y_lo, f.y_hi, 7):
        y = f.y(tick)
        out.append(f'<line x1="{f.left}" y1="{y}" x2="{f.left + f.width}" y2="{y}" stroke="#e4e4e4"/>')
        out.append(f'<text x="{f.left - 6}" y="{y + 4}" text-anchor="end">{tick:g}</text>')
    bottom = f.top + f.height
    for tick in (t for t in nice_ticks(f.x_lo, f.x_hi, 6) if t == int(t)):
        x = f.x(tick)
        out.append(f'<line x1="{x}" y1="{bottom}" x2="{x}" y2="{bottom + 4}" stroke="#888"/>')
        out.append(f'<text x="{x}" y="{bottom + 18}" text-anchor="middle">{int(tick)}</text>')
    out.append(f'<text x="{f.left + f.width / 2}" y="{height - 6}" text-anchor="middle">step</text>')
    return out


def _curves(f: _Frame, train: list[tuple[int, float]], evals: list[tuple[int, float]]) -> list[str]:
    out = []
    if train:
        coords = " ".join(f"{f.x(s)},{f.y(v)}" for s, v in train)
        out.append(f'<polyline class="train" points="{coords}" fill="none" stroke="{TRAIN_COLOR}" stroke-width="2"/>')
    if evals:
        coords = " ".join(f"{f.x(s)},{f.y(v)}" for s, v in evals)
        out.append(f'<polyline class="eval" points="{coords}" fill="none" stroke="{EVAL_COLOR}" stroke-width="1.5" '
                   'stroke-dasharray="5,4"/>')
        for s, v in evals:
            out.append(f'<circle class="eval" cx="{f.x(s)}" cy="{f.y(v)}" r="3.5" fill="{EVAL_COLOR}"><title>step {s}: eval loss '
                       f'{v:.4f}</title></circle>')
    return out


def _legend(f: _Frame, with_eval: bool) -> list[str]:
    lx = f.left + f.width - 150
    out = [f'<line x1="{lx}" y1="22" x2="{lx + 20}" y2="22" stroke="{TRAIN_COLOR}" stroke-width="2"/>'
           f'<text x="{lx + 26}" y="26">train</text>']
    if with_eval:
        out.append(f'<circle cx="{lx + 85}" cy="22" r="3.5" fill="{EVAL_COLOR}"/><text x="{lx + 94}" y="26">eval</text>')
    return out
