"""The entry point of the frozen (PyInstaller) app: `lora-studio` is the `studio` command.

A frozen app has no Python interpreter to run modules with, yet the studio starts its training
worker as `sys.executable -m studio.core.training.worker RUN_DIR` (launcher.worker_command). Here
`sys.executable` is this program, so it answers `-m MODULE ARGS...` the way `python -m` does:
the bundled module runs as `__main__` with `sys.argv[1:]` = ARGS (and argv[0] its file, as with python -m). Everything else
goes to the studio's command line (no arguments: the window).
"""

from __future__ import annotations

import multiprocessing
import runpy
import sys


def main() -> int:
    # Child processes that multiprocessing starts (datasets' num_proc, the "spawn" start method)
    # re-run this program with special arguments; freeze_support answers them and exits.
    multiprocessing.freeze_support()
    argv = sys.argv[1:]
    # torchrun (accelerate's multi-GPU launch) starts `sys.executable -u -m MODULE`: unbuffered is
    # what the studio sets anyway (PYTHONUNBUFFERED), so the interpreter flag is dropped
    while argv[:1] == ["-u"]:
        argv = argv[1:]
    if len(argv) >= 2 and argv[0] == "-m":
        module = argv[1]
        sys.argv = [module, *argv[2:]]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        return 0
    if argv[:1] == ["--version"]:
        from studio import __version__

        print(f"LoRA Studio {__version__} (frozen build)")
        return 0
    from studio.cli import main as studio_main

    return studio_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
