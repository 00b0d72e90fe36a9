"""The comparison as people and CI jobs read it: the table, the one-line summary, JSON and Markdown."""

from __future__ import annotations

from typing import Any

from slcbench.class_counts import format_class_count, format_class_counts_in
from slcbench.compare.config import Basis
from slcbench.compare.verdicts import Comparison, Judgement, Method, RowComparison, Verdict
from slcbench.console import ColumnSpec, FittedTable, shown
from slcbench.results import RowKey

# Identity fields always shown in a row's label; the others only where rows differ in them.
_ALWAYS_SHOWN = ("benchmark", "arch", "classes")
_VERDICT_STYLE = {
    Verdict.ok: "",
    Verdict.regressed: "bold red",
    Verdict.improved: "green",
    Verdict.inconclusive: "yellow",
    Verdict.missing_in_new: "yellow",
    Verdict.new_only: "cyan",
    Verdict.not_comparable: "magenta",
}
COMPARE_KIND = "slcbench.compare"
TABLE_ROWS = 200  # a table longer than this helps no one (and takes minutes to render); the JSON has all
COMPARE_SCHEMA_VERSION = 1


def format_ms(value: float | None) -> str:
    """A time given in milliseconds, in ms, µs or ns, with 3 significant digits (``2.80 ms``, ``87.5 µs``)."""
    if value is None:
        return "-"
    scale, unit = (1.0, "ms") if value >= 1.0 else (1e-3, "µs") if value >= 1e-3 else (1e-6, "ns")
    scaled = value / scale
    return f"{scaled:.0f} {unit}" if scaled >= 100 else f"{scaled:#.3g} {unit}"


def format_change(change: float | None) -> str:
    return "-" if change is None else f"{change * 100:+.1f}%"


def format_interval(judgement: Judgement | None) -> str:
    """``[-1.2, +3.4]%`` for an interval, ``point`` for a point comparison, ``none`` where none could be had."""
    if judgement is None:
        return "-"
    if judgement.method is Method.point:
        return "point"
    if judgement.low is None or judgement.high is None:
        return "none"
    return f"[{judgement.low * 100:+.1f}, {judgement.high * 100:+.1f}]%"


def _format_value(value: float | None, basis: Basis) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}x" if basis is Basis.ratio else format_ms(value)


def _format_field(name: str, value: Any) -> str:
    if name in ("benchmark", "arch"):
        return format_class_counts_in(str(value))
    if name == "classes":
        return f"k={format_class_count(value)}" if isinstance(value, int) else format_class_counts_in(f"k={value}")
    return format_class_counts_in(f"{name}={value}")


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
    for verdict in (
        Verdict.inconclusive,
        Verdict.improved,
        Verdict.not_comparable,
        Verdict.missing_in_new,
        Verdict.new_only,
    ):
        count = len(comparison.with_verdict(verdict))
        if count:
            parts.append(f"{count} {verdict.value}")
    slower = comparison.absolute_time_regressions()
    if slower:
        parts.append(f"{len(slower)} slower in absolute time (one machine)")
    return ", ".join(parts)


def _format_time_pair(before: float | None, after: float | None) -> str:
    """``2.84 -> 2.93 ms`` (one unit when both share it), ``4.34 ms -> -`` when one side is missing."""
    first, second = format_ms(before), format_ms(after)
    if first != "-" and second != "-" and first.split()[1] == second.split()[1]:
        return f"{first.split()[0]} -> {second}"
    return f"{first} -> {second}"


def _time_info(row: RowComparison) -> str:
    info = _format_time_pair(row.baseline_time_ms, row.new_time_ms)
    time = row.judged_on(Basis.time)
    if time is not None and row.main is not time:
        info += f" ({format_change(time.change)} {format_interval(time)})"
    return info


def caption(comparison: Comparison, common: str = "") -> str:
    """What the numbers mean: threshold, change, interval level, bases."""
    text = (
        f"threshold ±{comparison.max_regression * 100:g}%; change = new / baseline - 1 (positive = slower); "
        f"intervals {100 * comparison.confidence:.4g}% each, so that all hold together at "
        f"{100 * (1 - comparison.alpha):g}% (Hodges-Lehmann change, Moses interval)"
    )
    if any(row.judged_on(Basis.ratio) for row in comparison.rows):
        text += "; a value with x is the batch time relative to k=1 in the same run"
    if comparison.same_machine and any(row.judged_on(Basis.ratio) for row in comparison.rows):
        text += "; one machine: absolute times are judged too, for information"
    if comparison.baseline.rounds > 1 or comparison.new.rounds > 1:
        text += f"; rounds: {comparison.baseline.rounds} vs {comparison.new.rounds}"
    return f"all rows: {common}\n{text}" if common else text


def shown_rows(comparison: Comparison, limit: int = TABLE_ROWS) -> tuple[RowComparison, ...]:
    """The rows a table shows: all of them up to ``limit``; beyond it, those whose verdict is not ``ok``
    first, in the files' order, up to ``limit`` (every row stays in the JSON)."""
    if len(comparison.rows) <= limit:
        return comparison.rows
    attention = [row for row in comparison.rows if row.verdict is not Verdict.ok]
    rest = [row for row in comparison.rows if row.verdict is Verdict.ok]
    return tuple((attention + rest)[:limit])


COMPARE_MORE = "--wide, or --json"
# Row, values, change and verdict are always shown; the interval, the note and the times go first at a narrow console.
_COMPARE_COLUMNS = [
    ColumnSpec("row", justify="left", flexible=True),
    ColumnSpec("baseline"),
    ColumnSpec("new"),
    ColumnSpec("change"),
    ColumnSpec("interval", priority=1),
    ColumnSpec("verdict", justify="left"),
    ColumnSpec("time (info)", priority=3),
    ColumnSpec("note", justify="left", priority=2, flexible=True),
]


def comparison_table(
    comparison: Comparison, labels: dict[RowKey, str], common: str, *, wide: bool = False
) -> FittedTable:
    """Baseline, new, change with its interval, and verdict per row; times shown for information. Columns
    that do not fit the console are left out (``wide``: none)."""
    rows = shown_rows(comparison)
    text = caption(comparison, common)
    if len(rows) < len(comparison.rows):
        text += f"\nshowing {len(rows)} of {len(comparison.rows)} rows, those not ok first; --json writes every row"
    # Names such as test_x[k=1] would be read as rich markup: every text from a file is escaped.
    table = FittedTable(
        _COMPARE_COLUMNS,
        wide=wide,
        more=COMPARE_MORE,
        title=shown(f"{comparison.kind.description}: {comparison.baseline.path} -> {comparison.new.path}"),
        caption="\n".join(shown(line) for line in text.split("\n")),
    )
    for row in rows:
        main = row.main
        style = _VERDICT_STYLE[row.verdict]
        table.add_row(
            shown(labels[row.key]),
            _format_value(main.baseline, main.basis) if main else "-",
            _format_value(main.new, main.basis) if main else "-",
            format_change(main.change) if main else "-",
            format_interval(main),
            f"[{style}]{row.verdict.value}[/]" if style else row.verdict.value,
            _time_info(row),
            shown(row.note),
        )
    return table


def _judgement_json(judgement: Judgement) -> dict[str, Any]:
    return {
        "basis": judgement.basis.value,
        "method": judgement.method.value,
        "baseline": judgement.baseline,
        "new": judgement.new,
        "change": judgement.change,
        "ci": [judgement.low, judgement.high] if judgement.low is not None else None,
        "verdict": judgement.verdict.value,
        "samples": judgement.samples,
        "samples_to_decide": judgement.samples_to_decide,
    }


def comparison_document(comparison: Comparison, *, passed: bool) -> dict[str, Any]:
    """The ``--json`` document: the settings of the judgement and one object per row."""
    labels, _ = row_labels([row.key for row in comparison.rows])
    rows = []
    for row in comparison.rows:
        main = row.main
        rows.append(
            {
                "name": labels[row.key],
                "key": dict(row.key),
                "verdict": row.verdict.value,
                "change": main.change if main else None,
                "ci": [main.low, main.high] if main is not None and main.low is not None else None,
                "basis": main.basis.value if main else None,
                "method": main.method.value if main else None,
                "judgements": [_judgement_json(j) for j in row.judgements],
                "baseline_time_ms": row.baseline_time_ms,
                "new_time_ms": row.new_time_ms,
                "note": row.note,
            }
        )
    return {
        "kind": COMPARE_KIND,
        "schema_version": COMPARE_SCHEMA_VERSION,
        "baseline": str(comparison.baseline.path),
        "new": str(comparison.new.path),
        "files": comparison.kind.value,
        "threshold": comparison.max_regression,
        "false_alarm_rate": comparison.alpha,
        "confidence_per_row": comparison.confidence,
        "same_machine": comparison.same_machine,
        "environment_differences": list(comparison.environment_differences),
        "settings_differences": list(comparison.settings_differences),
        "passed": passed,
        "summary": comparison_summary(comparison, labels),
        "rows": rows,
    }


def _markdown_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def comparison_markdown(comparison: Comparison, *, passed: bool) -> str:
    """A summary for a CI job page or a pull-request comment: the verdict line, then the rows worth a look."""
    labels, common = row_labels([row.key for row in comparison.rows])
    lines = [f"**{'PASS' if passed else 'FAIL'}**: {_markdown_cell(comparison_summary(comparison, labels))}", ""]
    lines += ["| row | verdict | change | interval | baseline | new | note |", "|---|---|---:|---:|---:|---:|---|"]
    for row in comparison.rows:
        main = row.main
        cells = [
            labels[row.key],
            f"**{row.verdict.value}**" if row.verdict is Verdict.regressed else row.verdict.value,
            format_change(main.change) if main else "-",
            format_interval(main),
            _format_value(main.baseline, main.basis) if main else format_ms(row.baseline_time_ms),
            _format_value(main.new, main.basis) if main else format_ms(row.new_time_ms),
            row.note,
        ]
        lines.append("| " + " | ".join(_markdown_cell(c) for c in cells) + " |")
    lines += ["", f"_{_markdown_cell(caption(comparison, common))}_", ""]
    return "\n".join(lines)
