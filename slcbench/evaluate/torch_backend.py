"""The torch backend of ``slcbench evaluate --device cuda``: the same blocks as ``NumpyBackend``, on a GPU.

Logits that dwarf the CPU (10^5 examples x 2^18 classes) are streamed from the (memory-mapped) file
in blocks of columns or of rows, each copied to the device, transformed, sorted and counted there;
only the counts at the positives come back, so the per-class metric code of
``slcbench.evaluate.metrics`` runs unchanged on them. The ranks and counts are exact; the
all-logits log-odds and the log-partition use torch's exp, log and sum, so they equal NumPy's to
rounding. The same code runs on any torch device: the tests run it on the CPU against NumPy.

Importing this module imports torch; ``slcbench evaluate`` imports it only for ``--device cuda``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from slcbench.errors import SlcbenchError
from slcbench.evaluate.backend import (
    UNIT_ROUNDOFF,
    ConsumeBlock,
    ExactPairRanks,
    PolsCounts,
    RankedColumn,
    Ranking,
    RowLogSumExp,
    work_dtype,
)


def _to_device(array: np.ndarray, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """A host block (possibly a strided view of a memory map) on ``device`` as ``dtype``."""
    host = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("=") if array.dtype.byteorder == ">" else None)
    if host.dtype.itemsize > 8:  # longdouble: torch has no such dtype
        host = host.astype(np.float64)
    return torch.from_numpy(host).to(device=device).to(dtype)


def _torch_dtype(dtype: np.dtype) -> torch.dtype:
    return torch.float64 if work_dtype(dtype).itemsize == 8 else torch.float32


@dataclass(frozen=True)
class TorchBackend:
    """Metrics' heavy work in torch on ``device``.

    Parameters
    ----------
    device : torch.device
        Where blocks are computed (``cuda``; the tests use ``cpu``).
    block_elements : int
        Scores per block of class columns on the device (its sort also holds indices and counts).
    chunk_elements : int
        Logits per chunk of rows (PoLS counts, row sums).
    """

    device: torch.device
    block_elements: int = 1 << 26
    chunk_elements: int = 1 << 27
    name: str = "torch"

    @classmethod
    def on_cuda(cls) -> TorchBackend:
        """The backend on the current CUDA device; SlcbenchError without one."""
        if not torch.cuda.is_available():
            raise SlcbenchError("--device cuda was requested but no CUDA device is available")
        return cls(torch.device("cuda"))

    def _threads(self, threads: int | None) -> None:
        if threads is not None:
            torch.set_num_threads(threads)

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
        self._threads(threads)
        n, k = logits.shape
        log_odds = ranking is Ranking.all_logits
        dtype = torch.float64 if log_odds else _torch_dtype(logits.dtype)
        width = max(1, min(k, self.block_elements // n))
        labels_on_device = torch.from_numpy(np.asarray(labels, dtype=np.int64)).to(self.device)
        if log_odds and k == 2:  # n x 2: ranked exactly on the host, as NumPy's; sorted on the device
            pair_ranks = ExactPairRanks.of(logits)
            for c in range(2):
                keys = torch.from_numpy(np.ascontiguousarray(pair_ranks.keys[:, c])).to(self.device)
                consume([pair_ranks.reported(column) for column in _ranked_block(keys[None, :], labels_on_device, c)])
            return
        stats = _RowStatsOnDevice.of(row_stats, self.device) if log_odds else None
        constant = row_stats.log_odds_error_bound() if log_odds and row_stats is not None else 0.0
        for c0 in range(0, k, width):
            c1 = min(c0 + width, k)
            scores = _to_device(logits[:, c0:c1], self.device, dtype)
            block = (stats.log_odds(scores) if stats is not None else scores).T.contiguous()
            bound = None
            if stats is not None:
                extremes = torch.maximum(block.min(dim=1).values.abs(), block.max(dim=1).values.abs())
                bound = UNIT_ROUNDOFF * (9 * extremes + constant)
            consume(_ranked_block(block, labels_on_device, c0, bound=bound))

    def pols_counts(self, logits: np.ndarray, labels: np.ndarray, *, threads: int | None) -> PolsCounts:
        self._threads(threads)
        n, k = logits.shape
        dtype = _torch_dtype(logits.dtype)
        labels_np = np.asarray(labels, dtype=np.int64)
        true_logits = _to_device(np.asarray(logits[np.arange(n), labels_np]), self.device, dtype)
        true_sorted = torch.sort(true_logits).values
        rows_per_chunk = max(1, self.chunk_elements // k)
        below_all = torch.zeros(n, dtype=torch.int64, device=self.device)
        at_or_below_all = torch.zeros(n, dtype=torch.int64, device=self.device)
        max_false = torch.tensor(-torch.inf, dtype=dtype, device=self.device)
        for r0 in range(0, n, rows_per_chunk):
            chunk = _to_device(logits[r0 : r0 + rows_per_chunk], self.device, dtype)
            rows = torch.arange(chunk.shape[0], device=self.device)
            chunk_labels = torch.from_numpy(labels_np[r0 : r0 + chunk.shape[0]]).to(self.device)
            true_in_chunk = chunk[rows, chunk_labels].clone()
            chunk[rows, chunk_labels] = -torch.inf
            max_false = torch.maximum(max_false, chunk.max())
            chunk[rows, chunk_labels] = true_in_chunk
            flat = torch.sort(chunk.reshape(-1)).values
            below_all += torch.searchsorted(flat, true_sorted, side="left")
            at_or_below_all += torch.searchsorted(flat, true_sorted, side="right")
        return PolsCounts.from_all_counts(
            true_sorted.cpu().numpy(),
            below_all.cpu().numpy(),
            at_or_below_all.cpu().numpy(),
            k,
            float(max_false.item()),
        )

    def row_log_sum_exp(self, logits: np.ndarray, *, threads: int | None) -> RowLogSumExp:
        self._threads(threads)
        n, k = logits.shape
        dtype = _torch_dtype(logits.dtype)
        parts: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        rows_per_chunk = max(1, self.chunk_elements // k)
        tiny = torch.finfo(torch.float64).tiny
        for r0 in range(0, n, rows_per_chunk):
            # Ascending values give ascending terms: the sum does not depend on the column order.
            ascending = torch.sort(_to_device(logits[r0 : r0 + rows_per_chunk], self.device, dtype), dim=1).values
            ascending = ascending.to(torch.float64)
            row_max = ascending[:, -1]
            rest = ascending[:, :-1]
            others = torch.exp(rest - row_max[:, None]).sum(dim=1)
            second = rest[:, -1]
            # Past a margin of ~708 nats the sum underflows: those rows' gap is taken around their second largest.
            around_second = (second - row_max) + torch.log(torch.exp(rest - second[:, None]).sum(dim=1))
            max_gap = torch.where(others < tiny, around_second, torch.log(others))
            parts.append((row_max, 1.0 + others, max_gap))
        maxima, sums, gaps = (torch.cat(column).cpu().numpy() for column in zip(*parts, strict=True))
        return RowLogSumExp(maxima, sums, gaps, k)


@dataclass(frozen=True)
class _RowStatsOnDevice:
    row_max: torch.Tensor
    sum_exp: torch.Tensor
    max_gap: torch.Tensor

    @classmethod
    def of(cls, stats: RowLogSumExp | None, device: torch.device) -> _RowStatsOnDevice:
        assert stats is not None
        return cls(*(torch.from_numpy(a).to(device) for a in (stats.row_max, stats.sum_exp, stats.max_gap)))

    def log_odds(self, scores: torch.Tensor) -> torch.Tensor:
        """z_j - logsumexp_{i != j} z_i for an n x w block of float64 logits, as ``backend.log_odds_tile``."""
        log_odds = scores - self.row_max[:, None]
        at_max = log_odds == 0.0
        log_lse_gap = torch.log(torch.where(at_max, 1.0, self.sum_exp[:, None] - torch.exp(log_odds)))
        log_lse_gap = torch.where(at_max, self.max_gap[:, None], log_lse_gap)
        return log_odds - log_lse_gap


def _ranked_block(
    block: torch.Tensor, labels: torch.Tensor, c0: int, *, bound: torch.Tensor | None = None
) -> list[RankedColumn]:
    """The ``RankedColumn``s of a w x n block of scores for classes c0..c0+w: sorted on the device, with
    each positive's counts of scores at or above it and above it read off its tie group, and its
    pairs undecided within ``2 * bound`` (none without a bound)."""
    width, n = block.shape
    device = block.device
    ordered, order = torch.sort(block, dim=1)
    index = torch.arange(n, device=device).expand(width, n)
    differs = ordered[:, 1:] != ordered[:, :-1]
    starts = torch.ones(width, n, dtype=torch.bool, device=device)
    starts[:, 1:] = differs
    ends = torch.ones(width, n, dtype=torch.bool, device=device)
    ends[:, :-1] = differs
    group_start = torch.cummax(torch.where(starts, index, 0), dim=1).values
    group_end = torch.flip(torch.cummin(torch.flip(torch.where(ends, index, n - 1), dims=[1]), dim=1).values, dims=[1])
    classes = torch.arange(c0, c0 + width, device=device)
    is_positive = labels[order] == classes[:, None]
    rows, places = is_positive.nonzero(as_tuple=True)  # by class, then ascending score
    counts = torch.bincount(rows, minlength=width)
    values = ordered[rows, places]
    undecided = (
        _undecided_pairs(ordered, values, rows, counts, bound).cpu().numpy()
        if bound is not None
        else np.zeros(width, np.int64)
    )
    host = {
        "values": values.cpu().numpy(),
        "at_least": (n - group_start[rows, places]).cpu().numpy(),
        "above": (n - 1 - group_end[rows, places]).cpu().numpy(),
        "undecided": undecided,
    }
    offsets = np.concatenate(([0], np.cumsum(counts.cpu().numpy())))
    columns = []
    for c in range(width):
        span = slice(offsets[c], offsets[c + 1])
        if offsets[c + 1] == offsets[c]:
            continue
        columns.append(
            RankedColumn(
                cls=c0 + c,
                n=n,
                sorted_positives=host["values"][span],
                at_least=host["at_least"][span],
                above=host["above"][span],
                undecided_pairs=int(host["undecided"][c]),
                sorted_scores=_fetch(ordered, c),
            )
        )
    return columns


def _fetch(ordered: torch.Tensor, row: int) -> Callable[[], np.ndarray]:
    return lambda: ordered[row].cpu().numpy()


def _undecided_pairs(
    ordered: torch.Tensor, values: torch.Tensor, rows: torch.Tensor, counts: torch.Tensor, bound: torch.Tensor
) -> torch.Tensor:
    """Per class: pairs of a positive and another example within 2 * bound of each other, as
    ``backend.undecided_pairs``."""
    if values.numel() == 0:
        return torch.zeros(ordered.shape[0], dtype=torch.int64, device=ordered.device)
    width = ordered.shape[0]
    # The positives of each class in one padded row (+inf after the last), so that one batched search serves all.
    most = int(counts.max())
    place = torch.arange(values.numel(), device=ordered.device) - (torch.cumsum(counts, 0) - counts)[rows]
    padded = torch.full((width, most), torch.inf, dtype=ordered.dtype, device=ordered.device)
    padded[rows, place] = values
    margin = 2 * bound[:, None]
    low, high = padded - margin, padded + margin
    others = torch.searchsorted(ordered, high, right=True) - torch.searchsorted(ordered, low) - 1
    other_positives = torch.searchsorted(padded, high, right=True) - torch.searchsorted(padded, low) - 1
    real = torch.arange(most, device=ordered.device)[None, :] < counts[:, None]
    zero = torch.zeros_like(others)
    return torch.where(real, others, zero).sum(dim=1) - torch.where(real, other_positives, zero).sum(dim=1) // 2
