"""The recipe's [data] section: which data, how to read it, and the share held out for eval loss."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from studio.core.data.formats import FORMATS
from studio.core.data.text_files import TEXT_SPLITS
from studio.core.recipe.fields import require, require_choice, setting


@dataclass
class DataSection:
    TOPIC: ClassVar[str] = "data"  # what a bad value here is about (errors.StudioError.topic)

    source: str = setting("a data file, a folder of files, or a hub dataset id", flag="--data", default="demo")
    format: str | None = setting("alpaca, sharegpt, messages, prompt_completion or text (default: detected)",
                                 flag="--format", label="Format", choices=FORMATS, default=None)
    mapping: dict | None = setting("which columns hold what, e.g. {prompt = 'question', response = 'answer'}",
                                   flag="--map", label="the column pickers", default=None)
    split: str | None = setting("hub datasets: the split to train on", flag="--split", default=None)
    subset: str | None = setting("hub datasets: the subset (configuration)", flag="--subset", default=None)
    text_split: str = setting("plain text files (.txt, .md): auto (from each file's shape), line (one document per "
                              "line), paragraph (one per blank-line separated paragraph) or file (one per file)",
                              flag="--text-split", label="Text split", choices=TEXT_SPLITS, default="auto")
    skip_bad_rows: bool = setting("leave out malformed lines instead of refusing the data", flag="--skip-bad-rows",
                                  label="Skip broken lines", default=False)
    eval_fraction: float = setting("share of rows held out to measure eval loss (0 turns eval off)",
                                   flag="--eval-fraction", default=0.1)
    questions: str | None = setting("golden questions: a data file of questions with the answers you expect "
                                    "(any format the data takes); each checkpoint's answers are scored against them "
                                    "as it is saved, and `studio eval` scores them again", flag="--questions",
                                    label="Golden questions", default=None)
    assistant_only: bool = setting("train only on the assistant's turns (chat data)", flag="--assistant-only",
                                   default=True)

    def validate(self) -> None:
        if self.format is not None:
            require_choice(self, "format", "The data format")
        require_choice(self, "text_split", "The text split")
        mapping_ok = self.mapping is None or all(isinstance(v, str) for v in self.mapping.values())
        require(mapping_ok, self, "mapping", "The column mapping", "column names, e.g. prompt=question,response=answer")
        require(0 <= self.eval_fraction < 0.9, self, "eval_fraction", "The eval fraction", "in [0, 0.9)")

    def held_out_rows(self, rows: int) -> int:
        """How many of `rows` usable rows the worker holds out for eval loss: the share rounded, and none
        unless at least one row is held out and one is left to train on."""
        held = round(rows * self.eval_fraction)
        return held if held >= 1 and rows - held >= 1 else 0
