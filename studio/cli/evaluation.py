"""`studio eval RUN`: the base model and each checkpoint scored on the run's held-out rows, on golden
questions (saved with the run) and on general text (the forgetting check); the best checkpoint marked."""

from __future__ import annotations

import json
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="score the base model and every checkpoint of a run: held-out loss, "
                                    "golden questions, forgetting; the best checkpoint marked")
    p.add_argument("run_dir", type=Path, help="the run folder (or its name in the runs folder)")
    p.add_argument("--questions", help="golden questions with expected answers: any data file the studio reads "
                                       "(saved with the run; later calls reuse them)")
    p.add_argument("--checkpoints", default="all", help="all (default), last, or a step number")
    p.add_argument("--judge", metavar="MODEL",
                   help="optional, off by default: a local model grades each golden answer 1-5 against the expected one "
                        "(a judge's opinion, not a measurement): a model folder, or ollama:MODEL for a model Ollama "
                        "serves on this computer (ollama:MODEL@http://127.0.0.1:PORT for another port); "
                        "nothing leaves this computer")
    p.add_argument("--json", action="store_true", help="print the scoreboard as JSON")
    p.set_defaults(func=cmd_eval)


def cmd_eval(args) -> int:
    import sys

    from studio.core.evaluation import evaluate_run, load_questions
    from studio.core.evaluation.judge import OPINION, RUBRIC_VERSION, open_judge

    questions = None
    if args.questions:
        questions, problems = load_questions(args.questions)
        for p in problems:
            print(f"  {p.severity} line {p.where() or '-'}: {p.message} (not scored)", file=sys.stderr)

    def progress(message: str, _fraction: float) -> None:
        if not args.json:
            print(message, file=sys.stderr)

    judge = open_judge(args.judge) if args.judge else None  # checked before anything is scored
    board = evaluate_run(args.run_dir, questions=questions, checkpoints=args.checkpoints, on_progress=progress, judge=judge)
    if args.json:
        report = board.as_dict()
        if judge is not None:
            report["judge"] = {"model": judge.name, "rubric_version": RUBRIC_VERSION, "note": OPINION}
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print_scoreboard(board, judge.name if judge else None)
    return 0


JUDGE_COLUMN = "judge (opinion)"


def _cell(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_scoreboard(board, judge: str | None = None) -> None:
    """The table; with a `judge` (its name), a "judge (opinion)" column: the mean of its grades 1-5."""
    judged = judge is not None or any("judge" in r.golden for r in board.rows)
    print(f"Run {board.run}: {board.questions} golden questions")
    print(f"{'':2}{'model':<18} {'held-out loss':>13} {'perplexity':>10} {'general loss':>12} {'ROUGE-L':>8} {'F1':>6} "
          f"{'exact':>6} {'words':>6}" + (f" {JUDGE_COLUMN:>15}" if judged else ""))
    for r in board.rows:
        mark = "★ " if r.name == board.best else "  "
        g = r.golden
        print(f"{mark}{r.name:<18} {_cell(r.heldout_loss):>13} {_cell(r.perplexity, 2):>10} {_cell(r.general_loss):>12} "
              f"{_cell(g.get('rouge_l')):>8} {_cell(g.get('f1')):>6} {_cell(g.get('exact'), 2):>6} {_cell(g.get('words'), 0):>6}"
              + (f" {_cell(g.get('judge'), 2):>15}" if judged else ""))
    print(f"★ best: {board.best or 'none'} — {board.rule}.")
    if judged:
        print(f"{JUDGE_COLUMN}: the mean grade 1-5 {judge or 'a local model'} gave the answers against the expected ones — "
              "a model's opinion, not a measurement; read its reasons with --json.")
    base, best = board.row("base"), board.row(board.best) if board.best else None
    if base and best and base.score is not None and best.score is not None and best.score < base.score:
        print(f"No checkpoint answers the golden questions better than the base model ({best.score:.3f} against "
              f"{base.score:.3f}): read the answers (--json) before you export.")
    if base and base.general_loss is not None:
        worst = max((r for r in board.rows if r.step is not None and r.general_loss is not None),
                    key=lambda r: r.general_loss, default=None)
        if worst is not None:
            change = worst.general_loss - base.general_loss
            print(f"Forgetting check: loss on general text {base.general_loss:.3f} (base) → {worst.general_loss:.3f} "
                  f"({worst.name}, {change:+.3f}).")
    for line in board.skipped:
        print(f"Skipped {line}")
    if not board.complete:
        print("Scoring stopped early: run the same command again to go on.")
