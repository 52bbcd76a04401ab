"""`studio data inspect DATA`: the format, problems with their lines, token statistics and examples (and
`studio data from-docs`: from_docs.py). The flags of the data settings are the recipe's (studio/cli/recipe_flags.py)."""

from __future__ import annotations

import argparse
import json
import sys

from studio.cli import from_docs
from studio.cli.output import EXIT_USER_ERROR, indent
from studio.cli.recipe_flags import add_recipe_flags, apply_flags
from studio.core.errors import StudioError


def add_parser(sub) -> None:
    p_data = sub.add_parser("data", help="load, check and preview a dataset")
    data_sub = p_data.add_subparsers(dest="data_command", required=True)
    p = data_sub.add_parser("inspect", help="detected format, rows, problems with their lines, token statistics, examples")
    _add_data_arguments(p)
    p.set_defaults(func=cmd_data_inspect)
    from_docs.add_parser(data_sub)


# The recipe's settings that change what `studio data inspect` shows: their flags come from the recipe.
INSPECTED = ("model.source", "model.trust_remote_code", "data.format", "data.mapping", "data.split", "data.subset",
             "data.skip_bad_rows", "data.assistant_only", "data.text_split", "training.seq_len")


def _add_data_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data.source", metavar="source",
                   help="a data file (.jsonl .json .csv .tsv .parquet .txt .md), a folder of them, or a hub dataset id")
    p.add_argument("--examples", type=int, default=3, help="how many examples to show (default 3)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--all-tokens", dest="data.assistant_only", action="store_false", default=None,
                   help="put the loss on every token, not only the assistant's (the same as --no-assistant-only)")
    add_recipe_flags(p, keep=lambda key, spec: key in INSPECTED, changes={"model.source": {
        "help": "whose tokenizer and chat template to use (default: the demo model)"}})


def cmd_data_inspect(args) -> int:
    from studio.core.data import check_seq_len, inspect_data
    from studio.core.models import resolve_model
    from studio.core.recipe import RunConfig

    config = RunConfig()
    apply_flags(config, args)
    m, d, seq_len = config.model, config.data, config.training.seq_len
    try:
        check_seq_len(seq_len)  # before the model loads (inspect_data checks it too, for the window)
        model = resolve_model(m.source, trust_remote_code=m.trust_remote_code)
        report = inspect_data(d.source, model=model, fmt=d.format, mapping=d.mapping, seq_len=seq_len,
                              skip_bad_rows=d.skip_bad_rows, split=d.split, subset=d.subset,
                              assistant_only=d.assistant_only, examples=args.examples, text_split=d.text_split)
    except StudioError as exc:
        _report_problems(exc, args.json)
        raise
    data = report.as_dict()
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        print_data_report(data)
    return 0 if data["usable"] else EXIT_USER_ERROR


def _report_problems(exc: StudioError, as_json: bool) -> None:
    """What made the data unusable, before the error itself is printed: with --json, always a JSON
    object (the error, its advice, the columns found and the problems), so scripts read every outcome."""
    problems = getattr(exc, "problems", None) or []
    if as_json:
        preview = getattr(exc, "preview", None)
        print(json.dumps({"usable": False, "error": exc.message, "advice": exc.advice, "topic": exc.topic,
                          "columns": preview.columns if preview else [], "first_row": preview.first_row if preview else {},
                          "problems": [p.as_dict() for p in problems]}, indent=2, ensure_ascii=False))
    elif problems:
        _print_problems(problems, sys.stderr)


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
    w(_summary(data))
    w(_token_lines(data))
    st = data["stats"]
    if st["histogram"]:
        w(_histogram(st["histogram"], st["bin_edges"], st["seq_len"]))
    if data["problems"]:
        w(f"\nProblems ({count_kinds(data['problem_counts'])}):\n")
        _print_problems([Problem(**p) for p in data["problems"]], out)
    for ex in data["examples"]:
        w(_example(ex))


def _summary(data: dict) -> str:
    detected = "" if data["format"] == data["detected_format"] else f" (chosen; detected {data['detected_format'] or 'nothing'})"
    lines = [f"Data     {data['source']}",
             f"Format   {data['format_detail']}{detected}; columns: {', '.join(data['columns'])}"]
    lines += [f"Encoding {name} read as {enc}" for name, enc in data["encodings"].items()]
    skipped = f", {data['rows_skipped']} malformed lines skipped" if data["rows_skipped"] else ""
    lines.append(f"Rows     {data['rows']} usable of {data['rows_read']} read ({data['rows_dropped']} dropped, "
                 f"{data['duplicates']} of them duplicates{skipped})")
    lines.append(f"Layout   {data['layout']['words']}")
    if data.get("text_split"):
        lines.append(f"Text     {data['text_split']}")
    return "\n".join(lines) + "\n"


def _token_lines(data: dict) -> str:
    st = data["stats"]
    loss = "assistant turns only" if data["assistant_only_loss"] else "every token"
    lines = [f"Tokens   with the tokenizer of {data['model']} and {data['chat_template']} chat template; loss on {loss}",
             f"         length min {st['min']}, median {st['median']:.0f}, p95 {st['p95']:.0f}, max {st['max']}; "
             f"{st['total_tokens']:,} tokens in all"]
    sampled = st.get("estimated_rows", 0) - st.get("long_rows", 0)
    if sampled:
        lines.append(f"         ({sampled:,} of {st['rows']:,} rows estimated from their length: a random sample and the "
                     f"longest rows were counted exactly)")
    if st.get("long_rows"):
        rows = "1 row is" if st["long_rows"] == 1 else f"{st['long_rows']:,} rows are"
        lines.append(f"         ({rows} far longer than any sequence length: only the start was tokenized, the rest of the "
                     f"count is estimated from the length)")
    if st.get("chunks") is not None:
        lines.append(_chunk_line(st))
    else:
        lines.append(f"         {st['truncated_rows']} rows ({100 * st['truncated_share']:.1f}%) are longer than --seq-len "
                     f"{st['seq_len']} and would be cut")
    return "\n".join(lines) + "\n"


def _chunk_line(st: dict) -> str:
    """Raw text: the chunks training makes of its documents (studio/core/data/chunks.py)."""
    from studio.core.data.chunks import MIN_TAIL_TOKENS
    from studio.core.wording import count

    line = (f"         {count(st['documents'], 'document')} → {count(st['chunks'], 'training chunk')} of at most "
            f"{st['seq_len']} tokens; {st['split_rows']:,} longer than --seq-len, cut into consecutive chunks that are all "
            f"trained{'' if st['dropped_tails'] else ': nothing is cut off'}")
    if st["dropped_tails"]:
        line += (f"\n         (left out: {count(st['dropped_tails'], 'last chunk')} of fewer than {MIN_TAIL_TOKENS} tokens, "
                 f"{count(st['dropped_tail_tokens'], 'token')})")
    return line


def _example(ex: dict) -> str:
    where = f"{ex['file']}:{ex['line']}" if ex["file"] else f"line {ex['line']}"
    about = "about " if ex.get("tokens_estimated") else ""
    short = f"; shortened, {ex['hidden_chars']:,} characters not shown" if ex.get("hidden_chars") else ""
    text = "".join(f"⟦{s['text']}⟧" if s["trained"] else s["text"] for s in ex["segments"])
    return (f"\nExample ({where}; {about}{ex['tokens']:,} tokens, {ex['trained_tokens']:,} trained"
            f"{', cut' if ex['truncated'] else ''}{short}) — trained text is between ⟦ and ⟧:\n" + indent(text) + "\n")


def _histogram(counts: list[int], edges: list[float], seq_len: int, width: int = 40) -> str:
    peak = max(counts) or 1
    lines = []
    for c, lo, hi in zip(counts, edges, edges[1:], strict=False):
        if c == 0 and lo > seq_len:
            continue
        mark = " ◀ seq-len" if lo <= seq_len < hi else ""
        lines.append(f"         {int(lo):>6}–{int(hi):<6} {'▇' * max(1 if c else 0, round(width * c / peak))} {c}{mark}")
    return "\n".join(lines) + "\n"
