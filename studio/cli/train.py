"""`studio train`: a recipe from run.toml, a preset and the flags (studio/cli/recipe_flags.py), trained in a
worker process with a live progress line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from studio.cli.output import EXIT_INTERNAL_ERROR, EXIT_USER_ERROR
from studio.cli.progress import ProgressPrinter
from studio.cli.recipe_flags import add_recipe_flags, add_recipe_sources, given, recipe_from_flags
from studio.core.errors import StudioError


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train an adapter (QLoRA) in a worker process, with live progress")
    _add_train_arguments(p)
    p.set_defaults(func=cmd_train)


def _add_train_arguments(p: argparse.ArgumentParser) -> None:
    add_recipe_sources(p)
    p.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue a stopped run from its last checkpoint")
    p.add_argument("--run-dir", type=Path, help="put the run in this folder instead of the studio's runs folder")
    p.add_argument("--join", type=Path, metavar="RUN_DIR", help="several machines: train this machine's share (its "
                   "--machine-rank) of the run the main machine started in RUN_DIR, a folder every machine sees")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    add_recipe_flags(p)


def recipe_from_args(args):
    """The recipe `studio train` runs: --recipe or the defaults, --preset, then the flags; validated."""
    if not args.recipe and (given(args, "model.source") is None or given(args, "data.source") is None):
        raise StudioError("`studio train` needs a model and data.", "Use --model MODEL --data DATA, or --recipe run.toml.")
    return recipe_from_flags(args).validate()


def cmd_train(args) -> int:
    from studio.core.training import launcher

    if args.join:
        return _join(args)
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


def _join(args) -> int:
    """This machine's share of a run on several machines; the main machine shows its progress."""
    from studio.core.training import launcher

    rank = given(args, "training.machine_rank")
    if rank is None:
        raise StudioError("Joining a run needs this machine's number.", "Add --machine-rank N (1 for the second machine, …).")
    handle = launcher.join(args.join, rank)
    print(f"Joined {handle.run_dir} as machine {rank}: training its share; the main machine shows the progress.")
    code = handle.process.wait()
    print("This machine's share ended" + ("." if code == 0 else f" with exit status {code}: see the main machine's log."))
    return 0 if code == 0 else EXIT_INTERNAL_ERROR
