"""`studio eval` on a real CPU run of the demo: the fine-tune beats the base model on golden questions
the training rows never held, the scoreboard picks a checkpoint, and scoring stops and resumes."""

from __future__ import annotations

import json

import pytest

from studio.core.evaluation import evaluate_run, load_questions
from studio.core.evaluation.metrics import score_answer
from studio.core.paths import demo_data_dir
from tests.demo_runs import finished_demo_run

GOLDEN = demo_data_dir() / "golden.jsonl"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """80 QLoRA steps of the demo model on the demo data (1.6 epochs), a checkpoint every 40, by the real worker."""
    return finished_demo_run(tmp_path_factory.mktemp("eval"), "eval", steps=80, learning_rate=2e-3, eval_every=40,
                             save_every=40)


def test_the_golden_questions_are_not_training_rows():
    questions, problems = load_questions(GOLDEN)
    trained = {json.loads(line)["messages"][-2]["content"] for line in (demo_data_dir() / "demo.jsonl").open(encoding="utf-8")}
    assert len(questions) == 12 and problems == []
    assert not {q.question for q in questions} & trained


def test_the_fine_tune_beats_the_base_and_a_checkpoint_is_chosen(run_dir):
    questions = load_questions(GOLDEN)[0][:4]  # the demo card's three held-out questions, and one more
    board = evaluate_run(run_dir, questions=questions)
    base, *checkpoints = board.rows
    assert base.name == "base" and [c.step for c in checkpoints] == [40, 80] and board.complete
    best = board.row(board.best)
    assert best.step is not None and best.score > base.score + 0.05  # ROUGE-L against the expected answers
    assert best.heldout_loss < base.heldout_loss and best.perplexity < base.perplexity
    assert all(r.general_loss > 0 for r in board.rows)  # the forgetting check ran for each
    assert "Plant doctor says:" in best.answers[0]["answer"] and "Plant doctor says:" not in base.answers[0]["answer"]
    assert (run_dir / "eval" / "questions.jsonl").is_file() and (run_dir / "eval" / "scores.json").is_file()
    again = evaluate_run(run_dir)  # the run folder alone: its saved questions, its saved scores
    assert again.as_dict() == board.as_dict()


def test_scoring_stops_keeps_what_it_did_and_resumes(run_dir):
    questions = load_questions(GOLDEN)[0][4:6]  # other questions: nothing saved applies
    asked = []
    stopped = evaluate_run(run_dir, questions=questions, checkpoints="last",
                           should_stop=lambda: asked.append(1) or len(asked) > 1)
    assert not stopped.complete and [r.name for r in stopped.rows] == ["base"]
    resumed = evaluate_run(run_dir, checkpoints="last")
    assert resumed.complete and [r.name for r in resumed.rows] == ["base", "checkpoint-80"]
    assert resumed.rows[0] == stopped.rows[0]


def test_a_missing_step_is_refused_and_a_damaged_checkpoint_skipped(run_dir, tmp_path):
    import shutil

    from studio.core.errors import StudioError

    with pytest.raises(StudioError, match="no checkpoint at step 7"):
        evaluate_run(run_dir, checkpoints="7")
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    weights = copy / "checkpoints" / "checkpoint-40" / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # cut off, as a full disk leaves it
    board = evaluate_run(copy, questions=[])
    assert [r.name for r in board.rows] == ["base", "checkpoint-80"]
    assert len(board.skipped) == 1 and board.skipped[0].startswith("checkpoint-40: ")


def test_scores_of_one_answer_in_any_script():
    s = score_answer("Gießen Sie den Farn jede Woche.", "Gießen Sie den Farn jede Woche.")
    assert s["exact"] == 1.0 and s["rouge_l"] == 1.0 and s["words"] == 6
    s = score_answer("はい。水をやりすぎないでください。毎週。", "水をやりすぎないでください。毎週。")
    assert 0 < s["f1"] < 1 and s["contains"] == 1.0 and s["exact"] == 0.0
    assert score_answer("", "something")["rouge_l"] == 0.0


def test_the_command_line_prints_the_scoreboard(run_dir, capsys):
    from studio.cli import main

    assert main(["eval", str(run_dir), "--questions", str(GOLDEN), "--checkpoints", "last", "--json"]) == 0
    board = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in board["rows"]] == ["base", "checkpoint-80"] and board["best"] == "checkpoint-80"
    assert board["questions"] == 12 and all(0 < r["score"] < 1 for r in board["rows"])
    assert main(["eval", str(run_dir), "--checkpoints", "last"]) == 0  # the saved questions and scores
    out = capsys.readouterr().out
    assert "★ checkpoint-80" in out and "Forgetting check: loss on general text" in out and "12 golden questions" in out
    base, last = board["rows"]
    assert ("No checkpoint answers the golden questions better than the base" in out) == (last["score"] < base["score"])
