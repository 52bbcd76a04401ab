"""The planner's answers for the recipe being edited, each worked out once per configuration.

Several pages show the same plan (the Adapter page's trainable parameters, the Memory page's bar, its
fixes and its table, the Model page's "does it fit", the step list): they all ask `StudioState`,
which asks a `PlanCache`. The cache is keyed on the plan's inputs (`PlanInputs`: the model, the
adapter, the training shape and the precision), so an edit that changes none of them — a learning
rate, a run name — computes nothing again, and one that does computes each answer at most once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from studio.core import memory
from studio.core.errors import StudioError
from studio.core.memory import (
    AdapterSpec,
    Leanest,
    MemoryPlan,
    Precision,
    Suggestion,
    TrainShape,
)
from studio.core.models import ModelInfo


@dataclass(frozen=True, eq=False)
class PlanInputs:
    """What `memory.plan` takes. Two are equal when they plan the same model object (a model read
    again is another model) with equal settings."""

    model: ModelInfo
    adapter: AdapterSpec
    shape: TrainShape
    precision: Precision

    def args(self) -> tuple:
        return self.model, self.adapter, self.shape, self.precision

    def __eq__(self, other) -> bool:
        return (isinstance(other, PlanInputs) and self.model is other.model
                and (self.adapter, self.shape, self.precision) == (other.adapter, other.shape, other.precision))

    def __hash__(self) -> int:
        return hash((id(self.model), self.adapter, self.shape, self.precision))


class PlanCache:
    """The answers for one `PlanInputs`: each computed the first time it is asked for (a StudioError
    is kept and raised again, like the answer it stands for); new inputs forget them all."""

    def __init__(self) -> None:
        self.inputs: PlanInputs | None = None
        self._answers: dict = {}

    def _answer(self, inputs: PlanInputs, question: tuple, compute: Callable):
        if inputs != self.inputs:
            self.inputs, self._answers = inputs, {}
        if question not in self._answers:
            try:
                self._answers[question] = (compute(), None)
            except StudioError as exc:
                self._answers[question] = (None, exc)
        answer, error = self._answers[question]
        if error is not None:
            raise error
        return answer

    def plan(self, inputs: PlanInputs) -> MemoryPlan:
        return self._answer(inputs, ("plan",), lambda: memory.plan(*inputs.args()))

    def suggestions(self, inputs: PlanInputs, gpu_bytes: int, smaller_models: list[ModelInfo]) -> list[Suggestion]:
        """The changes that make the run fit `gpu_bytes` (the smaller models belong to the model planned)."""
        return self._answer(inputs, ("suggestions", gpu_bytes),
                            lambda: memory.suggest_changes(*inputs.args(), gpu_bytes, smaller_models))

    def comparison(self, inputs: PlanInputs) -> dict[str, MemoryPlan]:
        return self._answer(inputs, ("comparison",), lambda: memory.compare_precisions(*inputs.args()))

    def leanest(self, inputs: PlanInputs) -> Leanest:
        return self._answer(inputs, ("leanest",), lambda: memory.leanest(*inputs.args()))
