"""The SLC metrics table (the paper's Tables I and II): 1 - value per metric column, best in bold."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePath

from rich.table import Table

from slcbench.console import shown
from slcbench.evaluate.evaluation import RANKINGS, EvaluationResult
from slcbench.evaluate.metrics import SET_METRICS, AuprcMethod, Ranking

BLOCK_TITLES = {Ranking.slc: "SLC", Ranking.all_logits: "all logits"}


@dataclass(frozen=True)
class _TableColumn:
    header: str
    value: Callable[[EvaluationResult], float]
    complement: bool  # shown as 1 - value (lower is better), as in the paper's tables


def _summary_of(block: str, key: str) -> Callable[[EvaluationResult], float]:
    return lambda result: result.blocks()[block][key]


def _table_columns(result: EvaluationResult) -> list[_TableColumn]:
    """One table column per labelled metric column: each ranking's, then the set metrics'."""
    labelled = [
        (BLOCK_TITLES[ranking], ranking.value, column)
        for ranking in RANKINGS
        for column in result.ranking(ranking).columns
        if column.label is not None
    ]
    labelled += [("PoLS", "pols", metric.column) for metric in SET_METRICS.values()]
    return [
        _TableColumn(
            f"{title}\n{'1-' if column.complement else ''}{column.label}",
            _summary_of(block, column.key),
            column.complement,
        )
        for title, block, column in labelled
    ]


def mean_relative_improvement(baseline: Sequence[float], others: Sequence[float]) -> float:
    """(mean over baseline rows - mean over other rows) / mean over baseline rows, on 1 - metric values.

    The paper's Table I row (non-aligned losses as baseline); NaN when the baseline mean is 0.
    """
    baseline_mean = sum(baseline) / len(baseline)
    return (baseline_mean - sum(others) / len(others)) / baseline_mean if baseline_mean else math.nan


def without_shared_folder(names: Sequence[str]) -> tuple[list[str], str]:
    """The names less the leading folders they all share, and that folder ("" when none).

    Rows named by long paths that differ only at the end would otherwise be cut to the same text.
    """
    parts = [PurePath(name).parts for name in names]
    shared = 0
    while all(len(p) > shared + 1 for p in parts) and len({p[shared] for p in parts}) == 1:
        shared += 1
    if shared == 0:
        return list(names), ""
    return [str(PurePath(*p[shared:])) for p in parts], str(PurePath(*parts[0][:shared]))


def evaluation_table(results: Sequence[EvaluationResult], *, baseline_names: Sequence[str] = ()) -> Table:
    """One row per result with 1 - metric (lower is better; PoLS margin raw, higher is better).

    The best value of each column is bold. With ``baseline_names`` the baseline rows come first, then
    the others, then a "mean relative improvement" row (see ``mean_relative_improvement``).
    """
    if not results:
        raise ValueError("no results to tabulate")
    first = results[0]
    if any(r.settings != first.settings for r in results):
        raise ValueError("results were computed with different metric settings")
    columns = _table_columns(first)
    baseline = [r for r in results if r.name in baseline_names]
    others = [r for r in results if r.name not in baseline_names]
    ordered = baseline + others
    values = [[1 - c.value(r) if c.complement else c.value(r) for c in columns] for r in ordered]
    best = [(min if c.complement else max)(row[i] for row in values) for i, c in enumerate(columns)]

    auprc_name = "average precision" if first.settings.auprc_method is AuprcMethod.average_precision else "trapezoid"
    precision_name = "interpolated" if first.settings.interpolated else "first reach"
    row_names, folder = without_shared_folder([r.name for r in ordered])
    caption = (
        f"AUPRC = {auprc_name}; Precision@r = {precision_name}; classes without positives are left out of the means"
    )
    table = Table(
        title="SLC metrics: 1 - value, lower is better (PoLS margin: higher is better, > 0 means PoLS holds)",
        caption=caption + (f"; files in {shown(folder)}" if folder else ""),
    )
    table.add_column("logits", overflow="fold")
    table.add_column("classes\nevaluated", justify="right")
    for column in columns:
        table.add_column(column.header, justify="right")
    for position, (result, name, row) in enumerate(zip(ordered, row_names, values, strict=False)):
        if baseline and position == len(baseline):
            table.add_section()
        cells = [f"[bold]{v:.3f}[/bold]" if v == b else f"{v:.3f}" for v, b in zip(row, best, strict=False)]
        table.add_row(shown(name), f"{result.classes_evaluated}/{result.n_classes}", *cells)
    if baseline and others:
        table.add_section()
        improvement = []
        for i, column in enumerate(columns):
            if column.complement:
                value = mean_relative_improvement(
                    [row[i] for row in values[: len(baseline)]], [row[i] for row in values[len(baseline) :]]
                )
                improvement.append(f"{100 * value:.1f}%" if math.isfinite(value) else "n/a")
            else:
                improvement.append("")
        table.add_row("mean relative improvement", "", *improvement)
    return table
