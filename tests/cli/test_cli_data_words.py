"""`studio data inspect` names settings by their flags — the same messages the window words with
its own labels — and says JSON errors in plain words."""

from __future__ import annotations

import json

from studio.cli import main


def test_a_broken_line_names_the_flag_that_skips_it(capsys, tmp_path):
    path = tmp_path / "faq.jsonl"
    path.write_text('{"prompt": "Wie gieße ich?", "completion": "Mäßig."}\n{"prompt": "x" "completion": "y"}\n', encoding="utf-8")
    assert main(["data", "inspect", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Error: Line 2 is cut off or has a missing comma (at character 16)." in err
    assert "What to do: Fix or delete this line, or add --skip-bad-rows to leave it out." in err
    assert "fix: Fix or delete this line, or add --skip-bad-rows to leave it out." in err  # the problem list
    assert "Skip broken lines" not in err and "{setting}" not in err
    assert main(["data", "inspect", str(path), "--json"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["advice"] == "Fix or delete this line, or add --skip-bad-rows to leave it out."
    assert report["problems"][0]["fix"] == report["advice"] and report["problems"][0]["setting"] == "data.skip_bad_rows"


def test_unknown_columns_name_the_map_flag_with_the_files_columns(capsys, tmp_path):
    path = tmp_path / "pflege.csv"
    path.write_text("foo,bar\nWie gieße ich einen Farn?,Feucht halten.\n", encoding="utf-8")
    assert main(["data", "inspect", str(path)]) == 2
    err = capsys.readouterr().err
    assert "it found the columns foo, bar, none of which it recognises" in err
    assert "with --map prompt=foo,response=bar." in err and "column pickers" not in err
    assert main(["data", "inspect", str(path), "--map", "prompt=foo,response=bar", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["mapping"] == {"prompt": "foo", "response": "bar"} and report["first_row"]["foo"] == "Wie gieße ich einen Farn?"
