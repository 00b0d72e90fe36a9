"""The SLC metrics tables: one row per file with 1 - value per metric column, best in bold (the
paper's Table I), and with baseline files the paper's two summary rows: Table I's mean relative
improvement and Table II's mean of the PoLS runs beside the baselines with all logits."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from slcbench.console import ColumnSpec, FittedTable, shown
from slcbench.evaluate.blocks import BLOCKS, Block
from slcbench.evaluate.evaluation import EvaluationResult
from slcbench.evaluate.metrics import AuprcMethod, Column

NOT_DEFINED = "—"  # a summary cell the paper does not define


@dataclass(frozen=True)
class _TableColumn:
    block: Block
    column: Column

    @property
    def header(self) -> str:
        return f"{self.block.title}\n{'1-' if self.column.complement else ''}{self.column.label}"

    def value(self, result: EvaluationResult) -> float:
        return result.blocks()[self.block.key][self.column.key]

    def shown(self, result: EvaluationResult) -> float:
        """As the table shows it: 1 - value for complemented columns (lower is better), else raw."""
        value = self.value(result)
        return 1 - value if self.column.complement else value

    @property
    def best(self) -> Callable[[Sequence[float]], float]:
        """The best shown value: the lowest for 1 - value and for raw lower-is-better columns."""
        return min if self.column.complement or not self.column.higher_is_better else max


def _table_columns(result: EvaluationResult) -> list[_TableColumn]:
    """One table column per labelled column of each computed block, in registration order."""
    return [
        _TableColumn(BLOCKS[key], column)
        for key in result.block_values
        for column in BLOCKS[key].columns(result.settings)
        if column.label is not None
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


def _split(
    results: Sequence[EvaluationResult], baseline_names: Sequence[str]
) -> tuple[list[EvaluationResult], list[EvaluationResult]]:
    if not results:
        raise ValueError("no results to tabulate")
    first = results[0]
    if any(r.settings != first.settings for r in results):
        raise ValueError("results were computed with different metric settings")
    if any(list(r.block_values) != list(first.block_values) for r in results):
        raise ValueError("results hold different blocks")
    return [r for r in results if r.name in baseline_names], [r for r in results if r.name not in baseline_names]


@dataclass(frozen=True)
class PaperRows:
    """The paper's summary rows for a run with baseline files (the non-PoLS-aligned ones).

    ``improvement``: Table I's mean relative improvement of the other rows over the baseline rows,
    on 1 - value, for the columns the paper defines it for (the single-logit block's); ``pols_mean``:
    Table II's "mean PoLS methods", the mean raw single-logit value over the other rows;
    ``all_logits``: Table II's "CE with all logits", each baseline file's all-logits values (raw).
    """

    improvement: dict[str, float]
    pols_mean: dict[str, float]
    all_logits: dict[str, dict[str, float]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean_relative_improvement": {"slc": self.improvement},
            "mean_of_pols_runs": {"slc": self.pols_mean},
            "baseline_with_all_logits": self.all_logits,
        }


def paper_rows(results: Sequence[EvaluationResult], baseline_names: Sequence[str]) -> PaperRows | None:
    """The paper's summary rows, or None without both baseline and other files (or without the slc block)."""
    baseline, others = _split(results, baseline_names)
    if not baseline or not others or "slc" not in results[0].block_values:
        return None
    improvement, pols_mean = {}, {}
    for column in _table_columns(results[0]):
        if not column.block.improvement_row:
            continue
        key = column.column.key
        improvement[key] = mean_relative_improvement(
            [column.shown(r) for r in baseline], [column.shown(r) for r in others]
        )
        pols_mean[key] = sum(column.value(r) for r in others) / len(others)
    all_logits = {r.name: r.blocks()["all_logits"] for r in baseline} if "all_logits" in results[0].block_values else {}
    return PaperRows(improvement, pols_mean, all_logits)


def _title(columns: Sequence[_TableColumn]) -> str:
    notes = {"margin": ", > 0 means PoLS holds", "mean_abs_gap": ", the mean of |z_y - log p_y|"}
    raw = [
        f"{c.column.label}: {'higher' if c.column.higher_is_better else 'lower'} is better{notes.get(c.column.key, '')}"
        for c in columns
        if not c.column.complement
    ]
    return "SLC metrics: 1 - value, lower is better" + (f" (raw values: {'; '.join(raw)})" if raw else "")


def _caption(result: EvaluationResult, folder: str, improvement_row: bool) -> str:
    settings = result.settings
    auprc_name = "average precision" if settings.auprc_method is AuprcMethod.average_precision else "trapezoid"
    precision_name = "interpolated" if settings.interpolated else "first reach"
    caption = (
        f"AUPRC = {auprc_name}; Precision@r = {precision_name}; classes without positives are left out of the means"
    )
    if improvement_row:
        caption += (
            f"; mean relative improvement: the paper's Table I row, for the SLC columns ({NOT_DEFINED}: not defined)"
        )
    return caption + (f"; files in {shown(folder)}" if folder else "")


def _cell(value: float, best: float, percent: bool = False) -> str:
    if not math.isfinite(value):
        return "n/a"
    text = f"{100 * value:.1f}%" if percent else f"{value:.3f}"
    return f"[bold]{text}[/bold]" if value == best else text


# Where a column may be left out at a narrow console: the SLC block never; the others block by block.
_BLOCK_PRIORITY = {"slc": 0, "all_logits": 1, "pols": 2, "self_normalization": 3}
CLASSES_PRIORITY = 4
EVALUATE_MORE = "--wide, or --json"


def evaluation_table(
    results: Sequence[EvaluationResult],
    *,
    baseline_names: Sequence[str] = (),
    wide: bool = False,
    more: str = EVALUATE_MORE,
) -> FittedTable:
    """One row per result with 1 - metric (lower is better; raw columns as their header says).

    The best value of each column is bold. With ``baseline_names`` the baseline rows come first, then
    the others, then the paper's "mean relative improvement" row (see ``mean_relative_improvement``)
    in the columns the paper defines it for, and a dash elsewhere. Columns that do not fit the console
    are left out, the SLC block's last (``wide``: none; ``more`` says where they are).
    """
    baseline, others = _split(results, baseline_names)
    ordered = baseline + others
    columns = _table_columns(ordered[0])
    values = [[c.shown(r) for c in columns] for r in ordered]
    best = [c.best([row[i] for row in values]) for i, c in enumerate(columns)]
    rows = paper_rows(results, baseline_names)
    row_names, folder = without_shared_folder([r.name for r in ordered])
    specs = [
        ColumnSpec("logits", justify="left", flexible=True),
        ColumnSpec("classes\nevaluated", priority=CLASSES_PRIORITY),
        *(ColumnSpec(c.header, priority=_BLOCK_PRIORITY.get(c.block.key, CLASSES_PRIORITY)) for c in columns),
    ]
    table = FittedTable(
        specs, wide=wide, more=more, title=_title(columns), caption=_caption(ordered[0], folder, rows is not None)
    )
    for position, (result, name, row) in enumerate(zip(ordered, row_names, values, strict=True)):
        if baseline and position == len(baseline):
            table.add_section()
        cells = [_cell(v, b) for v, b in zip(row, best, strict=True)]
        table.add_row(shown(name), f"{result.classes_evaluated}/{result.n_classes}", *cells)
    if rows is not None:
        table.add_section()
        improvement = [
            _cell(rows.improvement[c.column.key], math.nan, percent=True)
            if c.column.key in rows.improvement and c.block.improvement_row
            else NOT_DEFINED
            for c in columns
        ]
        table.add_row("mean relative improvement", "", *improvement)
    return table


def table_ii(
    results: Sequence[EvaluationResult], *, baseline_names: Sequence[str] = (), wide: bool = False
) -> FittedTable | None:
    """The paper's Table II: the mean of the PoLS runs' single-logit metrics beside each baseline
    file's all-logits metrics (1 - value); None without baseline and other files or without both blocks."""
    rows = paper_rows(results, baseline_names)
    if rows is None or not rows.all_logits:
        return None
    columns = [c for c in _table_columns(results[0]) if c.block.key == "slc"]
    specs = [ColumnSpec("method", justify="left", flexible=True)]
    specs += [ColumnSpec(f"1-{column.column.label}") for column in columns]
    table = FittedTable(
        specs,
        wide=wide,
        title="Single logit vs all logits (the paper's Table II): 1 - value, lower is better",
        caption="PoLS runs: the files not given with --baseline; the baselines' all-logits values rank by softmax",
    )
    names, _ = without_shared_folder(list(rows.all_logits))
    lines = [("mean of PoLS runs, single logit", rows.pols_mean)] + [
        (f"{shown(name)}, all logits", values) for name, values in zip(names, rows.all_logits.values(), strict=True)
    ]
    for label, values in lines:
        table.add_row(label, *(f"{1 - values[c.column.key]:.3f}" for c in columns))
    return table
