"""The blocks of ``slcbench evaluate``: groups of metrics computed together, each registered in ``BLOCKS``.

A block has its key in the JSON (``all_logits``), the name ``--blocks`` takes (``all-logits``), its
title in the table and its ``Column``s (from the metric registries of ``slcbench.evaluate.metrics``);
``compute`` scores one file's logits (a ``Scoring``). The JSON, the per-class CSV, the table and
``train``'s summary all list the selected blocks in registration order, so a new block is one
registration here, and a new metric one registration in ``metrics.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from slcbench.errors import SlcbenchError
from slcbench.evaluate.backend import Backend, Ranking, RowLogSumExp
from slcbench.evaluate.metrics import (
    NUMPY,
    SELF_NORMALIZATION_METRICS,
    SET_METRICS,
    UNDECIDED_PAIRS,
    ClassMetrics,
    Column,
    MetricSettings,
    SetMetrics,
    class_columns,
    class_metrics,
    pols_metrics,
    self_normalization_metrics,
)
from slcbench.registry import Registry

BlockValues = ClassMetrics | SetMetrics


@dataclass
class Scoring:
    """One file's validated logits and labels, and how to score them; the row sums that the
    all-logits and self-normalization blocks share are computed once, by the first that needs them."""

    logits: np.ndarray
    labels: np.ndarray
    settings: MetricSettings = field(default_factory=MetricSettings)
    threads: int | None = None
    backend: Backend = NUMPY

    @cached_property
    def row_stats(self) -> RowLogSumExp:
        return self.backend.row_log_sum_exp(self.logits, threads=self.threads)

    def ranked(self, ranking: Ranking) -> ClassMetrics:
        needs_row_sums = ranking is Ranking.all_logits and self.logits.shape[1] > 2
        return class_metrics(
            self.logits,
            self.labels,
            ranking=ranking,
            recalls=self.settings.recalls,
            auprc_method=self.settings.auprc_method,
            interpolated=self.settings.interpolated,
            threads=self.threads,
            backend=self.backend,
            row_stats=self.row_stats if needs_row_sums else None,
        )


@dataclass(frozen=True)
class Block:
    """A group of metrics computed together (see the module's description).

    Parameters
    ----------
    key : str
        Its key in the JSON and the per-class CSV's ``ranking`` column.
    option : str
        Its name for ``--blocks`` (the key is accepted too).
    title : str
        Its columns' first header line in the table.
    columns : callable
        The values it produces, for the metric settings.
    compute : callable
        Its values for one file.
    improvement_row : bool
        Whether the paper's Table I defines the "mean relative improvement" for its columns.
    """

    key: str
    option: str
    title: str
    columns: Callable[[MetricSettings], tuple[Column, ...]]
    compute: Callable[[Scoring], BlockValues]
    improvement_row: bool = False


BLOCKS: Registry[Block] = Registry("block")
BLOCKS.register(
    "slc",
    Block("slc", "slc", "SLC", class_columns, lambda scoring: scoring.ranked(Ranking.slc), improvement_row=True),
)
BLOCKS.register(
    "all_logits",
    Block(
        "all_logits",
        "all-logits",
        "all logits",
        lambda settings: (*class_columns(settings), Column(UNDECIDED_PAIRS, None, complement=False)),
        lambda scoring: scoring.ranked(Ranking.all_logits),
    ),
)
BLOCKS.register(
    "pols",
    Block(
        "pols",
        "pols",
        "PoLS",
        lambda settings: tuple(metric.column for metric in SET_METRICS.values()),
        lambda scoring: pols_metrics(scoring.logits, scoring.labels, threads=scoring.threads, backend=scoring.backend),
    ),
)
BLOCKS.register(
    "self_normalization",
    Block(
        "self_normalization",
        "self-norm",
        "self-norm",
        lambda settings: tuple(metric.column for metric in SELF_NORMALIZATION_METRICS.values()),
        lambda scoring: self_normalization_metrics(scoring.logits, row_stats=scoring.row_stats),
    ),
)


def block_keys(names: Iterable[str] | None = None) -> tuple[str, ...]:
    """The keys of the blocks named (by ``--blocks`` name or key), in registration order; all when None.

    Raises SlcbenchError for an unknown name (listing the choices) or an empty list.
    """
    if names is None:
        return BLOCKS.names()
    by_name = {name: block.key for block in BLOCKS.values() for name in (block.option, block.key)}
    wanted = set()
    for name in names:
        if name not in by_name:
            choices = ", ".join(block.option for block in BLOCKS.values())
            raise SlcbenchError(f"unknown block {name!r} for --blocks; choose from: {choices} (default: all)")
        wanted.add(by_name[name])
    if not wanted:
        raise SlcbenchError("--blocks is empty; name at least one of: " + ", ".join(b.option for b in BLOCKS.values()))
    return tuple(key for key in BLOCKS.names() if key in wanted)
