"""The optional local judge: an Ollama server on this computer (a real local stand-in that speaks Ollama's
documented /api/tags and /api/chat) or a model folder (the demo model) grades answers 1-5 with the rubric."""

from __future__ import annotations

import json
import socket

import pytest

from studio.core.errors import StudioError
from studio.core.evaluation.judge import GRADE_SCHEMA, RUBRIC, RUBRIC_VERSION, grade_answers, open_judge
from studio.core.paths import demo_model_dir
from tests.ollama_stand_in import OllamaStandIn

QUESTION = "Why are the lower leaves of my rubber plant turning yellow?"
EXPECTED = "Overwatering: let the soil dry a few centimetres down before watering again."
ANSWER = "Probably too much water. Wait until the soil is dry before you water."


def test_an_ollama_judge_sends_the_rubric_and_the_answer_and_reads_the_grade():
    with OllamaStandIn(["qwen2.5:7b", "llama3.2:latest"], reply='{"score": 4, "reason": "Right cause, less detail."}') as ollama:
        judge = open_judge(f"ollama:qwen2.5:7b@{ollama.url}")
        assert judge.name == "ollama:qwen2.5:7b"
        assert judge.grade(QUESTION, EXPECTED, ANSWER) == (4, "Right cause, less detail.")
    sent = ollama.chats[0]
    assert sent["model"] == "qwen2.5:7b" and sent["stream"] is False and sent["format"] == GRADE_SCHEMA
    assert sent["format"]["properties"]["score"] == {"type": "integer", "minimum": 1, "maximum": 5}
    assert set(sent["format"]["required"]) == {"score", "reason"}
    text = " ".join(m["content"] for m in sent["messages"])
    assert RUBRIC in text and QUESTION in text and EXPECTED in text and ANSWER in text
    assert all(m["role"] in ("system", "user") for m in sent["messages"])
    assert "Grade the facts, not the wording" in RUBRIC and RUBRIC_VERSION >= 1


def test_grade_answers_labels_each_answer_and_a_reply_without_a_grade_is_none_with_why():
    replies = iter(['{"score": 2, "reason": "Misses the cause."}', "I think it is quite good!", '{"score": 9, "reason": "x"}'])
    with OllamaStandIn(["llama3.2:latest"], reply=lambda _request: next(replies)) as ollama:
        judge = open_judge(f"ollama:llama3.2@{ollama.url}")  # Ollama's default tag, latest, is understood
        answers = [{"question": QUESTION, "expected": EXPECTED, "answer": a} for a in (ANSWER, "Water more.", "?")]
        grade_answers(judge, answers)
    assert [(a["judge"], a["judge_reason"]) for a in answers] == [
        (2, "Misses the cause."),
        (None, "the judge gave no grade: I think it is quite good!"),
        (None, 'the judge gave no grade: {"score": 9, "reason": "x"}')]
    assert [c["model"] for c in ollama.chats] == ["llama3.2"] * 3


def test_a_missing_model_names_the_models_ollama_has():
    with OllamaStandIn(["qwen2.5:7b", "llama3.2:latest"]) as ollama:
        with pytest.raises(StudioError) as caught:
            open_judge(f"ollama:mistral@{ollama.url}")
    assert caught.value.message == f"Ollama at {ollama.url} has no model mistral; it has: llama3.2:latest, qwen2.5:7b."
    assert "ollama pull mistral" in caught.value.advice and ollama.chats == []


def test_a_server_that_does_not_answer_is_named():
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(StudioError) as caught:
        open_judge(f"ollama:qwen2.5:7b@http://127.0.0.1:{port}")
    assert f"No Ollama server answers at http://127.0.0.1:{port}" in caught.value.message
    assert "ollama serve" in caught.value.advice


@pytest.mark.parametrize("url", ["https://api.example.com", "http://192.168.1.20:11434", "http://localhost.example.com:11434",
                                 "http://localhost@example.com"])
def test_a_judge_elsewhere_than_this_computer_is_refused(url):
    with pytest.raises(StudioError) as caught:
        open_judge(f"ollama:qwen2.5:7b@{url}")
    assert "The judge stays on this computer" in caught.value.message
    assert "127.0.0.1:11434" in caught.value.advice


@pytest.mark.parametrize("spec,needle", [("/no/such/folder", "There is no folder /no/such/folder"),
                                         (None, "holds no model: it has no config.json"),
                                         ("ollama:", "Name the Ollama model")])
def test_a_judge_that_is_not_there_says_what_to_give(spec, needle, tmp_path):
    with pytest.raises(StudioError) as caught:
        open_judge(spec or str(tmp_path))
    assert needle in caught.value.message and caught.value.advice


@pytest.mark.slow
def test_a_model_folder_judges_with_its_chat_template():
    """The demo model is no real judge: this checks the path runs end to end, not the quality of its grades."""
    judge = open_judge(str(demo_model_dir()))
    assert judge.name == "demo-model" and judge.template  # the demo model has a chat template
    grade, reason = judge.grade(QUESTION, EXPECTED, ANSWER)
    assert (grade in range(1, 6) and reason) or (grade is None and reason.startswith("the judge gave no grade: "))
    answers = [{"question": QUESTION, "expected": EXPECTED, "answer": ANSWER}]
    grade_answers(judge, answers)
    assert answers[0]["judge"] == grade and answers[0]["judge_reason"] == reason  # greedy: the same grade again
    json.dumps(answers)  # saved with the scores
