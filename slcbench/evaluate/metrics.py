"""Single Logit Classification metrics, exact and vectorised over blocks of class columns.

Definitions (Keren, Sabato & Schuller, ICDM 2018, Tables I and II; see docs/evaluate.md).
For a class j, the score of example i is s_i (the logit z_ij, or for the all-logits baseline the
log-odds of softmax p_ij), its positives are Pos_j = {i : y_i = j} and P = |Pos_j|. The decision
rule is "s >= T". A threshold can never split examples with equal scores, so each tie group is one
operating point. For each positive i:

    TP_i = #{e in Pos_j : s_e >= s_i}      PP_i = #{e : s_e >= s_i}      prec_i = TP_i / PP_i

- AUPRC, average precision (default): AP_j = (1/P) * sum_{i in Pos_j} prec_i. This is exactly
  scikit-learn's ``average_precision_score``, tie groups included.
- AUPRC, trapezoid (option): over the distinct positive scores v, the trapezoid between the
  operating point "s >= v" and the one just above it, "s > v" (precision 1 when nothing scores above
  v, scikit-learn's (R=0, P=1) end point). Equals ``auc(recall, precision)`` over scikit-learn's
  ``precision_recall_curve``. It is a different estimator: with ties it can exceed AP by far.
- Precision@r, first reach (default): m = ceil(r * P) in exact integer arithmetic, T* = the m-th
  largest positive score, Precision@r = TP(s >= T*) / PP(s >= T*): the highest threshold whose
  recall is >= r. If positives tie at T*, the recall reached may exceed r (no threshold splits a tie).
- Precision@r, interpolated (option): the highest precision over all thresholds with recall >= r
  (torchmetrics' ``PrecisionAtFixedRecall``); T* is then the threshold of that operating point, the
  lowest one (highest recall) when several reach the same precision. Never below first reach.
- A class without positive examples has undefined metrics: NaN here, and callers leave it out of
  macro averages (scikit-learn and torchmetrics silently count it as 0).

Everything is computed from integer counts after one sort per column: never from float recalls
compared with r (``float32(9)/float32(10) >= 0.9`` is False) and never from a cumulative sum over an
arbitrary order of tied scores. Inputs are assumed validated (finite, 2-D logits with k >= 2,
integer labels in [0, k)); ``slcbench.logits.check_logits_and_labels`` does that.

Extension: every metric is registered, per class in ``CLASS_METRICS`` (computed from one ranked
column, see ``RankedClass``), over the whole set in ``SET_METRICS`` (from ``PolsCounts``) or over the
examples' log-partitions in ``SELF_NORMALIZATION_METRICS`` (from ``LogPartition``). Its ``Column``
entries name what the JSON, the per-class CSV, the table and the training summary show, so a new
metric is one registration in this module. The heavy work (sorting, the log-odds, counting) is a
backend's (``slcbench.evaluate.backend``); the metrics here only read its counts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction
from functools import cached_property
from typing import Generic, TypeVar

import numpy as np

from slcbench.evaluate.backend import (
    Backend,
    NumpyBackend,
    PolsCounts,
    RankedColumn,
    Ranking,
    RowLogSumExp,
)
from slcbench.registry import Registry

__all__ = ["PolsCounts", "Ranking", "RowLogSumExp"]  # re-exported: the metrics' inputs

NUMPY = NumpyBackend()


class AuprcMethod(StrEnum):
    """How the area under the precision-recall curve is estimated."""

    average_precision = "average-precision"
    trapezoid = "trapezoid"


def recall_text(recall: float) -> str:
    """A recall level as keys and headers write it; 15 significant digits keep 0.9 "0.9" and 0.9999999 apart."""
    return f"{recall:.15g}"


def precision_key(recall: float) -> str:
    """Result key of Precision@r: ``precision_at_0.9``."""
    return f"precision_at_{recall_text(recall)}"


def threshold_key(recall: float) -> str:
    """Per-class column of T*, the threshold that Precision@r uses (rule: score >= T*)."""
    return f"threshold_at_{recall_text(recall)}"


@dataclass(frozen=True)
class Column:
    """One named value a metric produces.

    Parameters
    ----------
    key : str
        Its key in the JSON and its column in the CSVs (``"precision_at_0.9"``).
    label : str or None
        Its table header (``"P@0.9"``); None for a value the table does not show (a per-class
        threshold, which appears in the per-class CSV only, or a set value kept in the JSON only).
    complement : bool
        The table shows 1 - value (lower is better), as the paper's tables do; False: the raw value.
    higher_is_better : bool
        Which raw values are better (bold in the table); complemented columns are always higher-better.
    """

    key: str
    label: str | None
    complement: bool = True
    higher_is_better: bool = True


@dataclass(frozen=True)
class MetricSettings:
    """The choices that define the metrics' values (recorded in the results)."""

    recalls: tuple[float, ...] = (0.9, 0.99)
    auprc_method: AuprcMethod = AuprcMethod.average_precision
    interpolated: bool = False


class RankedClass:
    """One class's column, ranked: the positives' scores ascending and, for each, the number of all
    scores at or above it and above it (the counts every per-class metric is computed from, see the
    module's definitions); ``sorted_scores`` gives all n scores ascending when a metric needs them.

    ``needed[q]`` is m = ceil(r * P) for ``settings.recalls[q]``.
    """

    def __init__(self, column: RankedColumn, needed: np.ndarray, settings: MetricSettings) -> None:
        self.column = column
        self.n = column.n
        self.sorted_positives = column.sorted_positives
        self.needed = needed
        self.settings = settings

    @cached_property
    def sorted_scores(self) -> np.ndarray:
        return self.column.sorted_scores()

    @cached_property
    def group_start(self) -> np.ndarray:
        """Index of the first positive of each positive's tie group: TP_i counts the whole group."""
        return np.searchsorted(self.sorted_positives, self.sorted_positives, side="left")

    @cached_property
    def tp(self) -> np.ndarray:
        return self.sorted_positives.size - self.group_start

    @cached_property
    def precision(self) -> np.ndarray:
        """prec_i = TP_i / PP_i per positive, in ascending score order."""
        return self.tp / self.column.at_least


@dataclass(frozen=True)
class ClassMetric:
    """A per-class metric: ``columns(settings)`` names its values, ``compute(ranked)`` gives them in that order."""

    columns: Callable[[MetricSettings], tuple[Column, ...]]
    compute: Callable[[RankedClass], Sequence[float]]


CLASS_METRICS: Registry[ClassMetric] = Registry("per-class metric")


def _auprc(ranked: RankedClass) -> tuple[float]:
    if ranked.settings.auprc_method is AuprcMethod.average_precision:
        return (float(ranked.precision.mean()),)
    n_pos = ranked.sorted_positives.size
    is_start = ranked.group_start == np.arange(n_pos)  # one entry per distinct positive score v
    values = ranked.sorted_positives[is_start]
    tp_above = n_pos - np.searchsorted(ranked.sorted_positives, values, side="right")
    pp_above = ranked.column.above[is_start]
    precision_above = np.divide(tp_above, pp_above, out=np.ones(values.size), where=pp_above > 0)
    recall_step = ranked.tp[is_start] - tp_above
    return (float(np.sum(recall_step * (ranked.precision[is_start] + precision_above)) / (2 * n_pos)),)


def _precision_at_recall(ranked: RankedClass) -> list[float]:
    """(Precision@r, T*) for each recall level, interleaved."""
    # The m-th largest positive score sits at ascending index P - m; tied positives share a precision.
    at = ranked.sorted_positives.size - ranked.needed
    if ranked.settings.interpolated:
        # Lowering T between positives only adds negatives, so the best threshold with recall >= r is
        # at a positive with index <= P - m; argmax takes the first, i.e. the highest recall.
        best = np.array([np.argmax(ranked.precision[: i + 1]) for i in at], dtype=np.int64)
    else:
        best = at
    values: list[float] = []
    for index in best:
        values += [float(ranked.precision[index]), float(ranked.column.thresholds[index])]
    return values


CLASS_METRICS.register("auprc", ClassMetric(lambda settings: (Column("auprc", "AUPRC"),), _auprc))
CLASS_METRICS.register(
    "precision_at_recall",
    ClassMetric(
        lambda settings: tuple(
            column
            for r in settings.recalls
            for column in (Column(precision_key(r), f"P@{r:g}"), Column(threshold_key(r), None))
        ),
        _precision_at_recall,
    ),
)


def class_columns(settings: MetricSettings) -> tuple[Column, ...]:
    """Every registered per-class metric's columns, in registration order."""
    return tuple(column for metric in CLASS_METRICS.values() for column in metric.columns(settings))


UNDECIDED_PAIRS = "undecided_pairs"


@dataclass(frozen=True)
class ClassMetrics:
    """Per-class values of one ranking, one array of k per column; NaN for classes without positives.

    Thresholds are in the units of the ranking score: logits for ``Ranking.slc``, log-odds
    z_j - logsumexp_{i != j} z_i for ``Ranking.all_logits``; the rule is "score >= T*".
    ``undecided_pairs`` counts per class the (positive, negative) pairs whose scores lie within
    float64's error bound of each other (always 0 for ``slc``: logits are compared exactly).
    """

    positives: np.ndarray  # (k,) int64: P per class
    values: dict[str, np.ndarray]  # column key -> (k,) float64
    settings: MetricSettings
    ranking: Ranking = Ranking.slc
    undecided_pairs: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    @property
    def evaluated(self) -> np.ndarray:
        """Mask of the classes with at least one positive example (the ones averaged)."""
        return self.positives > 0

    @property
    def columns(self) -> tuple[Column, ...]:
        return class_columns(self.settings)

    def summary(self) -> dict[str, float]:
        """Macro averages over evaluated classes of the columns that have a table label; for the
        all-logits ranking also the number of undecided pairs over all classes."""
        means = {c.key: macro_mean(self.values[c.key]) for c in self.columns if c.label is not None}
        if self.ranking is Ranking.all_logits:
            means[UNDECIDED_PAIRS] = int(self.undecided_pairs.sum())
        return means

    def per_class(self) -> dict[str, np.ndarray]:
        """Every column's per-class values, then the undecided pairs (the per-class CSV's columns)."""
        return {**{c.key: self.values[c.key] for c in self.columns}, UNDECIDED_PAIRS: self.undecided_pairs}

    @property
    def recalls(self) -> tuple[float, ...]:
        return self.settings.recalls

    @property
    def auprc_method(self) -> AuprcMethod:
        return self.settings.auprc_method

    @property
    def interpolated(self) -> bool:
        return self.settings.interpolated

    @property
    def auprc(self) -> np.ndarray:
        return self.values["auprc"]

    @property
    def precision_at_recall(self) -> np.ndarray:
        """(len(recalls), k): row q belongs to ``recalls[q]``."""
        return np.stack([self.values[precision_key(r)] for r in self.recalls])

    @property
    def threshold_at_recall(self) -> np.ndarray:
        """(len(recalls), k): T* of each Precision@r."""
        return np.stack([self.values[threshold_key(r)] for r in self.recalls])


def positives_needed(recall: float, positives: np.ndarray) -> np.ndarray:
    """m = ceil(recall * P) per class, exactly: recall is read as the decimal it prints as.

    ``0.9 * 10`` is 9.000000000000002 in floating point, whose ceiling would be 10; Fraction("0.9")
    is exactly 9/10. ``str`` (not ``repr(float(...))``) so that a NumPy float32 0.3 reads as 0.3, not
    as 0.30000001192092896. Requires 0 < recall <= 1.
    """
    if not 0 < recall <= 1:
        raise ValueError(f"recall must be in (0, 1], got {recall}")
    exact = Fraction(str(recall))
    # Python integers: num * P cannot overflow.
    return np.array([-(-exact.numerator * int(p) // exact.denominator) for p in positives], dtype=np.int64)


def class_metrics(
    logits: np.ndarray,
    labels: np.ndarray,
    *,
    ranking: Ranking = Ranking.slc,
    recalls: Sequence[float] = (0.9, 0.99),
    auprc_method: AuprcMethod = AuprcMethod.average_precision,
    interpolated: bool = False,
    threads: int | None = None,
    backend: Backend = NUMPY,
    row_stats: RowLogSumExp | None = None,
) -> ClassMetrics:
    """Every registered per-class metric of every class column, NaN where P = 0.

    ``ranking`` says what ranks class j's examples: ``Ranking.slc`` the logit z_j alone (Table I),
    ``Ranking.all_logits`` softmax p_j over all k logits (Table II baseline): the float64 log-odds
    z_j - logsumexp_{i != j} z_i, which for k = 2 is the exactly rounded difference z_j - z_other.
    The ``backend`` ranks blocks of class columns on ``threads`` workers (default: one per CPU);
    ``row_stats`` (the all-logits ranking's row sums) are computed when not given.
    """
    settings = MetricSettings(tuple(recalls), AuprcMethod(auprc_method), interpolated)
    n, k = logits.shape
    labels = np.asarray(labels)
    positives = np.bincount(labels, minlength=k).astype(np.int64)
    needed = np.stack([positives_needed(r, positives) for r in recalls]) if recalls else np.zeros((0, k), np.int64)
    ranking = Ranking(ranking)
    if ranking is Ranking.all_logits and k > 2 and row_stats is None:
        row_stats = backend.row_log_sum_exp(logits, threads=threads)
    metrics = CLASS_METRICS.values()
    columns = class_columns(settings)
    values = np.full((len(columns), k), np.nan)
    undecided = np.zeros(k, np.int64)

    def score(ranked_columns: Sequence[RankedColumn]) -> None:
        for column in ranked_columns:  # each call writes only its own classes
            ranked = RankedClass(column, needed[:, column.cls], settings)
            values[:, column.cls] = [value for metric in metrics for value in metric.compute(ranked)]
            undecided[column.cls] = column.undecided_pairs

    backend.rank_columns(logits, labels, ranking=ranking, row_stats=row_stats, threads=threads, consume=score)
    return ClassMetrics(positives, {c.key: values[i] for i, c in enumerate(columns)}, settings, ranking, undecided)


T = TypeVar("T")


@dataclass(frozen=True)
class SetMetric(Generic[T]):
    """A metric of a whole set of logits (one value per file), computed from its block's input ``T``."""

    column: Column
    compute: Callable[[T], float]


SET_METRICS: Registry[SetMetric[PolsCounts]] = Registry("set metric")


def _pair_auroc(counts: PolsCounts) -> float:
    # Python integers: the pair counts reach n^2 k, beyond float64's exact range for big sets.
    pairs = 2 * counts.n * counts.n * (counts.k - 1)
    return float((2 * int(counts.below_false.sum()) + int(counts.tied_false.sum())) / pairs)


def _pooled_auprc(counts: PolsCounts) -> float:
    return float(((counts.n - counts.below_true) / (counts.n * counts.k - counts.below_all)).mean())


SET_METRICS.register("pair_auroc", SetMetric(Column("pair_auroc", "pair AUROC"), _pair_auroc))
SET_METRICS.register("pooled_auprc", SetMetric(Column("pooled_auprc", "pooled AUPRC"), _pooled_auprc))
SET_METRICS.register(
    "margin",
    SetMetric(
        Column("margin", "margin", complement=False), lambda counts: float(counts.true_sorted[0]) - counts.max_false
    ),
)


@dataclass(frozen=True)
class SetMetrics:
    """Values of one set-level block, by column key (raw values)."""

    values: dict[str, float]

    def summary(self) -> dict[str, float]:
        return dict(self.values)


@dataclass(frozen=True)
class PolsMetrics(SetMetrics):
    """Principle-of-Logit-Separation diagnostics over all n*k logits of a set, by column key.

    - ``pair_auroc``: the fraction of (true logit, false logit) pairs, over all examples, in which the
      true logit is larger; ties count one half. 1.0 exactly when PoLS holds.
    - ``pooled_auprc``: average precision of one global threshold shared by all classes, over all
      n*k logits with the n true logits as positives (tie groups as in per-class AP).
    - ``margin``: min(true logits) - max(false logits). PoLS holds exactly when it is > 0.
    """

    @property
    def pair_auroc(self) -> float:
        return self.values["pair_auroc"]

    @property
    def pooled_auprc(self) -> float:
        return self.values["pooled_auprc"]

    @property
    def margin(self) -> float:
        return self.values["margin"]


def pols_counts(
    logits: np.ndarray, labels: np.ndarray, *, threads: int | None = None, backend: Backend = NUMPY
) -> PolsCounts:
    """The counts behind the set metrics (see ``PolsCounts``), from the ``backend``."""
    return backend.pols_counts(logits, np.asarray(labels), threads=threads)


def pols_metrics(
    logits: np.ndarray, labels: np.ndarray, *, threads: int | None = None, backend: Backend = NUMPY
) -> PolsMetrics:
    """Every registered set metric (see ``PolsMetrics``)."""
    counts = pols_counts(logits, labels, threads=threads, backend=backend)
    return PolsMetrics({metric.column.key: metric.compute(counts) for metric in SET_METRICS.values()})


@dataclass(frozen=True)
class LogPartition:
    """Each example's log-partition log Z = logsumexp_c z_c (float64), what self-normalization is judged by.

    log p_j = z_j - log Z for every class j, so z_j reads as a log-probability exactly when log Z = 0,
    and |z_y - log p_y| = |log Z| for the true class y (and any other).
    """

    log_z: np.ndarray


SELF_NORMALIZATION_METRICS: Registry[SetMetric[LogPartition]] = Registry("self-normalization metric")
SELF_NORMALIZATION_METRICS.register(
    "log_z_mean", SetMetric(Column("log_z_mean", None, complement=False), lambda p: float(p.log_z.mean()))
)
SELF_NORMALIZATION_METRICS.register(
    "log_z_std", SetMetric(Column("log_z_std", None, complement=False), lambda p: float(p.log_z.std()))
)
SELF_NORMALIZATION_METRICS.register(
    "mean_abs_gap",
    SetMetric(
        Column("mean_abs_gap", "|log Z|", complement=False, higher_is_better=False),
        lambda p: float(np.abs(p.log_z).mean()),
    ),
)


def self_normalization_metrics(
    logits: np.ndarray,
    *,
    threads: int | None = None,
    backend: Backend = NUMPY,
    row_stats: RowLogSumExp | None = None,
) -> SetMetrics:
    """Every registered self-normalization metric: ``log_z_mean`` and ``log_z_std`` (population
    standard deviation) of log Z over the examples, and ``mean_abs_gap`` = mean |z_y - log p_y| =
    mean |log Z|, how far the true logit is from its log-probability (see ``LogPartition``)."""
    stats = row_stats if row_stats is not None else backend.row_log_sum_exp(logits, threads=threads)
    partition = LogPartition(stats.log_partition)
    return SetMetrics({m.column.key: m.compute(partition) for m in SELF_NORMALIZATION_METRICS.values()})


def macro_mean(values: np.ndarray) -> float:
    """Mean over the classes with a defined value (NaN marks classes without positives)."""
    defined = values[~np.isnan(values)]
    return float(defined.mean()) if defined.size else math.nan
