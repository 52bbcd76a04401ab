"""A run's scores on disk (eval/scores.json): each finished row is written at once, keyed by the
questions (and the judge) it was scored with, so scoring that stops resumes where it was and scores
made with other questions are never mixed in. The worker writes here as it scores each checkpoint;
`studio eval` reads what it finds and scores the rest."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from studio.core.atomic import write_text
from studio.core.evaluation.questions import GoldenQuestion
from studio.core.evaluation.scoreboard import TargetScores

SCORES = Path("eval") / "scores.json"
_FIELDS = ("name", "step", "heldout_loss", "general_loss", "golden", "answers")


def scores_key(questions: list[GoldenQuestion], held_as: str, judge: str | None = None) -> str:
    """What the rows were scored with: the questions' digest, how the base was held ("4bit", "float32":
    the same adapter answers differently on a quantized base), and the judge's name when one graded."""
    rows = json.dumps([q.as_row() for q in questions], ensure_ascii=False).encode()
    digest = f"{hashlib.sha256(rows).hexdigest()[:16]}@{held_as}"
    return f"{digest}+{judge}" if judge else digest


def saved_rows(run_dir: Path, key: str) -> dict[str, TargetScores]:
    """The rows scored before with the same `key` ({} when the questions changed or none were saved)."""
    try:
        saved = json.loads((Path(run_dir) / SCORES).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if saved.get("questions") != key:
        return {}
    try:
        return {name: TargetScores(**{k: row[k] for k in _FIELDS}) for name, row in saved.get("rows", {}).items()}
    except (KeyError, TypeError):  # written by another version: scored again
        return {}


def saved_key(run_dir: Path) -> str | None:
    """The key the saved rows were scored with (None: nothing saved)."""
    try:
        return json.loads((Path(run_dir) / SCORES).read_text(encoding="utf-8")).get("questions")
    except (OSError, ValueError, AttributeError):
        return None


def held_as_of(key: str) -> str:
    """How the base was held, from a key ("" for keys written before it was part of them)."""
    return key.split("@", 1)[1].split("+", 1)[0] if "@" in key else ""


def save_rows(run_dir: Path, key: str, rows: dict[str, TargetScores]) -> None:
    path = Path(run_dir) / SCORES
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"questions": key, "rows": {name: row.as_dict() for name, row in rows.items()}}
    write_text(path, json.dumps(data, ensure_ascii=False, indent=1))


def add_row(run_dir: Path, key: str, row: TargetScores) -> None:
    """One more row beside those saved with the same key (the others are dropped)."""
    rows = saved_rows(run_dir, key)
    rows[row.name] = row
    save_rows(run_dir, key, rows)
