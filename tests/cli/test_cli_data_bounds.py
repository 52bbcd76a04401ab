"""`studio data inspect` on hostile input: a huge field, a model folder, a sequence length of 0."""

from __future__ import annotations

import json

import pytest

from studio.cli import main
from studio.core.paths import demo_model_dir


@pytest.mark.parametrize("value", ["0", "-3"])
def test_a_sequence_length_below_16_is_a_plain_error(capsys, value):
    assert main(["data", "inspect", "demo", "--seq-len", value]) == 2
    captured = capsys.readouterr()
    assert "--seq-len" in captured.err and "at least 16" in captured.err and "What to do:" in captured.err
    assert "Unexpected" not in captured.err and "Traceback" not in captured.err and captured.out == ""


def test_a_huge_field_prints_a_short_example_with_a_note(capsys, tmp_path):
    path = tmp_path / "huge.jsonl"
    answer = ("Water the fern when the soil feels dry. " * 60_000)[:2_000_000]
    path.write_text(json.dumps({"prompt": "All of it?", "answer": answer}) + "\n"
                    + json.dumps({"prompt": "Short?", "answer": "Yes."}) + "\n", encoding="utf-8")
    assert main(["data", "inspect", str(path), "--seq-len", "256", "--examples", "1"]) == 0
    out = capsys.readouterr().out
    assert len(out) < 20_000
    assert "more characters" in out and "not shown" in out and "shortened" in out


def test_a_model_folder_is_refused_with_what_to_give_instead(capsys):
    assert main(["data", "inspect", str(demo_model_dir())]) == 2
    err = capsys.readouterr().err
    assert "model folder" in err and "not training data" in err and "--model" in err and "Traceback" not in err
