"""Training the paper's models with one loss, choosing the learning rate by validation accuracy.

What the paper states (Section VI-A): an MLP with two fully connected layers of 500 units for MNIST;
for SVHN and CIFAR a network of six convolutions (kernels 5,1,5,1,5,1; 128,128,256,256,512,512 maps;
3×3 max-pool with stride 2 after convolutions 2, 4, 6) and a dense layer of 1024 units; batch norm
then ReLU after every convolutional or dense layer; the learning rate chosen per loss from
{1, 0.1, 0.01, 0.001} by validation accuracy; 10^5 training steps.

What it does not state, and our choices: plain SGD without momentum or weight decay (a grid that
starts at 1 suggests plain SGD), batch size 64, no data augmentation, no learning-rate schedule,
inputs scaled to [0, 1].
On the tiny digits data set the default is 1,000 steps (about 53 epochs), not 10^5.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from slcbench.errors import SlcbenchError
from slcbench.train.config import DatasetName, TrainConfig
from slcbench.train.data import DataSplits, Split
from slcbench.train.losses import LOSSES
from slcbench.train.networks import network_name, paper_network


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

    def settings(self) -> dict[str, Any]:
        """Everything needed to repeat the run, JSON-ready."""
        return {
            "dataset": self.dataset.value,
            "loss": self.config.loss,
            "loss_settings": asdict(self.config.loss_settings),
            "model": network_name(self.dataset),
            "optimizer": "SGD (no momentum, no weight decay)",
            "steps": self.config.steps,
            "batch_size": self.config.batch_size,
            "learning_rates_searched": list(self.config.learning_rates),
            "learning_rate": self.learning_rate,
            "seed": self.config.seed,
            "device": self.device,
            "search": [asdict(run) for run in self.search],
        }

    def arrays(self) -> dict[str, Any]:
        """The ``.npz`` that ``slcbench evaluate`` reads: ``logits`` float32 [n, k] and ``labels`` int64 [n],
        plus ``loss``, ``settings`` (JSON), ``validation_accuracy``, ``test_accuracy`` and
        ``learning_rate``. Strings are NumPy unicode scalars: ``np.load(allow_pickle=False)`` reads all keys."""
        return {
            "logits": self.test_logits,
            "labels": self.test_labels,
            "loss": np.str_(self.config.loss),
            "settings": np.str_(json.dumps(self.settings(), allow_nan=True)),
            "validation_accuracy": np.float64(self.validation_accuracy),
            "test_accuracy": np.float64(self.test_accuracy),
            "learning_rate": np.float64(self.learning_rate),
        }


def _inputs(images: Tensor, data: DataSplits, device: torch.device) -> Tensor:
    return images.to(device, non_blocking=True).float().div_(data.pixel_max)


def predict_logits(
    model: nn.Module, split: Split, data: DataSplits, device: torch.device, batch_size: int = 1024
) -> Tensor:
    """Logits of ``split`` in eval mode (batch norm uses its running statistics), on the CPU."""
    model.eval()
    with torch.no_grad():
        return torch.cat(
            [
                model(_inputs(split.images[i : i + batch_size], data, device)).float().cpu()
                for i in range(0, len(split), batch_size)
            ]
        )


def _batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[Tensor]:
    """Endless shuffled mini-batches of indices; a short last batch is dropped (batch losses need m >= 2)."""
    batch_size = min(batch_size, n)
    while True:
        order = torch.randperm(n, generator=generator)
        for start in range(0, n - batch_size + 1, batch_size):
            yield order[start : start + batch_size]


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
        raise SlcbenchError(
            f"loss {config.loss}: training diverged at every learning rate {list(config.learning_rates)}"
        )
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
