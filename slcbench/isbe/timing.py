"""The times of one training step, as the paper's formula 3 splits it: forward stage, backward stage.

Four clock marks per step: before the forward pass, after the loss (CE) or the soft error (ISBE) is
computed, after the backward call, after the optimizer step. Consecutive marks give the forward,
backward and optimizer times, so forward + backward is exactly the time from the first mark to the
third: nothing between the stages goes unaccounted. The clock is the host clock on the CPU (each call
has finished when it returns) and CUDA events on a GPU (``slcbench.speed.timing``), whose durations are
read once per epoch so that the GPU is not synchronised every step.

Torch-free at import: tests hand the recorder a stand-in clock.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    import torch


class Marker(Protocol):
    """Marks points in time and turns consecutive marks into durations (``slcbench.speed.timing``'s clocks)."""

    def mark(self) -> object: ...

    def durations_ms(self, marks: Sequence[object]) -> list[float]: ...


@dataclass(frozen=True)
class StepTimes:
    """One training step: forward stage, backward stage and optimizer step, in milliseconds."""

    forward_ms: float
    backward_ms: float
    optimizer_ms: float

    @property
    def forward_backward_ms(self) -> float:
        """t_fwd + t_back, the denominator of the paper's formula 3."""
        return self.forward_ms + self.backward_ms

    @property
    def backward_share(self) -> float:
        """The paper's formula 3: t_back / (t_fwd + t_back)."""
        return self.backward_ms / self.forward_backward_ms


Backward = Callable[[], object]


Key = TypeVar("Key", bound=Hashable)


class StepRecorder(Generic[Key]):
    """Times training steps on a clock and reads their durations in batches (``collect``); each step is
    recorded under a key (which option made it)."""

    def __init__(self, clock: Marker) -> None:
        self.clock = clock
        self._pending: list[tuple[Key, list[object]]] = []

    def step(self, key: Key, forward: Callable[[], Backward], optimizer_step: Callable[[], object]) -> None:
        """Run one step: ``forward()`` computes the forward stage and returns the backward call; then the
        backward call; then ``optimizer_step()``. Its times are read by the next ``collect``."""
        marks = [self.clock.mark()]
        backward = forward()
        marks.append(self.clock.mark())
        backward()
        marks.append(self.clock.mark())
        optimizer_step()
        marks.append(self.clock.mark())
        self._pending.append((key, marks))

    def collect(self) -> list[tuple[Key, StepTimes]]:
        """The steps recorded since the last call, in order, with their times (synchronises a GPU once)."""
        pending, self._pending = self._pending, []
        return [(key, StepTimes(*self.clock.durations_ms(marks))) for key, marks in pending]


def clock_for(device: torch.device) -> Marker:
    """CUDA events on a GPU, the host clock elsewhere."""
    from slcbench.speed.timing import CudaEventClock, HostClock

    return CudaEventClock(device) if device.type == "cuda" else HostClock()
