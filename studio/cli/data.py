"""`studio data inspect DATA`: the format, problems with their lines, token statistics and examples."""

from __future__ import annotations

import argparse
import json
import sys

from studio.cli.output import EXIT_USER_ERROR, indent
from studio.core.errors import StudioError


def add_parser(sub) -> None:
    p_data = sub.add_parser("data", help="load, check and preview a dataset")
    data_sub = p_data.add_subparsers(dest="data_command", required=True)
    p = data_sub.add_parser("inspect", help="detected format, rows, problems with their lines, token statistics, examples")
    _add_data_arguments(p)
    p.set_defaults(func=cmd_data_inspect)


def _add_data_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="a data file (.jsonl .json .csv .tsv .parquet .txt .md), a folder of them, or a hub dataset id")
    p.add_argument("--model", default="demo", help="whose tokenizer and chat template to use (default: the demo model)")
    p.add_argument("--format", choices=["alpaca", "sharegpt", "messages", "prompt_completion", "text"],
                   help="override the detected format")
    p.add_argument("--map", dest="mapping", help="which columns hold what, e.g. prompt=question,response=answer[,system=sys]")
    p.add_argument("--seq-len", type=int, default=2048, help="sequence length to check truncation against (default 2048)")
    p.add_argument("--skip-bad-rows", action="store_true", help="leave out malformed lines instead of refusing the file")
    p.add_argument("--split", help="hub datasets: which split (default train)")
    p.add_argument("--subset", help="hub datasets: which subset (configuration)")
    p.add_argument("--all-tokens", action="store_true", help="put the loss on every token, not only the assistant's")
    p.add_argument("--examples", type=int, default=3, help="how many examples to show (default 3)")
    p.add_argument("--trust-remote-code", action="store_true", help="allow the model's own Python code (only for models you trust)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def cmd_data_inspect(args) -> int:
    from studio.core.data import check_seq_len, inspect_data, parse_mapping
    from studio.core.models import resolve_model

    check_seq_len(args.seq_len)  # before the model loads (inspect_data checks it too, for the window)
    model = resolve_model(args.model, trust_remote_code=args.trust_remote_code)
    try:
        report = inspect_data(args.source, model=model, fmt=args.format, mapping=parse_mapping(args.mapping),
                              seq_len=args.seq_len, skip_bad_rows=args.skip_bad_rows, split=args.split, subset=args.subset,
                              assistant_only=not args.all_tokens, examples=args.examples)
    except StudioError as exc:
        problems = getattr(exc, "problems", None)
        if problems:
            if args.json:
                print(json.dumps({"usable": False, "error": exc.message, "advice": exc.advice,
                                  "problems": [p.as_dict() for p in problems]}, indent=2))
            else:
                _print_problems(problems, sys.stderr)
        raise
    data = report.as_dict()
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        print_data_report(data)
    return 0 if data["usable"] else EXIT_USER_ERROR


def _print_problems(problems, out, limit: int = 20) -> None:
    rows = sorted(problems, key=lambda p: ((p.file or ""), p.line or 0))
    for p in rows[:limit]:
        where = p.where() or "-"
        field = f" [{p.field}]" if p.field else ""
        out.write(f"  {p.severity:<7} line {where}{field}: {p.message}\n           fix: {p.fix_for('cli')}\n")
    if len(rows) > limit:
        out.write(f"  ... and {len(rows) - limit} more (use --json for all)\n")


def print_data_report(data: dict, out=None) -> None:
    from studio.core.data import Problem, count_kinds

    out = out or sys.stdout
    w = out.write
    st = data["stats"]
    w(f"Data     {data['source']}\n")
    detected = "" if data["format"] == data["detected_format"] else f" (chosen; detected {data['detected_format'] or 'nothing'})"
    w(f"Format   {data['format_detail']}{detected}; columns: {', '.join(data['columns'])}\n")
    for name, enc in data["encodings"].items():
        w(f"Encoding {name} read as {enc}\n")
    skipped = f", {data['rows_skipped']} malformed lines skipped" if data["rows_skipped"] else ""
    w(f"Rows     {data['rows']} usable of {data['rows_read']} read ({data['rows_dropped']} dropped, "
      f"{data['duplicates']} of them duplicates{skipped})\n")
    loss = "assistant turns only" if data["assistant_only_loss"] else "every token"
    w(f"Tokens   with the tokenizer of {data['model']} and {data['chat_template']} chat template; loss on {loss}\n")
    w(f"         length min {st['min']}, median {st['median']:.0f}, p95 {st['p95']:.0f}, max {st['max']}; "
      f"{st['total_tokens']:,} tokens in all\n")
    sampled = st.get("estimated_rows", 0) - st.get("long_rows", 0)
    if sampled:
        w(f"         ({sampled:,} of {st['rows']:,} rows estimated from their length: a random sample and the "
          f"longest rows were counted exactly)\n")
    if st.get("long_rows"):
        rows = "1 row is" if st["long_rows"] == 1 else f"{st['long_rows']:,} rows are"
        w(f"         ({rows} far longer than any sequence length: only the start was tokenized, the rest of the "
          f"count is estimated from the length)\n")
    cut = "split" if data["format"] == "text" else "cut"
    w(f"         {st['truncated_rows']} rows ({100 * st['truncated_share']:.1f}%) are longer than --seq-len {st['seq_len']} "
      f"and would be {cut}\n")
    if st["histogram"]:
        w(_histogram(st["histogram"], st["bin_edges"], st["seq_len"]))
    if data["problems"]:
        w(f"\nProblems ({count_kinds(data['problem_counts'])}):\n")
        _print_problems([Problem(**p) for p in data["problems"]], out)
    for ex in data["examples"]:
        where = f"{ex['file']}:{ex['line']}" if ex["file"] else f"line {ex['line']}"
        about = "about " if ex.get("tokens_estimated") else ""
        short = f"; shortened, {ex['hidden_chars']:,} characters not shown" if ex.get("hidden_chars") else ""
        w(f"\nExample ({where}; {about}{ex['tokens']:,} tokens, {ex['trained_tokens']:,} trained"
          f"{', cut' if ex['truncated'] else ''}{short}) — trained text is between ⟦ and ⟧:\n")
        text = "".join(f"⟦{s['text']}⟧" if s["trained"] else s["text"] for s in ex["segments"])
        w(indent(text) + "\n")


def _histogram(counts: list[int], edges: list[float], seq_len: int, width: int = 40) -> str:
    peak = max(counts) or 1
    lines = []
    for c, lo, hi in zip(counts, edges, edges[1:]):
        if c == 0 and lo > seq_len:
            continue
        mark = " ◀ seq-len" if lo <= seq_len < hi else ""
        lines.append(f"         {int(lo):>6}–{int(hi):<6} {'▇' * max(1 if c else 0, round(width * c / peak))} {c}{mark}")
    return "\n".join(lines) + "\n"
