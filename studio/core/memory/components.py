"""The planner's answer: a `MemoryPlan` of named `Component`s in bytes, each explaining itself in one
line (the window's tooltip)."""

from __future__ import annotations

from dataclasses import dataclass, field

from studio.core.memory.choices import AdapterSpec, Precision, TrainShape
from studio.core.models import ModelInfo


@dataclass(frozen=True)
class Component:
    name: str
    bytes: int
    why: str


@dataclass(frozen=True)
class MemoryPlan:
    model: ModelInfo
    adapter: AdapterSpec
    shape: TrainShape
    precision: Precision
    components: tuple[Component, ...]
    trainable_params: int
    notes: tuple[str, ...] = ()
    phases: tuple = ()  # phases.Phase, each with its live set
    held_bytes: tuple[int, int] = field(default=(0, 0))  # what the process holds at the peak, low and high

    @property
    def peak_phase(self):
        """The phase that sets the peak (the first of equals)."""
        from studio.core.memory.phases import peak  # phases.py builds on this module

        return peak(self.phases)

    @property
    def needed_bytes(self) -> int:
        """The tensor peak (what torch's max_memory_allocated measures)."""
        return self.peak_phase.bytes

    @property
    def total_bytes(self) -> int:
        """The conservative figure the fit check uses: the upper end of what is held."""
        return sum(c.bytes for c in self.components)

    def component(self, name: str) -> Component:
        for c in self.components:
            if c.name == name:
                return c
        raise KeyError(name)

    def bytes_of(self, name: str) -> int:
        return next((c.bytes for c in self.components if c.name == name), 0)

    def fits(self, gpu_bytes: int) -> bool:
        return self.total_bytes <= gpu_bytes

    def headroom(self, gpu_bytes: int) -> int:
        """Bytes to spare (positive) or missing (negative) on a GPU of `gpu_bytes`."""
        return gpu_bytes - self.total_bytes
