"""Rich tables and plots for people; files for machines are written through ``slcbench.io``."""

from __future__ import annotations

# ---- speed (issue 2) -------------------------------------------------------------------------

# ---- evaluate (issue 3) ----------------------------------------------------------------------
# Imports live in this region so that each feature's section merges on its own.
import math  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Callable, Sequence  # noqa: E402

from rich.table import Table  # noqa: E402

from slcbench.evaluation import EvaluationResult, precision_key  # noqa: E402
from slcbench.metrics import AuprcMethod, Ranking  # noqa: E402


@dataclass(frozen=True)
class _EvaluationColumn:
    header: str
    value: Callable[[EvaluationResult], float]
    one_minus: bool  # shown as 1 - value (lower is better), as in the paper's tables


def _evaluation_columns(recalls: Sequence[float]) -> list[_EvaluationColumn]:
    columns = []
    for ranking, label in ((Ranking.slc, "SLC"), (Ranking.all_logits, "all logits")):
        keys = [("auprc", "AUPRC")] + [(precision_key(r), f"P@{r:g}") for r in recalls]
        for key, short in keys:
            columns.append(
                _EvaluationColumn(f"{label}\n1-{short}", lambda res, rk=ranking, k=key: res.ranking_summary(rk)[k], True)
            )
    columns += [
        _EvaluationColumn("PoLS\n1-pair AUROC", lambda res: res.pols.pair_auroc, True),
        _EvaluationColumn("PoLS\n1-pooled AUPRC", lambda res: res.pols.pooled_auprc, True),
        _EvaluationColumn("PoLS\nmargin", lambda res: res.pols.margin, False),
    ]
    return columns


def mean_relative_improvement(baseline: Sequence[float], others: Sequence[float]) -> float:
    """(mean over baseline rows - mean over other rows) / mean over baseline rows, on 1 - metric values.

    The paper's Table I row (non-aligned losses as baseline); NaN when the baseline mean is 0.
    """
    baseline_mean = sum(baseline) / len(baseline)
    return (baseline_mean - sum(others) / len(others)) / baseline_mean if baseline_mean else math.nan


def evaluation_table(results: Sequence[EvaluationResult], *, baseline_names: Sequence[str] = ()) -> Table:
    """One row per result with 1 - metric (lower is better; PoLS margin raw, higher is better).

    The best value of each column is bold. With ``baseline_names`` the baseline rows come first, then
    the others, then a "mean relative improvement" row (see ``mean_relative_improvement``).
    """
    if not results:
        raise ValueError("no results to tabulate")
    first = results[0]
    if any(r.recalls != first.recalls or r.slc.auprc_method != first.slc.auprc_method for r in results):
        raise ValueError("results were computed with different metric settings")
    columns = _evaluation_columns(first.recalls)
    baseline = [r for r in results if r.name in baseline_names]
    others = [r for r in results if r.name not in baseline_names]
    ordered = baseline + others
    shown = [[1 - c.value(r) if c.one_minus else c.value(r) for c in columns] for r in ordered]
    best = [(min if c.one_minus else max)(row[i] for row in shown) for i, c in enumerate(columns)]

    auprc_name = "average precision" if first.slc.auprc_method is AuprcMethod.average_precision else "trapezoid"
    precision_name = "interpolated" if first.slc.interpolated else "first reach"
    table = Table(
        title="SLC metrics: 1 - value, lower is better (PoLS margin: higher is better, > 0 means PoLS holds)",
        caption=f"AUPRC = {auprc_name}; Precision@r = {precision_name}; classes without positives are left out of the means",
    )
    table.add_column("logits")
    table.add_column("classes\nevaluated", justify="right")
    for column in columns:
        table.add_column(column.header, justify="right")
    for position, (result, row) in enumerate(zip(ordered, shown)):
        if baseline and position == len(baseline):
            table.add_section()
        cells = [f"[bold]{v:.3f}[/bold]" if v == b else f"{v:.3f}" for v, b in zip(row, best)]
        table.add_row(result.name, f"{result.classes_evaluated}/{result.n_classes}", *cells)
    if baseline and others:
        table.add_section()
        improvement = []
        for i, column in enumerate(columns):
            if column.one_minus:
                value = mean_relative_improvement([row[i] for row in shown[: len(baseline)]], [row[i] for row in shown[len(baseline) :]])
                improvement.append(f"{100 * value:.1f}%" if math.isfinite(value) else "n/a")
            else:
                improvement.append("")
        table.add_row("mean relative improvement", "", *improvement)
    return table


# ---- compare (issue 5) -----------------------------------------------------------------------
