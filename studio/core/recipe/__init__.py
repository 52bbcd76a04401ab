"""The recipe of a run: one `RunConfig` (model, data, adapter, training, output) that the window
edits, `studio train --recipe run.toml` reads, and every run folder keeps as `run.toml`.

One module per section (model, data, adapter, training, output), each a dataclass whose fields carry
their help text, flag and choices (fields.py) and whose `validate()` names a bad value and the flag
that changes it; config.py puts them together; reading.py reads a recipe file and checks each
value's type; migrations.py brings the recipes older studios wrote to today's shape (`version`).
"""

from studio.core.recipe.adapter import AdapterSection
from studio.core.recipe.config import SECTIONS, RunConfig, iter_settings
from studio.core.recipe.data import DataSection
from studio.core.recipe.fields import flag_of, help_of, kinds_of, one_of
from studio.core.recipe.migrations import VERSION
from studio.core.recipe.model import ModelSection
from studio.core.recipe.output import OutputSection
from studio.core.recipe.training import PACKING, SCHEDULERS, TrainingSection

__all__ = ["PACKING", "SCHEDULERS", "SECTIONS", "VERSION", "AdapterSection", "DataSection", "ModelSection", "OutputSection",
           "RunConfig", "TrainingSection", "flag_of", "help_of", "iter_settings", "kinds_of", "one_of"]
