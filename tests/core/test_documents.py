"""Documents read offline in reading order, chunked, split by document, every pair checked, and the
expert's review turned into a dataset (issue #22). The files are built by tests/documents/files.py."""

from __future__ import annotations

import json

import pytest

from studio.core.documents.checks import check_pair, near_duplicates
from studio.core.documents.chunking import chunk_document
from studio.core.documents.parsed import HEADING, PARAGRAPH, TABLE
from studio.core.documents.reading import documents_in, read_document
from studio.core.documents.split import shared_text, split_documents
from studio.core.errors import StudioError
from tests.documents import files

pytest.importorskip("pdfplumber", reason="the documents extra: pip install 'lora-studio[docs]'")


def test_a_two_column_pdf_is_read_column_by_column_with_its_title_first_and_its_table(tmp_path):
    doc = read_document(files.two_column_pdf(tmp_path / "handbook.pdf"))
    first, second = doc.pages
    assert [(b.kind, b.text[:20]) for b in first.blocks] == [
        (HEADING, "The fern care handbo"), (HEADING, "Watering ferns"), (PARAGRAPH, files.LEFT[1][:20]),
        (PARAGRAPH, files.LEFT[2][:20]), (HEADING, "Feeding ferns"), (PARAGRAPH, files.RIGHT[1][:20]),
        (PARAGRAPH, files.RIGHT[2][:20])]
    assert first.blocks[2].text == files.LEFT[1]  # whole sentences, not lines of both columns interleaved
    assert [b.kind for b in second.blocks] == [HEADING, TABLE, PARAGRAPH]
    assert second.blocks[1].text.splitlines() == [" | ".join(row) for row in files.TABLE]
    report = doc.report()
    assert report["pages"] == 2 and not report["empty_pages"] and not report["scanned_pages"]


def test_a_scanned_pdf_is_said_to_be_one_with_the_converter_to_use(tmp_path):
    report = read_document(files.scanned_pdf(tmp_path / "scan.pdf")).report()
    assert report["scanned_pages"] == [1] and report["chars"] == 0
    assert "scanned document" in report["verdict"] and "docling" in report["verdict"]


def test_a_word_file_keeps_its_headings_and_its_table_in_order(tmp_path):
    doc = read_document(files.word_file(tmp_path / "pflege.docx"))
    blocks = doc.pages[0].blocks
    assert [(b.kind, b.level) for b in blocks] == [(HEADING, 1), (PARAGRAPH, 0), (HEADING, 2), (PARAGRAPH, 0),
                                                    (TABLE, 0), (PARAGRAPH, 0)]
    assert blocks[1].text == "Gießen Sie den Farn, wenn die obersten 2 cm der Erde trocken sind."
    assert blocks[4].text == "Pflanze | Gießen alle\nFarn | 3 Tage"


def test_a_saved_web_page_gives_its_article_without_menu_or_footer(tmp_path):
    doc = read_document(files.web_page(tmp_path / "snake.html"))
    text = doc.pages[0].text
    assert "every 14 days" in text and "Winter | 30 days" in text
    assert "Log in" not in text and "Cookie" not in text
    assert doc.pages[0].blocks[0].kind == HEADING


def test_files_that_cannot_be_read_say_which_and_what_to_do(tmp_path):
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4 this is not really a PDF")
    with pytest.raises(StudioError) as err:
        read_document(broken)
    assert "broken.pdf" in err.value.message and "save it again" in err.value.advice
    (tmp_path / "notes.odt").write_bytes(b"x")
    (tmp_path / "~$lock.docx").write_bytes(b"x")  # Word's lock file
    files.markdown_file(tmp_path / "orchid.md")
    assert [p.name for p in documents_in(tmp_path)] == ["broken.pdf", "orchid.md"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(StudioError, match="No documents"):
        documents_in(empty)


def test_chunks_follow_headings_keep_their_size_and_ids_and_say_their_pages(tmp_path):
    doc = read_document(files.two_column_pdf(tmp_path / "handbook.pdf"))
    chunks = chunk_document(doc, size=150)
    assert [c.headings for c in chunks][:2] == [("The fern care handbook", "Watering ferns")] * 2
    assert all(len(c.text) <= 300 for c in chunks)
    assert chunks[-1].source == "handbook.pdf p. 2" and chunks[-1].title == "The fern care handbook › Watering at a glance"
    assert [c.id for c in chunk_document(read_document(tmp_path / "handbook.pdf"), size=150)] == [c.id for c in chunks]
    long = tmp_path / "long.md"
    long.write_text("# Long\n\n" + " ".join(f"Sentence number {i} is here." for i in range(200)), encoding="utf-8")
    pieces = chunk_document(read_document(long), size=500)
    assert len(pieces) > 5 and all(len(p.text) <= 520 for p in pieces) and pieces[0].text.endswith(".")


CHUNK = ("Boston ferns want evenly moist soil. Water when the top 2 cm of soil feel dry, usually every 3 days in "
         "summer. Brown tips mean the air is too dry.")


@pytest.mark.parametrize("question,answer,quote,reasons", [
    ("How often does a Boston fern need water in summer?", "About every 3 days, when the top 2 cm are dry.",
     "usually every 3 days in summer", []),
    ("Why do fern tips turn brown?", "The air is too dry.", "Brown tips mean the air is too dry", []),
    ("How often?", "Every 3 weeks.", "every 3 days", ["3 weeks"]),
    ("How often?", "Every 3 days.", "water it every day", ["quote is not in the source"]),
    ("According to the text, when should a fern be watered?", "When the soil is dry.", "Water when the top",
     ["refers to the text"]),
    ("", "x", "Boston ferns", ["empty"]),
    ("When to water?", "At 5 cm depth.", "", ["no quote", "5 cm"]),
])
def test_each_pair_is_checked_against_its_chunk(question, answer, quote, reasons):
    checked = check_pair(question, answer, quote, CHUNK)
    assert len(checked.failed) == len(reasons)
    for reason, failed in zip(reasons, checked.failed, strict=True):
        assert reason in failed
    if quote and not any("quote" in r for r in reasons):
        start, end = checked.quote_span
        assert CHUNK[start:end].casefold() == quote.casefold()


def test_a_quote_matches_across_line_breaks_and_typographic_quotes():
    text = "The label says “water weekly”\nin summer – never in winter."
    assert check_pair("When?", "Weekly in summer.", 'says "water weekly" in summer - never', text).failed == ()


def test_near_duplicate_questions_point_to_the_first():
    questions = ["How often should I water a Boston fern?", "how often should I water a boston fern ?",
                 "What light does a snake plant need?", "How often should a Boston fern be watered, then?"]
    assert near_duplicates(questions) == {1: 0}


def test_documents_are_split_before_generating_and_shared_text_is_found(tmp_path):
    names = [f"doc{i}.md" for i in range(10)]
    train, held = split_documents(names, 0.2)
    assert len(held) == 2 and not set(train) & set(held) and split_documents(names, 0.2) == (train, held)
    assert split_documents(["one.md"], 0.2) == (["one.md"], [])
    copied = "Repot a fern in spring into a pot one size larger, with fresh peat-free compost and a drainage hole."
    (tmp_path / "a.md").write_text(f"# A\n\nFerns like shade.\n\n{copied}", encoding="utf-8")
    (tmp_path / "b.md").write_text(f"# B\n\nCacti like sun.\n\n{copied}", encoding="utf-8")
    (tmp_path / "c.md").write_text("# C\n\nOrchids like bark.", encoding="utf-8")
    a, b, c = (chunk_document(read_document(tmp_path / n), 60) for n in ("a.md", "b.md", "c.md"))
    found = shared_text(a + c, b)
    assert found and found[0][:2] == ("a.md p. 1", "b.md p. 1") and found[0][2] >= 8


def test_the_review_accepts_edits_and_writes_the_dataset_with_its_sources(tmp_path):
    from studio.core.documents.review import ACCEPTED, REJECTED, Review

    out = files.generated_folder(tmp_path)
    (out / "mine.txt").write_text("my notes", encoding="utf-8")
    review = Review.open(out)
    assert [bool(r.failed) for r in review.rows] == [False, False, True, True]
    assert review.accept_passing() == 2 and len(review.sample(30)) == 2
    review.decide("r0", REJECTED)
    edited = review.edit("r3", "What soil does a Boston fern want?", "Evenly moist soil.", "evenly moist soil")
    assert edited.failed == [] and review.decisions["r3"] == ACCEPTED
    again = Review.open(out)  # the decisions and edits were saved
    assert [r.id for r in again.accepted()] == ["r1", "r3"] and again.rows[3].answer == "Evenly moist soil."
    assert again.write_dataset(open_book=True) == {"train": 2, "eval": 0}
    first = json.loads((out / "train.jsonl").read_text(encoding="utf-8").splitlines()[0])["messages"]
    assert first[0]["content"].startswith("Boston ferns want") and first[0]["content"].endswith("turn brown?")
    sources = [json.loads(line) for line in (out / "provenance.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [s["id"] for s in sources] == ["r1", "r3"] and sources[1]["edited"] and sources[0]["quote_span"]
    assert (out / "mine.txt").read_text(encoding="utf-8") == "my notes"  # nothing the user made is touched


def test_the_parse_report_says_which_pages_are_empty_scanned_or_garbled():
    from pathlib import Path

    from studio.core.documents.parsed import Block, Document, Page

    pages = [Page(1, [Block(PARAGRAPH, "(cid:3)(cid:4)(cid:5)(cid:6) ab")]), Page(2, []), Page(3, []), Page(4, [], True),
             Page(5, [Block(PARAGRAPH, "Plain words.")])]
    report = Document(Path("x.pdf"), "pdf", pages).report()
    assert (report["empty_pages"], report["scanned_pages"], report["garbled_pages"]) == ([2, 3], [4], [1])
    assert "page 4 is scanned" in report["verdict"] and "pages 2, 3 are empty" in report["verdict"]
    assert "page 1 is garbled" in report["verdict"]
