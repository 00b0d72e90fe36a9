"""Rich tables and plots for people; files for machines are written through ``slcbench.io``."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, Callable, Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from slcbench.compare import KIND_NAMES, Basis, Comparison, RowKey, Verdict
from slcbench.errors import SlcbenchError
from slcbench.evaluation import EvaluationResult, precision_key
from slcbench.metrics import AuprcMethod, Ranking
from slcbench.paper import PAPER_TABLE_III_SECONDS, format_class_count

if TYPE_CHECKING:
    from slcbench.speed import SpeedConfig, SpeedRow  # speed imports torch; the tables need only the types

# ---- speed (issue 2) -------------------------------------------------------------------------



def _fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _fmt_speedup(value: float | None) -> str:
    return "—" if value is None else f"×{value:.2f}"


# IQR above this share of the median is flagged: the target for graph replay, where the
# spread is the GPU's own; launch-bound eager and CPU timings are judged more leniently (Timer: 10%).
SPREAD_TARGET_PCT = {"graph": 1.0, "eager": 5.0}


def _over_spread_target(row: "SpeedRow") -> bool:
    return row.iqr_pct is not None and row.iqr_pct > SPREAD_TARGET_PCT[row.timing]


def sampling_summary(config: "SpeedConfig") -> str:
    """How each row is sampled and warmed up, in one phrase for the run's header line."""
    batches, plan = config.protocol.batches, config.warmup_plan
    if config.min_sample_ms:
        samples = f"{batches} samples of ≥ {config.min_sample_ms:g} ms (batches unrolled in the graph)"
    else:
        samples = f"{batches} timed batches"
    warmup = [f"≥ {plan.calls} warm-up calls"] if plan.calls else []
    if plan.min_s:
        warmup.append(f"≥ {plan.min_s:g} s")
    if plan.settle_pct is not None:
        warmup.append(f"until steady within {plan.settle_pct:g}% (≤ {plan.max_s:g} s)")
    return f"{samples} ({', '.join(warmup) or 'warm-up: the untimed first call of each row'})"


def spread_notes(rows: Sequence["SpeedRow"], max_warmup_s: float) -> list[str]:
    """Warnings for rows whose spread is above target or whose warm-up never reached a steady time."""
    notes = []
    noisy = [r for r in rows if r.status == "ok" and _over_spread_target(r)]
    if noisy:
        targets = " / ".join(f"{SPREAD_TARGET_PCT[t]:g}% ({t})" for t in sorted({r.timing for r in noisy}))
        notes.append(f"{len(noisy)} row(s) have an IQR above {targets} of their median (yellow)")
    unsettled = [r for r in rows if r.status == "ok" and r.settled is False]
    if unsettled:
        notes.append(f"{len(unsettled)} row(s) did not reach a steady time per call within {max_warmup_s:g} s of "
                     "warm-up ('settled' is false in the results); their times may drift")
    return notes


def speed_table(rows: Sequence["SpeedRow"], *, title: str) -> Table:
    """Table III layout: one row per (architecture, classes, head), the paper's value beside ours.

    Columns that no row fills (the paper's values for other models, GPU-only figures on a CPU run)
    are left out so the table fits a terminal.
    """
    columns = [  # header, value getter
        ("ms/batch", lambda r: _fmt(r.batch_ms)),
        ("ms/ex", lambda r: _fmt(r.example_ms, 4)),
        ("IQR %", lambda r: "—" if r.iqr_pct is None else f"[yellow]{r.iqr_pct:.2f}[/]" if _over_spread_target(r) else f"{r.iqr_pct:.2f}"),
        ("batches/sample", lambda r: "—" if r.calls_per_sample is None else str(r.calls_per_sample)),
        ("speedup", lambda r: _fmt_speedup(r.speedup)),
        ("paper ms/ex", lambda r: _fmt(r.paper_example_ms, 1)),
        ("paper speedup", lambda r: _fmt_speedup(r.paper_speedup)),
        ("head ms", lambda r: _fmt(r.head_ms)),
        ("head floor ms", lambda r: _fmt(r.head_floor_ms)),
        ("peak MiB", lambda r: _fmt(r.peak_mem_mib, 0)),
    ]
    shown_when = {  # optional columns: shown when some row needs them
        "paper ms/ex": lambda r: r.paper_example_ms is not None,
        "paper speedup": lambda r: r.paper_speedup is not None,
        "head floor ms": lambda r: r.head_floor_ms is not None,
        "peak MiB": lambda r: r.peak_mem_mib is not None,
        # a sample that timed a block of batches: its IQR is then that of block means
        "batches/sample": lambda r: (r.calls_per_sample or 1) > 1,
    }
    columns = [(h, get) for h, get in columns if h not in shown_when or any(map(shown_when[h], rows))]
    table = Table(title=title, title_justify="left")
    table.add_column("arch", justify="left")
    table.add_column("k", justify="right")
    table.add_column("head", justify="left")
    for header, _ in columns:
        table.add_column(header, justify="right")
    previous_arch = None
    for row in rows:
        if previous_arch is not None and row.arch != previous_arch:
            table.add_section()
        previous_arch = row.arch
        cells = [row.arch if row.head == "full" else "", format_class_count(row.classes), row.head]
        if row.status != "ok":
            label = "[bold red]OOM[/]" if row.status == "oom" else "[bold red]failed[/]"
            table.add_row(*cells, label, *["—"] * (len(columns) - 1))
        else:
            table.add_row(*cells, *(get(row) for _, get in columns))
    return table


def require_matplotlib() -> None:
    """Fail early (before a sweep of minutes) when --plot cannot be honoured."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise SlcbenchError("--plot needs matplotlib: pip install 'slcbench[plot]'") from None


def plot_speed(rows: Sequence["SpeedRow"], path: Path) -> None:
    """The paper's Fig. 1: forward time per example against the number of classes, per architecture.

    Solid lines are this run; dashed lines of the same colour are the paper's Table III (Titan X).
    Uses matplotlib's object API (no pyplot, so no global backend is changed).
    """
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.8), dpi=130)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    archs = list(dict.fromkeys(r.arch for r in rows))
    for index, arch in enumerate(archs):
        color = f"C{index % 10}"
        ok = [r for r in rows if r.arch == arch and r.head == "full" and r.status == "ok"]
        if ok:
            ax.plot([r.classes for r in ok], [r.example_ms for r in ok], "o-", color=color, label=arch)
        paper = PAPER_TABLE_III_SECONDS.get(arch)
        if paper:
            ks = sorted(paper)
            ax.plot(ks, [paper[k] * 1e3 for k in ks], "x--", color=color, alpha=0.6, label=f"{arch} (paper)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("number of classes k (top-layer units)")
    ax.set_ylabel("forward time per example [ms]")
    first = rows[0] if rows else None
    if first is not None:
        ax.set_title(f"Forward time vs classes ({first.device}, {first.precision}, {first.timing}, batch {first.batch_size})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path)

# ---- evaluate (issue 3) ----------------------------------------------------------------------

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
    row_names, folder = without_shared_folder([r.name for r in ordered])
    caption = f"AUPRC = {auprc_name}; Precision@r = {precision_name}; classes without positives are left out of the means"
    table = Table(
        title="SLC metrics: 1 - value, lower is better (PoLS margin: higher is better, > 0 means PoLS holds)",
        caption=caption + (f"; files in {escape(folder)}" if folder else ""),
    )
    table.add_column("logits", overflow="fold")
    table.add_column("classes\nevaluated", justify="right")
    for column in columns:
        table.add_column(column.header, justify="right")
    for position, (result, name, row) in enumerate(zip(ordered, row_names, shown)):
        if baseline and position == len(baseline):
            table.add_section()
        cells = [f"[bold]{v:.3f}[/bold]" if v == b else f"{v:.3f}" for v, b in zip(row, best)]
        table.add_row(escape(name), f"{result.classes_evaluated}/{result.n_classes}", *cells)
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

# Identity fields always shown in a row's label; the others only where rows differ in them.
_ALWAYS_SHOWN = ("benchmark", "arch", "classes")
_VERDICT_STYLE = {
    Verdict.ok: "", Verdict.regressed: "bold red", Verdict.improved: "green",
    Verdict.missing_in_new: "yellow", Verdict.new_only: "cyan", Verdict.not_comparable: "magenta",
}


def format_ms(value: float | None) -> str:
    """A time given in milliseconds, in ms, µs or ns, with 3 significant digits (``2.80 ms``, ``87.5 µs``)."""
    if value is None:
        return "-"
    scale, unit = (1.0, "ms") if value >= 1.0 else (1e-3, "µs") if value >= 1e-3 else (1e-6, "ns")
    scaled = value / scale
    return f"{scaled:.0f} {unit}" if scaled >= 100 else f"{scaled:#.3g} {unit}"


def format_change(change: float | None) -> str:
    return "-" if change is None else f"{change * 100:+.1f}%"


def _format_compared(value: float | None, basis: Basis | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}x" if basis is Basis.ratio else format_ms(value)


def _format_field(name: str, value: Any) -> str:
    if name in ("benchmark", "arch"):
        return str(value)
    if name == "classes":
        return f"k={value}"
    return f"{name}={value}"


def row_labels(keys: list[RowKey]) -> tuple[dict[RowKey, str], str]:
    """Short labels for rows (fields every row shares are left out) and the shared fields as one line."""
    names = [name for name, _ in keys[0]] if keys else []
    varying = {name for name in names if len({dict(key).get(name) for key in keys}) > 1}
    labels = {
        key: " ".join(_format_field(n, v) for n, v in key if n in _ALWAYS_SHOWN or n in varying) for key in keys
    }
    common = ", ".join(
        _format_field(n, v) for n, v in (keys[0] if keys else ()) if n not in _ALWAYS_SHOWN and n not in varying
    )
    return labels, common


def comparison_summary(comparison: Comparison, labels: dict[RowKey, str] | None = None) -> str:
    """One line: how many rows regressed (naming them), and the counts of every other verdict."""
    labels = labels or row_labels([row.key for row in comparison.rows])[0]
    matched = sum(row.verdict not in (Verdict.missing_in_new, Verdict.new_only) for row in comparison.rows)
    regressed = comparison.with_verdict(Verdict.regressed)
    parts = [f"{len(regressed)} of {matched} matched rows regressed beyond +{comparison.max_regression * 100:g}%"]
    if regressed:
        parts[0] += ": " + "; ".join(labels[row.key] for row in regressed)
    for verdict in (Verdict.improved, Verdict.not_comparable, Verdict.missing_in_new, Verdict.new_only):
        count = len(comparison.with_verdict(verdict))
        if count:
            parts.append(f"{count} {verdict.value}")
    return ", ".join(parts)


def _format_time_pair(before: float | None, after: float | None) -> str:
    """``2.84 -> 2.93 ms`` (one unit when both share it), ``4.34 ms -> -`` when one side is missing."""
    first, second = format_ms(before), format_ms(after)
    if first != "-" and second != "-" and first.split()[1] == second.split()[1]:
        return f"{first.split()[0]} -> {second}"
    return f"{first} -> {second}"


def comparison_table(comparison: Comparison, labels: dict[RowKey, str], common: str) -> Table:
    """Baseline, new, change and verdict per row; times shown beside ratios for information."""
    caption = f"threshold +{comparison.max_regression * 100:g}%; change = new / baseline - 1 (positive = slower)"
    if any(row.basis is Basis.ratio for row in comparison.rows):
        caption += "; a value with x is the batch time relative to k=1 in the same run"
    if common:
        caption = f"all rows: {common}\n{caption}"
    # Names such as test_x[k=1] would be read as rich markup: every text from a file is escaped.
    table = Table(
        title=escape(f"{KIND_NAMES[comparison.kind]}: {comparison.baseline.path} -> {comparison.new.path}"),
        caption=escape(caption),
    )
    table.add_column("row", overflow="fold")
    table.add_column("baseline", justify="right")
    table.add_column("new", justify="right")
    table.add_column("change", justify="right", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    table.add_column("time (info)", justify="right")
    table.add_column("note", overflow="fold")
    for row in comparison.rows:
        time_info = _format_time_pair(row.baseline_time_ms, row.new_time_ms)
        if row.time_change is not None and row.basis is Basis.ratio:
            time_info += f" ({format_change(row.time_change)})"
        style = _VERDICT_STYLE[row.verdict]
        table.add_row(
            escape(labels[row.key]),
            _format_compared(row.baseline, row.basis),
            _format_compared(row.new, row.basis),
            format_change(row.change),
            f"[{style}]{row.verdict.value}[/]" if style else row.verdict.value,
            time_info,
            escape(row.note),
        )
    return table


def render_comparison(comparison: Comparison, console: Console) -> str:
    """Print the table; return the one-line summary (the caller prints it where it belongs)."""
    labels, common = row_labels([row.key for row in comparison.rows])
    console.print(comparison_table(comparison, labels, common))
    return comparison_summary(comparison, labels)


def environment_table(environment: dict[str, Any]) -> Table:
    table = Table(title="slcbench environment", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for name, value in environment.items():
        table.add_row(escape(name), "-" if value is None else escape(str(value)))
    return table


def environment_json(environment: dict[str, Any]) -> str:
    return json.dumps(environment, indent=2)
