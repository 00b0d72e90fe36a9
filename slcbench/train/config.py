"""What ``slcbench train`` is asked to do: data set, losses, steps, learning rates, outputs, validated once.

Torch-free, so that the command line can offer these choices without importing torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from slcbench.device import DeviceChoice
from slcbench.errors import SlcbenchError
from slcbench.io import check_output_file, check_output_folder
from slcbench.results import MAX_SEED


class DatasetName(StrEnum):
    digits = "digits"
    mnist = "mnist"
    svhn = "svhn"
    cifar10 = "cifar10"
    cifar100 = "cifar100"


# An SGD step multiplies the gradient by the rate in the parameters' float32: a larger one overflows.
MAX_LEARNING_RATE = 1e30
# The paper chooses each loss's learning rate from this grid by validation accuracy.
LEARNING_RATES = (1.0, 0.1, 0.01, 0.001)
DEFAULT_BATCH_SIZE = 64  # ours: the paper does not give its batch size
PAPER_STEPS = 100_000
DIGITS_STEPS = 1_000  # ~53 epochs of the 1,211 training digits: 7 losses × 4 rates in minutes on 2 cores

# Loss hyperparameters: the paper gives none of their values.
DEFAULT_MARGIN = 1.0
DEFAULT_SELF_NORM_ALPHA = 0.1
# Mnih & Teh (2012) found 25 noise samples a good trade-off; the paper does not give its t.
DEFAULT_NCE_NOISE_SAMPLES = 25
# Up to this many classes NCE's expectation over the noise distribution is summed exactly (it costs
# O(m·k), the same as the logits themselves); above it, t noise classes are sampled per example.
DEFAULT_NCE_EXACT_MAX_K = 1024


def default_steps(dataset: DatasetName) -> int:
    """Training steps per run: the paper's 10^5, except on the 1,797-image digits set."""
    return DIGITS_STEPS if dataset is DatasetName.digits else PAPER_STEPS


@dataclass(frozen=True)
class LossSettings:
    """The hyperparameters of the losses (the paper gives none of their values)."""

    margin: float = DEFAULT_MARGIN  # γ of max-margin and batch max-margin
    self_norm_alpha: float = DEFAULT_SELF_NORM_ALPHA  # α of self-normalization
    nce_noise_samples: int = DEFAULT_NCE_NOISE_SAMPLES  # t of NCE
    nce_exact_max_k: int = DEFAULT_NCE_EXACT_MAX_K  # NCE sums the expectation exactly up to this k

    def __post_init__(self) -> None:
        for name, value, least in (
            ("margin", self.margin, "positive"),
            ("alpha", self.self_norm_alpha, "positive"),
            ("NCE noise samples", self.nce_noise_samples, "positive"),
            ("NCE exact max k", self.nce_exact_max_k, "non-negative"),
        ):
            if not (value > 0 if least == "positive" else value >= 0):
                raise SlcbenchError(f"{name} must be {least}, got {value}")


@dataclass(frozen=True)
class TrainConfig:
    """One loss's training: steps, batch size, the learning rates searched, the seed, the loss's settings."""

    loss: str
    steps: int
    batch_size: int = DEFAULT_BATCH_SIZE
    learning_rates: tuple[float, ...] = LEARNING_RATES
    seed: int = 0
    loss_settings: LossSettings = field(default_factory=LossSettings)

    def __post_init__(self) -> None:
        for option, value in (("--steps", self.steps), ("--batch-size", self.batch_size)):
            if value < 1:
                raise SlcbenchError(f"{option} must be positive, got {value}")
        if self.batch_size < 2:
            raise SlcbenchError("--batch-size must be at least 2 (batch norm and the batch losses need 2 examples)")
        if not self.learning_rates or any(not (lr > 0 and math.isfinite(lr)) for lr in self.learning_rates):
            raise SlcbenchError(f"learning rates must be positive, got {list(self.learning_rates)}")
        if any(lr > MAX_LEARNING_RATE for lr in self.learning_rates):
            raise SlcbenchError(
                f"learning rates must be at most {MAX_LEARNING_RATE:g} (float32 parameters), "
                f"got {list(self.learning_rates)}"
            )
        if not 0 <= self.seed <= MAX_SEED:
            raise SlcbenchError(f"--seed must be between 0 and 2^63 - 1, got {self.seed}")

    @property
    def total_steps(self) -> int:
        """Optimizer steps of a full search (for progress bars); diverged runs finish early."""
        return self.steps * len(self.learning_rates)


@dataclass(frozen=True)
class TrainOutputs:
    """Where a training job writes: one loss, the ``.npz`` file; several, a folder of ``LOSS.npz`` files
    and the Table I files. Checked before any training starts."""

    folder: Path
    npz: dict[str, Path]
    tables: tuple[Path, ...] = ()  # table.txt, table.csv, summary.json (several losses)
    force: bool = False

    @classmethod
    def plan(cls, out: Path | None, losses: tuple[str, ...], dataset: DatasetName, *, force: bool) -> TrainOutputs:
        if len(losses) == 1:
            path = out or Path("runs") / f"{losses[0]}-{dataset.value}.npz"
            if path.is_dir():
                raise SlcbenchError(f"--out {path} is a folder; for one loss give the .npz file to write")
            if path.parent.exists() and not path.parent.is_dir():
                raise SlcbenchError(f"--out {path}: {path.parent} is a file, not a folder")
            return cls(path.parent, {losses[0]: path}, (), force)
        folder = out or Path("runs") / f"train-{dataset.value}"
        if folder.exists() and not folder.is_dir():
            raise SlcbenchError(f"--out {folder} is a file; for several losses give a folder")
        tables = tuple(folder / name for name in ("table.txt", "table.csv", "summary.json"))
        return cls(folder, {name: folder / f"{name}.npz" for name in losses}, tables, force)

    def __post_init__(self) -> None:
        check_output_folder(self.folder, what="--out")
        if self.folder.is_dir():
            for path in [*self.npz.values(), *self.tables]:
                check_output_file(path, what="--out", overwrite=self.force)


@dataclass(frozen=True)
class TrainJob:
    """Everything ``slcbench train`` does: one ``TrainConfig`` per loss on one data set and device."""

    configs: tuple[TrainConfig, ...]
    dataset: DatasetName
    outputs: TrainOutputs
    data_dir: Path | None = None
    device: DeviceChoice = DeviceChoice.auto
    threads: int | None = None

    def __post_init__(self) -> None:
        if not self.configs:
            raise SlcbenchError("--loss is empty; choose losses by name (slcbench train --list-losses) or 'all'")
        if self.threads is not None and self.threads < 1:
            raise SlcbenchError(f"--threads must be positive, got {self.threads}")
