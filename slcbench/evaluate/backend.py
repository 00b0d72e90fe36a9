"""Where the heavy work of ``slcbench evaluate`` runs: the interface every backend implements, and NumPy's.

A backend turns logits into what the metrics are computed from, so that every backend feeds the
same metric code (``slcbench.evaluate.metrics``):

- ``rank_columns``: per class column, its scores ranked (the raw logits, or the float64 log-odds of
  softmax for the all-logits ranking), delivered as ``RankedColumn``s block of classes by block;
- ``pols_counts``: for each true logit, the numbers of logits (of all n*k) below it and at it;
- ``row_log_sum_exp``: per example, the statistics behind log Z and the log-odds.

``NumpyBackend`` (this module, NumPy only) runs blocks on a thread pool of CPU cores. The torch
backend (``slcbench.evaluate.torch_backend``, imported only for ``--device cuda``) streams the same
blocks through a GPU.

Memory: a worker holds one block of at most ``block_bytes`` of scores. A block of class columns is
built from the (possibly memory-mapped) row-major logits in small tiles that stay in cache, each
read as contiguous row pieces and transposed, so that each class becomes a contiguous row that
``ndarray.sort`` sorts in place with numpy's SIMD kernels. There is no one-hot matrix and no float64
copy of the whole logits matrix; numpy's sort, searchsorted and ufuncs release the GIL, so blocks run
in parallel.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Protocol

import numpy as np

# Unit roundoff of float64: a correctly rounded operation errs by at most UNIT_ROUNDOFF * |result|.
UNIT_ROUNDOFF = 2.0**-53


class Ranking(StrEnum):
    """What ranks the examples for class j."""

    slc = "slc"  # the single logit z_j (Table I)
    all_logits = "all_logits"  # softmax p_j computed from all k logits (Table II's "CE with all logits")


ConsumeBlock = Callable[[Sequence["RankedColumn"]], None]


@dataclass(frozen=True)
class RankedColumn:
    """One class's column, ranked: what every per-class metric is computed from.

    ``sorted_positives`` are the positives' ranking keys, ascending: their scores, or for the exact
    two-class ranking their exact ranks (``ExactPairRanks``), whose float64 scores are
    ``positive_scores``. ``at_least[i]`` and ``above[i]`` count the scores >= and > the i-th positive;
    ``undecided_pairs`` counts pairs of a positive and another example whose order float64 cannot
    certify (see ``undecided_pairs``); ``sorted_scores()`` returns all n scores ascending (may fetch them).
    """

    cls: int
    n: int
    sorted_positives: np.ndarray
    at_least: np.ndarray
    above: np.ndarray
    undecided_pairs: int
    sorted_scores: Callable[[], np.ndarray]
    positive_scores: np.ndarray | None = None

    @property
    def thresholds(self) -> np.ndarray:
        """The positives' scores in the ranking's units, ascending (what T* is reported in)."""
        return self.sorted_positives if self.positive_scores is None else self.positive_scores


@dataclass(frozen=True)
class RowLogSumExp:
    """Per-row statistics from which z_ij - logsumexp_{c != j} z_ic follows without cancellation.

    Both are relative to the row maximum m1, so that no large m1 is added and subtracted again (at
    logits of 1e20 that would leave nothing of the gap). Sums run over each row's terms in ascending
    order, so they depend on a row's values but not on their column order: rows holding the same
    values in another order give exactly equal scores, hence the tie groups that p_j has.
    """

    row_max: np.ndarray  # m1
    sum_exp: np.ndarray  # S = sum_c exp(z_c - m1) >= 1
    max_gap: np.ndarray  # logsumexp over c != argmax, minus m1 (<= 0)
    columns: int  # k, the number of logits in each row

    @property
    def log_partition(self) -> np.ndarray:
        """log Z = logsumexp_c z_c = m1 + log S per example."""
        return self.row_max + np.log(self.sum_exp)

    def log_odds_error_bound(self) -> float:
        """C of the bound u * (9 |L| + C) on the error of every computed log-odds L of these rows.

        First order in u = 2^-53, for exp and log within 4 ulp (numpy's are within 2.52 and 3.83):
        a term exp(z_c - m1) errs by u (|z_c - m1| + 8) relative, and t |log t| <= 1/e; the ascending
        sum of k terms adds (k - 1) u S; S - exp(z_j - m1) >= 1 keeps the subtraction from amplifying
        more than S; the largest entry's -log(others) gains at most u (k + log k + 6) + 8 u |L|.
        Summing: |L^ - L| <= u (9 |L^| + (k + 18) S + 2k + 9) <= u (9 |L^| + C) with the row maximum S.
        """
        k = self.columns
        return float((k + 18) * self.sum_exp.max() + 2 * k + 9)


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

    @classmethod
    def from_all_counts(
        cls, true_sorted: np.ndarray, below_all: np.ndarray, at_or_below_all: np.ndarray, k: int, max_false: float
    ) -> PolsCounts:
        """The counts from those over all n*k logits: subtracting the true logits' own leaves the false logits'."""
        below_true = np.searchsorted(true_sorted, true_sorted, side="left")
        at_or_below_true = np.searchsorted(true_sorted, true_sorted, side="right")
        return cls(
            n=true_sorted.size,
            k=k,
            true_sorted=true_sorted,
            below_true=below_true,
            below_all=below_all,
            below_false=below_all - below_true,
            tied_false=(at_or_below_all - below_all) - (at_or_below_true - below_true),
            max_false=max_false,
        )


class Backend(Protocol):
    """What a backend computes; see the module's description."""

    @property
    def name(self) -> str: ...

    def rank_columns(
        self,
        logits: np.ndarray,
        labels: np.ndarray,
        *,
        ranking: Ranking,
        row_stats: RowLogSumExp | None,
        threads: int | None,
        consume: ConsumeBlock,
    ) -> None:
        """Call ``consume`` once per block of classes with the block's ``RankedColumn``s (classes with
        positives only), possibly from several threads at once (each call gets its own classes).
        ``row_stats`` is needed for ``Ranking.all_logits`` with k > 2."""
        ...

    def pols_counts(self, logits: np.ndarray, labels: np.ndarray, *, threads: int | None) -> PolsCounts: ...

    def row_log_sum_exp(self, logits: np.ndarray, *, threads: int | None) -> RowLogSumExp: ...


def work_dtype(dtype: np.dtype) -> np.dtype:
    """Native float64 for float64 of either byte order and for longdouble (never downcast to float32:
    that could merge distinct scores); native float32 for narrower floats."""
    return np.dtype(np.float64) if dtype.itemsize >= 8 else np.dtype(np.float32)


def thread_map(func: Callable[[Any], Any], items: Sequence[Any], threads: int | None) -> Iterator[Any]:
    """``map`` over a thread pool (``threads`` workers, default one per CPU), results in order."""
    workers = max(1, min(threads or os.cpu_count() or 1, len(items)))
    if workers == 1:
        yield from map(func, items)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(func, items)


def exact_pair_difference(pair: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For n x 2 logits: the float64 log-odds z_j - z_other of both columns, and the rounding error of each.

    With two classes the log-odds of softmax is exactly the difference of the two logits. float64
    subtraction rounds it correctly (never reversing an order), and Knuth's two-sum gives its error
    e in float64 too, so that exact = score + e: (score, e) in lexicographic order is the exact order.
    """
    z = np.asarray(pair, dtype=np.float64)
    first, minus_second = z[:, :1], -z[:, 1:]
    difference = first + minus_second
    second_part = difference - first
    error = (first - (difference - second_part)) + (minus_second - second_part)
    # Round to nearest is symmetric: fl(z1 - z0) = -fl(z0 - z1).
    return np.concatenate([difference, -difference], axis=1), np.concatenate([error, -error], axis=1)


@dataclass(frozen=True)
class ExactPairRanks:
    """The two-class log-odds ranked exactly: ``keys[i, j]`` is the rank of example i's exact
    z_j - z_other among the column's distinct exact values (equal exactly when those are equal), and
    ``scores[j][key]`` the rounded float64 log-odds of each rank, what thresholds are reported in."""

    keys: np.ndarray
    scores: tuple[np.ndarray, np.ndarray]

    @classmethod
    def of(cls, pair: np.ndarray) -> ExactPairRanks:
        rounded, errors = exact_pair_difference(pair)
        keys = np.empty_like(rounded)
        scores = []
        for j in range(2):
            order = np.lexsort((errors[:, j], rounded[:, j]))
            ordered, ordered_errors = rounded[order, j], errors[order, j]
            new = np.ones(ordered.size, dtype=bool)
            new[1:] = (ordered[1:] != ordered[:-1]) | (ordered_errors[1:] != ordered_errors[:-1])
            keys[order, j] = np.cumsum(new) - 1
            scores.append(ordered[new])
        return cls(keys, (scores[0], scores[1]))

    def reported(self, column: RankedColumn) -> RankedColumn:
        """``column`` (ranked by exact keys) with its positives' and all its scores in float64 log-odds."""
        scores = self.scores[column.cls]
        keys = column.sorted_scores
        return replace(
            column,
            positive_scores=scores[column.sorted_positives.astype(np.int64)],
            sorted_scores=lambda: scores[keys().astype(np.int64)],
        )


def _returning(array: np.ndarray) -> Callable[[], np.ndarray]:
    return lambda: array


def undecided_pairs(sorted_scores: np.ndarray, sorted_positives: np.ndarray, bound: float) -> int:
    """Pairs of a positive and another example (positive or negative) whose scores lie within
    ``2 * bound`` of each other, ties included: with every score within ``bound`` of its exact value,
    their exact order is not certain, and it could change a metric (two negatives' order cannot)."""
    if bound <= 0 or sorted_positives.size == 0:
        return 0
    low, high = sorted_positives - 2 * bound, sorted_positives + 2 * bound
    others = np.searchsorted(sorted_scores, high, "right") - np.searchsorted(sorted_scores, low, "left") - 1
    other_positives = (
        np.searchsorted(sorted_positives, high, "right") - np.searchsorted(sorted_positives, low, "left") - 1
    )
    # A (positive, positive) pair is seen from both ends: count it once.
    return int(others.sum() - other_positives.sum() // 2)


def log_odds_bound(k: int, row_stats: RowLogSumExp) -> Callable[[np.ndarray], float]:
    """The error bound of one sorted column of log-odds (k > 2): u (9 max |L| + C), see ``RowLogSumExp``."""
    constant = row_stats.log_odds_error_bound()
    return lambda column: UNIT_ROUNDOFF * (9 * max(abs(column[0]), abs(column[-1])) + constant)


@dataclass(frozen=True)
class NumpyBackend:
    """Metrics' heavy work in NumPy on CPU threads.

    Parameters
    ----------
    block_bytes : int
        The most scores one worker holds at a time (a block of class columns, transposed); never
        more than an eighth of the logits' size (nor, below that, less than 8 MiB). Wide blocks read
        long pieces of each row, which matters when rows are many and short.
    tile_elements : int
        Logits per tile of the blocked transpose (small enough to stay in cache).
    row_chunk_elements : int
        Logits per chunk of rows of the row sums.
    pols_chunk_elements : tuple of int
        Least and most logits per sorted chunk of the PoLS counts (more rows per chunk when n is
        large: each chunk costs a search of every true logit).
    """

    block_bytes: int = 256 << 20
    tile_elements: int = 1 << 16
    row_chunk_elements: int = 1 << 22
    pols_chunk_elements: tuple[int, int] = (1 << 21, 1 << 24)
    name: str = "numpy"

    def rank_columns(
        self,
        logits: np.ndarray,
        labels: np.ndarray,
        *,
        ranking: Ranking,
        row_stats: RowLogSumExp | None,
        threads: int | None,
        consume: ConsumeBlock,
    ) -> None:
        n, k = logits.shape
        log_odds = ranking is Ranking.all_logits
        dtype = np.dtype(np.float64) if log_odds else work_dtype(logits.dtype)
        budget = min(self.block_bytes, max(8 << 20, logits.nbytes // 8))
        width = max(1, min(k, budget // (n * dtype.itemsize)))
        positives = np.bincount(labels, minlength=k)
        offsets = np.concatenate(([0], np.cumsum(positives)))
        rows_by_class = np.argsort(labels, kind="stable")  # rows of class c: rows_by_class[offsets[c]:offsets[c+1]]
        pair_ranks = ExactPairRanks.of(logits) if ranking is Ranking.all_logits and k == 2 else None
        make_block, undecided = self._ranking_parts(logits, ranking, row_stats, pair_ranks, dtype)

        def run_block(c0: int) -> None:
            c1 = min(c0 + width, k)
            block = make_block(c0, c1)
            # The positives' scores, before the in-place sort scrambles the rows; ascending within each class.
            rows = rows_by_class[offsets[c0] : offsets[c1]]
            classes = labels[rows]
            scores = block[classes - c0, rows]
            scores = scores[np.lexsort((scores, classes))]
            block.sort(axis=1)
            columns = []
            for c in range(c0, c1):
                if not positives[c]:
                    continue
                column = block[c - c0]
                sorted_positives = scores[offsets[c] - offsets[c0] : offsets[c + 1] - offsets[c0]]
                columns.append(
                    RankedColumn(
                        cls=c,
                        n=n,
                        sorted_positives=sorted_positives,
                        at_least=n - np.searchsorted(column, sorted_positives, side="left"),
                        above=n - np.searchsorted(column, sorted_positives, side="right"),
                        undecided_pairs=undecided(column, sorted_positives),
                        sorted_scores=_returning(column),
                    )
                )
            consume(columns if pair_ranks is None else [pair_ranks.reported(column) for column in columns])

        for _ in thread_map(run_block, range(0, k, width), threads):
            pass

    def _ranking_parts(
        self,
        logits: np.ndarray,
        ranking: Ranking,
        row_stats: RowLogSumExp | None,
        pair_ranks: ExactPairRanks | None,
        dtype: np.dtype,
    ) -> tuple[Callable[[int, int], np.ndarray], Callable[[np.ndarray, np.ndarray], int]]:
        """(c0, c1) -> a fresh (c1 - c0, n) block of ranking keys, and (sorted column, sorted positives)
        -> the class's undecided pairs, for the ranking."""
        if ranking is Ranking.slc:
            return lambda c0, c1: self._column_block(logits, c0, c1, dtype), lambda column, positives: 0
        if pair_ranks is not None:  # exact ranks: nothing is left undecided
            keys = pair_ranks.keys
            return lambda c0, c1: np.ascontiguousarray(keys[:, c0:c1].T), lambda column, positives: 0
        assert row_stats is not None
        bound = log_odds_bound(logits.shape[1], row_stats)
        stats = row_stats
        return (
            lambda c0, c1: self._column_block(logits, c0, c1, dtype, lambda rows, r0: log_odds_tile(rows, stats, r0)),
            lambda column, positives: undecided_pairs(column, positives, bound(column)),
        )

    def _column_block(
        self,
        logits: np.ndarray,
        c0: int,
        c1: int,
        dtype: np.dtype,
        transform: Callable[[np.ndarray, int], np.ndarray] | None = None,
    ) -> np.ndarray:
        """Columns c0:c1 (after ``transform(rows, r0)``) as a fresh C-ordered (c1 - c0, n) block, built
        tile by tile: contiguous row pieces, transposed in cache."""
        n = logits.shape[0]
        block = np.empty((c1 - c0, n), dtype=dtype)
        rows_per_tile = max(1, self.tile_elements // (c1 - c0))
        for r0 in range(0, n, rows_per_tile):
            rows = logits[r0 : r0 + rows_per_tile, c0:c1]
            block[:, r0 : r0 + rows.shape[0]] = (rows if transform is None else transform(rows, r0)).T
        return block

    def pols_counts(self, logits: np.ndarray, labels: np.ndarray, *, threads: int | None) -> PolsCounts:
        """For each true logit t the number of logits (of all n*k) below t and at t is counted with
        searchsorted in each sorted chunk of rows."""
        n, k = logits.shape
        dtype = work_dtype(logits.dtype)
        true_logits = np.asarray(logits[np.arange(n), labels], dtype=dtype)
        true_sorted = np.sort(true_logits)
        least, most = self.pols_chunk_elements
        rows_per_chunk = max(1, min(max(128 * n, least), most) // k)
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
        for below, at_or_below in thread_map(run_chunk, range(0, n, rows_per_chunk), threads):
            below_all += below
            at_or_below_all += at_or_below
        return PolsCounts.from_all_counts(true_sorted, below_all, at_or_below_all, k, float(max_false.max()))

    def row_log_sum_exp(self, logits: np.ndarray, *, threads: int | None) -> RowLogSumExp:
        n, k = logits.shape
        dtype = work_dtype(logits.dtype)
        stats = RowLogSumExp(np.empty(n), np.empty(n), np.empty(n), k)
        rows_per_chunk = max(1, self.row_chunk_elements // k)

        def run_chunk(r0: int) -> None:
            # Ascending values give ascending terms: the sum no longer depends on the column order.
            ascending = np.sort(np.asarray(logits[r0 : r0 + rows_per_chunk], dtype=dtype), axis=1)
            span = slice(r0, r0 + ascending.shape[0])
            row_max = ascending[:, -1].astype(np.float64)
            # The terms exp(z_c - m1) of every c but one maximum, ascending after a 0 for the maximum.
            terms = np.empty(ascending.shape, dtype=np.float64)
            terms[:, 0] = -np.inf
            terms[:, 1:] = ascending[:, :-1]
            terms[:, 1:] -= row_max[:, None]
            np.exp(terms, out=terms)
            others = terms.sum(axis=1)  # positive terms: no cancellation
            stats.row_max[span], stats.sum_exp[span] = row_max, 1.0 + others
            with np.errstate(divide="ignore"):
                stats.max_gap[span] = np.log(others)
            # Past a margin of ~708 nats the sum underflows: recompute those rows around their second largest logit.
            for row in np.flatnonzero(others < np.finfo(np.float64).tiny):
                rest = ascending[row, :-1].astype(np.float64)
                second = rest[-1]
                stats.max_gap[r0 + row] = (second - row_max[row]) + np.log(np.exp(rest - second).sum())

        for _ in thread_map(run_chunk, range(0, n, rows_per_chunk), threads):
            pass
        return stats


def log_odds_tile(rows: np.ndarray, stats: RowLogSumExp, r0: int) -> np.ndarray:
    """log(p_j / (1 - p_j)) = z_j - logsumexp_{i != j} z_i in float64 for a tile of rows r0:r0+len(rows).

    Every metric depends only on the order of scores within a column, so ranking by this strictly
    increasing function of p_j gives the metrics of p_j, without saturation: float32 softmax rounds
    to exactly 1.0 past a margin of about 17 nats and would create false ties. For j other than the
    row's maximum, (z_j - m1) - log(S - exp(z_j - m1)) with S - exp(...) >= 1 (no cancellation); for
    entries equal to the maximum (the argmax and any tie with it), minus the gap of logsumexp over the
    other entries below m1, computed directly (see ``RowLogSumExp``).
    """
    span = slice(r0, r0 + rows.shape[0])
    log_odds = np.subtract(rows, stats.row_max[span, None], dtype=np.float64)
    at_max_row, at_max_column = np.divmod(np.flatnonzero(log_odds == 0.0), log_odds.shape[1])  # 1-D: far faster
    log_lse_gap = np.exp(log_odds)
    np.subtract(stats.sum_exp[span, None], log_lse_gap, out=log_lse_gap)
    with np.errstate(divide="ignore"):  # S - 1 can round to 0 at a maximum, which is replaced below
        np.log(log_lse_gap, out=log_lse_gap)  # now logsumexp_{i != j} - m1
    log_odds -= log_lse_gap
    # 0 - gap rather than -gap: a zero gap must give +0.0, as every other difference does.
    log_odds[at_max_row, at_max_column] = 0.0 - stats.max_gap[span][at_max_row]
    return log_odds
