"""The comparison table and its one-line summary."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from slcbench.compare.verdicts import Basis, Comparison, Verdict
from slcbench.results import RowKey

# Identity fields always shown in a row's label; the others only where rows differ in them.
_ALWAYS_SHOWN = ("benchmark", "arch", "classes")
_VERDICT_STYLE = {
    Verdict.ok: "",
    Verdict.regressed: "bold red",
    Verdict.improved: "green",
    Verdict.missing_in_new: "yellow",
    Verdict.new_only: "cyan",
    Verdict.not_comparable: "magenta",
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
    labels = {key: " ".join(_format_field(n, v) for n, v in key if n in _ALWAYS_SHOWN or n in varying) for key in keys}
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
        title=escape(f"{comparison.kind.description}: {comparison.baseline.path} -> {comparison.new.path}"),
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
