"""Everything the window shows of a past run, read from its folder alone (in a background task:
a long run's events file can take a while to read)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from studio.core import runs
from studio.core.training.failures import Failure


@dataclass
class RunView:
    run_dir: Path
    summary: runs.RunSummary
    recipe_text: str
    history: runs.RunHistory

    @property
    def series(self) -> dict[str, list[tuple[int, float]]]:
        return self.history.series

    @property
    def golden_scores(self) -> list[tuple[int, float]]:
        """The golden-question score of the base (step 0) and each checkpoint scored while training."""
        from studio.core.evaluation.metrics import SCORE

        return self.history.scores.get(SCORE, [])

    @property
    def samples(self) -> list[dict]:
        return self.history.samples

    @property
    def started(self) -> dict | None:
        """The last attempt's `started` event (total steps, device, rows)."""
        return self.history.started

    @property
    def failure(self) -> Failure | None:
        """What went wrong when the last attempt failed: kind, title, message, advice and topic."""
        return self.history.failure


def read_run_view(run_dir: Path) -> RunView:
    """Raises StudioError or OSError when the folder is not a run."""
    run_dir = Path(run_dir)
    recipe_text = (run_dir / runs.RECIPE).read_text(encoding="utf-8")
    history = runs.RunHistory.read(run_dir)
    summary = runs.summarize_run(run_dir, history=history, with_size=False)  # the runs table has the size
    return RunView(run_dir, summary, recipe_text, history)


def sample_html(event: dict) -> str:
    import html

    return (f"<p><b>Step {event.get('step')}</b> — <i>{html.escape(str(event.get('prompt', '')))}</i><br>"
            f"{html.escape(str(event.get('text', ''))).replace(chr(10), '<br>')}</p>")
