"""`studio data inspect` as a user runs it."""

from __future__ import annotations

import json

import pytest

from studio.cli import main
from studio.core.paths import demo_data_dir


def inspect_json(capsys, *args) -> tuple[int, dict]:
    code = main(["data", "inspect", *args, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_demo_data(capsys):
    code, report = inspect_json(capsys, str(demo_data_dir() / "demo.jsonl"), "--seq-len", "256")
    rows = sum(1 for line in (demo_data_dir() / "demo.jsonl").read_text().splitlines() if line.strip())
    assert code == 0
    assert report["format"] == "messages" and report["rows"] == rows and report["problems"] == []
    assert {"min", "median", "p95", "max", "total_tokens", "truncated_rows", "histogram"} <= set(report["stats"])
    assert report["examples"] and report["assistant_only_loss"] is True


@pytest.mark.parametrize("name,content,fmt,rows", [
    ("a.jsonl", '{"instruction": "i", "input": "", "output": "o"}\n{"instruction": "j", "output": "p"}\n', "alpaca", 2),
    ("s.json", json.dumps([{"conversations": [{"from": "human", "value": "h"}, {"from": "gpt", "value": "g"}]}]), "sharegpt", 1),
    ("m.jsonl", json.dumps({"messages": [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]}) + "\n",
     "messages", 1),
    ("p.csv", "question,answer\nq1,a1\nq2,a2\nq3,a3\n", "prompt_completion", 3),
    ("p.tsv", "prompt\tcompletion\nq1\ta1\n", "prompt_completion", 1),
    ("t.txt", "Ferns like shade.\n\nCacti like sun.\n", "text", 2),  # blank lines between single lines: one a line
    ("t.md", "# Notes\n\nWater weekly.\n", "text", 1),
])
def test_each_file_kind(capsys, tmp_path, name, content, fmt, rows):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    code, report = inspect_json(capsys, str(path))
    assert code == 0 and report["format"] == fmt and report["rows"] == rows


def test_parquet(capsys, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist([{"prompt": f"p{i}", "completion": f"c{i}"} for i in range(4)]), tmp_path / "d.parquet")
    code, report = inspect_json(capsys, str(tmp_path / "d.parquet"))
    assert code == 0 and report["rows"] == 4 and report["format"] == "prompt_completion"


def test_problems_listed_with_lines(capsys, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "a", "completion": "b"}\n{"prompt": "x",\n{"prompt": "c", "completion": ""}\n', encoding="utf-8")
    code, report = inspect_json(capsys, str(path))
    assert code == 2 and report["usable"] is False
    assert [p["line"] for p in report["problems"]] == [2]
    code, report = inspect_json(capsys, str(path), "--skip-bad-rows")
    assert code == 0 and report["rows"] == 1 and report["rows_skipped"] == 1
    assert sorted(p["line"] for p in report["problems"]) == [2, 3]


def test_unusable_data_prints_message_and_advice(capsys, tmp_path):
    path = tmp_path / "cols.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    assert main(["data", "inspect", str(path)]) == 2
    err = capsys.readouterr().err
    assert "columns a, b" in err and "What to do:" in err and "Traceback" not in err


def test_human_report_marks_trained_text(capsys):
    assert main(["data", "inspect", str(demo_data_dir() / "demo.jsonl"), "--examples", "1"]) == 0
    out = capsys.readouterr().out
    assert "Format   messages" in out and "⟦" in out and "◀ seq-len" in out


def test_json_on_every_outcome_a_refusal_included(capsys, tmp_path):
    """`--json` prints one JSON object even when the data is refused: the error, its advice, the columns."""
    path = tmp_path / "odd.jsonl"
    path.write_text(json.dumps({"frage": "f", "antwort": "a", "rejected": "r"}) + "\n", encoding="utf-8")
    code = main(["data", "inspect", str(path), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code != 0 and report["usable"] is False
    assert report["columns"] == ["frage", "antwort", "rejected"] and report["topic"] == "data"
    assert "prompt=frage,response=antwort" in report["advice"] and "response=rejected" not in report["advice"]


def test_json_on_a_preference_file_names_its_layout(capsys, tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"Frage {i}?", "chosen": f"Gut {i}.", "rejected": f"Schlecht {i}."},
                                       ensure_ascii=False) + "\n" for i in range(4)), encoding="utf-8")
    code, report = inspect_json(capsys, str(path))
    assert code == 0 and report["layout"]["name"] == "preference pairs" and report["rows"] == 4
    trained = "".join(s["text"] for s in report["examples"][0]["segments"] if s["trained"])
    assert "Gut 0." in trained and "Schlecht" not in json.dumps(report["examples"], ensure_ascii=False)
