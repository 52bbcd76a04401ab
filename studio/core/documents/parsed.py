"""What a document becomes before it is chunked: its pages, each a list of blocks (a heading, a
paragraph or a table) in reading order, and a report per page — characters, empty, garbled text, a
scanned page with no text layer — so the user sees what was read before anything is generated."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

HEADING, PARAGRAPH, TABLE = "heading", "paragraph", "table"
GARBLED_SHARE = 0.05  # a page whose text has more than this share of unreadable characters is said to be garbled


@dataclass(frozen=True)
class Block:
    kind: str  # HEADING, PARAGRAPH or TABLE
    text: str
    level: int = 0  # a heading's level (1 = the largest)


@dataclass
class Page:
    number: int  # 1-based; a file without pages (DOCX, HTML, text) is one page
    blocks: list[Block] = field(default_factory=list)
    has_images: bool = False  # a PDF page with pictures: without text, probably scanned

    @property
    def text(self) -> str:
        return "\n\n".join(b.text for b in self.blocks)

    @property
    def chars(self) -> int:
        return sum(len(b.text) for b in self.blocks)

    @property
    def garbled(self) -> bool:
        """Unreadable characters, or glyphs the PDF does not map to letters (pdfminer writes them "(cid:12)")."""
        text = self.text
        bad = sum(1 for ch in text if ch == "\ufffd" or (not ch.isprintable() and ch not in "\n\t"))
        bad += sum(len(m) for m in re.findall(r"\(cid:\d+\)", text))
        return bool(text) and bad / len(text) > GARBLED_SHARE

    @property
    def scanned(self) -> bool:
        return self.chars == 0 and self.has_images


@dataclass
class Document:
    path: Path
    kind: str  # "pdf", "docx", "html", "markdown", "text"
    pages: list[Page]
    seconds: float = 0.0  # how long it took to read

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def chars(self) -> int:
        return sum(p.chars for p in self.pages)

    def report(self) -> dict:
        """The parse report: the file's figures and, page by page, what is wrong with it."""
        empty = [p.number for p in self.pages if p.chars == 0 and not p.scanned]
        scanned = [p.number for p in self.pages if p.scanned]
        garbled = [p.number for p in self.pages if p.garbled]
        return {"file": self.name, "kind": self.kind, "pages": len(self.pages), "chars": self.chars,
                "empty_pages": empty, "scanned_pages": scanned, "garbled_pages": garbled,
                "seconds": round(self.seconds, 3), "verdict": self.verdict(empty, scanned, garbled)}

    def verdict(self, empty: list[int], scanned: list[int], garbled: list[int]) -> str:
        """The report in one sentence for people."""
        if scanned and len(scanned) == len(self.pages):
            return ("A scanned document: its pages are pictures with no text to read. Convert it with an OCR tool "
                    "first (for example `pip install docling`, then `docling FILE --to md`), and add the result.")
        parts = [f"{len(self.pages)} page{'s' if len(self.pages) != 1 else ''}, {self.chars:,} characters"]
        if scanned:
            parts.append(f"{_pages(scanned)} scanned (pictures: no text read)")
        if empty:
            parts.append(f"{_pages(empty)} empty")
        if garbled:
            parts.append(f"{_pages(garbled)} garbled (the PDF's text layer does not map to letters): check "
                         f"{'it' if len(garbled) == 1 else 'them'}")
        return "; ".join(parts) + "."


def _pages(numbers: list[int]) -> str:
    """"page 3 is" / "pages 3, 4 are" (the first eight named)."""
    if len(numbers) == 1:
        return f"page {numbers[0]} is"
    shown = ", ".join(str(n) for n in numbers[:8])
    return f"pages {shown}{f' and {len(numbers) - 8} more' if len(numbers) > 8 else ''} are"


def text_blocks(text: str) -> list[Block]:
    """Markdown or plain text as blocks: `#` lines are headings, blank lines end paragraphs, runs of
    `|` rows are tables."""
    blocks: list[Block] = []
    for part in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        lines = [line.rstrip() for line in part.strip("\n").splitlines() if line.strip()]
        if not lines:
            continue
        heading = re.match(r"^(#{1,6})\s+(.*)$", lines[0])
        if heading:
            blocks.append(Block(HEADING, heading.group(2).strip(), len(heading.group(1))))
            lines = lines[1:]
            if not lines:
                continue
        if all(line.lstrip().startswith("|") for line in lines):
            rows = [line for line in lines if not re.fullmatch(r"\s*\|?[\s:|-]+\|?\s*", line)]  # no --- rule
            blocks.append(Block(TABLE, "\n".join(rows)))
        else:
            blocks.append(Block(PARAGRAPH, " ".join(line.strip() for line in lines)))
    return blocks
