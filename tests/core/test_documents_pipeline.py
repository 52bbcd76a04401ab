"""Documents → pairs end to end with a real local model: the demo model, trained by the real worker,
exported by the studio as GGUF and run by llama.cpp — in this process, and behind an OpenAI-compatible
HTTP server (a local stand-in for Ollama) through the `openai` client. The tiny model's questions are
poor; what is asserted is that rows are produced, checked with visible reasons, reviewable and resumable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studio.core.errors import StudioError
from tests.documents import files

pytest.importorskip("pdfplumber", reason="the documents extra: pip install 'lora-studio[docs]'")
pytest.importorskip("llama_cpp", reason="the GGUF extra: pip install 'lora-studio[gguf]'")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_gguf(tmp_path_factory) -> str:
    from studio.core import export
    from tests.demo_runs import finished_demo_run

    home = tmp_path_factory.mktemp("docs-gguf")
    run = finished_demo_run(home, "docs")
    result = export.export_run(run, home / "export", gguf=("q8_0",))
    return str(home / "export" / result.gguf[0].path)


@pytest.fixture(scope="module")
def documents(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("documents")
    files.two_column_pdf(folder / "handbook.pdf")
    files.scanned_pdf(folder / "scan.pdf")
    files.word_file(folder / "pflege.docx")
    files.web_page(folder / "snake.html")
    files.markdown_file(folder / "orchid.md")
    (folder / "scan.png").unlink()
    return folder


def test_documents_become_checked_reviewable_pairs_and_a_stopped_run_resumes(demo_gguf, documents, tmp_path):
    from studio.core.documents.generation import LocalGguf
    from studio.core.documents.pipeline import Settings, run
    from studio.core.documents.review import Review

    generator = LocalGguf(demo_gguf)
    out = tmp_path / "out"
    seen = []
    settings = Settings(chunk_chars=3000, pairs_per_chunk=1)
    first = run(documents, out, generator, settings, should_stop=lambda: len(seen) >= 2,
                on_progress=lambda done, total: seen.append(done))
    assert first.stopped and first.asked == 2 and json.loads((out / "report.json").read_text())["stopped"]
    second = run(documents, out, generator, settings)
    assert not second.stopped and second.asked == len(second.chunks) - 2  # the first two came from the cache
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    by_file = {d["file"]: d for d in report["documents"]}
    assert by_file["scan.pdf"]["scanned_pages"] == [1] and by_file["handbook.pdf"]["pages"] == 2
    assert report["eval_documents"] and not set(report["eval_documents"]) & set(report["train_documents"])
    assert report["chunks_done"] == report["chunks"] == len(second.chunks)
    assert second.rows, "the model's replies gave no pairs at all"
    assert len(second.rows) + len(report["skipped"]) >= 1
    for row in second.rows:  # every row checked; every failure a reason in words
        assert all(isinstance(reason, str) and reason for reason in row.failed)
        assert row.side == ("eval" if row.document in report["eval_documents"] else "train")
        assert row.generator == generator.name and row.prompt_version
    review = Review.open(out)
    review.accept_passing()
    if not review.accepted():  # the tiny model's pairs rarely pass: the expert edits one into a good pair
        row = review.rows[0]
        chunk = review.chunks[row.chunk_id]["text"]
        quote = " ".join(chunk.split()[:6])
        review.edit(row.id, "What does the source say first?", quote, quote)
    counts = review.write_dataset()
    assert sum(counts.values()) == len(review.accepted()) >= 1
    lines = [json.loads(line) for side in ("train", "eval") for line in (out / f"{side}.jsonl").read_text().splitlines()]
    assert all(m["messages"][1]["role"] == "assistant" for m in lines)


def test_an_openai_compatible_server_is_found_and_asked_in_the_format_it_takes(demo_gguf, documents, tmp_path, capsys):
    from studio.cli import main
    from studio.core.documents.generation import generator_for, reachable_models
    from tests.documents.standin_server import StandIn

    server = StandIn(demo_gguf, refuse_schemas=True)
    try:
        assert reachable_models(server.url) == ["plant-doctor"]
        with pytest.raises(StudioError, match="does not offer 'llama3'") as err:
            generator_for("llama3", server.url)
        assert "plant-doctor" in err.value.advice
        out = tmp_path / "out"
        code = main(["data", "from-docs", str(documents), "--model", "plant-doctor", "--server", server.url, "--out",
                     str(out), "--preview", "2", "--pairs", "1", "--chunk-chars", "300", "--json"])
        report = json.loads(capsys.readouterr().out)
        assert code in (0, 2) and report["chunks_asked"] == 2 and report["chunks"] > 2
        assert report["estimate_seconds_all"] > 0 and "plant-doctor at" in report["generator"]
        # the schema refused once, then JSON mode for every chunk
        assert server.formats == ["json_schema", "json_object", "json_object"]
    finally:
        server.close()
    with pytest.raises(StudioError, match="Nothing answers") as err:
        reachable_models(server.url)
    assert "ollama serve" in err.value.advice


def test_the_judge_sees_the_source_and_its_no_is_a_reason(demo_gguf, tmp_path):
    from studio.core.documents.chunking import Chunk
    from studio.core.documents.generation import LocalGguf, parse_verdict
    from studio.core.documents.pipeline import Row, _judged

    assert [parse_verdict(r) for r in ('{"supported": true}', "No.", '{"supported": "maybe"}', "")] == [True, False,
                                                                                                        None, None]
    chunk = Chunk("c1", "fern.md", 1, 1, ("Ferns",), files.FERN_TEXT)
    rows = [Row(f"r{i}", q, a, quote, [0, 1], "c1", "fern.md p. 1", "fern.md", "train", [], "m")
            for i, (q, a, quote) in enumerate(files.FERN_PAIRS[:2])]
    rows.append(Row("r9", "Q?", "A.", "x", None, "c1", "fern.md p. 1", "fern.md", "train", ["already failed"], "m"))
    (tmp_path / "cache").mkdir()
    _judged(rows, {"c1": chunk}, LocalGguf(demo_gguf), tmp_path, None)
    judged = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(judged) == 2 and all(name.startswith("judge-r") for name in judged)  # a failed row is not asked
    for row in rows[:2]:  # the tiny model's verdict either way: a yes leaves the row, a no or nonsense says so
        assert row.failed == [] or row.failed[0].startswith(("the judge says", "the judge's reply"))
    assert rows[2].failed == ["already failed"]
