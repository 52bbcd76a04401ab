"""The recipe's [output] section: the run's name and where its folder goes."""

from __future__ import annotations

import re
from dataclasses import dataclass

from studio.core.recipe.fields import require, setting


@dataclass
class OutputSection:
    name: str = setting("a short name for the run; the folder is <date>-<name>", flag="--name", default="run")
    runs_dir: str | None = setting("where run folders go (default: the studio's data folder)", flag="--runs-dir",
                                   default=None)

    def validate(self) -> None:
        require(bool(re.fullmatch(r"[\w.-]{1,64}", self.name or "")), self, "name", "The run name",
                "1–64 letters, digits, '.', '-' or '_'")
