"""Every loss option of one network variant trained in lockstep, each step timed, the options interleaved.

For one network variant and seed every option gets its own copy of the network with the same initial
weights and sees the same batches in the same order. Step by step, each option makes one training
step in turn: in the options' order on even steps and in reverse order on odd steps, so that for any
two options A and B two consecutive steps run A-B-B-A (or B-A-A-B). A slow stretch of the machine then
touches both options of a pair alike, and a linear drift across a pair of steps cancels in their ratio
(``slcbench.stats.abba_ratios``). After each epoch every option's learning curves are computed on the
training examples (at most ``curve_examples`` of them), the validation and the test split.

The optimizer is Adam (our choice; our copy of the paper does not give its optimizer), fused where
PyTorch offers it; the gradient is zeroed before each step's first mark, outside the timed stages.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

import torch
from torch import Tensor, nn

from slcbench.isbe.config import IsbeConfig, LossOption, Variant
from slcbench.isbe.networks import build_network
from slcbench.isbe.objectives import Objective
from slcbench.isbe.records import Curves, GroupResult, OptionResult
from slcbench.isbe.timing import Backward, StepRecorder, StepTimes
from slcbench.train.data import DataSplits, Split
from slcbench.train.training import predict_logits


@dataclass(frozen=True)
class DeviceData:
    """The data set with its training inputs already scaled to [0, 1] on the device."""

    data: DataSplits
    device: torch.device
    train_inputs: Tensor
    train_labels: Tensor
    curve_split: Split  # the training examples the training curve is computed on

    @classmethod
    def load(cls, data: DataSplits, device: torch.device, curve_examples: int) -> DeviceData:
        train = data.train
        return cls(
            data=data,
            device=device,
            train_inputs=train.images.to(device).float().div_(data.pixel_max),
            train_labels=train.labels.to(device),
            curve_split=Split(train.images[:curve_examples], train.labels[:curve_examples]),
        )

    def steps_per_epoch(self, config: IsbeConfig) -> int:
        """Full batches per epoch (a short last batch is dropped), at most ``config.steps_per_epoch``."""
        full = len(self.data.train) // min(config.batch_size, len(self.data.train))
        return full if config.steps_per_epoch is None else min(full, config.steps_per_epoch)


def epoch_batches(n: int, batch_size: int, steps: int, generator: torch.Generator) -> list[Tensor]:
    """The first ``steps`` full batches of indices of a fresh shuffle of ``n`` examples."""
    order = torch.randperm(n, generator=generator)
    batch_size = min(batch_size, n)
    return [order[i * batch_size : (i + 1) * batch_size] for i in range(steps)]


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No garbage-collection pauses inside timed steps (collected between epochs instead)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _curve_point(model: nn.Module, split: Split, device_data: DeviceData, objective: Objective) -> tuple[float, float]:
    """(loss value, accuracy) of ``model`` on ``split``; the class is the largest raw score."""
    logits = predict_logits(model, split, device_data.data, device_data.device)
    accuracy = float((logits.argmax(1) == split.labels).double().mean())
    return objective.monitor(logits, split.labels), accuracy


def _forward(model: nn.Module, objective: Objective, inputs: Tensor, labels: Tensor) -> Backward:
    """The forward stage of one step: the network, then the option's loss or soft error."""
    return objective.forward(model(inputs), labels)


def record_curves(model: nn.Module, device_data: DeviceData, objective: Objective, curves: Curves) -> None:
    """Append one epoch's point to every curve of one option."""
    data = device_data.data
    train_loss, train_accuracy = _curve_point(model, device_data.curve_split, device_data, objective)
    validation_loss, validation_accuracy = _curve_point(model, data.validation, device_data, objective)
    _, test_accuracy = _curve_point(model, data.test, device_data, objective)
    curves.append(
        train_loss=train_loss,
        validation_loss=validation_loss,
        train_accuracy=train_accuracy,
        validation_accuracy=validation_accuracy,
        test_accuracy=test_accuracy,
    )


def train_variant(
    device_data: DeviceData,
    variant: Variant,
    seed: int,
    options: Sequence[LossOption],
    config: IsbeConfig,
    recorder: StepRecorder[int],
    on_step: Callable[[], None] | None = None,
) -> GroupResult:
    """Train every option on ``variant`` from ``seed`` in lockstep (see the module docstring)."""
    data = device_data.data
    models, optimizers = [], []
    for _ in options:
        torch.manual_seed(seed)  # the same initial weights for every option
        model = build_network(variant.network, data.image_shape, data.num_classes, relocated=variant.relocated)
        models.append(model.to(device_data.device))
        # fused: one kernel per step instead of one per parameter (2.4× faster on the CPU for these networks)
        fused = device_data.device.type in ("cpu", "cuda")
        optimizers.append(torch.optim.Adam(models[-1].parameters(), lr=config.learning_rate, fused=fused))
    objectives = [Objective.of(option, config.blur) for option in options]
    steps: list[list[StepTimes]] = [[] for _ in options]
    curves = [Curves() for _ in options]
    generator = torch.Generator().manual_seed(seed)
    steps_per_epoch = device_data.steps_per_epoch(config)
    step = 0
    for _ in range(config.epochs):
        for model in models:
            model.train()
        with _gc_paused():
            for index in epoch_batches(len(data.train), config.batch_size, steps_per_epoch, generator):
                index = index.to(device_data.device)
                inputs, labels = device_data.train_inputs[index], device_data.train_labels[index]
                order = range(len(options)) if step % 2 == 0 else reversed(range(len(options)))
                for i in order:
                    optimizers[i].zero_grad(set_to_none=True)
                    recorder.step(i, partial(_forward, models[i], objectives[i], inputs, labels), optimizers[i].step)
                    if on_step is not None:
                        on_step()
                step += 1
            for i, times in recorder.collect():
                steps[i].append(times)
        for model, objective, option_curves in zip(models, objectives, curves, strict=True):
            record_curves(model, device_data, objective, option_curves)
    results = {
        option.name: OptionResult(option, tuple(times), option_curves)
        for option, times, option_curves in zip(options, steps, curves, strict=True)
    }
    return GroupResult(variant, seed, steps_per_epoch, results)
