"""Training the paper's models with one loss, choosing the learning rate by validation accuracy.

What the paper states (Section VI-A): an MLP with two fully connected layers of 500 units for MNIST;
for SVHN and CIFAR a network of six convolutions (kernels 5,1,5,1,5,1; 128,128,256,256,512,512 maps;
3×3 max-pool with stride 2 after convolutions 2, 4, 6) and a dense layer of 1024 units; batch norm
then ReLU after every convolutional or dense layer; the learning rate chosen per loss from
{1, 0.1, 0.01, 0.001} by validation accuracy; 10^5 training steps.

What it does not state, and our choices: plain SGD without momentum or weight decay (a grid that
starts at 1 suggests plain SGD), batch size 64, 'same' padding for the convolutions and padding 1 for
the pools (32 → 16 → 8 → 4), no data augmentation, no learning-rate schedule, inputs scaled to [0, 1].
On the tiny digits data set the default is 1,000 steps (about 53 epochs), not 10^5.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from slcbench.choices import DEFAULT_BATCH_SIZE, DIGITS_STEPS, LEARNING_RATES, PAPER_STEPS, DatasetName
from slcbench.data import DataSplits, Split
from slcbench.errors import SlcbenchError
from slcbench.evaluation import evaluate_logits
from slcbench.io import write_bytes_atomic
from slcbench.losses import LOSSES, PAPER_LOSSES, LossSettings


# The paper trains an MLP on MNIST (and we on digits); a convolutional network on the colour images.
MLP_DATASETS = (DatasetName.digits, DatasetName.mnist)


def default_steps(dataset: DatasetName) -> int:
    """Training steps per run: the paper's 10^5, except on the 1,797-image digits set."""
    return DIGITS_STEPS if dataset is DatasetName.digits else PAPER_STEPS


# ---- models ---------------------------------------------------------------------------------


def mlp(in_features: int, num_classes: int, hidden: int = 500) -> nn.Sequential:
    """The paper's MNIST network: two dense layers of 500 units, each followed by batch norm and ReLU."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(in_features, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
        nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )


def six_conv_net(in_channels: int, num_classes: int, image_size: int = 32) -> nn.Sequential:
    """The paper's SVHN/CIFAR network: six convolutions (5,1,5,1,5,1; 128..512 maps), three max-pools,
    a 1024-unit dense layer, batch norm and ReLU after each of them."""
    layers: list[nn.Module] = []
    channels = in_channels
    size = image_size
    for width in (128, 256, 512):
        for kernel in (5, 1):
            layers += [nn.Conv2d(channels, width, kernel, padding=kernel // 2), nn.BatchNorm2d(width), nn.ReLU()]
            channels = width
        layers.append(nn.MaxPool2d(3, stride=2, padding=1))
        size = (size + 1) // 2
    return nn.Sequential(
        *layers, nn.Flatten(),
        nn.Linear(channels * size * size, 1024), nn.BatchNorm1d(1024), nn.ReLU(),
        nn.Linear(1024, num_classes),
    )


def paper_network(data: DataSplits) -> nn.Module:
    """The paper's model for the data set: the MLP for digits and MNIST, the conv net for colour images."""
    channels, height, width = data.image_shape
    if data.name in MLP_DATASETS:
        return mlp(channels * height * width, data.num_classes)
    return six_conv_net(channels, data.num_classes, image_size=height)


# ---- one training run -----------------------------------------------------------------------


@dataclass(frozen=True)
class TrainConfig:
    loss: str
    steps: int
    batch_size: int = DEFAULT_BATCH_SIZE
    learning_rates: tuple[float, ...] = LEARNING_RATES
    seed: int = 0
    loss_settings: LossSettings = field(default_factory=LossSettings)

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise SlcbenchError(f"unknown loss '{self.loss}'; choose one of: {', '.join(LOSSES)}")
        if self.steps < 1 or self.batch_size < 2:
            raise SlcbenchError("steps must be >= 1 and batch size >= 2 (batch norm and the batch losses need 2)")
        if not self.learning_rates or any(not (lr > 0 and math.isfinite(lr)) for lr in self.learning_rates):
            raise SlcbenchError(f"learning rates must be positive, got {list(self.learning_rates)}")
        settings = self.loss_settings
        for name, value, least in (
            ("margin", settings.margin, "positive"),
            ("alpha", settings.self_norm_alpha, "positive"),
            ("NCE noise samples", settings.nce_noise_samples, "positive"),
            ("NCE exact max k", settings.nce_exact_max_k, "non-negative"),
        ):
            if not (value > 0 if least == "positive" else value >= 0):
                raise SlcbenchError(f"{name} must be {least}, got {value}")


@dataclass(frozen=True)
class RunOutcome:
    """One learning rate's run: validation accuracy (NaN when training diverged) and the last loss."""

    learning_rate: float
    validation_accuracy: float
    final_loss: float
    diverged: bool


@dataclass(frozen=True)
class TrainResult:
    """The run with the best validation accuracy, its test logits, and every run of the search."""

    config: TrainConfig
    dataset: DatasetName
    device: str
    learning_rate: float
    validation_accuracy: float
    test_accuracy: float
    test_logits: np.ndarray  # float32, [n_test, k]
    test_labels: np.ndarray  # int64, [n_test]
    search: tuple[RunOutcome, ...]

    def settings(self) -> dict:
        """Everything needed to repeat the run, JSON-ready."""
        return {
            "dataset": self.dataset.value,
            "loss": self.config.loss,
            "loss_settings": asdict(self.config.loss_settings),
            "model": "mlp-2x500-bn-relu" if self.dataset in MLP_DATASETS else "six-conv-1024",
            "optimizer": "SGD (no momentum, no weight decay)",
            "steps": self.config.steps,
            "batch_size": self.config.batch_size,
            "learning_rates_searched": list(self.config.learning_rates),
            "learning_rate": self.learning_rate,
            "seed": self.config.seed,
            "device": self.device,
            "search": [asdict(run) for run in self.search],
        }


def _inputs(images: Tensor, data: DataSplits, device: torch.device) -> Tensor:
    return images.to(device, non_blocking=True).float().div_(data.pixel_max)


def predict_logits(model: nn.Module, split: Split, data: DataSplits, device: torch.device,
                   batch_size: int = 1024) -> Tensor:
    """Logits of ``split`` in eval mode (batch norm uses its running statistics), on the CPU."""
    model.eval()
    with torch.no_grad():
        return torch.cat([model(_inputs(split.images[i:i + batch_size], data, device)).float().cpu()
                          for i in range(0, len(split), batch_size)])


def _batches(n: int, batch_size: int, generator: torch.Generator):
    """Endless shuffled mini-batches of indices; a short last batch is dropped (batch losses need m >= 2)."""
    batch_size = min(batch_size, n)
    while True:
        order = torch.randperm(n, generator=generator)
        for start in range(0, n - batch_size + 1, batch_size):
            yield order[start:start + batch_size]


def train_once(
    data: DataSplits,
    config: TrainConfig,
    learning_rate: float,
    device: torch.device,
    on_step: Callable[[], None] | None = None,
) -> tuple[nn.Module, RunOutcome]:
    """Train a fresh model (weights and batch order from ``config.seed``) for ``config.steps`` steps.

    A non-finite loss stops the run early and marks it diverged (the grid's rate 1 often does).
    """
    torch.manual_seed(config.seed)  # same initial weights for every loss and learning rate
    model = paper_network(data).to(device)
    loss_fn = LOSSES[config.loss].make(config.loss_settings)
    optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate)
    batches = _batches(len(data.train), config.batch_size, torch.Generator().manual_seed(config.seed))
    labels = data.train.labels.to(device)
    model.train()
    loss_value = math.nan
    for _ in range(config.steps):
        index = next(batches)
        loss = loss_fn(model(_inputs(data.train.images[index], data, device)), labels[index.to(device)])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_value = float(loss.detach())  # one sync per step; negligible next to the step itself here
        if on_step is not None:
            on_step()
        if not math.isfinite(loss_value):
            return model, RunOutcome(learning_rate, math.nan, loss_value, diverged=True)
    logits = predict_logits(model, data.validation, data, device)
    if not torch.isfinite(logits).all():
        return model, RunOutcome(learning_rate, math.nan, loss_value, diverged=True)
    accuracy = float((logits.argmax(1) == data.validation.labels).double().mean())
    return model, RunOutcome(learning_rate, accuracy, loss_value, diverged=False)


def train_with_lr_search(
    data: DataSplits,
    config: TrainConfig,
    device: torch.device,
    on_step: Callable[[], None] | None = None,
) -> TrainResult:
    """Train once per learning rate and keep the run with the best validation accuracy.

    Ties go to the rate listed first. If every rate diverges, that is a SlcbenchError.
    """
    best: tuple[nn.Module, RunOutcome] | None = None
    outcomes = []
    for learning_rate in config.learning_rates:
        model, outcome = train_once(data, config, learning_rate, device, on_step)
        outcomes.append(outcome)
        if not outcome.diverged and (best is None or outcome.validation_accuracy > best[1].validation_accuracy):
            best = (model, outcome)
    if best is None:
        raise SlcbenchError(f"loss {config.loss}: training diverged at every learning rate {list(config.learning_rates)}")
    model, outcome = best
    logits = predict_logits(model, data.test, data, device)
    labels = data.test.labels
    return TrainResult(
        config=config,
        dataset=data.name,
        device=str(device),
        learning_rate=outcome.learning_rate,
        validation_accuracy=outcome.validation_accuracy,
        test_accuracy=float((logits.argmax(1) == labels).double().mean()),
        test_logits=logits.numpy().astype(np.float32),
        test_labels=labels.numpy().astype(np.int64),
        search=tuple(outcomes),
    )


def total_steps(config: TrainConfig) -> int:
    """Optimizer steps of a full search (for progress bars); diverged runs finish early."""
    return config.steps * len(config.learning_rates)


def losses_to_train(names: Sequence[str]) -> list[str]:
    """Expand 'all' to the paper's seven losses; reject unknown names with the list of choices."""
    expanded: list[str] = []
    for name in names:
        if name == "all":
            expanded += PAPER_LOSSES
        elif name in LOSSES:
            expanded.append(name)
        else:
            raise SlcbenchError(f"unknown loss '{name}'; choose one of: {', '.join(LOSSES)}, all")
    return list(dict.fromkeys(expanded))


# ---- results: the evaluate .npz format and the paper's Table I ------------------------------------


def save_npz(result: TrainResult, path, *, overwrite: bool = False):
    """Write ``result`` in the format ``slcbench evaluate`` reads (``logits`` float32 [n, k], ``labels``
    int64 [n]) plus ``loss`` (name), ``settings`` (JSON string), ``validation_accuracy``,
    ``test_accuracy`` and ``learning_rate``. Atomic; never overwrites unless ``overwrite``.
    Strings are stored as NumPy unicode scalars, so ``np.load(..., allow_pickle=False)`` reads all keys.
    """
    buffer = io.BytesIO()
    np.savez(
        buffer,
        logits=result.test_logits,
        labels=result.test_labels,
        loss=np.str_(result.config.loss),
        settings=np.str_(json.dumps(result.settings(), allow_nan=True)),
        validation_accuracy=np.float64(result.validation_accuracy),
        test_accuracy=np.float64(result.test_accuracy),
        learning_rate=np.float64(result.learning_rate),
    )
    return write_bytes_atomic(path, buffer.getvalue(), overwrite=overwrite)


def evaluate_trained(results: Sequence[TrainResult]):
    """SLC metrics of each run's test logits via ``slcbench evaluate``'s code path, rows named as in the
    paper's Table I; returns (evaluation results, baseline row names = the non-PoLS-aligned losses)."""
    evaluations = [evaluate_logits(r.test_logits, r.test_labels, name=LOSSES[r.config.loss].title) for r in results]
    baseline = [LOSSES[r.config.loss].title for r in results if not LOSSES[r.config.loss].pols_aligned]
    return evaluations, baseline


def summary_rows(results: Sequence[TrainResult], evaluations: Sequence) -> list[dict]:
    """One flat row per trained loss (settings, accuracies, SLC/all-logits/PoLS metrics) for table.csv."""
    rows = []
    for result, evaluation in zip(results, evaluations, strict=True):
        metrics = evaluation.to_dict()
        rows.append({
            "loss": result.config.loss,
            "row": evaluation.name,
            "pols_aligned": LOSSES[result.config.loss].pols_aligned,
            "learning_rate": result.learning_rate,
            "validation_accuracy": result.validation_accuracy,
            "test_accuracy": result.test_accuracy,
            **{f"{block}_{key}": value for block in ("slc", "all_logits", "pols") for key, value in metrics[block].items()},
        })
    return rows
