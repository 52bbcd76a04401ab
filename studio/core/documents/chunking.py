"""A document cut into chunks a model can turn into questions: by headings first (a heading starts a
new chunk), then by paragraphs up to a size the user sees and changes (characters; ~4 characters a
token in English). A paragraph is never cut unless it alone is over twice the size (then at sentence
ends). Each chunk has a stable id (the same text of the same file gets the same id in every run: the
generation cache and the review keep to it), its file, its pages and the headings above it."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from studio.core.documents.parsed import HEADING, Document

CHUNK_CHARS = 1200  # the default size: a few paragraphs, ~300 tokens


@dataclass(frozen=True)
class Chunk:
    id: str
    document: str  # the file's name
    first_page: int
    last_page: int
    headings: tuple[str, ...]  # the headings above it, outermost first
    text: str

    @property
    def source(self) -> str:
        """Where it comes from, in people's words: "manual.pdf p. 12" (or "pp. 12–13")."""
        if self.first_page == self.last_page:
            return f"{self.document} p. {self.first_page}"
        return f"{self.document} pp. {self.first_page}–{self.last_page}"

    @property
    def title(self) -> str:
        return " › ".join(self.headings)


def chunk_id(document: str, text: str) -> str:
    return hashlib.sha1(f"{document}\n{text}".encode()).hexdigest()[:12]


def chunk_document(doc: Document, size: int = CHUNK_CHARS) -> list[Chunk]:
    chunks: list[Chunk] = []
    headings: list[tuple[int, str]] = []  # (level, text) of the open headings
    parts: list[tuple[int, str]] = []  # (page, text) of the chunk being filled

    def close() -> None:
        if parts:
            text = "\n\n".join(t for _, t in parts)
            chunks.append(Chunk(chunk_id(doc.name, text), doc.name, parts[0][0], parts[-1][0],
                                tuple(h for _, h in headings), text))
            parts.clear()

    for page in doc.pages:
        for block in page.blocks:
            if block.kind == HEADING:
                close()
                headings = [h for h in headings if h[0] < block.level] + [(block.level, block.text)]
                continue
            for piece in _pieces(block.text, size):
                if parts and sum(len(t) for _, t in parts) + len(piece) > size:
                    close()
                parts.append((page.number, piece))
    close()
    return chunks


def _pieces(text: str, size: int) -> list[str]:
    """A paragraph as it is, or — when it alone is over twice the size — cut at sentence ends."""
    if len(text) <= 2 * size:
        return [text]
    pieces, current = [], ""
    for sentence in re.split(r"(?<=[.!?。！？])\s+", text):
        if current and len(current) + len(sentence) + 1 > size:
            pieces.append(current)
            current = ""
        current = f"{current} {sentence}".strip()
    return pieces + ([current] if current else [])
