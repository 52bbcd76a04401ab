"""Documents the tests build themselves, following each format's public description: a two-column PDF
with a title across both columns and a table (reportlab), a scanned-looking PDF (a picture, no text),
a Word file with headings and a table (python-docx), a saved web page with a menu and a footer
around its article, Markdown and non-English text."""

from __future__ import annotations

from pathlib import Path

LEFT = ["Watering ferns", "Boston ferns want evenly moist soil. Water when the top 2 cm of soil feel dry, usually "
        "every 3 days in summer.", "Brown tips mean the air is too dry: mist the fronds or stand the pot on a tray "
        "of wet pebbles."]
RIGHT = ["Feeding ferns", "Feed a fern once a month from April to September with a liquid fertiliser at half "
         "strength.", "Never feed a fern in winter: the roots rest and the salts burn them."]
TABLE = [["Plant", "Light", "Water every"], ["Boston fern", "bright shade", "3 days"], ["Snake plant", "any", "14 days"]]


def two_column_pdf(path: Path) -> Path:
    """Page 1: a title across both columns, then two columns (heading + paragraphs each); page 2: a table."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import (
        BaseDocTemplate,
        Frame,
        FrameBreak,
        NextPageTemplate,
        PageBreak,
        PageTemplate,
        Paragraph,
        Table,
        TableStyle,
    )

    styles = getSampleStyleSheet()
    width, height = A4
    margin, gap = 50, 30
    column = (width - 2 * margin - gap) / 2
    title = Frame(margin, height - margin - 60, width - 2 * margin, 60, id="title")
    left = Frame(margin, margin, column, height - 2 * margin - 70, id="left")
    right = Frame(margin + column + gap, margin, column, height - 2 * margin - 70, id="right")
    whole = Frame(margin, margin, width - 2 * margin, height - 2 * margin, id="whole")
    doc = BaseDocTemplate(str(path), pagesize=A4, pageTemplates=[PageTemplate("columns", [title, left, right]),
                                                                PageTemplate("plain", [whole])])
    story = [Paragraph("The fern care handbook", styles["Title"]), FrameBreak()]
    for part in (LEFT, RIGHT):
        story.append(Paragraph(part[0], styles["Heading2"]))
        story += [Paragraph(text, styles["BodyText"]) for text in part[1:]]
        story.append(FrameBreak())
    grid = TableStyle([("GRID", (0, 0), (-1, -1), 0.5, "black")])  # ruled, as most printed tables are
    story[-1:] = [NextPageTemplate("plain"), PageBreak(), Paragraph("Watering at a glance", styles["Heading2"]),
                  Table(TABLE, style=grid), Paragraph("Water less in winter, whatever the plant.", styles["BodyText"])]
    doc.build(story)
    return path


def scanned_pdf(path: Path) -> Path:
    """One page holding only a picture of text: what a scanner makes."""
    from PIL import Image, ImageDraw
    from reportlab.pdfgen import canvas

    picture = path.with_suffix(".png")
    image = Image.new("RGB", (400, 100), "white")
    ImageDraw.Draw(image).text((10, 40), "Water ferns every 3 days.", fill="black")
    image.save(picture)
    page = canvas.Canvas(str(path))
    page.drawImage(str(picture), 100, 600, 400, 100)
    page.showPage()
    page.save()
    return path


def word_file(path: Path) -> Path:
    import docx

    document = docx.Document()
    document.add_heading("Pflege von Zimmerpflanzen", level=1)
    document.add_paragraph("Gießen Sie den Farn, wenn die obersten 2 cm der Erde trocken sind.")
    document.add_heading("Licht", level=2)
    document.add_paragraph("Ein Farn steht am besten im hellen Schatten, nie in der Mittagssonne.")
    table = document.add_table(rows=2, cols=2)
    for r, row in enumerate([["Pflanze", "Gießen alle"], ["Farn", "3 Tage"]]):
        for c, text in enumerate(row):
            table.cell(r, c).text = text
    document.add_paragraph("Im Winter braucht der Farn weniger Wasser.")
    document.save(str(path))
    return path


def web_page(path: Path) -> Path:
    path.write_text("""<!doctype html><html><head><meta charset="utf-8"><title>Snake plants</title></head><body>
<nav><a href="/">Home</a> | <a href="/shop">Shop</a> | <a href="/login">Log in</a></nav>
<article><h1>Caring for a snake plant</h1>
<p>A snake plant needs water only every 14 days, and less in winter. Let the soil dry out completely between waterings.</p>
<h2>Light</h2>
<p>It grows in any light, from a dark corner to a sunny window, but grows fastest in bright indirect light.</p>
<table><tr><th>Season</th><th>Water every</th></tr><tr><td>Summer</td><td>14 days</td></tr><tr><td>Winter</td><td>30 days</td></tr></table>
</article>
<footer>© 2026 Plant Shop. All rights reserved. Cookie settings.</footer></body></html>""", encoding="utf-8")
    return path


def markdown_file(path: Path) -> Path:
    path.write_text("# Orchids\n\nWater an orchid once a week by soaking the pot for 10 minutes.\n\n"
                    "## Flowers\n\nAn orchid flowers again after 6 to 9 months if it gets a cooler night.\n", encoding="utf-8")
    return path


FERN_TEXT = ("Boston ferns want evenly moist soil. Water when the top 2 cm of soil feel dry, usually every 3 days in "
             "summer. Brown tips mean the air is too dry.")
FERN_PAIRS = [("How often does a Boston fern need water in summer?", "Every 3 days.", "every 3 days in summer"),
              ("Why do fern tips turn brown?", "The air is too dry.", "Brown tips mean the air is too dry"),
              ("According to the text, what do ferns want?", "Moist soil.", "evenly moist soil"),
              ("What soil does a fern want?", "Bone-dry soil.", "the soil is bone dry")]


def generated_folder(tmp: Path) -> Path:
    """What `studio data from-docs` leaves in its output folder for one Markdown file and four pairs a
    model wrote from it (two pass every check, two do not), built with the pipeline's own checks."""
    import json
    from dataclasses import asdict

    from studio.core.documents.chunking import chunk_document
    from studio.core.documents.pipeline import Row, _checked
    from studio.core.documents.reading import read_document

    (tmp / "fern.md").write_text(f"# Ferns\n\n{FERN_TEXT}", encoding="utf-8")
    chunk = chunk_document(read_document(tmp / "fern.md"))[0]
    rows = _checked([Row(f"r{i}", q, a, quote, None, chunk.id, chunk.source, chunk.document, "", [], "a model")
                     for i, (q, a, quote) in enumerate(FERN_PAIRS)], {chunk.id: chunk}, held=set())
    out = tmp / "out"
    out.mkdir()
    (out / "pairs.jsonl").write_text("".join(json.dumps(asdict(r)) + "\n" for r in rows), encoding="utf-8")
    (out / "chunks.jsonl").write_text(json.dumps({**asdict(chunk), "source": chunk.source}) + "\n", encoding="utf-8")
    (out / "report.json").write_text(json.dumps({
        "documents": [{"file": "fern.md", "kind": "markdown", "pages": 1, "chars": len(FERN_TEXT), "verdict": "1 page."}],
        "train_documents": ["fern.md"], "eval_documents": [], "shared_text": [], "chunks": 1, "chunks_done": 1,
        "chunks_asked": 1, "pairs": 4, "passing": 2, "skipped": [], "stopped": False, "seconds_per_chunk": 1.0,
        "estimate_seconds_all": 1.0}), encoding="utf-8")
    return out
