"""The names and defaults that the command line offers, importable without torch.

The CLI declares its options from these when it is imported. Keeping them out of ``losses``,
``training`` and ``data`` (which import torch) lets ``slcbench --help``, ``evaluate`` and ``compare``
start in a fraction of a second and without torch's few hundred MiB. Those modules import their
defaults from here, and a test checks that ``LOSS_NAMES`` matches the loss registry.
"""

from __future__ import annotations

from enum import Enum


class DatasetName(str, Enum):
    digits = "digits"
    mnist = "mnist"
    svhn = "svhn"
    cifar10 = "cifar10"
    cifar100 = "cifar100"


# Every registered loss (``slcbench.losses.LOSSES``), in the order of the paper's Table I, then ISBE.
LOSS_NAMES = (
    "cross-entropy", "max-margin", "self-norm", "nce", "binary-ce", "batch-ce", "batch-max-margin",
    "isbe-softmax", "isbe-sigmoid", "isbe-tanh", "isbe-hardsigmoid", "isbe-hardtanh",
)

# Loss hyperparameters: the paper gives none of their values.
DEFAULT_MARGIN = 1.0
DEFAULT_SELF_NORM_ALPHA = 0.1
# Mnih & Teh (2012) found 25 noise samples a good trade-off; the paper does not give its t.
DEFAULT_NCE_NOISE_SAMPLES = 25
# Up to this many classes NCE's expectation over the noise distribution is summed exactly (it costs
# O(m·k), the same as the logits themselves); above it, t noise classes are sampled per example.
DEFAULT_NCE_EXACT_MAX_K = 1024

# Training.
LEARNING_RATES = (1.0, 0.1, 0.01, 0.001)
DEFAULT_BATCH_SIZE = 64
PAPER_STEPS = 100_000
DIGITS_STEPS = 1_000  # ~53 epochs of the 1,211 training digits: 7 losses × 4 rates in minutes on 2 cores
