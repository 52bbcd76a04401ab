"""Did it get better? Scores for the base model and every saved checkpoint of a run, all local.

    questions.py  golden questions with expected answers: from any data file, saved with the run
    metrics.py    one answer against its expected answer (exact, contains, token F1, ROUGE-L: rouge-score)
    measures.py   what every model is scored on (held-out rows, general text, golden questions) and
                  the scoring of one model, shared by `studio eval` and the worker at each checkpoint
    saved.py      eval/scores.json: each row written as it is done, keyed by the questions (and judge)
    scoring.py    a run's base and checkpoints after training (`studio eval`), resuming where it stopped
    during_training.py  the worker's scoring of each checkpoint as it is saved (`eval` events)
    judge.py      optional: a local model (a folder, or Ollama on this computer) grades answers 1-5
    scoreboard.py the rows, and the best checkpoint by a rule the user can read
"""

from __future__ import annotations

from studio.core.evaluation.questions import (
    GoldenQuestion,
    load_questions,
    run_questions,
    save_questions,
    save_questions_file,
)
from studio.core.evaluation.scoreboard import Scoreboard, TargetScores
from studio.core.evaluation.scoring import evaluate_run, saved_scoreboard

__all__ = ["GoldenQuestion", "Scoreboard", "TargetScores", "evaluate_run", "load_questions", "run_questions",
           "save_questions", "save_questions_file", "saved_scoreboard"]
