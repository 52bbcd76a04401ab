"""`studio data inspect` on a plain text corpus: the split it used, the override, and the chunks."""

from __future__ import annotations

import json

from studio.cli import main


def test_text_split_is_reported_and_can_be_overridden(capsys, tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("Erster Absatz,\nüber zwei Zeilen.\n\nZweiter Absatz,\nauch zwei Zeilen lang.\n", encoding="utf-8")
    assert main(["data", "inspect", str(path), "--json"]) == 0
    auto = json.loads(capsys.readouterr().out)
    assert auto["rows"] == 2 and auto["text_split"].startswith("one document per paragraph (auto:")
    assert main(["data", "inspect", str(path), "--text-split", "line", "--seq-len", "16", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows"] == 4 and report["text_split"] == "one document per line (chosen)"
    st = report["stats"]
    assert st["documents"] == 4 and st["chunks"] >= 4 and st["truncated_rows"] == 0
    assert main(["data", "inspect", str(path), "--text-split", "file", "--seq-len", "16"]) == 0
    out = capsys.readouterr().out
    assert "Text     one document per file (chosen)" in out and "1 document → " in out and "training chunk" in out
