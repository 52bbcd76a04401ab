"""`studio train`: a recipe from the flags (or run.toml), trained in a worker process with a live progress line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from studio.cli.output import EXIT_INTERNAL_ERROR, EXIT_USER_ERROR
from studio.cli.progress import ProgressPrinter
from studio.core.errors import StudioError


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train an adapter (QLoRA) in a worker process, with live progress")
    _add_train_arguments(p)
    p.set_defaults(func=cmd_train)


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
