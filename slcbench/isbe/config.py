"""What ``slcbench isbe`` is asked to do: data, networks, loss options, seeds, training, outputs, validated once.

Torch-free, so that the command line can offer these choices without importing torch.

The paper's options (Skarbek, Section 3): two networks; cross-entropy with reduction none, mean or sum;
ISBE with softmax, sigmoid, tanh, hardsigmoid or hardtanh; each network also with a trained relocation
of the normalisation (a bias on the final projection). ISBE options here also come with a reduction
(none, the default: the soft error sent as is, the paper's code; mean: divided by the batch size;
sum: through ``slcbench.train.losses.isbe``, which also computes the monitoring value), and each is
compared with cross-entropy of every reduction, its own among them; blurred targets add one ISBE
option per activation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from slcbench.device import DeviceChoice
from slcbench.errors import SlcbenchError, printable
from slcbench.extras import require
from slcbench.io import check_output_folder
from slcbench.results import MAX_SEED
from slcbench.train.config import MAX_LEARNING_RATE

# The values of slcbench.train.losses.IsbeActivation, in the paper's order (a test keeps them equal).
ISBE_ACTIVATIONS: tuple[str, ...] = ("softmax", "sigmoid", "tanh", "hardsigmoid", "hardtanh")
NUM_CLASSES = 10  # digits and MNIST

DEFAULT_SEEDS = (0, 1, 2)
MAX_SEEDS = 1000  # a run trains every option once per seed; more is a typo, not an experiment
DEFAULT_EPOCHS = 15
DEFAULT_BATCH_SIZE = 64  # ours: our copy of the paper does not give its batch size
# Ours (our copy of the paper gives no optimizer settings): at Adam's usual 1e-3 the ISBE activations other
# than softmax have not caught up with CE within 15 epochs of digits; at 3e-3 they mostly have (docs/isbe.md).
DEFAULT_LEARNING_RATE = 3e-3
DEFAULT_WARMUP_STEPS = 10  # per network and seed: lazy initialisation and allocator growth stay out of the times
DEFAULT_BLUR = 0.1  # ours: the paper's example value is lost from our copy of its text
DEFAULT_CURVE_EXAMPLES = 10_000  # training examples the per-epoch training curve is computed on (MNIST has 54,000)
DEFAULT_CONFIDENCE = 0.95
# --tiny: two seeds, two epochs of three steps, the first two steps untimed; for CI and smoke tests.
TINY_SETTINGS: dict[str, Any] = {
    "seeds": (0, 1),
    "epochs": 2,
    "steps_per_epoch": 3,
    "warmup_steps": 2,
    "curve_examples": 200,
}


class IsbeDataset(StrEnum):
    """The paper's MNIST (from --data-dir) and scikit-learn's 8×8 digits, its offline stand-in."""

    digits = "digits"
    mnist = "mnist"


class Network(StrEnum):
    """The paper's two architectures (layer details in ``slcbench.isbe.networks``)."""

    net1 = "net1"
    net2 = "net2"

    @property
    def description(self) -> str:
        return {
            "net1": "two convolutions + two linear layers",
            "net2": "two blocks of three convolutions + a linear projection",
        }[self.value]


class Reduction(StrEnum):
    """How a batch's per-example losses (CE) or soft errors (ISBE) are combined."""

    none = "none"
    mean = "mean"
    sum = "sum"


class LossKind(StrEnum):
    ce = "ce"
    isbe = "isbe"


@dataclass(frozen=True)
class LossOption:
    """One way of training: cross-entropy with a reduction, or ISBE with an activation, reduction and targets.

    Parameters
    ----------
    kind : LossKind
        Cross-entropy or ISBE.
    reduction : Reduction
        CE: ``F.cross_entropy``'s reduction (none: the per-example losses, backpropagated with ones).
        ISBE: none sends the soft error as is (the paper's code), mean divides it by the batch size,
        sum sends it as is through ``slcbench.train.losses.isbe``.
    activation : str or None
        ISBE's normalisation (one of ``ISBE_ACTIVATIONS``); None for CE.
    blurred : bool
        ISBE with the paper's blurred targets instead of one-hot ones.
    """

    kind: LossKind
    reduction: Reduction
    activation: str | None = None
    blurred: bool = False

    def __post_init__(self) -> None:
        if self.kind is LossKind.ce and (self.activation is not None or self.blurred):
            raise SlcbenchError("a cross-entropy option has no activation and no blurred targets")
        if self.kind is LossKind.isbe and self.activation not in ISBE_ACTIVATIONS:
            raise SlcbenchError(f"unknown activation {self.activation!r}; choose from {', '.join(ISBE_ACTIVATIONS)}")

    @property
    def name(self) -> str:
        """Its key in the results: ``ce-mean``, ``isbe-tanh-none``, ``isbe-tanh-none-blurred``."""
        if self.kind is LossKind.ce:
            return f"ce-{self.reduction.value}"
        return f"isbe-{self.activation}-{self.reduction.value}" + ("-blurred" if self.blurred else "")

    @property
    def title(self) -> str:
        if self.kind is LossKind.ce:
            return f"CE {self.reduction.value}"
        return f"ISBE {self.activation} ({self.reduction.value}{', blurred' if self.blurred else ''})"

    @property
    def targets(self) -> str:
        """The row label of the targets in Tables 2 and 4: the reduction, and 'blurred' where blurred."""
        return f"{self.reduction.value}, blurred" if self.blurred else self.reduction.value


@dataclass(frozen=True)
class Variant:
    """A network with or without the trained relocation (bias) before the normalisation."""

    network: Network
    relocated: bool

    @property
    def name(self) -> str:
        return f"{self.network.value}-relocated" if self.relocated else self.network.value

    @property
    def title(self) -> str:
        return f"{self.network.value} + relocation" if self.relocated else self.network.value


def parse_list(text: str, option: str, choices: Sequence[str]) -> tuple[str, ...]:
    """Comma-separated choices (``all`` = every choice), in the order given, without repeats."""
    items = [part.strip().lower() for part in text.split(",") if part.strip()]
    if items == ["all"]:
        return tuple(choices)
    unknown = [item for item in items if item not in choices]
    if unknown or not items:
        raise SlcbenchError(f"{option} {text!r}: choose from {', '.join(choices)} or 'all'")
    return tuple(dict.fromkeys(items))


def parse_seeds(text: str) -> tuple[int, ...]:
    """Seeds as a comma list of integers and ranges: ``0,1,2`` or ``0-4``."""
    seeds: list[int] = []
    try:
        for part in (p.strip() for p in text.split(",") if p.strip()):
            low, _, high = part.partition("-")
            first, last = int(low), int(high) if high else int(low)
            if last - first + 1 > MAX_SEEDS - len(seeds):  # before a range like 0-10^12 is expanded
                raise SlcbenchError(f"--seeds {printable(text)}: at most {MAX_SEEDS} seeds")
            seeds += range(first, last + 1)
    except ValueError:
        raise SlcbenchError(
            f"--seeds {printable(text)}: give non-negative integers or ranges, e.g. 0,1,2 or 0-4"
        ) from None
    return tuple(dict.fromkeys(seeds))


@dataclass(frozen=True)
class IsbeConfig:
    """Everything one ``slcbench isbe`` run does (see the module docstring and docs/isbe.md)."""

    dataset: IsbeDataset = IsbeDataset.digits
    data_dir: Path | None = None
    networks: tuple[Network, ...] = tuple(Network)
    relocations: tuple[bool, ...] = (False, True)
    activations: tuple[str, ...] = ISBE_ACTIVATIONS
    isbe_reductions: tuple[Reduction, ...] = (Reduction.none,)
    blur: float = DEFAULT_BLUR
    seeds: tuple[int, ...] = DEFAULT_SEEDS
    epochs: int = DEFAULT_EPOCHS
    steps_per_epoch: int | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    learning_rate: float = DEFAULT_LEARNING_RATE
    warmup_steps: int = DEFAULT_WARMUP_STEPS
    curve_examples: int = DEFAULT_CURVE_EXAMPLES
    confidence: float = DEFAULT_CONFIDENCE
    device: DeviceChoice = DeviceChoice.auto
    threads: int | None = None
    output: Path = Path("runs")
    plot: bool = True

    def __post_init__(self) -> None:
        if self.dataset is IsbeDataset.digits and self.data_dir is not None:
            raise SlcbenchError("--data-dir is read for MNIST only; digits ships with scikit-learn")
        for option, values in (
            ("--networks", self.networks),
            ("--relocation", self.relocations),
            ("--activations", self.activations),
            ("--isbe-reductions", self.isbe_reductions),
            ("--seeds", self.seeds),
        ):
            if not values:
                raise SlcbenchError(f"{option} is empty")
        if unknown := [a for a in self.activations if a not in ISBE_ACTIVATIONS]:
            raise SlcbenchError(f"unknown activation {unknown[0]!r}; choose from {', '.join(ISBE_ACTIVATIONS)}")
        if any(not 0 <= seed <= MAX_SEED for seed in self.seeds):
            raise SlcbenchError(f"--seeds must lie between 0 and 2^63 - 1, got {list(self.seeds)}")
        for option, value, least in (
            ("--epochs", self.epochs, 1),
            ("--batch-size", self.batch_size, 2),
            ("--warmup-steps", self.warmup_steps, 0),
            ("--curve-examples", self.curve_examples, 1),
            ("--steps-per-epoch", 1 if self.steps_per_epoch is None else self.steps_per_epoch, 1),
            ("--threads", 1 if self.threads is None else self.threads, 1),
        ):
            if value < least:
                raise SlcbenchError(f"{option} must be at least {least}, got {value}")
        if not 0 < self.learning_rate <= MAX_LEARNING_RATE:
            raise SlcbenchError(f"--lr must be positive and at most {MAX_LEARNING_RATE:g}, got {self.learning_rate}")
        # Below (k − 1) / k the true class keeps the largest blurred target.
        if not 0.0 <= self.blur < (NUM_CLASSES - 1) / NUM_CLASSES:
            raise SlcbenchError(f"--blur must lie in [0, {(NUM_CLASSES - 1) / NUM_CLASSES:g}), got {self.blur}")
        if not 0.5 <= self.confidence < 1.0:
            raise SlcbenchError(f"--confidence must lie in [0.5, 1), got {self.confidence}")
        check_output_folder(self.output)
        if self.plot:
            require("matplotlib", "plot", "--plot (learning-curve PNGs, the default; --no-plot skips them)")

    @classmethod
    def from_options(
        cls,
        *,
        networks: str = "all",
        relocation: str = "all",
        activations: str = "all",
        isbe_reductions: str = "none",
        seeds: str = ",".join(map(str, DEFAULT_SEEDS)),
        dataset: IsbeDataset | None = None,
        data_dir: Path | None = None,
        **settings: Any,
    ) -> IsbeConfig:
        """The config the command line's options describe; lists are comma-separated or ``all``.

        ``dataset`` None means MNIST when ``data_dir`` is given, else digits.
        """
        if dataset is None:
            dataset = IsbeDataset.mnist if data_dir is not None else IsbeDataset.digits
        return cls(
            dataset=IsbeDataset(dataset),
            data_dir=data_dir,
            networks=tuple(Network(n) for n in parse_list(networks, "--networks", list(Network))),
            relocations=tuple(r == "on" for r in parse_list(relocation, "--relocation", ["off", "on"])),
            activations=parse_list(activations, "--activations", ISBE_ACTIVATIONS),
            isbe_reductions=tuple(
                Reduction(r) for r in parse_list(isbe_reductions, "--isbe-reductions", list(Reduction))
            ),
            seeds=parse_seeds(seeds),
            **settings,
        )

    def tiny(self) -> IsbeConfig:
        """This config on a few steps of two seeds (every option and network kept): a seconds-long check."""
        return replace(self, **TINY_SETTINGS)

    def options(self) -> tuple[LossOption, ...]:
        """CE none, mean, sum; ISBE for each reduction and activation; ISBE with blurred targets (blur > 0),
        for each activation with the first ISBE reduction."""
        options = [LossOption(LossKind.ce, reduction) for reduction in Reduction]
        for reduction in self.isbe_reductions:
            options += [LossOption(LossKind.isbe, reduction, activation) for activation in self.activations]
        if self.blur > 0:
            reduction = self.isbe_reductions[0]
            options += [LossOption(LossKind.isbe, reduction, activation, True) for activation in self.activations]
        return tuple(options)

    def variants(self) -> tuple[Variant, ...]:
        return tuple(Variant(network, relocated) for network in self.networks for relocated in self.relocations)

    @property
    def timed_from_step(self) -> int:
        """The first timed step: warm-up steps rounded up to even, so that A-B-B-A blocks start on a block."""
        return self.warmup_steps + self.warmup_steps % 2

    def settings(self) -> dict[str, Any]:
        """Every setting, JSON-ready."""
        return {
            "dataset": self.dataset.value,
            "data_dir": None if self.data_dir is None else str(self.data_dir),
            "networks": [n.value for n in self.networks],
            "relocation": ["on" if r else "off" for r in self.relocations],
            "activations": list(self.activations),
            "isbe_reductions": [r.value for r in self.isbe_reductions],
            "blur": self.blur,
            "seeds": list(self.seeds),
            "epochs": self.epochs,
            "steps_per_epoch": self.steps_per_epoch,
            "batch_size": self.batch_size,
            "optimizer": f"Adam (lr {self.learning_rate:g}, fused on CPU and CUDA, PyTorch defaults otherwise)",
            "learning_rate": self.learning_rate,
            "warmup_steps": self.warmup_steps,
            "timed_from_step": self.timed_from_step,
            "curve_examples": self.curve_examples,
            "confidence": self.confidence,
            "device": self.device.value,
            "threads": self.threads,
            "options": [option.name for option in self.options()],
        }
