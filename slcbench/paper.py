"""What the paper fixes for the speed experiment: class-count grid, architectures, Table III values.

Keren, Sabato & Schuller (ICDM 2018), Table III: TensorFlow on one Maxwell Titan X, random untrained
networks, random-noise input, forward time per example averaged over 100 minibatches of 32.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

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



@dataclass(frozen=True)
class Protocol:
    """How many calls are made and when warm-up ends: the paper's on CUDA, a quick labelled one on the CPU."""

    name: str
    batch_size: int
    batches: int  # timed samples per row
    warmup: int  # untimed calls before them, at least
    min_warmup_s: float = 0.0  # ... and at least this long
    settle_pct: float | None = None  # ... and until consecutive ~100 ms windows agree within this (None: no check)
    max_warmup_s: float = 0.0  # ... or this long has passed (the row is then marked unsettled)
    min_sample_ms: float = 0.0  # graph timing: batches unrolled per sample so that one lasts this long


# The paper: 100 minibatches of 32. The rest is ours (the paper states no warm-up): at least 20 calls
# and 0.3 s, then until the time per call is steady (0.25% between 100 ms windows, 2 s at most), and
# samples of at least 3 ms (100 samples then cover at least 100 batches). Why, from the stored
# samples of the H100 runs in results/speed-h100: AlexNet's 1-batch samples of 0.5-1.4 ms had IQRs
# up to 1.2% from batch-to-batch noise, which means over 2 or more batches bring under 1%, and up to
# 2.8% where the time stepped by a few percent for part of the ~50 ms such a row lasted; 100 samples
# of 3 ms span 0.3 s, so a transient that short touches too few samples to move the quartiles much.
# Estimated from those samples (results/speed-h100/sample_analysis.py), the longer samples add about
# 10 s (fp32) and 13 s (bf16) of replays to a sweep of the grid, plus probes and re-captures; a row
# that is slow to settle adds up to 2 s more per timing.
PAPER_PROTOCOL = Protocol("paper", batch_size=32, batches=100, warmup=20, min_warmup_s=0.3,
                          settle_pct=0.25, max_warmup_s=2.0, min_sample_ms=3.0)
# Not the paper's protocol: sized so the README's default command ends in under two minutes on
# 2 cores. Each row's untimed first call is its warm-up.
CPU_QUICK_PROTOCOL = Protocol("cpu-quick", batch_size=4, batches=5, warmup=0)

# ASCII digits only: str.isdigit and a Unicode \d accept '²', which int() then rejects.
_INTEGER = re.compile(r"^\d+$", re.ASCII)
_POWER = re.compile(r"^(\d+)\s*(?:\^|\*\*)\s*(\d+(?:\.\d+)?)$", re.ASCII)
_MAX_CLASSES = 2**31 - 1


def parse_class_count(token: str) -> int:
    """One class count: an integer (``1000``) or a power ``B^E`` / ``B**E`` with a decimal exponent.

    Fractional powers are floored, as the paper does: ``2^18.5`` is 370727.
    """
    text = token.strip()
    out_of_range = SlcbenchError(f"class count {token!r} is out of range 1..{_MAX_CLASSES}")

    def bounded_int(digits: str) -> int:
        if len(digits.lstrip("0")) > len(str(_MAX_CLASSES)):  # before int(): no 4300-digit conversions
            raise out_of_range
        return int(digits)

    integer, power = _INTEGER.match(text), _POWER.match(text)
    if integer:
        value = bounded_int(text)
    elif power:
        base, exponent = bounded_int(power.group(1)), float(power.group(2))
        # Compare in logarithms first: 2^100000 would overflow a float.
        if base > 1 and exponent * math.log(base) > math.log(_MAX_CLASSES) + 1:
            raise out_of_range
        value = math.floor(base**exponent)
    else:
        raise SlcbenchError(f"malformed class count {token!r}: use an integer or a power like 2^18.5 (or 'all')")
    if not 1 <= value <= _MAX_CLASSES:
        raise out_of_range
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
