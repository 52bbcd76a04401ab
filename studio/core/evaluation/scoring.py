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

import hashlib
import json
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from pathlib import Path

from studio.core.atomic import write_text
from studio.core.errors import StudioError
from studio.core.evaluation.metrics import mean_scores, score_answer
from studio.core.evaluation.questions import GoldenQuestion, run_questions, save_questions
from studio.core.evaluation.scoreboard import Scoreboard, TargetScores, choose_best

SCORES = Path("eval") / "scores.json"
HELD_OUT_ROWS = 64  # held-out rows scored at most (the loss of a sample: scoring stays minutes, not hours)
MAX_ANSWER_TOKENS = 384


def evaluate_run(run_dir, *, questions: list[GoldenQuestion] | None = None, checkpoints: str = "all",
                 should_stop: Callable[[], bool] | None = None,
                 on_progress: Callable[[str, float], None] | None = None) -> Scoreboard:
    """The scoreboard of a run (`checkpoints`: "all", "last" or a step number). New `questions` are saved
    with the run; without them, the run's saved questions are used (or none: losses only)."""
    from studio.core import runs

    run_dir = runs.run_folder(run_dir)
    if questions is not None:
        save_questions(run_dir, questions)
    questions = run_questions(run_dir) or []
    targets, skipped = _targets(run_dir, checkpoints)
    done = _saved_rows(run_dir, questions)
    todo = [t for t in targets if t[0] not in done]
    progress = on_progress or (lambda _message, _fraction: None)
    complete = True
    if todo:
        scorer = _Scorer(run_dir, questions)
        for i, (name, step, path) in enumerate(todo):
            if should_stop and should_stop():
                complete = False
                break
            progress(f"Scoring {name} ({i + 1} of {len(todo)})", i / len(todo))
            done[name] = scorer.score(name, step, path)
            _save_rows(run_dir, questions, done)
        progress("Scored", 1.0)
    rows = [done[name] for name, _, _ in targets if name in done]
    return Scoreboard(run_dir.name, rows, choose_best(rows), len(questions), skipped, complete)


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

    def __init__(self, run_dir: Path, questions: list[GoldenQuestion]):
        from studio.core.generate import TryModel
        from studio.core.runs.checkpoints import checkpoints as saved

        adapter = run_dir / "adapter"
        if not (adapter / "adapter_config.json").is_file():
            found = saved(run_dir)
            if not found:
                raise StudioError(f"The run {run_dir.name} saved no adapter and no checkpoint: there is nothing to score.",
                                  "Train it (or resume it) until it saves a checkpoint.", topic="settings")
            adapter = found[0]
        self.model = TryModel.load(adapter)
        self.questions = questions
        self.heldout = _heldout_rows(run_dir, self.model.tokenizer)
        self.general = _general_rows(self.model.tokenizer)

    def score(self, name: str, step: int | None, path: Path | None) -> TargetScores:
        with self._switched(name, path):
            heldout = _mean_loss(self.model.model, self.heldout) if self.heldout else None
            general = _mean_loss(self.model.model, self.general)
            answers = [self._answer(q, adapter=step is not None) for q in self.questions]
        return TargetScores(name, step, heldout, general, mean_scores(answers), answers)

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

    def _answer(self, q: GoldenQuestion, *, adapter: bool) -> dict:
        from studio.core.generate import GenerationSettings

        wanted = len(self.model.tokenizer(q.expected, add_special_tokens=False)["input_ids"])
        settings = GenerationSettings(max_new_tokens=min(MAX_ANSWER_TOKENS, max(32, 2 * wanted)))
        with nullcontext() if adapter else self.model.model.disable_adapter():
            answer = self.model.answer(list(q.prompt), settings, adapter=True)
        return {"question": q.question, "expected": q.expected, "answer": answer, **score_answer(answer, q.expected)}


def _heldout_rows(run_dir: Path, tokenizer) -> list[tuple[list[int], list[int]]]:
    """The run's held-out rows (the split the worker made), or [] when it held none out or its data is gone."""
    from studio.core.data import load_data
    from studio.core.runs import load_recipe
    from studio.core.training.dataset import tokenized_splits

    config = load_recipe(run_dir)
    d = config.data
    try:
        loaded = load_data(d.source, fmt=d.format, mapping=d.mapping, skip_bad_rows=d.skip_bad_rows, split=d.split,
                           subset=d.subset, text_split=d.text_split)
        _, held_out, _ = tokenized_splits(loaded, tokenizer, config)
    except StudioError:
        return []
    if held_out is None:
        return []
    return [(row["input_ids"], row["labels"]) for row in held_out.select(range(min(len(held_out), HELD_OUT_ROWS)))]


def _general_rows(tokenizer) -> list[tuple[list[int], list[int]]]:
    from studio.core.paths import resources_dir

    text = (resources_dir() / "eval" / "general.txt").read_text(encoding="utf-8")
    rows = []
    for paragraph in filter(None, (p.strip() for p in text.split("\n\n"))):
        ids = tokenizer(paragraph, add_special_tokens=True)["input_ids"]
        rows.append((ids, list(ids)))
    return rows


def _mean_loss(model, rows) -> float:
    """Mean cross-entropy per predicted token over `rows` (ids, labels with -100 where not trained)."""
    import torch

    device = next(model.parameters()).device
    total, count = 0.0, 0
    with torch.no_grad():
        for ids, labels in rows:
            predicted = sum(1 for label in labels[1:] if label != -100)
            if not predicted:
                continue
            out = model(input_ids=torch.tensor([ids], device=device), labels=torch.tensor([labels], device=device))
            total += float(out.loss) * predicted
            count += predicted
    return round(total / count, 5) if count else float("nan")


def _digest(questions: list[GoldenQuestion]) -> str:
    return hashlib.sha256(json.dumps([q.as_row() for q in questions], ensure_ascii=False).encode()).hexdigest()[:16]


def _saved_rows(run_dir: Path, questions: list[GoldenQuestion]) -> dict[str, TargetScores]:
    """The rows scored before on these same questions ({} when the questions changed or none were saved)."""
    path = run_dir / SCORES
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if saved.get("questions") != _digest(questions):
        return {}
    fields = ("name", "step", "heldout_loss", "general_loss", "golden", "answers")
    return {name: TargetScores(**{k: row[k] for k in fields}) for name, row in saved.get("rows", {}).items()}


def _save_rows(run_dir: Path, questions: list[GoldenQuestion], rows: dict[str, TargetScores]) -> None:
    path = run_dir / SCORES
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"questions": _digest(questions), "rows": {name: row.as_dict() for name, row in rows.items()}}
    write_text(path, json.dumps(data, ensure_ascii=False, indent=1))
