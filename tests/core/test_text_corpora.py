"""Plain text corpora (issue #18, item 4): a .txt with one document per line is read one document a
line, wrapped prose one a paragraph, the choice is reported and can be overridden, and continued
pretraining cuts long documents into sequence-length chunks that are all trained and counted."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from studio.core.data import chunks, inspect_data, load_data
from studio.core.errors import StudioError
from studio.core.models import load_tokenizer, resolve_model
from studio.core.recipe import RunConfig
from studio.core.training.dataset import tokenized_splits

WORDS = ["Farn", "シダ", "папоротник", "fougère", "蕨类", "helecho", "Wasser", "光", "свет", "lumière", "sol", "土"]


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(resolve_model("demo"))


def per_line_corpus(path: Path, lines: int = 300) -> list[str]:
    """`lines` documents, one a line, in several scripts; line 150 repeats line 20."""
    rng = random.Random(0)
    docs = [f"{i}: " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 40))) + "." for i in range(lines)]
    docs[149] = docs[19]
    path.write_text("\n".join(docs) + "\n", encoding="utf-8")
    return docs


def prose(path: Path, paragraphs: int = 12) -> list[tuple[int, str]]:
    """Paragraphs wrapped over 2–5 lines, a blank line between them: (first line, text) of each."""
    rng = random.Random(1)
    out, lines = [], []
    for p in range(paragraphs):
        wrapped = [f"Absatz {p}, Zeile {k}: " + " ".join(rng.choice(WORDS) for _ in range(8)) for k in range(rng.randint(2, 5))]
        out.append((len(lines) + 1, "\n".join(wrapped)))
        lines += wrapped + [""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return out


def config(seq_len: int) -> RunConfig:
    c = RunConfig()
    c.model.source = "demo"
    c.training.seq_len = seq_len
    c.data.eval_fraction = 0.0
    return c.validate()


# ---------------------------------------------------------------------------------------------
# Documents
# ---------------------------------------------------------------------------------------------


def test_one_document_per_line(tmp_path):
    docs = per_line_corpus(tmp_path / "corpus.txt")
    data = load_data(tmp_path / "corpus.txt")
    assert data.format == "text" and data.rows_read == 300 and data.rows_kept == 299 and data.duplicates == 1
    rows = data.dataset
    assert all("\n" not in r["text"] for r in rows)
    expected = [(i + 1, doc) for i, doc in enumerate(docs) if i != 149]
    assert [(r["line"], r["text"]) for r in rows] == expected
    assert [p.line for p in data.problems if p.kind == "duplicate"] == [150]
    assert data.text_split_used == "one document per line (auto: no blank lines)"


def test_wrapped_prose_is_one_document_per_paragraph(tmp_path):
    paragraphs = prose(tmp_path / "book.txt")
    data = load_data(tmp_path / "book.txt")
    assert [(r["line"], r["text"]) for r in data.dataset] == paragraphs
    assert data.text_split_used == "one document per paragraph (auto: blank lines between paragraphs of several lines)"


def test_the_split_can_be_chosen(tmp_path):
    docs = per_line_corpus(tmp_path / "corpus.txt")
    paragraphs = prose(tmp_path / "book.txt")
    by_line = load_data(tmp_path / "book.txt", text_split="line")  # the same file: another cache entry
    lines = [line for _, text in paragraphs for line in text.split("\n")]
    assert [r["text"] for r in by_line.dataset] == lines
    assert by_line.text_split_used == "one document per line (chosen)"
    whole = load_data(tmp_path / "corpus.txt", text_split="file")
    assert whole.rows_kept == 1 and whole.dataset[0]["text"] == "\n".join(docs) and whole.dataset[0]["line"] == 1
    assert whole.text_split_used == "one document per file (chosen)"
    one_paragraph = load_data(tmp_path / "corpus.txt", text_split="paragraph")  # no blank lines: one paragraph
    assert one_paragraph.rows_kept == 1
    assert load_data(tmp_path / "book.txt").rows_kept == len(paragraphs)  # auto again, from its own cache entry
    with pytest.raises(StudioError, match="text split"):
        load_data(tmp_path / "book.txt", text_split="sentence")


def test_other_shapes_and_markdown(tmp_path):
    spaced = tmp_path / "spaced.txt"  # blank lines between single lines: each line is a document
    spaced.write_text("Ferns like shade.\n\nCacti like sun.\n\n\nPalms like light.\n", encoding="utf-8")
    data = load_data(spaced)
    assert [(r["line"], r["text"]) for r in data.dataset] == [(1, "Ferns like shade."), (3, "Cacti like sun."),
                                                              (6, "Palms like light.")]
    assert data.text_split_used == "one document per line (auto: blank lines between single lines)"
    stray = tmp_path / "stray.txt"  # one document a line, with a few stray blank lines: not paragraphs
    stray.write_text("\n".join(f"Line {i} about ferns." for i in range(200)) + "\n\n" + "Last one.\n", encoding="utf-8")
    data = load_data(stray)
    assert data.rows_kept == 201 and data.text_split_used == "one document per line (auto: blank lines are rare)"
    notes = tmp_path / "notes.md"  # a heading belongs with its text
    notes.write_text("\n# Cacti\n\nCacti need sun.\n\n- water monthly\n", encoding="utf-8")
    data = load_data(notes)
    assert data.rows_kept == 1 and data.dataset[0]["line"] == 2
    assert data.dataset[0]["text"] == "# Cacti\n\nCacti need sun.\n\n- water monthly"
    assert data.text_split_used == "one document per file (auto: a Markdown file is one document)"
    folder = tmp_path / "both"
    folder.mkdir()
    (folder / "a.txt").write_text(spaced.read_text(encoding="utf-8"), encoding="utf-8")
    (folder / "b.md").write_text(notes.read_text(encoding="utf-8"), encoding="utf-8")
    data = load_data(folder)
    assert data.rows_kept == 4
    assert data.text_split_used == "by file (auto): 1 file one document per line, 1 file one document per file"


# ---------------------------------------------------------------------------------------------
# Chunks: every token of a long document is trained, and the report counts the chunks
# ---------------------------------------------------------------------------------------------


def test_a_long_document_becomes_chunks_that_are_all_trained(tokenizer, tmp_path):
    seq_len = 64
    rng = random.Random(2)
    text = ""
    while len(tokenizer(text, add_special_tokens=True)["input_ids"]) < 20 * seq_len + 30:
        text += " ".join(rng.choice(WORDS) for _ in range(20)) + ". "
    text = text.strip()
    (tmp_path / "long.txt").write_text(text + "\n" + "A short second document.\n", encoding="utf-8")
    expected = tokenizer(text, add_special_tokens=True)["input_ids"] + [tokenizer.eos_token_id]
    assert len(expected) % seq_len >= chunks.MIN_TAIL_TOKENS  # the last chunk is kept

    loaded = load_data(tmp_path / "long.txt")
    train, held_out, dropped = tokenized_splits(loaded, tokenizer, config(seq_len))
    assert held_out is None and dropped == 0
    rows = train.to_list()  # unshuffled: the document's chunks in order, then the short document
    first = rows[:-1]
    assert len(first) == -(-len(expected) // seq_len) and all(len(r["input_ids"]) == seq_len for r in first[:-1])
    assert [t for r in first for t in r["input_ids"]] == expected
    assert all(r["labels"] == r["input_ids"] for r in rows)  # the loss on every token
    short = tokenizer("A short second document.", add_special_tokens=True)["input_ids"] + [tokenizer.eos_token_id]
    assert rows[-1]["input_ids"] == short

    report = inspect_data(tmp_path / "long.txt", seq_len=seq_len, tokenizer=tokenizer)
    st = report.stats.as_dict()
    assert st["documents"] == 2 and st["chunks"] == len(rows) and st["split_rows"] == 1 and st["dropped_tails"] == 0
    assert st["truncated_rows"] == 0 and st["truncated_share"] == 0 and report.truncated_share(seq_len) == 0
    assert st["total_tokens"] == len(expected) + len(short)
    assert report.as_dict()["text_split"] == "one document per line (auto: no blank lines)"


def test_the_report_counts_the_chunks_training_makes(tokenizer, tmp_path):
    per_line_corpus(tmp_path / "corpus.txt")
    loaded = load_data(tmp_path / "corpus.txt")
    for seq_len in (16, 24, 48):
        train, _, _ = tokenized_splits(loaded, tokenizer, config(seq_len))
        stats = inspect_data(tmp_path / "corpus.txt", seq_len=seq_len, tokenizer=tokenizer).stats
        lengths = [len(tokenizer(r["text"])["input_ids"]) + 1 for r in loaded.dataset]
        trained = sum(len(r) for r in train["input_ids"])
        assert stats.chunks.chunks == len(train) and stats.chunks.documents == 299
        assert trained + stats.chunks.dropped_tokens == sum(lengths)  # every token but the scraps left out is trained
        assert stats.chunks.split_documents == sum(n > seq_len for n in lengths)


def test_the_rule_for_a_short_last_chunk():
    ids = np.arange(64 * 3 + 5)
    pieces = chunks.document_chunks(ids, 64)
    assert [len(p) for p in pieces] == [64, 64, 64]  # 5 tokens after full chunks: left out
    assert [len(p) for p in chunks.document_chunks(np.arange(64 * 3 + 16), 64)] == [64, 64, 64, 16]
    assert [len(p) for p in chunks.document_chunks(np.arange(5), 64)] == [5]  # a short document is kept whole
    counted = chunks.count_chunks(np.array([64 * 3 + 5, 64 * 3 + 16, 5, 64]), 64)
    assert counted.as_dict() == {"documents": 4, "chunks": 3 + 4 + 1 + 1, "split_documents": 2, "dropped_tails": 1,
                                 "dropped_tokens": 5}


def test_a_huge_document_is_tokenized_in_pieces_with_the_same_ids(tokenizer, monkeypatch):
    rng = random.Random(3)
    text = "\n".join(" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 30))) for _ in range(400))
    whole = tokenizer(text, add_special_tokens=True)["input_ids"] + [tokenizer.eos_token_id]
    monkeypatch.setattr(chunks, "PIECE_CHARS", 1000)
    assert len(list(chunks._pieces(text, 1000))) > 10
    assert chunks.document_ids(tokenizer, [text, "Kurz."])[0].tolist() == whole
    unbroken = "".join(rng.choice("abcdefgh") for _ in range(5000))  # no line break or space: hard cuts
    assert sum(len(p) for _, p in chunks._pieces(unbroken, 1000)) == len(unbroken)
