"""`studio`: the command line. It calls the same core the window uses.

    studio                    open the window (the demo model and data preselected)
    studio plan MODEL [...]   how much GPU memory a run needs, and whether it fits
    studio data inspect DATA  the format, problems (with their lines), token statistics and examples
    studio train ...          train an adapter in a worker process, with a live progress line
    studio runs               the runs, their status and final loss
    studio compare RUN RUN    runs side by side: the settings that differ, losses, best eval loss, curves
    studio export RUN --to D  the adapter with a model card, or a merged model; an Ollama Modelfile
    studio models             the built-in catalog, models in the Hugging Face cache, the demo
    studio doctor             versions, GPUs, bitsandbytes and Qt: what to paste into a bug report

Errors print what happened and what to do, and exit with status 2; `--debug` shows the traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from studio.cli import compare, data, doctor, evaluation, export, models, plan, runs, train
from studio.cli.output import EXIT_INTERNAL_ERROR, EXIT_USER_ERROR
from studio.cli.train import recipe_from_args
from studio.core.errors import StudioError

__all__ = ["build_parser", "main", "recipe_from_args"]
COMMANDS = (plan, data, train, export, runs, evaluation, compare, models, doctor)  # each adds its own sub-command


def _quiet_libraries() -> None:
    """Keep library chatter (download bars, backend notices) out of the studio's output."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    for name in ("bitsandbytes", "transformers", "huggingface_hub", "accelerate", "datasets"):
        logging.getLogger(name).setLevel(logging.ERROR)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="studio", description="LoRA Studio: fine-tune an open LLM with QLoRA on your own GPU.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    sub = parser.add_subparsers(dest="command")
    for command in COMMANDS:
        command.add_parser(sub)
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
