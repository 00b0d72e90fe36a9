"""Confidence intervals for timings: a median, a ratio measured in pairs, and the change between two runs.

Every interval here is distribution-free: timing noise is skewed, heavy-tailed and often bimodal, so
no normal or log-normal model is assumed.

- ``median_interval``: the median of samples with the order-statistic interval from the binomial
  distribution (``scipy.stats.quantile_test``). Exact coverage of at least the level asked for, for
  independent samples of any continuous distribution; no interval below 6 samples at 95%.
- ``ratio_interval``: a ratio timed in interleaved A-B-B-A blocks. Each block gives one ratio
  (B1 + B2) / (A1 + A2), in which a linear drift within the block cancels; the estimate is the
  median of the block ratios and its interval the median's, as above. A slow or busy stretch of
  the machine moves both sides of a block alike, so it widens the interval rather than biasing it.
- ``change_interval``: the relative change between two independent sets of samples (a baseline run
  and a new run), estimated as exp(HL) - 1 where HL is the Hodges-Lehmann shift of the log times
  (the median of all pairwise differences), with the Moses interval that inverts the Mann-Whitney
  test (Lehmann 1975; what R's ``wilcox.test(conf.int = TRUE)`` reports). The null distribution of
  the Mann-Whitney count is exact for up to ``EXACT_MAX_SAMPLES`` samples a side without ties, and
  the tie-corrected normal approximation otherwise. It assumes the new run's times are the old
  ones scaled by a factor, on a log scale shifted: what "x% slower" means.

An interval that the sample count cannot reach at the requested level is ``None`` on both ends: the
data cannot decide, and a verdict built on it must say "inconclusive".
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as scipy_stats

from slcbench.results import DEFAULT_CONFIDENCE, Interval

# Exact Mann-Whitney null distribution up to this many samples a side (an array of n*m+1 counts).
EXACT_MAX_SAMPLES = 50
# Pairwise differences are taken of at most this many samples a side (a seeded random subset beyond).
MAX_PAIRED_SAMPLES = 2000


MEDIAN_METHOD = "median, order-statistic (binomial) interval"
RATIO_METHOD = "median of A-B-B-A block ratios, order-statistic (binomial) interval"
CHANGE_METHOD = "Hodges-Lehmann shift of log times, Moses (Mann-Whitney) interval"


def median_interval(samples: Sequence[float], confidence: float = DEFAULT_CONFIDENCE) -> Interval:
    """The median of ``samples`` with its distribution-free interval (see the module docstring)."""
    values = np.asarray(samples, dtype=np.float64)
    if values.size == 0:
        raise ValueError("no samples")
    median = float(np.median(values))
    interval = scipy_stats.quantile_test(values, q=median, p=0.5).confidence_interval(confidence)
    low, high = float(interval.low), float(interval.high)
    if math.isnan(low) or math.isnan(high):
        return Interval(median, None, None, confidence, MEDIAN_METHOD)
    return Interval(median, low, high, confidence, MEDIAN_METHOD)


def abba_ratios(reference: Sequence[float], timed: Sequence[float]) -> list[float]:
    """Block ratios (B1 + B2) / (A1 + A2) of samples taken in A-B-B-A order, two of each side per block.

    ``reference`` holds the A samples (A1, A2 of block 1, then of block 2, ...), ``timed`` the B samples.
    """
    if len(reference) != len(timed) or len(reference) % 2:
        raise ValueError("A-B-B-A blocks need the same, even number of samples on each side")
    a, b = np.asarray(reference, dtype=np.float64), np.asarray(timed, dtype=np.float64)
    return list((b[0::2] + b[1::2]) / (a[0::2] + a[1::2]))


def ratio_interval(ratios: Sequence[float], confidence: float = DEFAULT_CONFIDENCE) -> Interval:
    """The median block ratio with its interval (see ``abba_ratios`` and the module docstring)."""
    median = median_interval(ratios, confidence)
    return Interval(median.estimate, median.low, median.high, confidence, RATIO_METHOD)


def mann_whitney_null_cdf(n: int, m: int) -> np.ndarray:
    """P(W <= w) for w = 0..n*m, W the Mann-Whitney count of (x, y) pairs with y > x for n and m
    samples of one continuous distribution.

    The counts of arrangements by W are the coefficients of the Gaussian binomial coefficient
    [n + m choose n]_q = prod_{i=1..n} (1 - q^(m+i)) / (1 - q^i), built one factor at a time.
    """
    size = n * m + 1
    counts = np.zeros(size)
    counts[0] = 1.0
    for i in range(1, n + 1):
        if m + i < size:
            counts[m + i :] -= counts[: size - m - i].copy()  # times (1 - q^(m+i))
        padded = np.zeros(-(-size // i) * i)
        padded[:size] = counts
        counts = padded.reshape(-1, i).cumsum(axis=0).reshape(-1)[:size]  # divided by (1 - q^i)
    total = counts.sum()
    return np.minimum(np.cumsum(counts) / total, 1.0)


@functools.lru_cache(maxsize=256)
def _exact_rank_of_lower_end(n: int, m: int, alpha: float) -> int | None:
    cdf = mann_whitney_null_cdf(n, m)
    reachable = np.flatnonzero(cdf <= alpha / 2)  # P(W <= k - 1) <= alpha / 2
    return int(reachable[-1]) + 1 if reachable.size else None


def _rank_of_lower_end(n: int, m: int, alpha: float, tied: bool, tie_groups: np.ndarray) -> int | None:
    """k such that the interval [D_(k), D_(nm+1-k)] (1-based order statistics of the n*m differences)
    has coverage of at least 1 - alpha; None when no k >= 1 reaches it."""
    if not tied and max(n, m) <= EXACT_MAX_SAMPLES:
        return _exact_rank_of_lower_end(n, m, alpha)
    total = n + m
    variance = n * m / 12 * ((total + 1) - float((tie_groups**3 - tie_groups).sum()) / (total * (total - 1)))
    # W <= c is rejected at alpha (two-sided, no continuity correction): the first W kept is floor(c) + 1.
    k = math.floor(n * m / 2 - _normal_quantile(1 - alpha / 2) * math.sqrt(variance)) + 1
    return k if k >= 1 else None


@functools.lru_cache(maxsize=256)
def _normal_quantile(p: float) -> float:
    return float(scipy_stats.norm.ppf(p))


def _at_most(values: np.ndarray, limit: int, seed: int) -> np.ndarray:
    if values.size <= limit:
        return values
    return np.random.default_rng(seed).choice(values, size=limit, replace=False)


def change_interval(
    baseline: Sequence[float], new: Sequence[float], confidence: float = DEFAULT_CONFIDENCE
) -> Interval:
    """The relative change new / baseline - 1 of positive times, with its interval (module docstring).

    A positive change is a slowdown. Beyond ``MAX_PAIRED_SAMPLES`` samples a side, a seeded random
    subset of that many is used (the pairwise differences would not fit in memory).
    """
    x = np.log(_at_most(np.asarray(baseline, dtype=np.float64), MAX_PAIRED_SAMPLES, 0))
    y = np.log(_at_most(np.asarray(new, dtype=np.float64), MAX_PAIRED_SAMPLES, 1))
    if x.size == 0 or y.size == 0 or not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("the change needs positive, finite samples on both sides")
    differences = np.sort((y[None, :] - x[:, None]).reshape(-1))
    shift = float(np.median(differences))
    _, tie_groups = np.unique(np.concatenate([x, y]), return_counts=True)
    k = _rank_of_lower_end(x.size, y.size, 1 - confidence, bool((tie_groups > 1).any()), tie_groups)
    if k is None:
        return Interval(math.expm1(shift), None, None, confidence, CHANGE_METHOD)
    low, high = differences[k - 1], differences[differences.size - k]
    return Interval(math.expm1(shift), math.expm1(low), math.expm1(high), confidence, CHANGE_METHOD)


def samples_to_decide(samples: int, half_width: float, needed_half_width: float) -> int | None:
    """Samples a side that would shrink an interval of ``half_width`` to ``needed_half_width`` (widths
    shrink as 1/sqrt(samples)); None when no width would do."""
    if needed_half_width <= 0 or half_width <= 0:
        return None
    return math.ceil(samples * (half_width / needed_half_width) ** 2)
