"""Judging two results files of the same kind row by row: the verdicts of ``slcbench compare``.

What is compared. On the ``ratio`` basis (the default) a speed row's time relative to k=1 in its own
run, which cancels the speed of the machine; on the ``time`` basis its time. The k=1 rows, whose
ratio is 1 by definition, and pytest-benchmark rows, which have no reference, compare on time. When
both files come from the same machine (equal ``ENVIRONMENT_FIELDS``), every row's time is judged as
well, so that a uniform slowdown is never hidden behind unchanged ratios.

How. The change is new / baseline - 1 (positive = slower). Where both rows carry raw samples (times,
or the ratios of A-B-B-A blocks) it is estimated with a confidence interval from all of them
(``slcbench.stats.change_interval``: Hodges-Lehmann on log times, Moses interval; distribution-free).
The intervals of all rows are simultaneous: each is taken at 1 - alpha / m for m judged values
(Bonferroni), so that unchanged code sees any row called regressed or improved with probability at
most alpha (``--false-alarm-rate``). Rows without raw samples (older files) fall back to comparing
two numbers, labelled ``point``.

Verdicts for a threshold t (a fraction):

* ``regressed``: slower beyond the threshold and significantly so (estimate > t, interval above 0);
  for a point comparison, change > t. Also a row that ran in the baseline but not in the new run
  (e.g. out of memory): a configuration that stopped working is the worst slowdown.
* ``improved``: the mirror image (estimate < -t, interval below 0).
* ``ok``: the whole interval lies within [-t, t] (a point: |change| <= t).
* ``inconclusive``: none of these: the noise, at this many samples, cannot tell (the note says about
  how many samples a side, or how much less noise, would decide it).
* ``not-comparable``: the baseline row did not run, or a compared value is missing, zero or not finite.
* ``missing-in-new``, ``new-only``: rows in one file only; reported, never dropped.

Differences that leave rows matched but make them less alike are warnings: another machine or
software (``ENVIRONMENT_FIELDS``), other ``TIMING_SETTINGS``, or another number of batches per
sample (which changes the IQR but not the median). Files of different kinds, and pairs with no row
in common, raise SlcbenchError.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from slcbench.compare.config import Basis
from slcbench.compare.files import ComparedRow, ResultsFile
from slcbench.errors import SlcbenchError
from slcbench.results import ENVIRONMENT_FIELDS, TIMING_SETTINGS, Interval, ResultsKind, RowKey, Status
from slcbench.stats import change_interval, samples_to_decide

_TOLERANCE = 1e-9  # 1.1 / 1.0 - 1 is 0.10000000000000009: "exactly 10% slower" passes at 10%


class Verdict(StrEnum):
    ok = "ok"
    regressed = "regressed"
    improved = "improved"
    inconclusive = "inconclusive"
    missing_in_new = "missing-in-new"
    new_only = "new-only"
    not_comparable = "not-comparable"


class Method(StrEnum):
    rounds = "rounds"  # several rounds a side: the interval is of the rounds' values
    samples = "samples"  # one run a side with raw samples: the interval is of the samples
    point = "point"  # one number a side (no raw samples): compared against the threshold only


@dataclass(frozen=True)
class Judgement:
    """One compared value of a row: the change, its interval where there is one, and the verdict."""

    basis: Basis
    method: Method
    baseline: float
    new: float
    change: float
    low: float | None
    high: float | None
    verdict: Verdict
    samples: int | None = None  # samples (or rounds) a side, the fewer of the two
    samples_to_decide: int | None = None  # samples (or rounds) a side that would decide an inconclusive row


@dataclass(frozen=True)
class RowComparison:
    key: RowKey
    verdict: Verdict
    judgements: tuple[Judgement, ...]  # the basis, which gives the verdict; then absolute time (one machine)
    baseline_time_ms: float | None
    new_time_ms: float | None
    note: str

    @property
    def main(self) -> Judgement | None:
        return self.judgements[0] if self.judgements else None

    def judged_on(self, basis: Basis) -> Judgement | None:
        return next((j for j in self.judgements if j.basis is basis), None)


@dataclass(frozen=True)
class Comparison:
    kind: ResultsKind
    baseline: ResultsFile
    new: ResultsFile
    max_regression: float  # threshold as a fraction (0.1 = 10%)
    alpha: float  # family-wise false-alarm rate
    confidence: float  # of each row's interval: 1 - alpha / judged values
    same_machine: bool
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
        slower = self.absolute_time_regressions()
        if slower:
            lines.append(
                f"one machine: the absolute time of {len(slower)} row(s) whose ratio to k=1 is not "
                f"regressed got slower beyond +{self.max_regression * 100:g}% (the whole model, not only "
                "its head, or the machine): see 'time (info)'"
            )
        return lines

    def absolute_time_regressions(self) -> tuple[RowComparison, ...]:
        """Rows judged on their ratio, not regressed there, whose absolute time regressed (files of one machine)."""
        return tuple(
            row
            for row in self.rows
            if row.verdict is not Verdict.regressed
            and len(row.judgements) > 1
            and row.judgements[1].verdict is Verdict.regressed
        )

    def failed(self, *, fail_on_missing: bool = False, fail_on_inconclusive: bool = False) -> bool:
        """A row regressed, or (when asked) a baseline row is missing from NEW or a row is inconclusive."""
        return (
            bool(self.with_verdict(Verdict.regressed))
            or (fail_on_missing and bool(self.with_verdict(Verdict.missing_in_new)))
            or (fail_on_inconclusive and bool(self.with_verdict(Verdict.inconclusive)))
        )


def _change(baseline: float | None, new: float | None) -> float | None:
    if baseline is None or new is None or baseline <= 0 or new <= 0:
        return None
    return new / baseline - 1.0


def interval_verdict(interval: Interval, threshold: float) -> Verdict:
    """The verdict of a change with its interval (see the module docstring)."""
    if interval.low is None or interval.high is None:
        return Verdict.inconclusive
    if interval.estimate > threshold + _TOLERANCE and interval.low > 0:
        return Verdict.regressed
    if interval.estimate < -threshold - _TOLERANCE and interval.high < 0:
        return Verdict.improved
    if interval.low >= -threshold - _TOLERANCE and interval.high <= threshold + _TOLERANCE:
        return Verdict.ok
    return Verdict.inconclusive


def point_verdict(change: float, threshold: float) -> Verdict:
    if change > threshold + _TOLERANCE:
        return Verdict.regressed
    if change < -threshold - _TOLERANCE:
        return Verdict.improved
    return Verdict.ok


def _samples_to_decide(interval: Interval, samples: int, threshold: float) -> int | None:
    """Samples a side that would shrink the interval enough to decide (None when none would)."""
    if interval.low is None or interval.high is None:
        return None
    half_width = (interval.high - interval.low) / 2
    distance = abs(interval.estimate)
    needed = threshold - distance if distance < threshold else distance
    return samples_to_decide(samples, half_width, needed)


def judge(basis: Basis, baseline: ComparedRow, new: ComparedRow, threshold: float, confidence: float) -> Judgement:
    """The change of one value between two rows: with an interval of the rounds' values where both sides
    have several rounds, else of the raw samples where both have them, else as two points."""
    base_value, new_value = (baseline.ratio, new.ratio) if basis is Basis.ratio else (baseline.time_ms, new.time_ms)
    change = _change(base_value, new_value)
    assert change is not None and base_value is not None and new_value is not None
    if basis is Basis.ratio:
        rounds, samples = (baseline.round_ratios, new.round_ratios), (baseline.ratio_samples, new.ratio_samples)
    else:
        rounds, samples = (baseline.round_times_ms, new.round_times_ms), (baseline.samples_ms, new.samples_ms)
    if len(rounds[0]) > 1 and len(rounds[1]) > 1:
        method, (baseline_values, new_values) = Method.rounds, rounds
    elif samples[0] and samples[1]:
        method, (baseline_values, new_values) = Method.samples, samples
    else:
        verdict = point_verdict(change, threshold)
        return Judgement(basis, Method.point, base_value, new_value, change, None, None, verdict)
    interval = change_interval(baseline_values, new_values, confidence)
    count = min(len(baseline_values), len(new_values))
    verdict = interval_verdict(interval, threshold)
    decide = _samples_to_decide(interval, count, threshold) if verdict is Verdict.inconclusive else None
    return Judgement(
        basis, method, base_value, new_value, interval.estimate, interval.low, interval.high, verdict, count, decide
    )


def _bases(baseline: ComparedRow, new: ComparedRow, basis: Basis, same_machine: bool) -> list[Basis]:
    """What a matched pair of rows is judged on: its ratio where asked and both carry one (the reference
    row's is 1 by definition), with its time beside it for information on one machine; else its time."""
    if basis is Basis.time or baseline.ratio is None or new.ratio is None:
        return [Basis.time]
    return [Basis.ratio, Basis.time] if same_machine else [Basis.ratio]


def compare_rows(
    baseline: ComparedRow, new: ComparedRow, bases: Sequence[Basis], threshold: float, confidence: float
) -> RowComparison:
    """The verdict for one matched pair of rows (see the module docstring for the rules)."""

    def result(verdict: Verdict, judgements: tuple[Judgement, ...] = (), note: str = "") -> RowComparison:
        return RowComparison(baseline.key, verdict, judgements, baseline.time_ms, new.time_ms, note)

    if baseline.status is not Status.ok:
        note = f"baseline: {baseline.status}" + (f"; new: {new.status}" if new.status is not Status.ok else "")
        return result(Verdict.not_comparable, note=note)
    if new.status is not Status.ok:
        detail = f" ({new.error})" if new.error else ""
        return result(Verdict.regressed, note=f"new run: {new.status}{detail}; baseline ran")
    judgements: list[Judgement] = []
    notes: list[str] = []
    if bases[0] is Basis.time and (baseline.ratio is not None) != (new.ratio is not None):
        notes.append("no reference ratio in one file; compared times")
    for basis in bases:
        values = (baseline.ratio, new.ratio) if basis is Basis.ratio else (baseline.time_ms, new.time_ms)
        if _change(*values) is None:
            return result(Verdict.not_comparable, tuple(judgements), f"{basis.value} is zero or missing")
        judgements.append(judge(basis, baseline, new, threshold, confidence))
    verdict = judgements[0].verdict
    if len(judgements) > 1 and judgements[1].verdict is Verdict.regressed and verdict is not Verdict.regressed:
        notes.append("absolute time regressed (one machine): the whole model or the machine got slower")
    if any(j.method is Method.point for j in judgements) and not baseline.reference:
        notes.append("no raw samples in one file: compared as points")
    blocks = (baseline.calls_per_sample, new.calls_per_sample)
    if None not in blocks and blocks[0] != blocks[1]:
        # Why: the IQR of means over blocks of n batches shrinks with n; only the medians compare.
        notes.append(f"batches/sample {blocks[0]} vs {blocks[1]}: IQRs not like for like")
    main = judgements[0]
    unit = "rounds" if main.method is Method.rounds else "samples"
    if verdict is Verdict.inconclusive and main.samples_to_decide is not None and main.samples:
        factor = math.sqrt(main.samples_to_decide / main.samples)
        notes.append(
            f"~{main.samples_to_decide} {unit} a side (now {main.samples}), or {factor:.1f}x less noise, would decide"
        )
    elif verdict is Verdict.inconclusive and main.method is not Method.point and main.low is None:
        notes.append(f"{main.samples} {unit} a side give no {100 * confidence:.4g}% interval")
    return result(verdict, tuple(judgements), "; ".join(notes))


def environment_differences(baseline: ResultsFile, new: ResultsFile) -> tuple[str, ...]:
    """``"field: old vs new"`` for each ENVIRONMENT_FIELDS entry recorded in both files that differs."""
    return tuple(
        f"{name}: {baseline.environment[name]} vs {new.environment[name]}"
        for name in ENVIRONMENT_FIELDS
        if name in baseline.environment
        and name in new.environment
        and baseline.environment[name] != new.environment[name]
    )


def _same_machine(baseline: ResultsFile, new: ResultsFile) -> bool:
    """Both files record the same device and software (every field both record agrees, and both record a device)."""
    recorded = set(baseline.environment) & set(new.environment)
    return "device_name" in recorded and not environment_differences(baseline, new)


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
    baseline: ResultsFile, new: ResultsFile, threshold: float, basis: Basis = Basis.ratio, alpha: float = 0.05
) -> Comparison:
    """Match the rows of two files of the same kind by identity and judge each pair.

    Rows come out in the baseline's order, then the new file's extra rows in its order.
    """
    if baseline.kind is not new.kind:
        raise SlcbenchError(
            f"cannot compare {baseline.kind.description} ({baseline.path}) with "
            f"{new.kind.description} ({new.path}): both files must be of the same kind"
        )
    if not (threshold >= 0 and math.isfinite(threshold)):
        raise SlcbenchError(f"the regression threshold must be a non-negative number, got {threshold}")
    new_by_key: Mapping[RowKey, ComparedRow] = {m.key: m for m in new.rows}
    base_keys = {m.key for m in baseline.rows}
    if base_keys.isdisjoint(new_by_key):
        raise SlcbenchError(
            f"no row of {new.path} matches a row of {baseline.path}: they measured different "
            f"configurations (e.g. another device, precision or batch size)"
        )
    same_machine = _same_machine(baseline, new)
    matched = [(m, new_by_key[m.key]) for m in baseline.rows if m.key in new_by_key]
    bases = {m.key: _bases(m, n, basis, same_machine) for m, n in matched}
    judged = sum(len(b) for b in bases.values())
    confidence = 1 - alpha / max(judged, 1)
    rows = []
    for m in baseline.rows:
        if m.key in new_by_key:
            rows.append(compare_rows(m, new_by_key[m.key], bases[m.key], threshold, confidence))
        else:
            rows.append(_unmatched(m, Verdict.missing_in_new, baseline_side=True))
    rows.extend(_unmatched(m, Verdict.new_only, baseline_side=False) for m in new.rows if m.key not in base_keys)
    return Comparison(
        kind=baseline.kind,
        baseline=baseline,
        new=new,
        max_regression=threshold,
        alpha=alpha,
        confidence=confidence,
        same_machine=same_machine,
        rows=tuple(rows),
        environment_differences=environment_differences(baseline, new),
        settings_differences=settings_differences(baseline, new),
    )


def _unmatched(m: ComparedRow, verdict: Verdict, baseline_side: bool) -> RowComparison:
    # Nothing is compared; the row's own time is kept so the report can still show it.
    return RowComparison(
        key=m.key,
        verdict=verdict,
        judgements=(),
        baseline_time_ms=m.time_ms if baseline_side else None,
        new_time_ms=None if baseline_side else m.time_ms,
        note="" if m.status is Status.ok else m.status.value,
    )
