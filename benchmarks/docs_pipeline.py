"""From documents to pairs on this machine: how fast the studio reads, and how fast a model writes.

    python benchmarks/docs_pipeline.py [--pages 100] [--chunks 12] [--gguf FILE] [--results benchmarks/RESULTS.md]

1. Reading: a 100-page two-column PDF (reportlab: a title across both columns, two columns of
   paragraphs, a ruled table on every fifth page), the same text as a Word file and as a web page;
   the seconds for each and per 100 pages.
2. Writing: --chunks chunks of that text sent to a model for pairs: the demo model exported by the
   studio as GGUF (trained and exported first, unless --gguf names a file) run by llama.cpp, reply held
   to the schema; the seconds a chunk, the pairs made, how many pass every check.

On a GPU with a 7–8B instruct model served by Ollama (`ollama pull llama3.1:8b`), the same measurement:

    studio data from-docs FOLDER --server http://localhost:11434/v1 --model llama3.1:8b --out OUT --preview 20
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from results import publish  # noqa: E402


def long_pdf(path: Path, pages: int) -> Path:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import BaseDocTemplate, Frame, FrameBreak, PageTemplate, Paragraph, Table, TableStyle

    from tests.documents.files import LEFT, RIGHT, TABLE

    styles = getSampleStyleSheet()
    width, height = A4
    column = (width - 130) / 2
    frames = [Frame(50, height - 110, width - 100, 60), Frame(50, 50, column, height - 170),
              Frame(80 + column, 50, column, height - 170)]
    doc = BaseDocTemplate(str(path), pagesize=A4, pageTemplates=[PageTemplate("columns", frames)])
    story = []
    for page in range(pages):
        story += [Paragraph(f"Chapter {page + 1}: plant care", styles["Title"]), FrameBreak()]
        for part in (LEFT, RIGHT):
            story.append(Paragraph(part[0], styles["Heading2"]))
            story += [Paragraph(f"{text} (Section {page + 1}.)", styles["BodyText"]) for text in part[1:] * 4]
            if part is RIGHT and page % 5 == 0:
                story.append(Table(TABLE, style=TableStyle([("GRID", (0, 0), (-1, -1), 0.5, "black")])))
            story.append(FrameBreak())
    doc.build(story)
    return path


def same_text_as(doc, folder: Path) -> list[Path]:
    """The PDF's text as a Word file and as a web page."""
    import docx

    word = docx.Document()
    html = ["<html><body><article>"]
    for page in doc.pages:
        for block in page.blocks:
            if block.kind == "heading":
                word.add_heading(block.text, level=block.level)
                html.append(f"<h{block.level}>{block.text}</h{block.level}>")
            else:
                word.add_paragraph(block.text)
                html.append(f"<p>{block.text}</p>")
    word.save(str(folder / "same.docx"))
    (folder / "same.html").write_text("\n".join(html + ["</article></body></html>"]), encoding="utf-8")
    return [folder / "same.docx", folder / "same.html"]


def demo_gguf(folder: Path) -> str:
    from studio.core import export
    from tests.demo_runs import finished_demo_run

    result = export.export_run(finished_demo_run(folder, "docs-bench"), folder / "export", gguf=("q8_0",))
    return str(folder / "export" / result.gguf[0].path)


def main() -> None:
    from studio.core.documents.chunking import chunk_document
    from studio.core.documents.generation import LocalGguf
    from studio.core.documents.pipeline import Settings, run
    from studio.core.documents.reading import read_document

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=100)
    ap.add_argument("--chunks", type=int, default=12)
    ap.add_argument("--gguf")
    ap.add_argument("--results", type=Path)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        pdf = read_document(long_pdf(folder / "book.pdf", args.pages))
        for doc in [pdf] + [read_document(p) for p in same_text_as(pdf, folder)]:
            per_100 = doc.seconds / max(len(pdf.pages), 1) * 100
            rows.append(f"| read {doc.kind.upper()} ({len(pdf.pages)} pages' text, {doc.chars:,} characters) | "
                        f"{doc.seconds:.2f} s | {per_100:.2f} s per 100 pages |")
            print(rows[-1], flush=True)
        chunks = chunk_document(pdf)
        gguf = args.gguf or demo_gguf(folder / "gguf")
        docs = folder / "docs"
        docs.mkdir()
        (folder / "book.pdf").rename(docs / "book.pdf")
        started = time.perf_counter()
        outcome = run(docs, folder / "out", LocalGguf(gguf), Settings(preview=args.chunks, pairs_per_chunk=2,
                                                                      eval_fraction=0))
        spent = time.perf_counter() - started
        passing = sum(r.passed for r in outcome.rows)
        rows.append(f"| write pairs: {outcome.asked} of {len(chunks)} chunks, {Path(gguf).name} in llama.cpp | "
                    f"{outcome.seconds_per_chunk:.1f} s a chunk ({spent:.0f} s with reading) | {len(outcome.rows)} pairs, "
                    f"{passing} pass every check, {len(outcome.skipped)} chunks gave none |")
        print(rows[-1], flush=True)
    text = (f"\n## From documents to pairs: reading and writing speed on the CPU — {time.strftime('%Y-%m-%d')}\n\n"
            f"`python benchmarks/docs_pipeline.py --pages {args.pages} --chunks {args.chunks}` on {os.cpu_count()} CPU "
            f"cores ({platform.machine()}, no GPU).\n\n| What | Time | |\n|---|---|---|\n" + "\n".join(rows) + "\n")
    publish(text, args.results)


if __name__ == "__main__":
    main()
