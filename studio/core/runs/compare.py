"""Runs side by side (`compare_runs`): each run's curves (loss, eval loss, the scores its `eval` events
carry), its final loss and best eval loss, and the recipe settings that differ between the runs.

The settings are the recipe's, flattened to "section.field" keys with the values run.toml holds
(None where it leaves one out). A key is kept only when its values are not all equal, and never one
that only names the run's folder (`NAMING`: output.name, output.runs_dir): two runs always differ
there, and it changes nothing they learn.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from studio.core.errors import StudioError
from studio.core.recipe import RunConfig
from studio.core.runs.folders import RECIPE, load_recipe, run_folder
from studio.core.runs.history import RunHistory
from studio.core.runs.status import status_of

NAMING = ("output.name", "output.runs_dir")  # settings that name the run's folder, not what it learns
Curve = list[tuple[int, float]]  # (step, value) in step order


@dataclass(frozen=True)
class ComparedRun:
    name: str  # the folder's name, as `studio runs` lists it
    path: Path
    status: str  # running, completed, cancelled, failed, interrupted or created (runs.status_of)
    losses: Curve
    eval_losses: Curve
    scores: dict[str, Curve]  # the other numbers of its `eval` events (RunHistory.scores), by name
    final_loss: float | None  # the last training step's
    best_eval_loss: float | None  # the lowest eval loss
    best_eval_step: int | None  # where it was measured (the first such step)

    def as_dict(self) -> dict:
        def points(curve: Curve) -> list[list]:
            return [[step, value] for step, value in curve]

        return {"name": self.name, "path": str(self.path), "status": self.status, "losses": points(self.losses),
                "eval_losses": points(self.eval_losses), "scores": {k: points(v) for k, v in self.scores.items()},
                "final_loss": self.final_loss, "best_eval_loss": self.best_eval_loss,
                "best_eval_step": self.best_eval_step}


@dataclass(frozen=True)
class Comparison:
    runs: list[ComparedRun]  # in the order they were given
    differences: dict[str, list]  # "section.field" → each run's value, in the runs' order; recipe order

    def as_dict(self) -> dict:
        return {"runs": [r.as_dict() for r in self.runs], "differences": self.differences}


def compare_runs(run_dirs) -> Comparison:
    """The runs in `run_dirs` (folders, or names in the runs folder), side by side. A StudioError for
    fewer than two runs, the same run twice, or a run that is missing, not a run, or cannot be read."""
    folders = [run_folder(d) for d in run_dirs]
    _check_count(folders)
    read = [_read(folder) for folder in folders]
    return Comparison(runs=[run for run, _ in read], differences=differences([config for _, config in read]))


def differences(configs: list[RunConfig]) -> dict[str, list]:
    """The settings whose values are not all equal across `configs`, naming fields (`NAMING`) left out."""
    flat = [settings_of(config) for config in configs]
    return {key: [f[key] for f in flat] for key in flat[0]
            if key not in NAMING and any(f[key] != flat[0][key] for f in flat[1:])}


def settings_of(config: RunConfig) -> dict[str, object]:
    """Every setting of a recipe as "section.field" → its value, in the recipe's order."""
    return {f"{section}.{name}": value for section, table in asdict(config).items() for name, value in table.items()}


def _check_count(folders: list[Path]) -> None:
    if len(folders) < 2:
        raise StudioError(f"Comparing runs needs two or more; {'one was' if folders else 'none were'} given.",
                          "Name two or more run folders, or runs as `studio runs` lists them.")
    seen: set[Path] = set()
    for folder in folders:
        if folder.resolve() in seen:
            raise StudioError(f"The run {folder.name} is given twice.", "Name each run once.")
        seen.add(folder.resolve())


def _read(folder: Path) -> tuple[ComparedRun, RunConfig]:
    if not (folder / RECIPE).is_file():
        raise StudioError(f"{folder} is not a run folder (it has no {RECIPE}).",
                          "Name run folders, or runs as `studio runs` lists them.")
    try:
        config = load_recipe(folder)
        history = RunHistory.read(folder)
        return _compared(folder, history), config
    except StudioError as exc:
        raise StudioError(f"The run {folder.name} cannot be compared: {exc.message}", _advice(folder, exc.advice),
                          topic=exc.topic) from exc
    except Exception as exc:  # noqa: BLE001 - a damaged folder: say which run, whatever broke
        raise StudioError(f"The run {folder.name} cannot be read ({type(exc).__name__}: {exc}).",
                          _advice(folder, "Look at its run.toml and events.jsonl.")) from exc


def _advice(folder: Path, advice: str) -> str:
    return f"{advice} Or leave {folder} out of the comparison.".strip()


def _compared(folder: Path, history: RunHistory) -> ComparedRun:
    series = history.series
    evals = series["eval_loss"]
    best = min(evals, key=lambda point: point[1]) if evals else None
    last = history.last_loss
    return ComparedRun(name=folder.name, path=folder, status=status_of(folder, history), losses=series["loss"],
                       eval_losses=evals, scores=history.scores, final_loss=last[1] if last else None,
                       best_eval_loss=best[1] if best else None, best_eval_step=best[0] if best else None)
