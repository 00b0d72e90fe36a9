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

Memory: a worker holds one block of at most ``BLOCK_ELEMENTS`` scores (transposed, so each class is
a contiguous row that ``ndarray.sort`` sorts in place with numpy's SIMD kernels). There is no one-hot
matrix and no float64 copy of the whole logits matrix; numpy's sort and searchsorted release the GIL,
so blocks run in a thread pool.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
from fractions import Fraction
from typing import Callable, Iterator, Sequence

import numpy as np

# Scores per worker block: 2**21 float64 values are 16 MB (the log-odds transform needs two such buffers).
BLOCK_ELEMENTS = 1 << 21


class AuprcMethod(str, Enum):
    """How the area under the precision-recall curve is estimated."""

    average_precision = "average-precision"
    trapezoid = "trapezoid"


class Ranking(str, Enum):
    """What ranks the examples for class j."""

    slc = "slc"  # the single logit z_j (Table I)
    all_logits = "all_logits"  # softmax p_j computed from all k logits (Table II's "CE with all logits")


@dataclass(frozen=True)
class ClassMetrics:
    """Per-class metrics of one score matrix; NaN for classes without positives.

    ``precision_at_recall[q, j]`` and ``threshold_at_recall[q, j]`` belong to ``recalls[q]``. The
    thresholds are in the units of the ranking score: logits for ``Ranking.slc``, log-odds
    z_j - logsumexp_{i != j} z_i for ``Ranking.all_logits``; the rule is "score >= T*".
    """

    positives: np.ndarray  # (k,) int64: P per class
    auprc: np.ndarray  # (k,) float64
    precision_at_recall: np.ndarray  # (len(recalls), k) float64
    threshold_at_recall: np.ndarray  # (len(recalls), k) float64
    recalls: tuple[float, ...]
    auprc_method: AuprcMethod
    interpolated: bool

    @property
    def evaluated(self) -> np.ndarray:
        """Mask of the classes with at least one positive example (the ones averaged)."""
        return self.positives > 0


@dataclass(frozen=True)
class PolsMetrics:
    """Principle-of-Logit-Separation diagnostics over all n*k logits of a set.

    - ``pair_auroc``: the fraction of (true logit, false logit) pairs, over all examples, in which the
      true logit is larger; ties count one half. 1.0 exactly when PoLS holds.
    - ``pooled_auprc``: average precision of one global threshold shared by all classes, over all
      n*k logits with the n true logits as positives (tie groups as in per-class AP).
    - ``margin``: min(true logits) - max(false logits). PoLS holds exactly when it is > 0.
    """

    pair_auroc: float
    pooled_auprc: float
    margin: float


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


def _column_metrics(
    sorted_scores: np.ndarray,
    sorted_positives: np.ndarray,
    needed: np.ndarray,
    auprc_method: AuprcMethod,
    interpolated: bool,
) -> tuple[float, np.ndarray, np.ndarray]:
    """AUPRC and Precision@r (with T*) of one class from its ascending scores and positive scores.

    ``needed`` holds m = ceil(r * P) per recall. Returns (auprc, precision per r, threshold per r).
    """
    n, n_pos = sorted_scores.size, sorted_positives.size
    # Index of the first positive of each positive's tie group: TP_i counts the whole group.
    group_start = np.searchsorted(sorted_positives, sorted_positives, side="left")
    tp = n_pos - group_start
    pp = n - np.searchsorted(sorted_scores, sorted_positives, side="left")
    precision = tp / pp  # prec_i, ascending score order

    if auprc_method is AuprcMethod.average_precision:
        auprc = float(precision.mean())
    else:
        is_start = group_start == np.arange(n_pos)  # one entry per distinct positive score v
        values = sorted_positives[is_start]
        tp_above = n_pos - np.searchsorted(sorted_positives, values, side="right")
        pp_above = n - np.searchsorted(sorted_scores, values, side="right")
        precision_above = np.divide(tp_above, pp_above, out=np.ones(values.size), where=pp_above > 0)
        recall_step = tp[is_start] - tp_above
        auprc = float(np.sum(recall_step * (precision[is_start] + precision_above)) / (2 * n_pos))

    # The m-th largest positive score sits at ascending index P - m; tied positives share a precision.
    at = n_pos - needed
    if interpolated:
        # Lowering T between positives only adds negatives, so the best threshold with recall >= r is
        # at a positive with index <= P - m; argmax takes the first, i.e. the highest recall.
        best = np.array([np.argmax(precision[: i + 1]) for i in at], dtype=np.int64)
    else:
        best = at
    return auprc, precision[best], sorted_positives[best].astype(np.float64)


def _work_dtype(dtype: np.dtype) -> np.dtype:
    """Native float64 for float64 of either byte order and for longdouble (never downcast to float32:
    that could merge distinct scores); native float32 for narrower floats."""
    return np.dtype(np.float64) if dtype.itemsize >= 8 else np.dtype(np.float32)


def _thread_map(func: Callable, items: Sequence, threads: int | None) -> Iterator:
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
    """Per-class AUPRC and Precision@r (with T*) of every class column, NaN where P = 0.

    ``ranking`` says what ranks class j's examples: ``Ranking.slc`` the logit z_j alone (Table I),
    ``Ranking.all_logits`` softmax p_j over all k logits (Table II baseline, see ``_log_odds_blocks``).
    Blocks of class columns run on ``threads`` workers (default: one per CPU).
    """
    n, k = logits.shape
    labels = np.asarray(labels)
    positives = np.bincount(labels, minlength=k).astype(np.int64)
    offsets = np.concatenate(([0], np.cumsum(positives)))
    rows_by_class = np.argsort(labels, kind="stable")  # rows of class c: rows_by_class[offsets[c]:offsets[c+1]]
    needed = np.stack([positives_needed(r, positives) for r in recalls]) if recalls else np.zeros((0, k), np.int64)
    block_scores = _logit_blocks(logits) if Ranking(ranking) is Ranking.slc else _log_odds_blocks(logits, threads)

    auprc = np.full(k, np.nan)
    precision_at = np.full((len(recalls), k), np.nan)
    threshold_at = np.full((len(recalls), k), np.nan)
    width = max(1, min(k, BLOCK_ELEMENTS // max(n, 1)))

    def run_block(c0: int) -> None:
        c1 = min(c0 + width, k)
        block = block_scores(c0, c1)
        # Take the positives' scores before the in-place sort scrambles the rows.
        block_positives = [np.sort(block[c - c0, rows_by_class[offsets[c] : offsets[c + 1]]]) for c in range(c0, c1)]
        block.sort(axis=1)
        for c, sorted_positives in zip(range(c0, c1), block_positives):
            if sorted_positives.size:  # each worker writes only its own columns
                auprc[c], precision_at[:, c], threshold_at[:, c] = _column_metrics(
                    block[c - c0], sorted_positives, needed[:, c], auprc_method, interpolated
                )

    for _ in _thread_map(run_block, range(0, k, width), threads):
        pass
    return ClassMetrics(positives, auprc, precision_at, threshold_at, tuple(recalls), auprc_method, interpolated)


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


def pols_metrics(logits: np.ndarray, labels: np.ndarray, *, threads: int | None = None) -> PolsMetrics:
    """PoLS diagnostics (see ``PolsMetrics``) from one sort of each chunk of rows.

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
    below_false = below_all - below_true
    tied_false = (at_or_below_all - below_all) - (at_or_below_true - below_true)

    n_false = n * (k - 1)
    # Python integers: the pair counts reach n^2 k, beyond float64's exact range for big sets.
    pair_auroc = (2 * int(below_false.sum()) + int(tied_false.sum())) / (2 * n * n_false)
    pooled_precision = (n - below_true) / (n * k - below_all)
    return PolsMetrics(
        pair_auroc=float(pair_auroc),
        pooled_auprc=float(pooled_precision.mean()),
        margin=float(true_logits.min()) - float(max_false.max()),
    )


def macro_mean(values: np.ndarray) -> float:
    """Mean over the classes with a defined value (NaN marks classes without positives)."""
    defined = values[~np.isnan(values)]
    return float(defined.mean()) if defined.size else math.nan
