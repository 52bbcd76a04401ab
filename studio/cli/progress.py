"""The live progress of `studio train`: one line for steps, whole lines for everything else."""

from __future__ import annotations

import sys

from studio.cli.output import GiB, duration


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
                    f"elapsed {duration(e.get('elapsed_s'))}  ETA {duration(e.get('eta_s'))}")
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
