"""Judging two results files of the same kind row by row: the verdicts of ``slcbench compare``.

The compared value is either the reference ratio (``Basis.ratio``, the default, used when both rows
carry it) or the median time (``Basis.time``). Ratios cancel the speed of the machine, which drifts
between CI runs; absolute times are still reported beside them, for information.

Change is ``new / baseline - 1``: for both times and reference ratios a larger value means slower,
so a positive change is a slowdown. A matched row's verdict, for a threshold t (a fraction):

* ``regressed``: change > t, or the row ran in the baseline (status "ok") but not in the new run
  (e.g. out of memory): a configuration that stopped working is the worst slowdown;
* ``improved``: change < -t;
* ``ok``: otherwise (|change| <= t);
* ``not-comparable``: the baseline row did not run, or a compared value is missing, zero or not finite.

Rows present in only one file are ``missing-in-new`` or ``new-only``; they are reported, never dropped.
Differences that leave rows matched but make them less alike are warnings, not verdicts: the
``ENVIRONMENT_FIELDS`` (another GPU, driver or torch), the speed ``TIMING_SETTINGS`` (warm-up,
sample length, cuDNN autotuning, ...), and, per row, a different number of batches per sample
(which changes the IQR but not the median). Files of different kinds, and pairs with no row in
common, raise SlcbenchError.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from slcbench.compare.files import ComparedRow, ResultsFile, load_results
from slcbench.errors import SlcbenchError
from slcbench.results import ENVIRONMENT_FIELDS, TIMING_SETTINGS, ResultsKind, RowKey, Status

_TOLERANCE = 1e-9


class Basis(StrEnum):
    """What is compared: the in-run reference ratio (where both rows carry one) or the median time."""

    ratio = "ratio"
    time = "time"


class Verdict(StrEnum):
    ok = "ok"
    regressed = "regressed"
    improved = "improved"
    missing_in_new = "missing-in-new"
    new_only = "new-only"
    not_comparable = "not-comparable"


@dataclass(frozen=True)
class RowComparison:
    key: RowKey
    verdict: Verdict
    basis: Basis | None  # what ``baseline``/``new``/``change`` are; None when nothing was compared
    baseline: float | None
    new: float | None
    change: float | None  # new / baseline - 1 (positive = slower)
    baseline_time_ms: float | None
    new_time_ms: float | None
    time_change: float | None  # change of the median time, reported for information
    note: str


@dataclass(frozen=True)
class Comparison:
    kind: ResultsKind
    baseline: ResultsFile
    new: ResultsFile
    max_regression: float  # threshold as a fraction (0.1 = 10%)
    rows: tuple[RowComparison, ...]
    environment_differences: tuple[str, ...]  # "field: baseline value vs new value"
    settings_differences: tuple[str, ...] = ()  # likewise for TIMING_SETTINGS

    def with_verdict(self, verdict: Verdict) -> tuple[RowComparison, ...]:
        return tuple(row for row in self.rows if row.verdict is verdict)

    def warnings(self) -> list[str]:
        """One line each when the files' environments or timing settings differ."""
        lines = []
        for what, differences, consequence in (
            ("environments", self.environment_differences, "comparisons across machines are suspect"),
            ("timing settings", self.settings_differences, "times and spreads may not be like for like"),
        ):
            if differences:
                lines.append(f"the runs' {what} differ ({'; '.join(differences)}): {consequence}")
        return lines

    def failed(self, *, fail_on_missing: bool = False) -> bool:
        """A row regressed, or (with ``fail_on_missing``) a baseline row is missing from the new file."""
        missing = bool(self.with_verdict(Verdict.missing_in_new))
        return bool(self.with_verdict(Verdict.regressed)) or (fail_on_missing and missing)


@dataclass(frozen=True)
class CompareConfig:
    """What ``slcbench compare`` is asked: two files, the threshold (``"10%"``), the basis, the exit rule."""

    baseline: Path
    new: Path
    max_regression: str = "10%"
    basis: Basis = Basis.ratio
    fail_on_missing: bool = False

    def __post_init__(self) -> None:
        parse_max_regression(self.max_regression)

    @property
    def threshold(self) -> float:
        return parse_max_regression(self.max_regression)


# ---- threshold -------------------------------------------------------------------------------

# An optional minus (refused with its own message), a decimal, a percent sign; ASCII digits: not '１０%'.
_PERCENT = re.compile(r"^\s*(-?)\s*(\d+(?:\.\d*)?|\.\d+)\s*%\s*$", re.ASCII)


def parse_max_regression(text: str) -> float:
    """``"10%"`` -> 0.1. The percent sign is required.

    A bare number is rejected because it is ambiguous: ``10`` reads as 10% here but as 10 seconds in
    pytest-benchmark's ``--benchmark-compare-fail``, and ``0.1`` could mean 10% or 0.1%. Any
    non-negative decimal percentage is accepted (``0%`` fails on any slowdown; ``150%`` allows 2.5x);
    exponents such as ``1e3%`` are not.
    """
    match = _PERCENT.match(text)
    if match is not None and match.group(1):
        raise SlcbenchError(f"--max-regression must not be negative (0% fails on any slowdown); got {text!r}")
    if match is None:
        hint = ""
        try:
            number = float(text)
        except ValueError:
            pass
        else:
            if math.isfinite(number) and number >= 0:
                hint = f" (did you mean {number:g}% or {number * 100:g}%?)"
        raise SlcbenchError(
            f"--max-regression must be a percentage with a % sign, e.g. 10% or 2.5%; got {text!r}{hint}"
        )
    return float(match.group(2)) / 100.0


# ---- comparing -------------------------------------------------------------------------------


def _change(baseline: float | None, new: float | None) -> float | None:
    if baseline is None or new is None or baseline <= 0 or new <= 0:
        return None
    return new / baseline - 1.0


def compare_rows(
    baseline: ComparedRow, new: ComparedRow, max_regression: float, basis: Basis = Basis.ratio
) -> RowComparison:
    """The verdict for one matched pair of rows (see the module docstring for the rules)."""
    time_change = _change(baseline.time_ms, new.time_ms)

    def result(
        verdict: Verdict,
        used: Basis | None,
        base_value: float | None,
        new_value: float | None,
        change: float | None,
        note: str = "",
    ) -> RowComparison:
        return RowComparison(
            key=baseline.key,
            verdict=verdict,
            basis=used,
            baseline=base_value,
            new=new_value,
            change=change,
            baseline_time_ms=baseline.time_ms,
            new_time_ms=new.time_ms,
            time_change=time_change,
            note=note,
        )

    if baseline.status is not Status.ok:
        note = f"baseline: {baseline.status}" + (f"; new: {new.status}" if new.status is not Status.ok else "")
        return result(Verdict.not_comparable, None, None, None, None, note)
    if new.status is not Status.ok:
        detail = f" ({new.error})" if new.error else ""
        return result(Verdict.regressed, None, None, None, None, f"new run: {new.status}{detail}; baseline ran")

    use_ratio = basis is Basis.ratio and baseline.ratio is not None and new.ratio is not None
    used = Basis.ratio if use_ratio else Basis.time
    base_value, new_value = (baseline.ratio, new.ratio) if use_ratio else (baseline.time_ms, new.time_ms)
    notes = []
    if basis is Basis.ratio and not use_ratio and (baseline.ratio is not None or new.ratio is not None):
        notes.append("no reference ratio in one file; compared times")
    change = _change(base_value, new_value)
    if change is None:
        return result(Verdict.not_comparable, used, base_value, new_value, None, f"{used.value} is zero or missing")
    spreads = [s for s in (baseline.spread_pct, new.spread_pct) if s is not None]
    if spreads and max(spreads) > 100.0 * max_regression:
        # Why: a threshold inside the run-to-run noise makes the verdict a coin toss.
        notes.append(f"noisy: IQR {max(spreads):.1f}% exceeds the threshold")
    blocks = (baseline.calls_per_sample, new.calls_per_sample)
    if None not in blocks and blocks[0] != blocks[1]:
        # Why: the IQR of means over blocks of n batches shrinks with n; only the medians compare.
        notes.append(f"batches/sample {blocks[0]} vs {blocks[1]}: IQRs not like for like")
    # Why the tolerance: 1.1 / 1.0 - 1 is 0.10000000000000009, and "exactly 10% slower" must pass at 10%.
    if change > max_regression + _TOLERANCE:
        verdict = Verdict.regressed
    elif change < -max_regression - _TOLERANCE:
        verdict = Verdict.improved
    else:
        verdict = Verdict.ok
    return result(verdict, used, base_value, new_value, change, "; ".join(notes))


def environment_differences(baseline: ResultsFile, new: ResultsFile) -> tuple[str, ...]:
    """``"field: old vs new"`` for each ENVIRONMENT_FIELDS entry recorded in both files that differs."""
    return tuple(
        f"{name}: {baseline.environment[name]} vs {new.environment[name]}"
        for name in ENVIRONMENT_FIELDS
        if name in baseline.environment
        and name in new.environment
        and baseline.environment[name] != new.environment[name]
    )


def settings_differences(baseline: ResultsFile, new: ResultsFile) -> tuple[str, ...]:
    """``"field: old vs new"`` for each TIMING_SETTINGS entry that differs or that one file lacks.

    A setting recorded by one file only (a baseline older than the setting, say) is reported as
    "not recorded": the older run cannot be assumed to have used today's default.
    """

    def shown(settings: dict[str, Any], name: str) -> Any:
        return settings.get(name, "not recorded")

    return tuple(
        f"{name}: {shown(baseline.settings, name)} vs {shown(new.settings, name)}"
        for name in TIMING_SETTINGS
        if (name in baseline.settings or name in new.settings)
        and shown(baseline.settings, name) != shown(new.settings, name)
    )


def compare_results(
    baseline: ResultsFile, new: ResultsFile, max_regression: float, basis: Basis = Basis.ratio
) -> Comparison:
    """Match the rows of two files of the same kind by identity and judge each pair.

    Rows come out in the baseline's order, then the new file's extra rows in its order.
    """
    if baseline.kind != new.kind:
        raise SlcbenchError(
            f"cannot compare {baseline.kind.description} ({baseline.path}) with "
            f"{new.kind.description} ({new.path}): both files must be of the same kind"
        )
    if not (max_regression >= 0 and math.isfinite(max_regression)):
        raise SlcbenchError(f"the regression threshold must be a non-negative number, got {max_regression}")
    new_by_key: Mapping[RowKey, ComparedRow] = {m.key: m for m in new.rows}
    base_keys = {m.key for m in baseline.rows}
    if base_keys.isdisjoint(new_by_key):
        raise SlcbenchError(
            f"no row of {new.path} matches a row of {baseline.path}: they measured different "
            f"configurations (e.g. another device, precision or batch size)"
        )
    rows = []
    for m in baseline.rows:
        if m.key in new_by_key:
            rows.append(compare_rows(m, new_by_key[m.key], max_regression, basis))
        else:
            rows.append(_unmatched(m, Verdict.missing_in_new, baseline_side=True))
    rows.extend(_unmatched(m, Verdict.new_only, baseline_side=False) for m in new.rows if m.key not in base_keys)
    return Comparison(
        kind=baseline.kind,
        baseline=baseline,
        new=new,
        max_regression=max_regression,
        rows=tuple(rows),
        environment_differences=environment_differences(baseline, new),
        settings_differences=settings_differences(baseline, new),
    )


def _unmatched(m: ComparedRow, verdict: Verdict, baseline_side: bool) -> RowComparison:
    # Nothing is compared; the row's own time is kept so the report can still show it.
    return RowComparison(
        key=m.key,
        verdict=verdict,
        basis=None,
        baseline=None,
        new=None,
        change=None,
        baseline_time_ms=m.time_ms if baseline_side else None,
        new_time_ms=None if baseline_side else m.time_ms,
        time_change=None,
        note="" if m.status is Status.ok else m.status.value,
    )


def compare_files(config: CompareConfig) -> Comparison:
    """``load_results`` both files, then ``compare_results``."""
    return compare_results(load_results(config.baseline), load_results(config.new), config.threshold, config.basis)
