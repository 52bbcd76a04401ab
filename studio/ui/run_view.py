"""Everything the window shows of a past run, read from its folder alone (in a background task:
a long run's events file can take a while to read)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from studio.core import runs
from studio.core.training.events import read_events


@dataclass
class RunView:
    run_dir: Path
    summary: runs.RunSummary
    recipe_text: str
    series: dict
    samples: list[dict] = field(default_factory=list)
    started: dict | None = None


def read_run_view(run_dir: Path) -> RunView:
    """Raises StudioError or OSError when the folder is not a run."""
    run_dir = Path(run_dir)
    recipe_text = (run_dir / runs.RECIPE).read_text(encoding="utf-8")
    events = read_events(run_dir / runs.EVENTS)
    summary = runs.summarize_run(run_dir, events=events, with_size=False)  # the runs table has the size
    return RunView(run_dir, summary, recipe_text, runs.metrics(events), [e for e in events if e["type"] == "sample"],
                   next((e for e in reversed(events) if e["type"] == "started"), None))


def sample_html(event: dict) -> str:
    import html

    return (f"<p><b>Step {event.get('step')}</b> — <i>{html.escape(str(event.get('prompt', '')))}</i><br>"
            f"{html.escape(str(event.get('text', ''))).replace(chr(10), '<br>')}</p>")
