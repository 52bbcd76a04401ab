"""Documents → checked question–answer pairs, in stages a folder keeps: read every file (a parse report
per file and page), cut chunks, split training and evaluation by document, ask the model for pairs
chunk by chunk (each reply cached under the chunk's id, the model and the prompt's version: a
cancelled or crashed run resumes where it stopped, a preview's chunks are not asked again), check
every pair. Everything lands in the output folder as the stages finish:

    OUT/report.json     the parse report, the split, the text the two sides share, the counts, the time
    OUT/chunks.jsonl    every chunk: id, file, pages, headings, text (the review shows it beside its pairs)
    OUT/pairs.jsonl     every generated pair with its source, its quote's span and its checks
    OUT/cache/          the model's replies, one file per chunk

The expert's review (review.py) then turns the accepted pairs into the dataset."""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from studio.core.atomic import write_jsonl, write_text
from studio.core.documents.checks import check_pair, near_duplicates
from studio.core.documents.chunking import CHUNK_CHARS, Chunk, chunk_document
from studio.core.documents.generation import PROMPT_VERSION, parse_pairs, prompt
from studio.core.documents.reading import documents_in, read_document
from studio.core.documents.split import shared_text, split_documents
from studio.core.errors import StudioError


@dataclass(frozen=True)
class Settings:
    chunk_chars: int = CHUNK_CHARS
    pairs_per_chunk: int = 3
    eval_fraction: float = 0.2  # of the documents, drawn before generating
    preview: int = 0  # ask for this many chunks only (spread over the documents), to see the pairs and the time
    seed: int = 0
    max_tokens: int = 1024
    judge: bool = False  # also ask the model, showing it the source, whether each passing pair is supported


@dataclass
class Row:
    id: str
    question: str
    answer: str
    quote: str
    quote_span: list[int] | None
    chunk_id: str
    source: str  # "manual.pdf p. 12"
    document: str
    side: str  # "train" or "eval"
    failed: list[str]
    generator: str
    prompt_version: str = PROMPT_VERSION
    edited: bool = False  # the expert's own words (review.py)

    @property
    def passed(self) -> bool:
        return not self.failed


@dataclass
class Outcome:
    rows: list[Row]
    chunks: list[Chunk]
    asked: int  # chunks sent to the model in this call (the others came from the cache)
    done: int = 0  # chunks whose pairs are in `rows` (asked now or before)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (chunk source, why its reply gave nothing)
    seconds_per_chunk: float | None = None
    stopped: bool = False  # cancelled: run again to go on

    def estimate_seconds(self) -> float | None:
        """How long all the chunks would take at this run's pace."""
        return None if self.seconds_per_chunk is None else self.seconds_per_chunk * len(self.chunks)


def read_folder(folder: Path) -> tuple[list, list[dict]]:
    """(documents read, their reports); a file that cannot be read is a report with its reason, and the
    others go on."""
    docs, reports = [], []
    for path in documents_in(folder):
        try:
            doc = read_document(path)
        except StudioError as exc:
            reports.append({"file": path.name, "problem": exc.message, "advice": exc.advice})
            continue
        docs.append(doc)
        reports.append(doc.report())
    return docs, reports


def run(folder: Path, out: Path, generator, settings: Settings = Settings(), *,
        on_progress: Callable[[int, int], None] | None = None, should_stop: Callable[[], bool] | None = None) -> Outcome:
    """Read, chunk, split, generate and check, writing each stage into `out` (see the module's text)."""
    out.mkdir(parents=True, exist_ok=True)
    docs, reports = read_folder(Path(folder))
    if not docs:
        raise StudioError(f"None of the documents in {folder} could be read.",
                          "See each file's reason in the report; add readable PDF, DOCX, HTML, Markdown or text files.",
                          topic="data")
    chunks = [c for doc in docs for c in chunk_document(doc, settings.chunk_chars)]
    train_docs, eval_docs = split_documents([d.name for d in docs], settings.eval_fraction, settings.seed)
    held = set(eval_docs)
    shared = shared_text([c for c in chunks if c.document not in held], [c for c in chunks if c.document in held])
    write_jsonl(out / "chunks.jsonl", ({**asdict(c), "source": c.source} for c in chunks))
    todo = _preview(chunks, settings) if settings.preview else chunks
    outcome = _generate(todo, out, generator, settings, on_progress, should_stop)
    outcome.chunks = chunks
    by_id = {c.id: c for c in chunks}
    outcome.rows = _checked(outcome.rows, by_id, held)
    if settings.judge:
        _judged(outcome.rows, by_id, generator, out, should_stop)
    write_jsonl(out / "pairs.jsonl", (asdict(r) for r in outcome.rows))
    split = {"train_documents": train_docs, "eval_documents": eval_docs,
             "shared_text": [{"train": a, "eval": b, "runs": n} for a, b, n in shared[:50]]}
    write_text(out / "report.json", json.dumps(_report(outcome, reports, split, generator.name, settings), indent=1,
                                               ensure_ascii=False))
    return outcome


def _report(outcome: Outcome, reports: list[dict], split: dict, generator: str, settings: Settings) -> dict:
    """OUT/report.json: what was read, the split, what the model made and how long it took."""
    return {"documents": reports, **split, "chunks": len(outcome.chunks), "chunks_done": outcome.done,
            "chunks_asked": outcome.asked, "pairs": len(outcome.rows), "passing": sum(r.passed for r in outcome.rows),
            "skipped": [{"source": s, "reason": why} for s, why in outcome.skipped], "generator": generator,
            "prompt_version": PROMPT_VERSION, "settings": asdict(settings), "stopped": outcome.stopped,
            "seconds_per_chunk": outcome.seconds_per_chunk, "estimate_seconds_all": outcome.estimate_seconds()}


def _preview(chunks: list[Chunk], settings: Settings) -> list[Chunk]:
    """`settings.preview` chunks drawn across the documents (the same ones on every try)."""
    picked = random.Random(settings.seed).sample(range(len(chunks)), min(settings.preview, len(chunks)))
    return [chunks[i] for i in sorted(picked)]


def _generate(chunks: list[Chunk], out: Path, generator, settings: Settings, on_progress, should_stop) -> Outcome:
    """Each chunk's pairs: from the cache, else from the model (timed, cached at once)."""
    cache = out / "cache"
    cache.mkdir(exist_ok=True)
    rows, skipped, asked, spent, stopped, done = [], [], 0, 0.0, False, 0
    for chunk in chunks:
        if should_stop is not None and should_stop():
            stopped = True
            break
        key = hashlib.sha1(f"{chunk.id}|{generator.name}|{PROMPT_VERSION}|{settings.pairs_per_chunk}".encode()).hexdigest()[:16]
        saved = cache / f"{chunk.id}-{key}.json"
        if saved.is_file():
            reply = json.loads(saved.read_text(encoding="utf-8"))["reply"]
        else:
            started = time.perf_counter()
            reply = generator.complete(prompt(chunk.text, chunk.title, settings.pairs_per_chunk), settings.max_tokens)
            spent += time.perf_counter() - started
            asked += 1
            write_text(saved, json.dumps({"chunk": chunk.id, "generator": generator.name, "reply": reply},
                                         ensure_ascii=False))
        pairs, problem = parse_pairs(reply)
        if problem:
            skipped.append((chunk.source, problem))
        rows += [Row(_row_id(chunk.id, p.question), p.question, p.answer, p.quote, None, chunk.id, chunk.source,
                     chunk.document, "", [], generator.name) for p in pairs]
        done += 1
        if on_progress is not None:
            on_progress(done, len(chunks))
    return Outcome(rows, [], asked, done, skipped, spent / asked if asked else None, stopped=stopped)


def _row_id(chunk_id: str, question: str) -> str:
    return hashlib.sha1(f"{chunk_id}\n{question}".encode()).hexdigest()[:12]


def _checked(rows: list[Row], chunks: dict[str, Chunk], held: set[str]) -> list[Row]:
    """Each row's checks against its chunk, its side of the split, and the near-duplicates merged into
    the first of them (the later ones are marked, not dropped)."""
    for row in rows:
        checked = check_pair(row.question, row.answer, row.quote, chunks[row.chunk_id].text)
        row.quote_span = list(checked.quote_span) if checked.quote_span else None
        row.failed = list(checked.failed)
        row.side = "eval" if row.document in held else "train"
    for later, first in near_duplicates([r.question for r in rows]).items():
        rows[later].failed.append(f"it repeats the question of {rows[first].source} ({rows[first].id})")
    return rows


def _judged(rows: list[Row], chunks: dict[str, Chunk], generator, out: Path, should_stop) -> None:
    """The judge's yes or no on every pair that passed the checks (cached like the pairs); a no, or a
    reply that is neither, is a reason on the row."""
    from studio.core.documents.generation import JUDGE_SCHEMA, judge_prompt, parse_verdict

    for row in rows:
        if row.failed or (should_stop is not None and should_stop()):
            continue
        saved = out / "cache" / f"judge-{row.id}-{hashlib.sha1(generator.name.encode()).hexdigest()[:8]}.json"
        if saved.is_file():
            reply = json.loads(saved.read_text(encoding="utf-8"))["reply"]
        else:
            reply = generator.complete(judge_prompt(chunks[row.chunk_id].text, row.question, row.answer), 32, JUDGE_SCHEMA)
            write_text(saved, json.dumps({"row": row.id, "reply": reply}, ensure_ascii=False))
        verdict = parse_verdict(reply)
        if verdict is False:
            row.failed.append("the judge says the source does not support the answer")
        elif verdict is None:
            row.failed.append(f"the judge's reply says neither yes nor no ({' '.join(reply.split())[:40]!r})")


def load_rows(out: Path) -> tuple[list[Row], dict[str, dict]]:
    """The pairs and chunks a run wrote into `out` (for the review)."""
    pairs, chunks = out / "pairs.jsonl", out / "chunks.jsonl"
    if not pairs.is_file():
        raise StudioError(f"{out} holds no generated pairs.", "Run `studio data from-docs FOLDER --out DIR` first.",
                          topic="data")
    rows = [Row(**json.loads(line)) for line in pairs.read_text(encoding="utf-8").splitlines() if line.strip()]
    known = {c["id"]: c for c in (json.loads(line) for line in chunks.read_text(encoding="utf-8").splitlines() if line)}
    return rows, known
