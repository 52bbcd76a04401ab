"""`studio`: the command line. It calls the same core the window uses.

    studio                    open the window (the demo model and data preselected)
    studio plan MODEL [...]   how much GPU memory a run needs, and whether it fits
    studio data inspect DATA  the format, problems (with their lines), token statistics and examples
    studio train ...          train an adapter in a worker process, with a live progress line
    studio runs               the runs, their status and final loss
    studio export RUN --to D  the adapter with a model card, or a merged model; an Ollama Modelfile
    studio models             the built-in catalog, models in the Hugging Face cache, the demo
    studio doctor             versions, GPUs, bitsandbytes and Qt: what to paste into a bug report

Errors print what happened and what to do, and exit with status 2; `--debug` shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Sequence

from studio.core.errors import StudioError

GiB = 1024**3
EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1


def _quiet_libraries() -> None:
    """Keep library chatter (download bars, backend notices) out of the studio's output."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    for name in ("bitsandbytes", "transformers", "huggingface_hub", "accelerate", "datasets"):
        logging.getLogger(name).setLevel(logging.ERROR)


def gib(n: int) -> str:
    return f"{n / GiB:.2f}"


# ---------------------------------------------------------------------------------------------
# studio plan
# ---------------------------------------------------------------------------------------------


def _add_plan_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a model folder, a config.json, a hub id (Qwen/Qwen2.5-0.5B), a catalog name, or 'demo'")
    p.add_argument("--precision", choices=["4bit", "8bit", "16bit", "full"], default="4bit",
                   help="how the base model is held: 4bit = QLoRA (default), 16bit = LoRA, full = full fine-tuning")
    p.add_argument("--quant-type", choices=["nf4", "fp4"], default="nf4", help="4-bit data type (default nf4)")
    p.add_argument("--no-double-quant", action="store_true", help="do not quantize the 4-bit block scales")
    p.add_argument("--compute-dtype", choices=["bfloat16", "float16", "float32"],
                   help="dtype of the matrix multiplications (default: bfloat16 where the GPU supports it)")
    p.add_argument("--rank", type=int, default=16, help="LoRA rank: how much the model can change (default 16)")
    p.add_argument("--alpha", type=int, default=32, help="LoRA alpha: alpha/rank is the strength of the change (default 32)")
    p.add_argument("--dropout", type=float, default=0.05, help="LoRA dropout (default 0.05)")
    p.add_argument("--targets", default="all-linear", help="LoRA target modules: all-linear (default) or e.g. q_proj,v_proj")
    p.add_argument("--dora", action="store_true", help="use DoRA (weight-decomposed LoRA)")
    p.add_argument("--batch-size", type=int, default=1, help="micro-batch: sequences per forward pass (default 1)")
    p.add_argument("--seq-len", type=int, default=2048, help="tokens per sequence (default 2048)")
    p.add_argument("--grad-accum", type=int, default=8, help="micro-batches per optimizer step (default 8)")
    p.add_argument("--no-grad-ckpt", action="store_true", help="turn gradient checkpointing off (faster, much more memory)")
    p.add_argument("--optim", choices=["adamw", "adamw-8bit", "paged-adamw-8bit"], default="paged-adamw-8bit",
                   help="optimizer (default paged-adamw-8bit)")
    p.add_argument("--attention", choices=["sdpa", "eager", "flash_attention_2"], default="sdpa",
                   help="attention implementation (default sdpa)")
    p.add_argument("--no-chunked-loss", action="store_true", help="plan transformers' loss over all logits at once")
    p.add_argument("--loss-chunk", type=int, default=1024, help="tokens per chunk of the chunked loss (default 1024)")
    p.add_argument("--no-fp32-frozen", action="store_true",
                   help="4/8-bit: keep embeddings, norms and lm_head in the compute dtype instead of an fp32 copy")
    p.add_argument("--gpu", help="check against this GPU: 24GB, 80GB, 4090, A100 80GB ... (default: the GPU found here)")
    p.add_argument("--trust-remote-code", action="store_true", help="allow a model's own Python code (only for models you trust)")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")


def _choices_from_args(args, model_type: str):
    from studio.core.memory import AdapterSpec, TrainShape
    from studio.core.training.chunked_loss import planned_chunk

    targets = tuple(t.strip() for t in args.targets.split(",") if t.strip())
    adapter = AdapterSpec(rank=args.rank, alpha=args.alpha, dropout=args.dropout, targets=targets, use_dora=args.dora)
    shape = TrainShape(batch_size=args.batch_size, seq_len=args.seq_len, grad_accum=args.grad_accum,
                       gradient_checkpointing=not args.no_grad_ckpt, optimizer=args.optim, attention=args.attention,
                       loss_chunk_tokens=planned_chunk(not args.no_chunked_loss, args.loss_chunk, model_type))
    return adapter, shape


def _target_gpu(args):
    """(bytes, label, compute dtype) of the GPU to check against; bytes is None when there is none."""
    from studio.core.hardware import detect_gpus, parse_gpu_memory

    if args.gpu:
        size = parse_gpu_memory(args.gpu)
        return size, f"{args.gpu} ({gib(size)} GiB)", "bfloat16"
    gpus = detect_gpus()
    if not gpus:
        return None, None, "bfloat16"
    g = gpus[0]
    return g.free_bytes, f"{g.name} ({gib(g.free_bytes)} GiB free of {gib(g.total_bytes)})", g.compute_dtype


def build_plan_report(args) -> dict:
    """Everything `studio plan` shows, as the JSON shape documented in the README."""
    from studio.core.memory import Precision, compare_precisions, plan, suggest_changes
    from studio.core.models import family_members, resolve_model

    model = resolve_model(args.model, trust_remote_code=args.trust_remote_code)
    adapter, shape = _choices_from_args(args, model.model_type)
    gpu_bytes, gpu_label, gpu_dtype = _target_gpu(args)
    precision = Precision(mode=args.precision, quant_type=args.quant_type, double_quant=not args.no_double_quant,
                          compute_dtype=args.compute_dtype or gpu_dtype, upcast_frozen=not args.no_fp32_frozen)
    result = plan(model, adapter, shape, precision)
    suggestions = []
    if gpu_bytes is not None and not result.fits(gpu_bytes):
        smaller = []
        for entry in family_members(model):
            if entry.expected_total_params < model.total_params:
                smaller.append(resolve_model(entry.name))
        smaller.sort(key=lambda m: -m.total_params)  # the largest that fits is the mildest change
        suggestions = suggest_changes(model, adapter, shape, precision, gpu_bytes, smaller)
    comparison = compare_precisions(model, adapter, shape, precision)
    return {
        "model": {
            "name": model.name,
            "source": model.source,
            "architecture": model.architecture,
            "total_params": model.total_params,
            "quantizable_params": model.quantizable_params,
            "embedding_params": model.embedding_params,
            "lm_head_params": model.lm_head_params,
            "vocab_size": model.vocab_size,
            "tied_embeddings": model.tied_embeddings,
            "context_length": model.context_length,
            "lora_targets": model.lora_targets,
            "license": model.license,
            "has_chat_template": model.has_chat_template,
            "weights_bytes": model.weights_bytes,
        },
        "adapter": {
            "rank": adapter.rank,
            "alpha": adapter.alpha,
            "dropout": adapter.dropout,
            "targets": list(adapter.targets),
            "resolved_targets": sorted({layer.suffix for layer in model.target_layers(adapter.targets)}, key=model.lora_targets.index),
            "trainable_params": result.trainable_params,
        },
        "precision": {"mode": precision.mode, "quant_type": precision.quant_type,
                      "double_quant": precision.double_quant, "compute_dtype": precision.compute_dtype,
                      "fp32_frozen": precision.upcast_frozen},
        "shape": {"batch_size": shape.batch_size, "seq_len": shape.seq_len, "grad_accum": shape.grad_accum,
                  "gradient_checkpointing": shape.gradient_checkpointing, "optimizer": shape.optimizer,
                  "attention": shape.attention, "loss_chunk_tokens": shape.loss_chunk_tokens},
        "memory": {
            "total_bytes": result.total_bytes,
            "components": [{"name": c.name, "bytes": c.bytes, "why": c.why} for c in result.components],
            "gpu": gpu_label,
            "gpu_bytes": gpu_bytes,
            "fits": None if gpu_bytes is None else result.fits(gpu_bytes),
            "suggestions": [{"change": s.change, "total_bytes": s.total_bytes, "changes": s.changes} for s in suggestions],
            "notes": list(result.notes),
        },
        "comparison": {mode: p.total_bytes for mode, p in comparison.items()},
    }


def print_plan(report: dict, out=None) -> None:
    out = out or sys.stdout
    m, a, mem = report["model"], report["adapter"], report["memory"]
    pr, sh = report["precision"], report["shape"]
    w = out.write
    tied = ", tied embeddings" if m["tied_embeddings"] else ""
    w(f"Model    {m['name']} ({m['architecture']}): {m['total_params']:,} parameters, "
      f"{m['quantizable_params']:,} in quantizable Linear layers, vocab {m['vocab_size']:,}{tied}\n")
    share = 100 * a["trainable_params"] / m["total_params"]
    w(f"Adapter  LoRA rank {a['rank']}, alpha {a['alpha']} on {', '.join(a['resolved_targets'])}: "
      f"{a['trainable_params']:,} trainable parameters ({share:.2f}% of the model)\n")
    mode = {"4bit": f"4-bit {pr['quant_type'].upper()}{' + double quant' if pr['double_quant'] else ''} (QLoRA)",
            "8bit": "8-bit (LoRA)", "16bit": "16-bit LoRA", "full": "full fine-tuning"}[pr["mode"]]
    ckpt = "gradient checkpointing" if sh["gradient_checkpointing"] else "no gradient checkpointing"
    w(f"Run      {mode}, {pr['compute_dtype']} compute; micro-batch {sh['batch_size']} × {sh['seq_len']} tokens, "
      f"gradient accumulation {sh['grad_accum']}; {ckpt}; {sh['optimizer']}\n\n")
    total = mem["total_bytes"]
    w(f"{'component':<22}{'GiB':>8}  share\n")
    for c in mem["components"]:
        bar = "█" * max(1 if c["bytes"] else 0, round(30 * c["bytes"] / total))
        w(f"{c['name']:<22}{gib(c['bytes']):>8}  {bar}\n")
    w(f"{'total':<22}{gib(total):>8}\n\n")
    if mem["gpu_bytes"] is None:
        w("No GPU found on this computer: add --gpu 24GB (or 8GB, 12GB, 16GB, 48GB, 80GB, 4090 ...) to check a card.\n")
    elif mem["fits"]:
        w(f"Fits {mem['gpu']} with {gib(mem['gpu_bytes'] - total)} GiB to spare.\n")
    else:
        w(f"Does not fit {mem['gpu']}: needs {gib(total - mem['gpu_bytes'])} GiB more.\n")
        if mem["suggestions"]:
            w("To make it fit:\n")
            for s in mem["suggestions"]:
                w(f"  - {s['change']}  → {gib(s['total_bytes'])} GiB\n")
        else:
            w("No single change makes it fit: choose a smaller model or a larger GPU.\n")
    for note in mem["notes"]:
        w(f"Note: {note}\n")
    cmp = report["comparison"]
    w("\nThe same run as:  " + "   ".join(f"{k} {gib(v)} GiB" for k, v in
                                         (("full fine-tuning", cmp["full"]), ("16-bit LoRA", cmp["16bit"]),
                                          ("8-bit", cmp["8bit"]), ("4-bit QLoRA", cmp["4bit"]))) + "\n")


def cmd_plan(args) -> int:
    report = build_plan_report(args)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_plan(report)
    return 0


# ---------------------------------------------------------------------------------------------
# studio data inspect
# ---------------------------------------------------------------------------------------------


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
        w(_indent(text) + "\n")


def _histogram(counts: list[int], edges: list[float], seq_len: int, width: int = 40) -> str:
    peak = max(counts) or 1
    lines = []
    for c, lo, hi in zip(counts, edges, edges[1:]):
        if c == 0 and lo > seq_len:
            continue
        mark = " ◀ seq-len" if lo <= seq_len < hi else ""
        lines.append(f"         {int(lo):>6}–{int(hi):<6} {'▇' * max(1 if c else 0, round(width * c / peak))} {c}{mark}")
    return "\n".join(lines) + "\n"


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in text.rstrip("\n").split("\n"))


# ---------------------------------------------------------------------------------------------
# studio train, studio runs
# ---------------------------------------------------------------------------------------------


def _add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--recipe", type=Path, help="a run.toml recipe (other options override its values)")
    p.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue a stopped run from its last checkpoint")
    p.add_argument("--model", help="a model folder, hub id, catalog name or 'demo'")
    p.add_argument("--data", help="a data file, folder or hub dataset id ('demo' for the built-in data)")
    p.add_argument("--format", choices=["alpaca", "sharegpt", "messages", "prompt_completion", "text"])
    p.add_argument("--map", dest="mapping", help="column mapping, e.g. prompt=question,response=answer")
    p.add_argument("--skip-bad-rows", action="store_true", default=None)
    p.add_argument("--eval-fraction", type=float)
    p.add_argument("--steps", type=int, help="optimizer steps (or --epochs)")
    p.add_argument("--epochs", type=float)
    p.add_argument("--precision", choices=["4bit", "8bit", "16bit"])
    p.add_argument("--rank", type=int)
    p.add_argument("--alpha", type=int)
    p.add_argument("--dropout", type=float)
    p.add_argument("--targets", help="all-linear or e.g. q_proj,v_proj")
    p.add_argument("--dora", action="store_true", default=None)
    p.add_argument("--rslora", action="store_true", default=None)
    p.add_argument("--lr", type=float, help="learning rate")
    p.add_argument("--scheduler", choices=["cosine", "linear", "constant"])
    p.add_argument("--warmup-ratio", type=float)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--grad-accum", type=int)
    p.add_argument("--seq-len", type=int)
    p.add_argument("--no-grad-ckpt", action="store_true", default=None)
    p.add_argument("--no-preflight", action="store_true", help="skip the check that runs the longest batch first")
    p.add_argument("--no-chunked-loss", action="store_true", help="transformers' loss over all logits at once (more memory)")
    p.add_argument("--loss-chunk", type=int, help="tokens per chunk of the chunked loss (default 1024)")
    p.add_argument("--packing", choices=["auto", "on", "off"],
                   help="padding-free batches: auto (default) = with flash attention; on = always; off = pad")
    p.add_argument("--no-fp32-frozen", action="store_true",
                   help="4/8-bit: keep embeddings, norms and lm_head in the compute dtype (no fp32 copy; less memory)")
    p.add_argument("--optim", choices=["auto", "adamw", "adamw-8bit", "paged-adamw-8bit"])
    p.add_argument("--compute-dtype", choices=["auto", "bfloat16", "float16", "float32"])
    p.add_argument("--eval-every", type=int)
    p.add_argument("--save-every", type=int)
    p.add_argument("--sample-every", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--num-processes", type=int, help="GPUs (processes) to train on, with accelerate")
    p.add_argument("--name", help="a short name for the run folder")
    p.add_argument("--run-dir", type=Path, help="put the run in this folder instead of the studio's runs folder")
    p.add_argument("--trust-remote-code", action="store_true", default=None)
    p.add_argument("--allow-pickle", action="store_true", default=None)
    p.add_argument("--quiet", action="store_true", help="no progress line")


def recipe_from_args(args):
    from studio.core.recipe import RunConfig

    config = RunConfig.load(args.recipe) if args.recipe else RunConfig()
    if not args.recipe and (args.model is None or args.data is None):
        raise StudioError("`studio train` needs a model and data.", "Use --model MODEL --data DATA, or --recipe run.toml.")
    m, d, a, t, o = config.model, config.data, config.adapter, config.training, config.output
    sets = [
        (m, "source", args.model), (m, "trust_remote_code", args.trust_remote_code), (m, "allow_pickle", args.allow_pickle),
        (d, "source", args.data), (d, "format", args.format), (d, "skip_bad_rows", args.skip_bad_rows),
        (d, "eval_fraction", args.eval_fraction), (a, "rank", args.rank), (a, "alpha", args.alpha), (a, "dropout", args.dropout),
        (a, "use_dora", args.dora), (a, "use_rslora", args.rslora), (t, "precision", args.precision),
        (t, "learning_rate", args.lr), (t, "scheduler", args.scheduler), (t, "warmup_ratio", args.warmup_ratio),
        (t, "batch_size", args.batch_size), (t, "grad_accum", args.grad_accum), (t, "seq_len", args.seq_len),
        (t, "optimizer", args.optim), (t, "compute_dtype", args.compute_dtype), (t, "eval_every", args.eval_every),
        (t, "save_every", args.save_every), (t, "sample_every", args.sample_every), (t, "seed", args.seed),
        (t, "num_processes", args.num_processes), (o, "name", args.name),
    ]
    for section, name, value in sets:
        if value is not None:
            setattr(section, name, value)
    if args.mapping:
        from studio.core.data import parse_mapping

        d.mapping = parse_mapping(args.mapping)
    if args.targets:
        a.targets = [x.strip() for x in args.targets.split(",") if x.strip()]
    if args.no_grad_ckpt:
        t.gradient_checkpointing = False
    if args.loss_chunk is not None:
        t.loss_chunk_tokens = args.loss_chunk
    if args.packing is not None:
        t.packing = args.packing
    for flag, field in (("no_preflight", "preflight"), ("no_chunked_loss", "chunked_loss"), ("no_fp32_frozen", "upcast_frozen")):
        if getattr(args, flag):
            setattr(t, field, False)
    if args.steps is not None:
        t.steps, t.epochs = args.steps, None
    elif args.epochs is not None:
        t.steps, t.epochs = None, args.epochs
    return config.validate()


def _duration(seconds) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"


class ProgressPrinter:
    """One live line for steps; whole lines for everything else."""

    def __init__(self, out=None, live: bool = True):
        self.out = out or sys.stdout
        self.live = live and self.out.isatty()
        self.open_line = False

    def line(self, text: str) -> None:
        if self.open_line:
            self.out.write("\n")
            self.open_line = False
        self.out.write(text + "\n")
        self.out.flush()

    def event(self, e: dict) -> None:
        kind = e["type"]
        if kind == "started":
            resumed = f", resuming at step {e['resumed_from_step']}" if e.get("resumed_from_step") else ""
            self.line(f"Training on {e.get('device')} ({e.get('precision')}, {e.get('compute_dtype')}): {e.get('total_steps')} steps, "
                      f"{e.get('train_rows')} training rows, {e.get('eval_rows')} held out; planned GPU memory "
                      f"{(e.get('planned_bytes') or 0) / GiB:.2f} GiB{resumed}")
        elif kind == "step":
            tps = f"{e['tokens_per_s']:,.0f} tok/s" if e.get("tokens_per_s") else "- tok/s"
            loss = f"{e['loss']:.4f}" if e.get("loss") is not None else "nan"
            text = (f"step {e['step']}/{e.get('total_steps', '?')}  loss {loss}  {tps}  "
                    f"elapsed {_duration(e.get('elapsed_s'))}  ETA {_duration(e.get('eta_s'))}")
            if self.live:
                self.out.write("\r" + text.ljust(78))
                self.out.flush()
                self.open_line = True
            else:
                self.line(text)
        elif kind == "eval":
            self.line(f"step {e['step']}: eval loss {e['eval_loss']:.4f}")
        elif kind == "sample":
            self.line(f"step {e['step']} sample — {e['prompt'][:60]!r} → {e['text'][:120]!r}")
        elif kind == "checkpoint":
            self.line(f"step {e['step']}: checkpoint saved ({e['path']})")
        elif kind == "log":
            self.line(e.get("message", ""))


def cmd_train(args) -> int:
    from studio.core.training import launcher

    if args.resume:
        handle = launcher.resume(args.resume)
    else:
        handle = launcher.start(recipe_from_args(args), args.run_dir)
    printer = ProgressPrinter(live=not args.quiet)
    printer.line(f"Run folder: {handle.run_dir}")
    finished = None
    events = launcher.watch(handle)
    while True:
        try:
            for event in events:
                if event["type"] == "finished":
                    finished = event
                else:
                    printer.event(event)
            break
        except KeyboardInterrupt:
            state = launcher.cancel(handle)
            printer.line("Cancel: " + state + (" and saving (Ctrl-C again to stop at once)" if handle.cancel_requests == 1 else ""))
    finished = finished or launcher.classify(handle)
    status = finished.get("status")
    if status in ("completed", "cancelled"):
        adapter = handle.run_dir / "adapter"
        printer.line(f"{status.capitalize()} at step {finished.get('step')}. Adapter: {adapter}")
        printer.line(f"Try it or export it: studio export {handle.run_dir} --to DIR")
        return 0
    error = finished.get("error") or {}
    print(f"Error ({error.get('kind', 'unknown')}): {error.get('message', '')}", file=sys.stderr)
    if error.get("advice"):
        print(f"What to do: {error['advice']}", file=sys.stderr)
    return EXIT_USER_ERROR if error.get("kind") == "bad_input" else EXIT_INTERNAL_ERROR


def cmd_runs(args) -> int:
    from studio.core.runs import list_runs

    found = list_runs(args.runs_dir)
    if args.json:
        print(json.dumps([r.as_dict() for r in found], indent=2))
        return 0
    if not found:
        print("No runs yet. Start one with: studio train --model demo --data demo --steps 30")
        return 0
    print(f"{'run':<36} {'status':<12} {'steps':>9} {'loss':>8} {'eval':>8} {'size':>9}  model")
    for r in found:
        steps = f"{r.step}/{r.total_steps}" if r.total_steps else str(r.step)
        loss = f"{r.final_loss:.4f}" if r.final_loss is not None else "-"
        ev = f"{r.eval_loss:.4f}" if r.eval_loss is not None else "-"
        print(f"{r.name:<36} {r.status:<12} {steps:>9} {loss:>8} {ev:>8} {r.size_bytes / 2**20:>7.1f}MB  {r.model}")
    for r in (r for r in found if r.problem):
        print(f"Problem with {r.name}: {r.problem}")
    return 0


# ---------------------------------------------------------------------------------------------
# studio export
# ---------------------------------------------------------------------------------------------


def cmd_export(args) -> int:
    from studio.core.export import export_run

    what = f"merged {args.dtype} model" if args.merged else "adapter"
    if not args.json:
        print(f"Exporting the {what} of {args.run_dir} ...", flush=True)
    result = export_run(args.run_dir, args.to, merged=args.merged, dtype=args.dtype, ollama=args.ollama, force=args.force,
                        max_shard_size=args.max_shard_size)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
        return 0
    verb = "Replaced the earlier export in" if result.replaced else "Exported to"
    print(f"{verb} {result.path} ({result.size_bytes / 2**20:.1f} MB of the export's own files):")
    for name in result.files:
        print(f"  {name}")
    print(f"Model card: {result.path / 'README.md'}")
    if result.modelfile:
        print(f"Ollama: cd {result.path} && ollama create NAME -f Modelfile  (read the Modelfile's comments first)")
    for note in result.notes:
        print(f"Note: {note}")
    return 0


# ---------------------------------------------------------------------------------------------
# studio models
# ---------------------------------------------------------------------------------------------


def _params_label(n: int) -> str:
    return f"{n / 1e9:.2f} B" if n >= 1e9 else f"{n / 1e6:.1f} M"


def cmd_models(args) -> int:
    from studio.core import paths
    from studio.core.models import cached_models, catalog, resolve_model

    rows = []
    demo = resolve_model("demo")
    rows.append(("demo", "built-in", _params_label(demo.total_params), f"{demo.weights_bytes / 2**20:.1f} MB", str(paths.demo_model_dir())))
    for m in cached_models():
        try:
            params = _params_label(resolve_model(m.hub_id).total_params)
        except StudioError:
            params = "?"
        size = f"{m.size_on_disk / GiB:.2f} GB" if m.has_weights else "config only"
        rows.append((m.hub_id, "HF cache", params, size, str(m.path)))
    for e in catalog():
        rows.append((e.name, "catalog", _params_label(e.expected_total_params), "download", f"{e.hub_id} ({e.license})"))
    if args.json:
        print(json.dumps([dict(zip(("name", "where", "params", "size", "detail"), r)) for r in rows], indent=2))
        return 0
    widths = [max(len(r[i]) for r in rows + [("name", "where", "params", "size", "")]) for i in range(4)]
    print(f"{'name':<{widths[0]}}  {'where':<{widths[1]}}  {'params':>{widths[2]}}  {'size':>{widths[3]}}  detail")
    for r in rows:
        print(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]:>{widths[3]}}  {r[4]}")
    return 0


# ---------------------------------------------------------------------------------------------
# studio doctor
# ---------------------------------------------------------------------------------------------


def cmd_doctor(args) -> int:
    from studio.core.doctor import collect_report, details_text, explain, verdict_text

    report = collect_report()
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(details_text(report))
    print()
    print(verdict_text(explain(report)))
    return 0


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="studio", description="LoRA Studio: fine-tune an open LLM with QLoRA on your own GPU.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    sub = parser.add_subparsers(dest="command")
    p_plan = sub.add_parser("plan", help="how much GPU memory a fine-tuning run needs, and whether it fits")
    _add_plan_arguments(p_plan)
    p_plan.set_defaults(func=cmd_plan)
    p_data = sub.add_parser("data", help="load, check and preview a dataset")
    data_sub = p_data.add_subparsers(dest="data_command", required=True)
    p_inspect = data_sub.add_parser("inspect", help="detected format, rows, problems with their lines, token statistics, examples")
    _add_data_arguments(p_inspect)
    p_inspect.set_defaults(func=cmd_data_inspect)
    p_train = sub.add_parser("train", help="train an adapter (QLoRA) in a worker process, with live progress")
    _add_train_arguments(p_train)
    p_train.set_defaults(func=cmd_train)
    p_export = sub.add_parser("export", help="export a run: the adapter with a model card, or a merged model; Ollama Modelfile")
    p_export.add_argument("run_dir", type=Path, help="the run folder (or its name in the runs folder)")
    p_export.add_argument("--to", type=Path, required=True, metavar="DIR",
                          help="the folder to write; an earlier export there is updated once the new one is complete, "
                               "and your own files in it are kept")
    p_export.add_argument("--merged", action="store_true", help="merge the adapter into a 16-bit copy of the base model (needs the base on disk)")
    p_export.add_argument("--dtype", choices=["bf16", "fp16"], default="bf16", help="with --merged: the weights' dtype (default bf16)")
    p_export.add_argument("--ollama", action="store_true", help="write an Ollama Modelfile (always written for Llama, Mistral and Gemma bases)")
    p_export.add_argument("--force", action="store_true",
                          help="export into a folder that holds other files, overwriting those of your files that have "
                               "the names the export writes (the export names them first); nothing else is deleted")
    p_export.add_argument("--max-shard-size", default="4GB",
                          help="with --merged: the largest weight file, like 4GB, 500MB or 2GiB (default 4GB)")
    p_export.add_argument("--json", action="store_true", help="print the result as JSON")
    p_export.set_defaults(func=cmd_export)
    p_runs = sub.add_parser("runs", help="the runs: status, steps, final loss, size")
    p_runs.add_argument("--runs-dir", type=Path, help="another runs folder")
    p_runs.add_argument("--json", action="store_true")
    p_runs.set_defaults(func=cmd_runs)
    p_models = sub.add_parser("models", help="the catalog, models in the Hugging Face cache, and the demo model")
    p_models.add_argument("--json", action="store_true")
    p_models.set_defaults(func=cmd_models)
    p_doctor = sub.add_parser("doctor", help="versions, GPUs and backends: what to paste into a bug report")
    p_doctor.add_argument("--json", action="store_true")
    p_doctor.set_defaults(func=cmd_doctor)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    _quiet_libraries()
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv == ["--debug"]:
        from studio.ui.app import run  # the window, with the demo model and data preselected

        return run()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except StudioError as exc:
        if args.debug:
            raise
        print(f"Error: {exc.message}", file=sys.stderr)
        if exc.advice:
            print(f"What to do: {exc.advice}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: say so plainly, keep the traceback for --debug
        if args.debug:
            raise
        print(f"Unexpected error: {type(exc).__name__}: {exc}", file=sys.stderr)
        print("What to do: run the same command with --debug and include its output in a bug report.", file=sys.stderr)
        return EXIT_INTERNAL_ERROR
