"""Single Logit Classification metrics, exact and vectorised over blocks of class columns.

Definitions (Keren, Sabato & Schuller, ICDM 2018, Tables I and II; see README "slcbench evaluate").
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

Extension: every metric is registered, per class in ``CLASS_METRICS`` (computed from one sorted
column, see ``RankedClass``) or over the whole set in ``SET_METRICS`` (from ``PolsCounts``). Its
``Column`` entries name what the JSON, the per-class CSV, the table and the training summary show,
so a new metric is one registration in this module.

Memory: a worker holds one block of at most ``BLOCK_ELEMENTS`` scores (transposed, so each class is
a contiguous row that ``ndarray.sort`` sorts in place with numpy's SIMD kernels). There is no one-hot
matrix and no float64 copy of the whole logits matrix; numpy's sort and searchsorted release the GIL,
so blocks run in a thread pool.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from functools import cached_property
from typing import Any

import numpy as np

from slcbench.registry import Registry

# Scores per worker block: 2**21 float64 values are 16 MB (the log-odds transform needs two such buffers).
BLOCK_ELEMENTS = 1 << 21


class AuprcMethod(StrEnum):
    """How the area under the precision-recall curve is estimated."""

    average_precision = "average-precision"
    trapezoid = "trapezoid"


class Ranking(StrEnum):
    """What ranks the examples for class j."""

    slc = "slc"  # the single logit z_j (Table I)
    all_logits = "all_logits"  # softmax p_j computed from all k logits (Table II's "CE with all logits")


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
        Its table header (``"P@0.9"``); None for a per-class value that is not averaged (a threshold),
        which appears in the per-class CSV only.
    complement : bool
        The table shows 1 - value (lower is better), as the paper's tables do; False: the raw value.
    """

    key: str
    label: str | None
    complement: bool = True


@dataclass(frozen=True)
class MetricSettings:
    """The choices that define the metrics' values (recorded in the results)."""

    recalls: tuple[float, ...] = (0.9, 0.99)
    auprc_method: AuprcMethod = AuprcMethod.average_precision
    interpolated: bool = False


class RankedClass:
    """One class's column, ranked: all scores and the positives' scores, ascending, with the counts
    every per-class metric is computed from (see the module's definitions).

    ``needed[q]`` is m = ceil(r * P) for ``settings.recalls[q]``.
    """

    def __init__(
        self, sorted_scores: np.ndarray, sorted_positives: np.ndarray, needed: np.ndarray, settings: MetricSettings
    ) -> None:
        self.sorted_scores = sorted_scores
        self.sorted_positives = sorted_positives
        self.needed = needed
        self.settings = settings

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
        pp = self.sorted_scores.size - np.searchsorted(self.sorted_scores, self.sorted_positives, side="left")
        return self.tp / pp


@dataclass(frozen=True)
class ClassMetric:
    """A per-class metric: ``columns(settings)`` names its values, ``compute(ranked)`` gives them in that order."""

    columns: Callable[[MetricSettings], tuple[Column, ...]]
    compute: Callable[[RankedClass], Sequence[float]]


CLASS_METRICS: Registry[ClassMetric] = Registry("per-class metric")


def _auprc(ranked: RankedClass) -> tuple[float]:
    if ranked.settings.auprc_method is AuprcMethod.average_precision:
        return (float(ranked.precision.mean()),)
    n, n_pos = ranked.sorted_scores.size, ranked.sorted_positives.size
    is_start = ranked.group_start == np.arange(n_pos)  # one entry per distinct positive score v
    values = ranked.sorted_positives[is_start]
    tp_above = n_pos - np.searchsorted(ranked.sorted_positives, values, side="right")
    pp_above = n - np.searchsorted(ranked.sorted_scores, values, side="right")
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
        values += [float(ranked.precision[index]), float(ranked.sorted_positives[index])]
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


@dataclass(frozen=True)
class ClassMetrics:
    """Per-class values of one ranking, one array of k per column; NaN for classes without positives.

    Thresholds are in the units of the ranking score: logits for ``Ranking.slc``, log-odds
    z_j - logsumexp_{i != j} z_i for ``Ranking.all_logits``; the rule is "score >= T*".
    """

    positives: np.ndarray  # (k,) int64: P per class
    values: dict[str, np.ndarray]  # column key -> (k,) float64
    settings: MetricSettings

    @property
    def evaluated(self) -> np.ndarray:
        """Mask of the classes with at least one positive example (the ones averaged)."""
        return self.positives > 0

    @property
    def columns(self) -> tuple[Column, ...]:
        return class_columns(self.settings)

    def summary(self) -> dict[str, float]:
        """Macro averages over evaluated classes of the columns that have a table label."""
        return {c.key: macro_mean(self.values[c.key]) for c in self.columns if c.label is not None}

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


def _work_dtype(dtype: np.dtype) -> np.dtype:
    """Native float64 for float64 of either byte order and for longdouble (never downcast to float32:
    that could merge distinct scores); native float32 for narrower floats."""
    return np.dtype(np.float64) if dtype.itemsize >= 8 else np.dtype(np.float32)


def _thread_map(func: Callable[[Any], Any], items: Sequence[Any], threads: int | None) -> Iterator[Any]:
    """``map`` over a thread pool (``threads`` workers, default one per CPU), results in order as they finish."""
    workers = max(1, min(threads or os.cpu_count() or 1, len(items)))
    if workers == 1:
        yield from map(func, items)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(func, items)


def class_metrics(
    logits: np.ndarray,
    labels: np.ndarray,
    *,
    ranking: Ranking = Ranking.slc,
    recalls: Sequence[float] = (0.9, 0.99),
    auprc_method: AuprcMethod = AuprcMethod.average_precision,
    interpolated: bool = False,
    threads: int | None = None,
) -> ClassMetrics:
    """Every registered per-class metric of every class column, NaN where P = 0.

    ``ranking`` says what ranks class j's examples: ``Ranking.slc`` the logit z_j alone (Table I),
    ``Ranking.all_logits`` softmax p_j over all k logits (Table II baseline, see ``_log_odds_blocks``).
    Blocks of class columns run on ``threads`` workers (default: one per CPU).
    """
    settings = MetricSettings(tuple(recalls), AuprcMethod(auprc_method), interpolated)
    n, k = logits.shape
    labels = np.asarray(labels)
    positives = np.bincount(labels, minlength=k).astype(np.int64)
    offsets = np.concatenate(([0], np.cumsum(positives)))
    rows_by_class = np.argsort(labels, kind="stable")  # rows of class c: rows_by_class[offsets[c]:offsets[c+1]]
    needed = np.stack([positives_needed(r, positives) for r in recalls]) if recalls else np.zeros((0, k), np.int64)
    block_scores = _logit_blocks(logits) if Ranking(ranking) is Ranking.slc else _log_odds_blocks(logits, threads)
    metrics = CLASS_METRICS.values()
    values = np.full((len(class_columns(settings)), k), np.nan)
    width = max(1, min(k, BLOCK_ELEMENTS // max(n, 1)))

    def run_block(c0: int) -> None:
        c1 = min(c0 + width, k)
        block = block_scores(c0, c1)
        # Take the positives' scores before the in-place sort scrambles the rows.
        block_positives = [np.sort(block[c - c0, rows_by_class[offsets[c] : offsets[c + 1]]]) for c in range(c0, c1)]
        block.sort(axis=1)
        for c, sorted_positives in zip(range(c0, c1), block_positives, strict=False):
            if sorted_positives.size:  # each worker writes only its own columns
                ranked = RankedClass(block[c - c0], sorted_positives, needed[:, c], settings)
                values[:, c] = [value for metric in metrics for value in metric.compute(ranked)]

    for _ in _thread_map(run_block, range(0, k, width), threads):
        pass
    columns = class_columns(settings)
    return ClassMetrics(positives, {column.key: values[i] for i, column in enumerate(columns)}, settings)


BlockScores = Callable[[int, int], np.ndarray]  # (c0, c1) -> a fresh C-ordered (c1 - c0, n) score block


def _logit_blocks(logits: np.ndarray) -> BlockScores:
    dtype = _work_dtype(logits.dtype)

    def block_scores(c0: int, c1: int) -> np.ndarray:
        return np.array(logits[:, c0:c1].T, dtype=dtype, order="C", copy=True)

    return block_scores


@dataclass(frozen=True)
class _RowLogSumExp:
    """Per-row statistics from which z_ij - logsumexp_{c != j} z_ic follows without cancellation.

    Both are relative to the row maximum m1, so that no large m1 is added and subtracted again (at
    logits of 1e20 that would leave nothing of the gap). Sums run over each row's terms in ascending
    order, so they depend on a row's values but not on their column order: rows holding the same
    values in another order give exactly equal scores, hence the tie groups that p_j has.
    """

    row_max: np.ndarray  # m1
    sum_exp: np.ndarray  # S = sum_c exp(z_c - m1) >= 1
    max_gap: np.ndarray  # logsumexp over c != argmax, minus m1 (<= 0)


def _row_log_sum_exp(logits: np.ndarray, threads: int | None) -> _RowLogSumExp:
    n, k = logits.shape
    stats = _RowLogSumExp(np.empty(n), np.empty(n), np.empty(n))
    rows_per_chunk = max(1, BLOCK_ELEMENTS // k)

    def run_chunk(r0: int) -> None:
        z = np.array(logits[r0 : r0 + rows_per_chunk], dtype=np.float64)
        span, rows = slice(r0, r0 + z.shape[0]), np.arange(z.shape[0])
        argmax = z.argmax(axis=1)
        row_max = z[rows, argmax]
        z -= row_max[:, None]
        z[rows, argmax] = -np.inf
        np.exp(z, out=z)
        z.sort(axis=1)  # ascending: the sum no longer depends on the column order (see _RowLogSumExp)
        others = z.sum(axis=1)  # sum over c != argmax of exp(z_c - m1): positive terms, no cancellation
        stats.row_max[span], stats.sum_exp[span] = row_max, 1.0 + others
        with np.errstate(divide="ignore"):
            stats.max_gap[span] = np.log(others)
        # Past a margin of ~708 nats the sum underflows: recompute those rows around their second largest logit.
        for row in np.flatnonzero(others < np.finfo(np.float64).tiny):
            rest = np.delete(np.asarray(logits[r0 + row], dtype=np.float64), argmax[row])
            second = rest.max()
            stats.max_gap[r0 + row] = (second - row_max[row]) + np.log(np.sort(np.exp(rest - second)).sum())

    for _ in _thread_map(run_chunk, range(0, n, rows_per_chunk), threads):
        pass
    return stats


def _log_odds_blocks(logits: np.ndarray, threads: int | None) -> BlockScores:
    """Blocks of log(p_j / (1 - p_j)) = z_j - logsumexp_{i != j} z_i in float64, p = softmax over all k.

    Every metric depends only on the order of scores within a column, so ranking by this strictly
    increasing function of p_j gives the metrics of p_j, without saturation: float32 softmax rounds
    to exactly 1.0 past a margin of about 17 nats and would create false ties. For j other than the
    row's maximum, (z_j - m1) - log(S - exp(z_j - m1)) with S - exp(...) >= 1 (no cancellation); for
    entries equal to the maximum (the argmax and any tie with it), minus the gap of logsumexp over the
    other entries below m1, computed directly (see ``_RowLogSumExp``).
    """
    stats = _row_log_sum_exp(logits, threads)

    def block_scores(c0: int, c1: int) -> np.ndarray:
        log_odds = np.array(logits[:, c0:c1].T, dtype=np.float64, order="C", copy=True)
        log_odds -= stats.row_max
        at_max = log_odds == 0.0
        log_lse_gap = np.exp(log_odds)
        np.subtract(stats.sum_exp, log_lse_gap, out=log_lse_gap)
        log_lse_gap[at_max] = 1.0  # replaced below; S - 1 can round to 0 and log(0) would warn
        np.log(log_lse_gap, out=log_lse_gap)  # now logsumexp_{i != j} - m1
        np.copyto(log_lse_gap, np.broadcast_to(stats.max_gap, log_lse_gap.shape), where=at_max)
        log_odds -= log_lse_gap
        return log_odds

    return block_scores


@dataclass(frozen=True)
class PolsCounts:
    """What the set metrics are computed from: for each true logit (ascending, ``true_sorted``) the
    number of false logits below it and tied with it, and of all logits below it; the largest false logit."""

    n: int
    k: int
    true_sorted: np.ndarray
    below_true: np.ndarray
    below_all: np.ndarray
    below_false: np.ndarray
    tied_false: np.ndarray
    max_false: float


@dataclass(frozen=True)
class SetMetric:
    """A metric over all n*k logits of a set (one value per file)."""

    column: Column
    compute: Callable[[PolsCounts], float]


SET_METRICS: Registry[SetMetric] = Registry("set metric")


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
class PolsMetrics:
    """Principle-of-Logit-Separation diagnostics over all n*k logits of a set, by column key.

    - ``pair_auroc``: the fraction of (true logit, false logit) pairs, over all examples, in which the
      true logit is larger; ties count one half. 1.0 exactly when PoLS holds.
    - ``pooled_auprc``: average precision of one global threshold shared by all classes, over all
      n*k logits with the n true logits as positives (tie groups as in per-class AP).
    - ``margin``: min(true logits) - max(false logits). PoLS holds exactly when it is > 0.
    """

    values: dict[str, float]

    @property
    def pair_auroc(self) -> float:
        return self.values["pair_auroc"]

    @property
    def pooled_auprc(self) -> float:
        return self.values["pooled_auprc"]

    @property
    def margin(self) -> float:
        return self.values["margin"]


def pols_counts(logits: np.ndarray, labels: np.ndarray, *, threads: int | None = None) -> PolsCounts:
    """The counts behind the set metrics, from one sort of each chunk of rows.

    For each true logit t the number of logits (of all n*k) below t and at t is counted with
    searchsorted in each sorted row chunk; subtracting the true logits' own counts leaves the false
    logits', which give the Mann-Whitney pair count and the pooled precision at every true logit.
    """
    n, k = logits.shape
    labels = np.asarray(labels)
    dtype = _work_dtype(logits.dtype)
    true_logits = np.asarray(logits[np.arange(n), labels], dtype=dtype)
    true_sorted = np.sort(true_logits)
    rows_per_chunk = max(1, BLOCK_ELEMENTS // k)
    max_false = np.empty(n, dtype=dtype)

    def run_chunk(r0: int) -> tuple[np.ndarray, np.ndarray]:
        chunk = np.array(logits[r0 : r0 + rows_per_chunk], dtype=dtype, order="C", copy=True)
        rows = np.arange(chunk.shape[0])
        chunk_labels = labels[r0 : r0 + chunk.shape[0]]
        chunk[rows, chunk_labels] = -np.inf
        max_false[r0 : r0 + chunk.shape[0]] = chunk.max(axis=1)
        chunk[rows, chunk_labels] = true_logits[r0 : r0 + chunk.shape[0]]
        flat = chunk.reshape(-1)
        flat.sort()
        return np.searchsorted(flat, true_sorted, side="left"), np.searchsorted(flat, true_sorted, side="right")

    below_all = np.zeros(n, np.int64)
    at_or_below_all = np.zeros(n, np.int64)
    for below, at_or_below in _thread_map(run_chunk, range(0, n, rows_per_chunk), threads):
        below_all += below
        at_or_below_all += at_or_below
    below_true = np.searchsorted(true_sorted, true_sorted, side="left")
    at_or_below_true = np.searchsorted(true_sorted, true_sorted, side="right")
    return PolsCounts(
        n=n,
        k=k,
        true_sorted=true_sorted,
        below_true=below_true,
        below_all=below_all,
        below_false=below_all - below_true,
        tied_false=(at_or_below_all - below_all) - (at_or_below_true - below_true),
        max_false=float(max_false.max()),
    )


def pols_metrics(logits: np.ndarray, labels: np.ndarray, *, threads: int | None = None) -> PolsMetrics:
    """Every registered set metric (see ``PolsMetrics``)."""
    counts = pols_counts(logits, labels, threads=threads)
    return PolsMetrics({metric.column.key: metric.compute(counts) for metric in SET_METRICS.values()})


def macro_mean(values: np.ndarray) -> float:
    """Mean over the classes with a defined value (NaN marks classes without positives)."""
    defined = values[~np.isnan(values)]
    return float(defined.mean()) if defined.size else math.nan
