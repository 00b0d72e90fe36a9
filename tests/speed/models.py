"""Small models for the sweep's tests, built through ``--arch python:tests.speed.models:NAME``."""

from torch import nn


def tiny_cnn() -> nn.Module:
    """A few milliseconds a batch on one core: enough to exercise the sweep's bookkeeping."""
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(256, 512),
        nn.ReLU(),
        nn.Linear(512, 1000),
    )


tiny_cnn.input_size = 32  # type: ignore[attr-defined]
