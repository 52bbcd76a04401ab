"""Golden questions: the user's own questions with the answers they expect, saved with the run
(eval/questions.jsonl, as chat messages) so that the run folder alone can be scored again.

Any file the data loader reads gives questions: each row's last answer is the expected one, the turns
before it the prompt. A row whose expected answer is empty is not a question: the loader flags it
(with its line) and it is not scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from studio.core.atomic import write_jsonl

QUESTIONS = Path("eval") / "questions.jsonl"


@dataclass(frozen=True)
class GoldenQuestion:
    prompt: tuple  # the turns before the expected answer: ({"role", "content"}, ...)
    expected: str
    line: int = 0  # where it is in the file it came from

    @property
    def question(self) -> str:
        """The last thing the user asked: how the question is shown."""
        return next((t["content"] for t in reversed(self.prompt) if t["role"] == "user"), "")

    def as_row(self) -> dict:
        return {"messages": [*self.prompt, {"role": "assistant", "content": self.expected}]}


def load_questions(source) -> tuple[list[GoldenQuestion], list]:
    """(questions, problems) from a data file, a folder or a hub id; problems name the rows left out."""
    from studio.core.data import load_data

    loaded = load_data(source)
    if not loaded.is_chat:
        from studio.core.errors import StudioError

        raise StudioError(f"{source} holds plain text, not questions with answers.",
                          "Give a file of questions and expected answers (e.g. prompt/completion or messages).", topic="data")
    questions = []
    for row in loaded.dataset:
        turns = [{"role": t["role"], "content": t["content"]} for t in row["messages"]]
        questions.append(GoldenQuestion(tuple(turns[:-1]), turns[-1]["content"], row["line"]))
    return questions, loaded.problems


def save_questions(run_dir: Path, questions: list[GoldenQuestion]) -> Path:
    """The questions saved with a run (eval/questions.jsonl)."""
    return save_questions_file(Path(run_dir) / QUESTIONS, questions)


def save_questions_file(path: Path, questions: list[GoldenQuestion]) -> Path:
    """Questions as a messages JSONL file the data loader reads back (the window's typed questions)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(path, (q.as_row() for q in questions))
    return path


def run_questions(run_dir: Path) -> list[GoldenQuestion] | None:
    """The questions saved with a run, or None when it has none."""
    path = Path(run_dir) / QUESTIONS
    if not path.is_file():
        return None
    return load_questions(path)[0] if path.stat().st_size else []  # saved empty: scored without questions

