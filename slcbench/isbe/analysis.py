"""The numbers of the paper's Tables 1-4, each with its interval, from the recorded steps and accuracies.

Times pool the timed steps (after warm-up) of every seed:

- Table 1, per network variant and option: the medians of the forward time, the backward time and the
  backprop share t_back / (t_fwd + t_back) (the paper's formula 3), each with the distribution-free
  interval of a median (``slcbench.stats.median_interval``).
- Table 2, per variant, each ISBE option (hard targets) against cross-entropy with each reduction,
  the same reduction among them: each A-B-B-A block of two consecutive steps (see
  ``slcbench.isbe.experiment``) gives the change of the backprop share in percentage points (the
  block's share for ISBE minus CE's, each share summed over the block) and the ratio of forward +
  backward times (``abba_ratios``); the estimate is the median over the blocks with its interval
  (``median_interval``, ``ratio_interval``); the saving is 1 − ratio.

Accuracy is the test accuracy after the last epoch, one value per seed:

- Table 3: the mean over seeds with a Student t interval.
- Table 4: the difference of each ISBE option from cross-entropy with each reduction, paired by seed
  (the same seed gives both the same initial weights and batches), with a t interval of the mean
  difference; the effect of blurred targets is the same paired difference against hard targets.

Why a t interval: a distribution-free interval of a median needs at least 6 values at 95%, and a
bootstrap of 3-5 values has only a handful of distinct resamples; a test accuracy is a mean over
hundreds of test images, close to normal across seeds. The interval covers the training randomness
(seeds) on this one test set, not the sampling of the test set itself.

Verdicts use the paper's notation, as a difference ISBE − CE: '+' the interval lies above 0, '-'
below, '=' it contains 0 (no difference at this confidence), '?' no interval (one seed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

from slcbench.isbe.config import LossKind, LossOption, Variant
from slcbench.isbe.records import GroupResult
from slcbench.isbe.timing import StepTimes
from slcbench.stats import Interval, abba_ratios, median_interval, ratio_interval

T_METHOD = "mean over seeds, Student t interval"
PAIRED_T_METHOD = "mean of differences paired by seed, Student t interval"
SHARE_CHANGE_METHOD = "median over A-B-B-A blocks of the share difference, order-statistic (binomial) interval"


def mean_interval(values: Sequence[float], confidence: float, method: str = T_METHOD) -> Interval:
    """The mean of ``values`` with its Student t interval (none for one value; zero width for equal values)."""
    array = np.asarray(values, dtype=np.float64)
    mean = float(array.mean())
    if array.size < 2:
        return Interval(mean, None, None, confidence, method)
    if np.ptp(array) == 0:  # scipy gives NaN for zero variance; every seed agreed exactly
        return Interval(mean, mean, mean, confidence, method)
    interval = scipy_stats.ttest_1samp(array, 0.0).confidence_interval(confidence)
    return Interval(mean, float(interval.low), float(interval.high), confidence, method)


def verdict(interval: Interval) -> str:
    """'+' above 0, '-' below 0, '=' contains 0, '?' undecided (the paper's notation for ISBE − CE)."""
    if interval.low is None or interval.high is None:
        return "?"
    if interval.low > 0:
        return "+"
    if interval.high < 0:
        return "-"
    return "="


def comparison_label(option: LossOption, baseline: LossOption) -> str:
    """A row of Tables 2 and 4: ``none − CE mean`` (the ISBE option's reduction and targets, the CE option's
    reduction), or ``none, blurred − hard`` for the blurred targets against hard ones."""
    if baseline.kind is LossKind.isbe:
        return f"{option.targets} − hard"
    return f"{option.targets} − CE {baseline.reduction.value}"


def _scaled(interval: Interval, factor: float, offset: float = 0.0) -> Interval:
    """offset + factor · interval (a negative factor swaps the ends)."""
    ends = [None if v is None else offset + factor * v for v in (interval.low, interval.high)]
    low, high = (ends[1], ends[0]) if factor < 0 else (ends[0], ends[1])
    return Interval(offset + factor * interval.estimate, low, high, interval.confidence, interval.method)


def timed_steps(steps: Sequence[StepTimes], timed_from: int) -> list[StepTimes]:
    """The steps after warm-up, an even number of them (whole A-B-B-A blocks)."""
    timed = list(steps[timed_from:])
    return timed[: len(timed) - len(timed) % 2]


@dataclass(frozen=True)
class TimeRow:
    """Table 1: one option's forward and backward time and backprop share on one variant."""

    variant: Variant
    option: LossOption
    forward_ms: Interval
    backward_ms: Interval
    share_pct: Interval
    steps: int


@dataclass(frozen=True)
class SavingRow:
    """Table 2: one ISBE option against one CE option on one variant."""

    variant: Variant
    option: LossOption
    baseline: LossOption
    share_change_pts: Interval
    saving_pct: Interval
    blocks: int

    @property
    def verdict(self) -> str:
        return verdict(self.share_change_pts)

    @property
    def time_verdict(self) -> str:
        """The verdict on the forward + backward time ISBE − CE ('-': ISBE faster)."""
        return verdict(_scaled(self.saving_pct, -1.0))


@dataclass(frozen=True)
class AccuracyRow:
    """Table 3: one option's test accuracy over seeds on one variant."""

    variant: Variant
    option: LossOption
    per_seed_pct: tuple[float, ...]
    accuracy_pct: Interval


@dataclass(frozen=True)
class DifferenceRow:
    """Table 4 (and the blurred-target effect): an option's accuracy minus a baseline's, paired by seed."""

    variant: Variant
    option: LossOption
    baseline: LossOption
    per_seed_pts: tuple[float, ...]
    difference_pts: Interval

    @property
    def verdict(self) -> str:
        return verdict(self.difference_pts)


def _row_dict(row: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in vars(row).items():
        if isinstance(value, Variant | LossOption):
            out[key] = value.name
        elif isinstance(value, Interval):
            out[key] = asdict(value)
        else:
            out[key] = list(value) if isinstance(value, tuple) else value
    for name in ("verdict", "time_verdict"):
        if hasattr(row, name):
            out[name] = getattr(row, name)
    return out


@dataclass(frozen=True)
class Analysis:
    """Every table's rows, at one confidence level."""

    confidence: float
    times: tuple[TimeRow, ...]
    savings: tuple[SavingRow, ...]
    accuracy: tuple[AccuracyRow, ...]
    differences: tuple[DifferenceRow, ...]
    blur: tuple[DifferenceRow, ...]

    def to_dict(self) -> dict[str, Any]:
        tables = {name: [_row_dict(row) for row in rows] for name, rows in vars(self).items() if name != "confidence"}
        return {"confidence": self.confidence, **tables}


def hard_twin(option: LossOption, options: Sequence[LossOption]) -> LossOption | None:
    """The same ISBE option with hard targets."""
    twin = LossOption(LossKind.isbe, option.reduction, option.activation)
    return twin if twin in options else None


class _Variant:
    """One variant's groups (one per seed), with the lookups the tables need."""

    def __init__(self, variant: Variant, groups: Sequence[GroupResult], timed_from: int, confidence: float) -> None:
        self.variant, self.groups, self.timed_from, self.confidence = variant, groups, timed_from, confidence

    def steps(self, option: LossOption) -> list[list[StepTimes]]:
        return [timed_steps(group.results[option.name].steps, self.timed_from) for group in self.groups]

    def accuracies_pct(self, option: LossOption) -> dict[int, float]:
        return {group.seed: 100.0 * group.results[option.name].test_accuracy for group in self.groups}

    def time_row(self, option: LossOption) -> TimeRow:
        pooled = [s for steps in self.steps(option) for s in steps]
        c = self.confidence
        return TimeRow(
            self.variant,
            option,
            median_interval([s.forward_ms for s in pooled], c),
            median_interval([s.backward_ms for s in pooled], c),
            _scaled(median_interval([s.backward_share for s in pooled], c), 100.0),
            len(pooled),
        )

    def saving_row(self, option: LossOption, baseline: LossOption) -> SavingRow:
        share_changes, ratios = [], []
        for isbe_steps, ce_steps in zip(self.steps(option), self.steps(baseline), strict=True):
            ce_totals = [s.forward_backward_ms for s in ce_steps]
            ratios += abba_ratios(ce_totals, [s.forward_backward_ms for s in isbe_steps])
            for j in range(0, len(ce_steps), 2):
                share_changes.append(100.0 * (_block_share(isbe_steps[j : j + 2]) - _block_share(ce_steps[j : j + 2])))
        change = median_interval(share_changes, self.confidence)
        return SavingRow(
            self.variant,
            option,
            baseline,
            Interval(change.estimate, change.low, change.high, change.confidence, SHARE_CHANGE_METHOD),
            _scaled(ratio_interval(ratios, self.confidence), -100.0, 100.0),
            len(ratios),
        )

    def accuracy_row(self, option: LossOption) -> AccuracyRow:
        values = tuple(self.accuracies_pct(option).values())
        return AccuracyRow(self.variant, option, values, mean_interval(values, self.confidence))

    def difference_row(self, option: LossOption, baseline: LossOption) -> DifferenceRow:
        ours, theirs = self.accuracies_pct(option), self.accuracies_pct(baseline)
        differences = tuple(ours[seed] - theirs[seed] for seed in ours)
        interval = mean_interval(differences, self.confidence, PAIRED_T_METHOD)
        return DifferenceRow(self.variant, option, baseline, differences, interval)


def _block_share(block: Sequence[StepTimes]) -> float:
    backward = sum(s.backward_ms for s in block)
    return backward / sum(s.forward_backward_ms for s in block)


def analyse(
    groups: Sequence[GroupResult],
    variants: Sequence[Variant],
    options: Sequence[LossOption],
    *,
    timed_from: int,
    confidence: float,
) -> Analysis:
    """Every table's rows from the trained groups (one per variant and seed)."""
    times, savings, accuracy, differences, blur = [], [], [], [], []
    baselines = [option for option in options if option.kind is LossKind.ce]
    for variant in variants:
        table = _Variant(variant, [g for g in groups if g.variant == variant], timed_from, confidence)
        for option in options:
            times.append(table.time_row(option))
            accuracy.append(table.accuracy_row(option))
        for option in (o for o in options if o.kind is LossKind.isbe):
            for baseline in baselines:
                if not option.blurred:  # a blurred target changes a constant, not the work timed
                    savings.append(table.saving_row(option, baseline))
                differences.append(table.difference_row(option, baseline))
            twin = hard_twin(option, options) if option.blurred else None
            if twin is not None:
                blur.append(table.difference_row(option, twin))
    return Analysis(confidence, tuple(times), tuple(savings), tuple(accuracy), tuple(differences), tuple(blur))
