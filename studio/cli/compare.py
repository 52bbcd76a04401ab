"""`studio compare RUN RUN ...`: runs side by side — the recipe settings that differ, each run's final
loss and best eval loss, and its curves as sparklines (one scale per curve across the runs)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

BARS = "▁▂▃▄▅▆▇█"
ASCII_BARS = "_.-~=+*#"  # where the output cannot encode BARS
SPARK_WIDTH = 40  # the most characters one sparkline takes; longer curves are sampled evenly


def add_parser(sub) -> None:
    p = sub.add_parser("compare", help="runs side by side: the settings that differ, losses, best eval loss, curves")
    p.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN",
                   help="two or more run folders (or their names in the runs folder)")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON (the curves' every point)")
    p.set_defaults(func=cmd_compare)


def cmd_compare(args) -> int:
    from studio.core.runs import compare_runs

    comparison = compare_runs(args.run_dirs)
    if args.json:
        print(json.dumps(comparison.as_dict(), indent=2, ensure_ascii=False))
        return 0
    _print_differences(comparison)
    print()
    _print_results(comparison.runs)
    print()
    _print_curves(comparison.runs)
    return 0


def shown(value) -> str:
    """A setting's value as run.toml writes it; "-" where the recipe leaves it unset."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _print_differences(comparison) -> None:
    if not comparison.differences:
        print("The runs' recipes are the same (apart from the names of their folders).")
        return
    names = [r.name for r in comparison.runs]
    rows = [[key, *(shown(v) for v in values)] for key, values in comparison.differences.items()]
    print("Settings that differ:")
    _table(["setting", *names], rows)


def _print_results(compared) -> None:
    rows = [[r.name, r.status, _number(r.final_loss),
             f"{_number(r.best_eval_loss)} (step {r.best_eval_step})" if r.best_eval_loss is not None else "-"]
            for r in compared]
    _table(["run", "status", "final loss", "best eval loss"], rows)


def _print_curves(compared) -> None:
    curves = {"loss": [r.losses for r in compared], "eval loss": [r.eval_losses for r in compared]}
    for name in sorted({name for r in compared for name in r.scores}):
        curves[name] = [r.scores.get(name, []) for r in compared]
    print(f"Curves (first {_arrow()} last; one scale per curve across the runs):")
    width = max(len(r.name) for r in compared)
    for label, per_run in curves.items():
        values = [v for curve in per_run for _, v in curve]
        if not values:
            continue
        low, high = min(values), max(values)
        chars = min(SPARK_WIDTH, max(len(curve) for curve in per_run))
        for run, curve in zip(compared, per_run, strict=True):
            print(f"  {label:<10} {run.name:<{width}}  {_sparkline(curve, low, high, chars)}")


def _sparkline(curve, low: float, high: float, chars: int) -> str:
    """`curve` in at most `chars` bars from `low` to `high`, then its first and last values."""
    if not curve:
        return "-"
    bars = _bars()
    points = [curve[round(i * (len(curve) - 1) / (chars - 1))] for i in range(chars)] if len(curve) > chars else curve
    span = (high - low) or 1.0
    line = "".join(bars[min(len(bars) - 1, int((v - low) / span * len(bars)))] for _, v in points)
    (first_step, first), (last_step, last) = curve[0], curve[-1]
    return f"{line:<{chars}}  {_number(first)} (step {first_step}) {_arrow()} {_number(last)} (step {last_step})"


def _bars() -> str:
    try:
        BARS.encode(sys.stdout.encoding or "ascii")
        return BARS
    except (UnicodeEncodeError, LookupError):
        return ASCII_BARS


def _arrow() -> str:
    return "→" if _bars() == BARS else "->"


def _number(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def _table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
