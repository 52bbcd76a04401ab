"""`studio data from-docs FOLDER --model MODEL --out DIR`: documents → checked question–answer pairs
(studio/core/documents/), and with --accept-passing the dataset of the pairs that pass every check."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

from studio.cli.output import EXIT_USER_ERROR
from studio.core.errors import StudioError


def add_parser(data_sub) -> None:
    p = data_sub.add_parser("from-docs", help="turn PDF, Word, HTML, Markdown and text files into question-answer "
                            "pairs a local model writes and the studio checks")
    p.add_argument("folder", type=Path, nargs="?", help="a folder of documents (or one file)")
    p.add_argument("--model", help="the model that writes the pairs: one the --server offers, a .gguf file "
                   "(llama.cpp), or a model folder / hub id / demo the studio loads itself")
    p.add_argument("--server", help="an OpenAI-compatible address, e.g. http://localhost:11434/v1 (Ollama), "
                   "http://localhost:8080/v1 (llama.cpp server)")
    p.add_argument("--servers", action="store_true", help="list the servers running on this computer and their models")
    p.add_argument("--out", type=Path, help="the folder for the chunks, pairs, report and dataset")
    p.add_argument("--open-book", action="store_true", help="put the source text before each question in the dataset "
                   "(the model learns to read it); default: closed book (it learns the facts)")
    p.add_argument("--chunk-chars", type=int, default=1200, help="characters per chunk (default 1200, ~300 tokens)")
    p.add_argument("--pairs", type=int, default=3, help="pairs asked for per chunk (default 3)")
    p.add_argument("--eval-share", type=float, default=0.2, help="share of the documents held out for evaluation "
                   "(default 0.2; their pairs become golden questions)")
    p.add_argument("--preview", type=int, default=0, metavar="N", help="ask for N chunks only, to see the pairs and "
                   "how long all of them would take")
    p.add_argument("--judge", action="store_true", help="also ask the model, showing it the source, whether each "
                   "pair that passes the checks is supported (a no is a reason on the row)")
    p.add_argument("--accept-passing", action="store_true", help="accept every pair that passes every check and "
                   "write the dataset (train.jsonl, eval.jsonl, provenance.jsonl)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_from_docs)


def cmd_from_docs(args) -> int:
    from studio.core.documents.generation import generator_for, health

    if args.servers:
        for found in health():
            state = ", ".join(found["models"]) or found["problem"]
            print(f"{found['server']:17} {found['url']:28} {state}")
        return 0
    from studio.core.documents.reading import require_libraries

    require_libraries()
    if args.folder is None or args.out is None or not args.model:
        raise StudioError("`studio data from-docs` needs the documents, a model and an output folder.",
                          "Use: studio data from-docs FOLDER --model MODEL [--server URL] --out DIR")
    outcome = _pairs(args, generator_for(args.model, args.server))
    report = json.loads((args.out / "report.json").read_text(encoding="utf-8"))
    if args.accept_passing and not outcome.stopped:
        from studio.core.documents.review import Review

        review = Review.open(args.out)
        review.accept_passing()
        report["dataset"] = review.write_dataset(open_book=args.open_book)
    if args.json:
        print(json.dumps(report, indent=1, ensure_ascii=False))
    else:
        _print(report, args)
    return EXIT_USER_ERROR if not outcome.rows and not outcome.stopped else 0


def _pairs(args, generator):
    """The pipeline's run; Ctrl-C (or the window's Stop) ends it after the chunk being written, and the
    same command goes on from there."""
    from studio.core.documents.pipeline import Settings, run

    settings = Settings(chunk_chars=args.chunk_chars, pairs_per_chunk=args.pairs, eval_fraction=args.eval_share,
                        preview=args.preview, judge=args.judge)
    stop = {"asked": False}
    previous = {sig: signal.signal(sig, lambda *_: stop.update(asked=True)) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return run(args.folder, args.out, generator, settings, should_stop=lambda: stop["asked"],
                   on_progress=_progress_json if args.json else _progress)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _progress_json(done: int, total: int) -> None:
    """For a program that runs this command (the window): one JSON object a line on stderr."""
    print(json.dumps({"done": done, "total": total}), file=sys.stderr, flush=True)


def _progress(done: int, total: int) -> None:
    print(f"\r  chunk {done}/{total}", end="" if done < total else "\n", file=sys.stderr, flush=True)


def _print(report: dict, args) -> None:
    for doc in report["documents"]:
        print(f"{doc['file']}: {doc.get('verdict') or doc['problem'] + ' ' + doc['advice']}")
    print(f"Split by document: {len(report['train_documents'])} for training, "
          f"{len(report['eval_documents'])} held out for evaluation ({', '.join(report['eval_documents']) or 'none'}).")
    for shared in report["shared_text"][:3]:
        print(f"  Shared text: {shared['train']} and {shared['eval']} have {shared['runs']} runs of 8 words in common.")
    print(f"{report['chunks_done']} of {report['chunks']} chunks done by {report['generator']}: {report['pairs']} pairs, "
          f"{report['passing']} pass every check.")
    for skipped in report["skipped"][:5]:
        print(f"  Nothing from {skipped['source']}: {skipped['reason']}")
    if report["seconds_per_chunk"]:
        print(f"{report['seconds_per_chunk']:.1f} s a chunk: all {report['chunks']} chunks would take about "
              f"{report['estimate_seconds_all'] / 60:.0f} min.")
    if report["stopped"]:
        print(f"Stopped. Run the same command again to go on: the chunks done are kept in {args.out / 'cache'}.")
    elif "dataset" in report:
        d = report["dataset"]
        print(f"Dataset: {d['train']} pairs in {args.out / 'train.jsonl'}, {d['eval']} golden questions in "
              f"{args.out / 'eval.jsonl'} (sources in provenance.jsonl).")
        print(f"Train on it: studio train --data {args.out / 'train.jsonl'} --questions {args.out / 'eval.jsonl'} ...")
    else:
        print(f"Pairs and their checks: {args.out / 'pairs.jsonl'}. Accept every pair that passes its checks and "
              "write the dataset with --accept-passing.")
