"""PDF pages through pdfplumber (pdfminer.six; MIT): the words with their positions and sizes, put in
reading order — two-column pages read column by column, a title across both columns first — lines
joined into paragraphs, larger type as headings, and tables (pdfplumber's table finder) as tables."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from studio.core.documents.parsed import HEADING, PARAGRAPH, TABLE, Block, Page

LINE_TOLERANCE = 3.0  # points: words whose tops differ by less are on one line
HEADING_SCALE = 1.2  # type this much larger than the page's body text is a heading


@dataclass
class _Line:
    top: float
    bottom: float
    x0: float
    x1: float
    text: str
    size: float


def read_pdf(path) -> list[Page]:
    import pdfplumber

    pages = []
    with pdfplumber.open(str(path)) as pdf:
        for number, page in enumerate(pdf.pages, start=1):
            pages.append(Page(number, _page_blocks(page), has_images=bool(page.images)))
    return pages


def _page_blocks(page) -> list[Block]:
    tables = page.find_tables()
    boxes = [t.bbox for t in tables]
    words = [w for w in page.extract_words(extra_attrs=["size"], use_text_flow=False)
             if not any(_inside(w, box) for box in boxes)]
    placed: list[tuple[tuple, Block]] = []  # (reading-order key, block)
    body = statistics.median([w["size"] for w in words]) if words else 0
    for (band, column), lines in _columns(_lines(words), page.width):
        for top, block in _paragraphs(lines, body):
            # one column: each block where it stands; two: the band, then its column, then down the column
            placed.append(((band if column else top, column, top), block))
    for t in tables:
        rows = [" | ".join((cell or "").replace("\n", " ").strip() for cell in row) for row in t.extract()]
        placed.append(((t.bbox[1], 0, t.bbox[1]), Block(TABLE, "\n".join(r for r in rows if r.strip(" |")))))
    placed.sort(key=lambda item: item[0])
    return [block for _, block in placed if block.text.strip()]


def _inside(word: dict, box) -> bool:
    x0, top, x1, bottom = box
    return word["x0"] >= x0 - 1 and word["x1"] <= x1 + 1 and word["top"] >= top - 1 and word["bottom"] <= bottom + 1


def _lines(words: list[dict]) -> list[_Line]:
    """Words grouped into lines (same top, within a tolerance), left to right; a line is split where a
    wide gap separates two columns."""
    rows: list[list[dict]] = []
    for w in sorted(words, key=lambda w: (round(w["top"]), w["x0"])):
        if rows and abs(rows[-1][0]["top"] - w["top"]) <= LINE_TOLERANCE:
            rows[-1].append(w)
        else:
            rows.append([w])
    lines = []
    for row in rows:
        row.sort(key=lambda w: w["x0"])
        piece = [row[0]]
        for w in row[1:]:
            if w["x0"] - piece[-1]["x1"] > 3 * max(w["size"], 1):  # a gutter, not a space
                lines.append(_line(piece))
                piece = []
            piece.append(w)
        lines.append(_line(piece))
    return lines


def _line(words: list[dict]) -> _Line:
    return _Line(min(w["top"] for w in words), max(w["bottom"] for w in words), words[0]["x0"], words[-1]["x1"],
                 " ".join(w["text"] for w in words), max(w["size"] for w in words))


def _columns(lines: list[_Line], width: float) -> list[tuple[tuple, list[_Line]]]:
    """The lines in reading order: where the page has two columns (a gutter near the middle that no
    line crosses), each band between full-width lines is read left column, then right column."""
    gutter = _gutter(lines, width)
    if gutter is None:
        return [((lines[0].top if lines else 0, 0), lines)]
    out: list[tuple[tuple, list[_Line]]] = []
    band: list[_Line] = []
    for line in sorted(lines, key=lambda ln: ln.top):
        if line.x0 < gutter < line.x1:  # across both columns: ends the band above it
            out += _band(band, gutter)
            out.append(((line.top, 0), [line]))
            band = []
        else:
            band.append(line)
    return out + _band(band, gutter)


def _band(lines: list[_Line], gutter: float) -> list[tuple[tuple, list[_Line]]]:
    if not lines:
        return []
    start = min(ln.top for ln in lines)
    left = [ln for ln in lines if ln.x1 <= gutter]
    right = [ln for ln in lines if ln.x0 >= gutter]
    return [((start, 1), left), ((start, 2), right)]


def _gutter(lines: list[_Line], width: float) -> float | None:
    """The x of an empty vertical band between 35% and 65% of the width, with text on both sides of it
    on many lines; None for a one-column page."""
    if len(lines) < 6:
        return None
    for x in sorted((width * (35 + i) / 100 for i in range(31)), key=lambda v: abs(v - width / 2)):
        crossing = sum(1 for ln in lines if ln.x0 < x < ln.x1)
        left = sum(1 for ln in lines if ln.x1 <= x)
        right = sum(1 for ln in lines if ln.x0 >= x)
        if crossing <= len(lines) * 0.15 and left >= 3 and right >= 3:
            return x
    return None


def _paragraphs(lines: list[_Line], body: float) -> list[tuple[float, Block]]:
    """Lines joined into paragraphs (a paragraph ends at a wider gap, or where the type size changes),
    each with the top of its first line; lines in larger type are headings."""
    blocks: list[tuple[float, Block]] = []
    current: list[_Line] = []

    def close() -> None:
        if current:
            blocks.append((current[0].top, Block(PARAGRAPH, _joined(ln.text for ln in current))))
            current.clear()

    for line in sorted(lines, key=lambda ln: ln.top):
        if body and line.size >= body * HEADING_SCALE:
            close()
            blocks.append((line.top, Block(HEADING, line.text, 1 if line.size >= body * 1.6 else 2)))
            continue
        if current and (line.top - current[-1].bottom > 0.5 * line.size or abs(line.size - current[-1].size) > 0.5):
            close()
        current.append(line)
    close()
    return blocks


def _joined(lines) -> str:
    """Lines as one paragraph; a word hyphenated at a line's end is joined again."""
    text = ""
    for line in lines:
        if text.endswith("-") and line[:1].islower():
            text = text[:-1] + line
        else:
            text = f"{text} {line}" if text else line
    return text
