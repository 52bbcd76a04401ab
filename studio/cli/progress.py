"""The live progress of `studio train`: one line for steps, whole lines for everything else."""

from __future__ import annotations

import sys

from studio.cli.output import GiB, duration
from studio.core.runs import RunHistory


class ProgressPrinter:
    """One live line for steps; whole lines for everything else. `history` sums up every event it was
    given (a `finished` one is recorded, not printed): `history.finished` is how the attempt ended."""

    def __init__(self, out=None, live: bool = True):
        self.out = out or sys.stdout
        self.live = live and self.out.isatty()
        self.open_line = False
        self.history = RunHistory()

    def line(self, text: str) -> None:
        if self.open_line:
            self.out.write("\n")
            self.open_line = False
        self.out.write(text + "\n")
        self.out.flush()

    def event(self, e: dict) -> None:
        self.history.add(e)
        if e["type"] == "step":
            self._step(e)
            return
        text = _LINES.get(e["type"], lambda e: None)(e)
        if text is not None:
            self.line(text)

    def _step(self, e: dict) -> None:
        tps = f"{e['tokens_per_s']:,.0f} tok/s" if e.get("tokens_per_s") else "- tok/s"
        loss = f"{e['loss']:.4f}" if e.get("loss") is not None else "nan"
        text = (f"step {e['step']}/{e.get('total_steps', '?')}  loss {loss}{_rewards(e)}  {tps}  "
                f"elapsed {duration(e.get('elapsed_s'))}  ETA {duration(e.get('eta_s'))}")
        if self.live:
            self.out.write("\r" + text.ljust(78))
            self.out.flush()
            self.open_line = True
        else:
            self.line(text)


def _started(e: dict) -> str:
    resumed = f", resuming at step {e['resumed_from_step']}" if e.get("resumed_from_step") else ""
    return (f"Training on {e.get('device')} ({e.get('precision')}, {e.get('compute_dtype')}): {e.get('total_steps')} steps, "
            f"{e.get('train_rows')} training rows, {e.get('eval_rows')} held out; planned GPU memory "
            f"{(e.get('planned_bytes') or 0) / GiB:.2f} GiB{resumed}")


def _rewards(e: dict, prefix: str = "") -> str:
    """A preference run's reward margin (chosen over rejected) and how often the chosen answer wins."""
    margin, accuracy = e.get(f"{prefix}reward_margin"), e.get(f"{prefix}reward_accuracy")
    if margin is None:
        return ""
    return f"  margin {margin:+.3f}" + (f"  prefers chosen {accuracy:.0%}" if accuracy is not None else "")


def _eval(e: dict) -> str:
    """An eval loss, or a model scored on the golden questions (the base at step 0)."""
    if e.get("eval_loss") is not None:
        return f"step {e['step']}: eval loss {e['eval_loss']:.4f}{_rewards(e, 'eval_')}"
    who = "base model" if e.get("checkpoint") == "base" else e.get("checkpoint", "")
    rouge = e.get("rouge_l")
    score = f"ROUGE-L {rouge:.3f}" if rouge is not None else "no golden-question score"
    general = f", general-text loss {e['general_loss']:.3f}" if e.get("general_loss") is not None else ""
    return f"step {e['step']}: {who} scored on the golden questions: {score}{general}"


# The whole line each kind of event prints (steps share one live line; `finished` and `preflight` print none).
_LINES = {
    "started": _started,
    "eval": lambda e: _eval(e),
    "sample": lambda e: f"step {e['step']} sample — {e['prompt'][:60]!r} → {e['text'][:120]!r}",
    "checkpoint": lambda e: f"step {e['step']}: checkpoint saved ({e['path']})",
    "log": lambda e: e.get("message", ""),
}
