"""Which text encoding a data file is in: a byte-order mark, else UTF-8 if the whole file decodes as
UTF-8, else the encoding charset-normalizer recognises (told to the user as a warning)."""

from __future__ import annotations

import codecs
from pathlib import Path

from studio.core.data.problems import FATAL, WARNING, Problem, ProblemLog

BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


# When several encodings read a file equally well, the one most files in the wild use wins.
COMMON_ENCODINGS = ("cp1252", "iso8859_1", "iso8859_15", "cp1251", "shift_jis", "gb18030", "big5", "euc_kr", "cp1250")


def _guess_encoding(path: Path):
    from charset_normalizer import from_path

    matches = from_path(path)
    best = matches.best()
    if best is None:
        return None
    ties = [m for m in matches if m.chaos == best.chaos and m.coherence == best.coherence]
    ranked = sorted(ties, key=lambda m: COMMON_ENCODINGS.index(m.encoding) if m.encoding in COMMON_ENCODINGS else len(COMMON_ENCODINGS))
    return ranked[0] if ranked else best


def detect_encoding(path: Path, label: str | None, log: ProblemLog) -> str | None:
    """The encoding to read `path` with; None (and a fatal problem) when it cannot be recognised."""
    with path.open("rb") as fh:
        head = fh.read(4)
    for bom, name in BOMS:
        if head.startswith(bom):
            return name
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                decoder.decode(chunk)
                offset += len(chunk)
            decoder.decode(b"", final=True)
        return "utf-8"
    except UnicodeDecodeError as exc:
        bad_at = offset + exc.start
    best = _guess_encoding(path)
    if best is None or best.encoding in ("utf_8", "ascii"):
        log.add(Problem(None, None, f"The file is not UTF-8 text (an undecodable byte at position {bad_at}), "
                        "and its encoding could not be recognised.",
                        "Open it in a text editor or spreadsheet and save it as UTF-8.", FATAL, label, "encoding"))
        return None
    name = codecs.lookup(best.encoding).name
    log.add(Problem(None, None, f"The file is not UTF-8: it reads as {name}, so the studio read it that way.",
                    "Check a few examples below; save the file as UTF-8 to be sure.", WARNING, label, "encoding"))
    return name
