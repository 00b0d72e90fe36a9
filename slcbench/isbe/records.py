"""What one lockstep training of a network variant and seed leaves behind: every step's times and the
learning curves of every option. Torch-free: the analysis and the report read these."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from slcbench.isbe.config import LossOption, Variant
from slcbench.isbe.timing import StepTimes


@dataclass
class Curves:
    """Per-epoch values after each epoch: loss (cross-entropy, or the soft scores' MSE for ISBE) and accuracy."""

    train_loss: list[float] = field(default_factory=list)
    validation_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    validation_accuracy: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)

    def append(self, **values: float) -> None:
        for key, value in values.items():
            getattr(self, key).append(value)

    def to_dict(self) -> dict[str, list[float]]:
        return {f.name: list(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class OptionResult:
    """One option's training: every step's times (warm-up included, in training order) and its curves."""

    option: LossOption
    steps: tuple[StepTimes, ...]
    curves: Curves

    @property
    def test_accuracy(self) -> float:
        """Test accuracy after the last epoch (a fraction)."""
        return self.curves.test_accuracy[-1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "option": self.option.name,
            "test_accuracy": self.test_accuracy,
            "curves": self.curves.to_dict(),
            "forward_ms": [round(s.forward_ms, 5) for s in self.steps],
            "backward_ms": [round(s.backward_ms, 5) for s in self.steps],
            "optimizer_ms": [round(s.optimizer_ms, 5) for s in self.steps],
        }


@dataclass(frozen=True)
class GroupResult:
    """Every option trained in lockstep on one network variant from one seed (same weights, same batches)."""

    variant: Variant
    seed: int
    steps_per_epoch: int
    results: dict[str, OptionResult]

    def to_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant.name,
            "network": self.variant.network.value,
            "relocated": self.variant.relocated,
            "seed": self.seed,
            "steps_per_epoch": self.steps_per_epoch,
            "options": [result.to_dict() for result in self.results.values()],
        }
