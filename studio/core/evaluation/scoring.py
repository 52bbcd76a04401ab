"""Score a run: the base model and each saved checkpoint, on the same questions, all on this computer.

For each: the loss on the run's held-out rows (the split training made, drawn again with the run's
seed), the loss on a general text the studio ships (the forgetting check: a fine-tune that makes
ordinary text much less likely has damaged the model), and the answers to the golden questions,
generated greedily and scored against the expected answers. The base model is loaded once with the
run's final adapter; each checkpoint's adapter is loaded beside it and switched on in turn.

Each finished row is written to eval/scores.json at once: scoring that is stopped (or killed) keeps
what it finished, and the next call goes on from there — unless the questions changed.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from studio.core.errors import StudioError
from studio.core.evaluation.measures import Measures, general_rows, heldout_rows
from studio.core.evaluation.questions import GoldenQuestion, run_questions, save_questions
from studio.core.evaluation.saved import held_as_of, save_rows, saved_key, saved_rows, scores_key
from studio.core.evaluation.scoreboard import Scoreboard, choose_best


def evaluate_run(run_dir, *, questions: list[GoldenQuestion] | None = None, checkpoints: str = "all",
                 should_stop: Callable[[], bool] | None = None,
                 on_progress: Callable[[str, float], None] | None = None, judge=None) -> Scoreboard:
    """The scoreboard of a run (`checkpoints`: "all", "last" or a step number). New `questions` are saved
    with the run; without them, the run's saved questions are used (or none: losses only). A `judge`
    (judge.Judge) also grades each answer; rows scored without it are scored again."""
    from studio.core import runs

    run_dir = runs.run_folder(run_dir)
    if questions is not None:
        save_questions(run_dir, questions)
    questions = run_questions(run_dir) or []
    targets, skipped = _targets(run_dir, checkpoints)
    scorer = _Scorer(run_dir, questions, judge)
    key = scores_key(questions, scorer.held_as, _judged_by(judge))
    done = saved_rows(run_dir, key)
    todo = [t for t in targets if t[0] not in done]
    progress = on_progress or (lambda _message, _fraction: None)
    complete = True
    if todo:
        scorer.load()
        for i, (name, step, path) in enumerate(todo):
            if should_stop and should_stop():
                complete = False
                break
            progress(f"Scoring {name} ({i + 1} of {len(todo)})", i / len(todo))
            done[name] = scorer.score(name, step, path)
            save_rows(run_dir, key, done)
        progress("Scored", 1.0)
    rows = [done[name] for name, _, _ in targets if name in done]
    return Scoreboard(run_dir.name, rows, choose_best(rows), len(questions), skipped, complete, held_as=scorer.held_as)


def _judged_by(judge) -> str | None:
    """The judge in the saved scores' key: its name and the rubric it graded by (a new rubric grades again)."""
    if judge is None:
        return None
    from studio.core.evaluation.judge import RUBRIC_VERSION

    return f"{judge.name}#rubric{RUBRIC_VERSION}"


def saved_scoreboard(run_dir) -> Scoreboard | None:
    """The scores a run has saved (by `studio eval`, or by the worker while it trained), without loading
    a model; None when it has none. `complete` says whether every usable checkpoint is among them."""
    from studio.core import runs

    run_dir = runs.run_folder(run_dir)
    key = saved_key(run_dir)
    done = saved_rows(run_dir, key) if key else {}
    if not done:
        return None
    questions = run_questions(run_dir) or []
    targets, skipped = _targets(run_dir, "all")
    rows = sorted(done.values(), key=lambda r: -1 if r.step is None else r.step)
    complete = all(name in done for name, _, _ in targets)
    return Scoreboard(run_dir.name, rows, choose_best(rows), len(questions), skipped, complete, held_as=held_as_of(key))


def _targets(run_dir: Path, which: str) -> tuple[list[tuple[str, int | None, Path | None]], list[str]]:
    """[(name, step, adapter folder)]: the base, then the chosen checkpoints by step; and those skipped."""
    from studio.core.runs.checkpoints import checkpoint_problem, checkpoint_step
    from studio.core.runs.checkpoints import checkpoints as saved

    found = sorted(saved(run_dir), key=checkpoint_step)
    if which == "last":
        found = found[-1:]
    elif which != "all":
        found = [p for p in found if str(checkpoint_step(p)) == str(which)]
        if not found:
            raise StudioError(f"The run {run_dir.name} has no checkpoint at step {which}.",
                              "Choose all, last, or a step that `studio runs` lists.", topic="settings")
    targets, skipped = [("base", None, None)], []
    for path in found:
        problem = checkpoint_problem(path) or (None if (path / "adapter_config.json").is_file() else "it holds no adapter")
        if problem:
            skipped.append(f"{path.name}: {problem}")
        else:
            targets.append((path.name, checkpoint_step(path), path))
    return targets, skipped


class _Scorer:
    """The base model with the run's adapter, and what every target is scored on."""

    def __init__(self, run_dir: Path, questions: list[GoldenQuestion], judge=None):
        from studio.core.generate import held_as
        from studio.core.runs.checkpoints import checkpoints as saved

        self.run_dir, self.questions, self.judge = run_dir, questions, judge
        self.adapter = run_dir / "adapter"
        if not (self.adapter / "adapter_config.json").is_file():
            found = saved(run_dir)
            if not found:
                raise StudioError(f"The run {run_dir.name} saved no adapter and no checkpoint: there is nothing to score.",
                                  "Train it (or resume it) until it saves a checkpoint.", topic="settings")
            self.adapter = found[0]
        self.held_as = held_as(self.adapter)  # known before loading: the saved rows may leave nothing to do

    def load(self) -> None:
        from studio.core.generate import TryModel

        self.model = TryModel.load(self.adapter)
        tokenizer = self.model.tokenizer
        self.measures = Measures(self.questions, _heldout(self.run_dir, tokenizer), general_rows(tokenizer), self.judge)

    def score(self, name: str, step: int | None, path: Path | None):
        with self._switched(name, path):
            return self.measures.score(self.model.model, self.model.tokenizer, self.model.renderer, name, step)

    @contextmanager
    def _switched(self, name: str, path: Path | None):
        peft = self.model.model
        if path is None:
            with peft.disable_adapter():
                yield
            return
        if name not in peft.peft_config:
            peft.load_adapter(str(path), adapter_name=name)
        peft.set_adapter(name)
        yield


def _heldout(run_dir: Path, tokenizer):
    """The run's held-out rows (the split the worker made), or [] when it held none out or its data is gone."""
    from studio.core.runs import load_recipe
    from studio.core.training.dataset import recipe_data, tokenized_splits

    config = load_recipe(run_dir)
    try:
        _, held_out, _ = tokenized_splits(recipe_data(config), tokenizer, config)
    except StudioError:
        return []
    return heldout_rows(held_out)
