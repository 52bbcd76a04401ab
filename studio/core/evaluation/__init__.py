"""Did it get better? Scores for the base model and every saved checkpoint of a run, all local.

    questions.py  golden questions with expected answers: from any data file, saved with the run
    metrics.py    one answer against its expected answer (exact, contains, token F1, ROUGE-L: rouge-score)
    scoring.py    a run's base and checkpoints: held-out loss, golden answers, the forgetting check;
                  kept in eval/scores.json as each is done, so scoring resumes where it stopped
    scoreboard.py the rows, and the best checkpoint by a rule the user can read
"""

from __future__ import annotations

from studio.core.evaluation.questions import GoldenQuestion, load_questions, run_questions, save_questions
from studio.core.evaluation.scoreboard import Scoreboard, TargetScores
from studio.core.evaluation.scoring import evaluate_run

__all__ = ["GoldenQuestion", "Scoreboard", "TargetScores", "evaluate_run", "load_questions", "run_questions",
           "save_questions"]
