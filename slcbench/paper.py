"""What the paper fixes for the speed experiment: class-count grid, architectures, Table III values.

Keren, Sabato & Schuller (ICDM 2018), Table III: TensorFlow on one Maxwell Titan X, random untrained
networks, random-noise input, forward time per example averaged over 100 minibatches of 32.
"""

from __future__ import annotations

import math
import re

from slcbench.errors import SlcbenchError

PAPER_ARCHS: tuple[str, ...] = ("alexnet", "vgg16", "inception_v3", "resnet50", "resnet101")

# 2^18.5 = 370727.6...; the paper writes 370727 (rounded down), so class specs floor fractional powers.
PAPER_CLASS_GRID: tuple[int, ...] = (1, 2**10, 2**14, 2**16, 2**18, 370727)

# Table III, inference time per example in seconds, keyed by architecture then class count.
PAPER_TABLE_III_SECONDS: dict[str, dict[int, float]] = {
    "alexnet": {1: 3.6e-3, 2**10: 3.7e-3, 2**14: 4.0e-3, 2**16: 5.7e-3, 2**18: 20.2e-3, 370727: 76.0e-3},
    "vgg16": {1: 9.4e-3, 2**10: 9.6e-3, 2**14: 9.9e-3, 2**16: 11.4e-3, 2**18: 26.4e-3, 370727: 80.5e-3},
    "inception_v3": {1: 6.0e-3, 2**10: 6.2e-3, 2**14: 6.5e-3, 2**16: 7.3e-3, 2**18: 18.7e-3, 370727: 76.6e-3},
    "resnet50": {1: 6.1e-3, 2**10: 6.4e-3, 2**14: 6.6e-3, 2**16: 7.4e-3, 2**18: 19.1e-3, 370727: 78.0e-3},
    "resnet101": {1: 8.0e-3, 2**10: 8.2e-3, 2**14: 8.3e-3, 2**16: 9.4e-3, 2**18: 23.5e-3, 370727: 80.4e-3},
}

# Table III's printed speedups (they are the ratios of unrounded times, so they differ slightly from
# ratios of the rounded times above).
PAPER_TABLE_III_SPEEDUP: dict[str, dict[int, float]] = {
    "alexnet": {2**10: 1.04, 2**14: 1.14, 2**16: 1.59, 2**18: 5.68, 370727: 21.38},
    "vgg16": {2**10: 1.02, 2**14: 1.05, 2**16: 1.20, 2**18: 2.79, 370727: 8.52},
    "inception_v3": {2**10: 1.03, 2**14: 1.09, 2**16: 1.22, 2**18: 3.11, 370727: 12.75},
    "resnet50": {2**10: 1.04, 2**14: 1.08, 2**16: 1.20, 2**18: 3.11, 370727: 12.69},
    "resnet101": {2**10: 1.03, 2**14: 1.04, 2**16: 1.19, 2**18: 2.95, 370727: 10.10},
}

_POWER = re.compile(r"^(\d+)\s*(?:\^|\*\*)\s*(\d+(?:\.\d+)?)$")
_MAX_CLASSES = 2**31 - 1


def parse_class_count(token: str) -> int:
    """One class count: an integer (``1000``) or a power ``B^E`` / ``B**E`` with a decimal exponent.

    Fractional powers are floored, as the paper does: ``2^18.5`` is 370727.
    """
    text = token.strip()
    if text.isdigit():
        value = int(text)
    else:
        match = _POWER.match(text)
        if not match:
            raise SlcbenchError(
                f"malformed class count {token!r}: use an integer or a power like 2^18.5 (or 'all')"
            )
        value = math.floor(int(match.group(1)) ** float(match.group(2)))
    if not 1 <= value <= _MAX_CLASSES:
        raise SlcbenchError(f"class count {token!r} = {value} is out of range 1..{_MAX_CLASSES}")
    return value


def parse_class_spec(spec: str) -> tuple[int, ...]:
    """A comma list of class counts, or ``all`` for the paper's grid; sorted, unique, always with k=1.

    k=1 (SLC) is always included because every row's speedup is time(k) / time(1).
    """
    tokens = [t for t in spec.split(",") if t.strip()]
    if not tokens:
        raise SlcbenchError("empty class spec: give counts like 1,2^10,2^18.5 or 'all'")
    counts: set[int] = {1}
    for token in tokens:
        if token.strip().lower() == "all":
            counts.update(PAPER_CLASS_GRID)
        else:
            counts.add(parse_class_count(token))
    return tuple(sorted(counts))


def format_class_count(k: int) -> str:
    """``2^14`` for powers of two and the paper's 2^18.5, plain digits otherwise."""
    if k == 370727:
        return "2^18.5"
    if k > 1 and k & (k - 1) == 0:
        return f"2^{k.bit_length() - 1}"
    return str(k)


def paper_reference(arch: str, classes: int) -> tuple[float | None, float | None]:
    """(ms per example, speedup) from Table III for this cell, or (None, None) where the paper has none."""
    seconds = PAPER_TABLE_III_SECONDS.get(arch, {}).get(classes)
    speedup = PAPER_TABLE_III_SPEEDUP.get(arch, {}).get(classes)
    if classes == 1 and seconds is not None:
        speedup = 1.0
    return (seconds * 1e3 if seconds is not None else None), speedup
