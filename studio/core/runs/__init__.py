"""The runs folder: one folder per run, enough on its own to show, resume or export it.

    runs/<date>-<name>/
        run.toml        the recipe (RunConfig)
        events.jsonl    what the worker reported, one JSON object per line
        stderr.log      the worker's full log and tracebacks
        worker.lock     locked by the one worker that owns the folder, for its whole life
        worker.pid      that worker's process id and start time (for a forced stop)
        checkpoints/    checkpoint-<step>/ folders Trainer can resume from
        adapter/        the trained adapter (written atomically at the end)

    folders.py      the names above, making a run folder, its recipe, the disk it is on
    checkpoints.py  which checkpoints are whole, where a resume starts, which can be exported
    history.py      RunHistory: what the events tell (attempts, curves, samples, how it ended)
    status.py       the status: the history's, or running while a worker owns the folder
    listing.py      RunSummary of every run in the runs folder
    facts.py        RunFacts: what a finished run tells about its adapter (or a checkpoint's) and base model
                    (the export's input); SavedWeights: the final adapter's step and the exportable checkpoints
    compare.py      Comparison: runs side by side (curves, best eval loss, the recipe settings that differ)

A run's status is derived from its events and its lock, never stored separately: a folder copied
from another machine reads the same. `from studio.core import runs` gives all of it as `runs.X`.
"""

from studio.core.runs.checkpoints import (
    CHECKPOINT_FILES,
    TORCH_FILES,
    TRAINER_FILE,
    adapter_problem,
    checkpoint_problem,
    checkpoint_step,
    checkpoint_to_export,
    checkpoints,
    exportable_checkpoints,
    is_complete_checkpoint,
    resume_point,
)
from studio.core.runs.compare import ComparedRun, Comparison, compare_runs
from studio.core.runs.facts import RunFacts, SavedWeights, locate_base, read_run, saved_weights
from studio.core.runs.folders import (
    ADAPTER,
    ADAPTER_WEIGHTS,
    CANCEL,
    CHECKPOINTS,
    DISK_MARGIN,
    EVENTS,
    LOCK,
    PID,
    RECIPE,
    STDERR,
    create_run_dir,
    folder_size,
    free_bytes,
    has_adapter,
    load_recipe,
    run_folder,
    runs_root,
)
from studio.core.runs.history import RunHistory
from studio.core.runs.listing import RunSummary, list_runs, summarize_run
from studio.core.runs.status import is_completed, status_of
from studio.core.training.events import read_events  # as runs.read_events, for the callers that read a folder's events


def metrics(events: list[dict]) -> dict[str, list[tuple[int, float]]]:
    """Loss, eval loss, learning rate, gradient norm and tokens per second per step (RunHistory.series)."""
    return RunHistory.from_events(events).series


__all__ = [
    "ADAPTER", "ADAPTER_WEIGHTS", "CANCEL", "CHECKPOINTS", "CHECKPOINT_FILES", "DISK_MARGIN", "EVENTS", "LOCK", "PID",
    "RECIPE", "STDERR", "TORCH_FILES", "TRAINER_FILE", "ComparedRun", "Comparison", "RunFacts", "RunHistory",
    "RunSummary", "SavedWeights", "adapter_problem", "checkpoint_problem", "checkpoint_step", "checkpoint_to_export",
    "checkpoints", "compare_runs", "create_run_dir", "exportable_checkpoints", "folder_size", "free_bytes",
    "has_adapter", "is_complete_checkpoint", "is_completed", "list_runs", "load_recipe", "locate_base", "metrics",
    "read_events", "read_run", "resume_point", "run_folder", "runs_root", "saved_weights", "status_of", "summarize_run",
]
