"""Scores on a real CPU run of the demo: the worker scores the base and each checkpoint on golden
questions the training rows never held as it saves them; `studio eval` finds those scores, the fine-tune
beats the base model, the scoreboard picks a checkpoint, and scoring stops and resumes."""

from __future__ import annotations

import json

import pytest

from studio.core import runs
from studio.core.evaluation import evaluate_run, load_questions, save_questions
from studio.core.evaluation.metrics import score_answer
from studio.core.paths import demo_data_dir
from studio.core.recipe import DataSection
from studio.core.training.events import read_events
from tests.demo_runs import finished_demo_run

GOLDEN = demo_data_dir() / "golden.jsonl"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """240 QLoRA steps of the demo model on the demo data (4.8 epochs), a checkpoint every 120, by the real
    worker, with two of the demo card's held-out questions as its golden questions while it trains."""
    home = tmp_path_factory.mktemp("eval")
    golden = save_questions(home / "golden", load_questions(GOLDEN)[0][:2])
    return finished_demo_run(home, "eval", steps=240, learning_rate=2e-3, eval_every=120, save_every=120,
                             data=DataSection(source="demo", questions=str(golden)))


def test_the_golden_questions_are_not_training_rows():
    questions, problems = load_questions(GOLDEN)
    trained = {json.loads(line)["messages"][-2]["content"] for line in (demo_data_dir() / "demo.jsonl").open(encoding="utf-8")}
    assert len(questions) == 15 and problems == []
    assert not {q.question for q in questions} & trained


def test_the_worker_scores_the_base_and_each_checkpoint_as_it_saves_them(run_dir):
    scored = [e for e in read_events(run_dir / runs.EVENTS) if e["type"] == "eval" and "checkpoint" in e]
    assert [(e["step"], e["checkpoint"]) for e in scored] == [(0, "base"), (120, "checkpoint-120"), (240, "checkpoint-240")]
    saved = json.loads((run_dir / "eval" / "scores.json").read_text(encoding="utf-8"))
    assert saved["questions"].endswith("@4bit")  # scored on the base as training held it
    for event in scored:
        row = saved["rows"][event["checkpoint"]]
        assert event["rouge_l"] == row["golden"]["rouge_l"] and event["general_loss"] == row["general_loss"]
    base, last = saved["rows"]["base"], saved["rows"]["checkpoint-240"]
    assert last["heldout_loss"] < base["heldout_loss"]
    assert all(a["answer"].startswith("Plant doctor says:") for a in last["answers"])
    assert not any("Plant doctor says:" in a["answer"] for a in base["answers"])
    assert runs.RunHistory.read(run_dir).scores["rouge_l"][0] == (0, scored[0]["rouge_l"])  # the Train page's score curve


def test_the_fine_tune_beats_the_base_and_a_checkpoint_is_chosen(run_dir):
    board = evaluate_run(run_dir, questions=load_questions(GOLDEN)[0])  # all 15, on the 32-bit base the Try page loads
    base, *checkpoints = board.rows
    assert base.name == "base" and [c.step for c in checkpoints] == [120, 240] and board.complete
    best = board.row(board.best)
    assert best.step is not None and best.score > base.score + 0.05  # ROUGE-L against the expected answers
    assert best.heldout_loss < base.heldout_loss and best.perplexity < base.perplexity
    assert all(r.general_loss > 0 for r in board.rows)  # the forgetting check ran for each
    assert "Plant doctor says:" in best.answers[0]["answer"] and "Plant doctor says:" not in base.answers[0]["answer"]
    assert (run_dir / "eval" / "questions.jsonl").is_file() and (run_dir / "eval" / "scores.json").is_file()
    again = evaluate_run(run_dir)  # the run folder alone: its saved questions, its saved scores
    assert again.as_dict() == board.as_dict()


def test_the_command_line_prints_the_scoreboard(run_dir, capsys):
    from studio.cli import main

    # the same questions as the test above, on the same base: its saved rows are read, not scored again
    assert main(["eval", str(run_dir), "--questions", str(GOLDEN), "--checkpoints", "last", "--json"]) == 0
    board = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in board["rows"]] == ["base", "checkpoint-240"] and board["best"] == "checkpoint-240"
    assert board["questions"] == 15 and all(0 < r["score"] < 1 for r in board["rows"])
    assert main(["eval", str(run_dir), "--checkpoints", "last"]) == 0  # the saved questions and scores
    out = capsys.readouterr().out
    assert "★ checkpoint-240" in out and "Forgetting check: loss on general text" in out and "15 golden questions" in out
    base, last = board["rows"]
    assert ("No checkpoint answers the golden questions better than the base" in out) == (last["score"] < base["score"])


def test_scoring_stops_keeps_what_it_did_and_resumes(run_dir):
    questions = load_questions(GOLDEN)[0][4:6]  # other questions: nothing saved applies
    asked = []
    stopped = evaluate_run(run_dir, questions=questions, checkpoints="last",
                           should_stop=lambda: asked.append(1) or len(asked) > 1)
    assert not stopped.complete and [r.name for r in stopped.rows] == ["base"]
    resumed = evaluate_run(run_dir, checkpoints="last")
    assert resumed.complete and [r.name for r in resumed.rows] == ["base", "checkpoint-240"]
    assert resumed.rows[0] == stopped.rows[0]


def test_a_missing_step_is_refused_and_a_damaged_checkpoint_skipped(run_dir, tmp_path):
    import shutil

    from studio.core.errors import StudioError

    with pytest.raises(StudioError, match="no checkpoint at step 7"):
        evaluate_run(run_dir, checkpoints="7")
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    weights = copy / "checkpoints" / "checkpoint-120" / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # cut off, as a full disk leaves it
    board = evaluate_run(copy, questions=[])
    assert [r.name for r in board.rows] == ["base", "checkpoint-240"]
    assert len(board.skipped) == 1 and board.skipped[0].startswith("checkpoint-120: ")


def test_scores_of_one_answer_in_any_script():
    s = score_answer("Gießen Sie den Farn jede Woche.", "Gießen Sie den Farn jede Woche.")
    assert s["exact"] == 1.0 and s["rouge_l"] == 1.0 and s["words"] == 6
    s = score_answer("はい。水をやりすぎないでください。毎週。", "水をやりすぎないでください。毎週。")
    assert 0 < s["f1"] < 1 and s["contains"] == 1.0 and s["exact"] == 0.0
    assert score_answer("", "something")["rouge_l"] == 0.0


def test_the_best_scored_checkpoint_survives_the_deletion_of_old_checkpoints(tmp_path):
    """keep_checkpoints = 1: Trainer's own rotation deletes all but the newest, except the best-scored one."""
    from types import SimpleNamespace

    from transformers import AutoTokenizer
    from transformers.trainer_utils import rotate_checkpoints

    from studio.core.evaluation.during_training import CheckpointScoring
    from studio.core.evaluation.saved import add_row
    from studio.core.evaluation.scoreboard import TargetScores
    from studio.core.paths import demo_model_dir
    from studio.core.training.callback import StudioEvents
    from studio.core.training.events import EventWriter

    folder = tmp_path / "checkpoints"
    for step in (4, 8, 12):
        (folder / f"checkpoint-{step}").mkdir(parents=True)
    scoring = CheckpointScoring(tmp_path, [], AutoTokenizer.from_pretrained(demo_model_dir()), None, held_as="4bit")
    for step, score in ((4, 0.7), (8, 0.5), (12, 0.6)):
        add_row(tmp_path, scoring.key, TargetScores(f"checkpoint-{step}", step, 1.0, 2.0, {"rouge_l": score}))
    events = EventWriter(tmp_path / "events.jsonl", echo=None)
    callback = StudioEvents.__new__(StudioEvents)
    callback.scoring, callback.events = scoring, events
    state = SimpleNamespace(best_model_checkpoint=None, global_step=12)
    callback._keep_best(state, folder)
    assert state.best_model_checkpoint == str(folder / "checkpoint-4")
    rotate_checkpoints(str(folder), save_total_limit=1, best_model_checkpoint=state.best_model_checkpoint)
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint-12", "checkpoint-4"]
    logged = [e["message"] for e in read_events(tmp_path / "events.jsonl") if e["type"] == "log"]
    assert logged == ["checkpoint-4 answers the golden questions best so far: it is kept when older checkpoints are deleted."]


def test_an_answer_cut_at_its_length_is_scored_on_its_words_without_the_note():
    from studio.core.generate import CUT_NOTE, GenerationSettings, without_cut_note

    settings = GenerationSettings(max_new_tokens=60)
    cut = "Aim for 25 to 30 seconds" + CUT_NOTE.format(60)
    assert without_cut_note(cut, settings) == "Aim for 25 to 30 seconds"
    assert without_cut_note("Aim for 25 to 30 seconds", settings) == "Aim for 25 to 30 seconds"
    assert score_answer(without_cut_note(cut, settings), "Aim for 25 to 30 seconds")["exact"] == 1.0
