"""What the paper fixes for the speed experiment: the class-count grid, the architectures, Table III.

Keren, Sabato & Schuller (ICDM 2018), Table III: TensorFlow on one Maxwell Titan X (2015), random
untrained networks, random-noise input, forward time per example averaged over 100 minibatches of 32.
"""

from __future__ import annotations

PAPER_ARCHS: tuple[str, ...] = ("alexnet", "vgg16", "inception_v3", "resnet50", "resnet101")

# 2^18.5 = 370727.6...; the paper writes 370727 (rounded down), so class specs floor fractional powers.
PAPER_CLASS_GRID: tuple[int, ...] = (1, 2**10, 2**14, 2**16, 2**18, 370727)

PAPER_GPU = "Titan X (Maxwell, 2015)"

# Table III, inference time per example in seconds, keyed by architecture then class count.
PAPER_TABLE_III_SECONDS: dict[str, dict[int, float]] = {
    "alexnet": {1: 3.6e-3, 2**10: 3.7e-3, 2**14: 4.0e-3, 2**16: 5.7e-3, 2**18: 20.2e-3, 370727: 76.0e-3},
    "vgg16": {1: 9.4e-3, 2**10: 9.6e-3, 2**14: 9.9e-3, 2**16: 11.4e-3, 2**18: 26.4e-3, 370727: 80.5e-3},
    "inception_v3": {1: 6.0e-3, 2**10: 6.2e-3, 2**14: 6.5e-3, 2**16: 7.3e-3, 2**18: 18.7e-3, 370727: 76.6e-3},
    "resnet50": {1: 6.1e-3, 2**10: 6.4e-3, 2**14: 6.6e-3, 2**16: 7.4e-3, 2**18: 19.1e-3, 370727: 78.0e-3},
    "resnet101": {1: 8.0e-3, 2**10: 8.2e-3, 2**14: 8.3e-3, 2**16: 9.4e-3, 2**18: 23.5e-3, 370727: 80.4e-3},
}

# Table III's printed speedups: ratios of unrounded times, so they differ slightly from ratios of the above.
PAPER_TABLE_III_SPEEDUP: dict[str, dict[int, float]] = {
    "alexnet": {2**10: 1.04, 2**14: 1.14, 2**16: 1.59, 2**18: 5.68, 370727: 21.38},
    "vgg16": {2**10: 1.02, 2**14: 1.05, 2**16: 1.20, 2**18: 2.79, 370727: 8.52},
    "inception_v3": {2**10: 1.03, 2**14: 1.09, 2**16: 1.22, 2**18: 3.11, 370727: 12.75},
    "resnet50": {2**10: 1.04, 2**14: 1.08, 2**16: 1.20, 2**18: 3.11, 370727: 12.69},
    "resnet101": {2**10: 1.03, 2**14: 1.04, 2**16: 1.19, 2**18: 2.95, 370727: 10.10},
}


def paper_reference(arch: str, classes: int) -> tuple[float | None, float | None]:
    """(ms per example, speedup) from Table III for this cell, or (None, None) where the paper has none."""
    seconds = PAPER_TABLE_III_SECONDS.get(arch, {}).get(classes)
    speedup = PAPER_TABLE_III_SPEEDUP.get(arch, {}).get(classes)
    if classes == 1 and seconds is not None:
        speedup = 1.0
    return (seconds * 1e3 if seconds is not None else None), speedup
