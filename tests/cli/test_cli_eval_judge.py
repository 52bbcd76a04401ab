"""`studio eval RUN --judge ollama:MODEL@URL` on a real 4-step demo run, the judge a real local stand-in of
Ollama's API: each golden answer gets the judge's grade, each row the mean, labelled as a judge's opinion."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studio.cli import main
from studio.cli.output import EXIT_USER_ERROR
from studio.core.paths import demo_data_dir
from tests.demo_runs import finished_demo_run
from tests.ollama_stand_in import OllamaStandIn

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return finished_demo_run(tmp_path_factory.mktemp("cli-judge-home"), "cli-judge", steps=4, save_every=4)


@pytest.fixture(scope="module")
def questions(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("golden") / "two.jsonl"
    path.write_text("".join((demo_data_dir() / "golden.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)[:2]),
                    encoding="utf-8")
    return path


def eval_folder(run_dir: Path) -> dict:
    folder = run_dir / "eval"
    return {p.name: p.read_bytes() for p in folder.iterdir()} if folder.is_dir() else {}


def test_a_judge_without_the_model_stops_before_anything_is_scored(run_dir, questions, capsys):
    before = eval_folder(run_dir)
    with OllamaStandIn(["qwen2.5:7b"]) as ollama:
        code = main(["eval", str(run_dir), "--questions", str(questions), "--judge", f"ollama:mistral@{ollama.url}",
                     "--checkpoints", "last", "--json"])
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR and "Traceback" not in err
    assert f"Ollama at {ollama.url} has no model mistral; it has: qwen2.5:7b." in err
    assert "What to do: Run `ollama pull mistral`" in err
    assert ollama.chats == [] and eval_folder(run_dir) == before


def test_each_answer_gets_the_judges_grade_and_each_row_its_mean(run_dir, questions, capsys):
    grades = iter([5, 3, 4, 2])  # base: question 1, 2; then checkpoint-4: question 1, 2
    with OllamaStandIn(["qwen2.5:7b"], reply=lambda _request: json.dumps({"score": next(grades), "reason": "Checked."})) as ollama:
        assert main(["eval", str(run_dir), "--questions", str(questions), "--judge", f"ollama:qwen2.5:7b@{ollama.url}",
                     "--json", "--checkpoints", "last"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["judge"]["model"] == "ollama:qwen2.5:7b" and "opinion" in report["judge"]["note"]
        assert [r["name"] for r in report["rows"]] == ["base", "checkpoint-4"]
        assert [[(a["judge"], a["judge_reason"]) for a in r["answers"]] for r in report["rows"]] == [
            [(5, "Checked."), (3, "Checked.")], [(4, "Checked."), (2, "Checked.")]]
        assert [r["golden"]["judge"] for r in report["rows"]] == [4.0, 3.0]
        prompts = [c["messages"][-1]["content"] for c in ollama.chats]
        answers = [a for r in report["rows"] for a in r["answers"]]
        assert len(prompts) == 4 and all(a["answer"] in p and a["expected"] in p for a, p in zip(answers, prompts, strict=True))

        assert main(["eval", str(run_dir), "--judge", f"ollama:qwen2.5:7b@{ollama.url}", "--checkpoints", "last"]) == 0
        assert len(ollama.chats) == 4  # the graded rows were saved under the judge's name: nothing graded again
    out = capsys.readouterr().out
    header, base, checkpoint = out.splitlines()[1:4]
    assert header.endswith("judge (opinion)") and base.split()[-1] == "4.00" and checkpoint.split()[-1] == "3.00"
    assert "judge (opinion): the mean grade 1-5 ollama:qwen2.5:7b gave" in out and "not a measurement" in out


def test_the_help_says_the_judge_is_optional_local_and_an_opinion(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--judge MODEL" in out and "optional, off by default" in out and "a judge's opinion" in out
    assert "nothing leaves this computer" in out
