"""The recipe's [model] section: which base model, and what it may do when it loads."""

from __future__ import annotations

from dataclasses import dataclass

from studio.core.recipe.fields import setting


@dataclass
class ModelSection:
    source: str = setting("a model folder, a hub id, a catalog name, or 'demo'", flag="--model", plans=True, default="demo")
    trust_remote_code: bool = setting("allow the model's own Python code (only for models you trust)",
                                      flag="--trust-remote-code", plans=True, default=False)
    allow_pickle: bool = setting("allow pickled .bin weights, which can run code when loaded", flag="--allow-pickle",
                                 default=False)

    def validate(self) -> None:
        """Nothing to check before the model is read: resolving it names a missing or unsafe model."""
