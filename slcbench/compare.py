"""Compare two benchmark results files and decide, row by row, whether the new run regressed.

Two kinds of file are understood, and both files must be of the same kind:

* ``slcbench speed`` JSON (``"kind": "slcbench.speed"``, schema version 1). A row is identified by
  ``SPEED_ROW_IDENTITY``. Its time is ``batch_ms`` (median time per batch), its spread ``iqr_pct``
  and its in-run reference ``speedup`` = batch_ms(row) / batch_ms(k=1, same arch and settings).
* pytest-benchmark JSON (``pytest --benchmark-json FILE``). A row is identified by ``fullname``;
  its time is ``stats.median`` (seconds, stored here in milliseconds) and its spread
  ``stats.iqr / stats.median``. There is no in-run reference, so rows are always compared on time.

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
(which changes the IQR but not the median).
Unreadable files, unknown kinds, files of different kinds, empty files and file pairs with no row in
common raise SlcbenchError.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Mapping

from slcbench.errors import SlcbenchError

KIND_SPEED = "slcbench.speed"
KIND_PYTEST_BENCHMARK = "pytest-benchmark"
KIND_NAMES = {KIND_SPEED: "slcbench speed JSON", KIND_PYTEST_BENCHMARK: "pytest-benchmark JSON"}
SPEED_SCHEMA_VERSION = 1

# The configuration that makes two speed rows "the same measurement" (status and timings excluded).
SPEED_ROW_IDENTITY = (
    "arch", "classes", "head", "precision", "timing", "channels_last", "compiled", "batch_size", "device",
)
# Environment fields whose difference makes a comparison suspect (a warning, not an error).
ENVIRONMENT_FIELDS = ("device_name", "driver", "cuda_runtime", "torch", "python")
# Speed settings that change times or spreads without being part of a row's identity: a difference
# is a warning, because the rows still measure the same model (a longer warm-up does not change what
# the forward pass computes), but their times or IQRs are no longer like for like.
TIMING_SETTINGS = (
    "batches", "warmup", "min_warmup_s", "settle_pct", "max_warmup_s", "min_sample_ms",
    "cudnn_benchmark", "tf32_matmul", "cast", "input", "l2_cache",
)

STATUS_OK = "ok"
_TOLERANCE = 1e-9


class Basis(str, Enum):
    """What is compared: the in-run reference ratio (where both rows carry one) or the median time."""

    ratio = "ratio"
    time = "time"


class Verdict(str, Enum):
    ok = "ok"
    regressed = "regressed"
    improved = "improved"
    missing_in_new = "missing-in-new"
    new_only = "new-only"
    not_comparable = "not-comparable"


RowKey = tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Measurement:
    """One row of a results file, reduced to what a comparison needs."""

    key: RowKey  # identity fields and their values, in a fixed order
    status: str  # "ok" when it ran; otherwise e.g. "oom" or "failed"
    error: str | None
    time_ms: float | None  # median time of the timed unit (a batch for speed, one call for pytest-benchmark)
    spread_pct: float | None  # IQR as a percentage of the median
    ratio: float | None  # time relative to the in-run reference, or None where the file carries none
    calls_per_sample: int | None = None  # batches averaged per sample (speed rows); None where unknown


@dataclass(frozen=True)
class ResultsFile:
    path: Path
    kind: str  # KIND_SPEED or KIND_PYTEST_BENCHMARK
    environment: dict[str, Any]  # ENVIRONMENT_FIELDS that the file records
    measurements: tuple[Measurement, ...]
    settings: dict[str, Any] = field(default_factory=dict)  # TIMING_SETTINGS of a speed file; {} otherwise


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
    kind: str
    baseline: ResultsFile
    new: ResultsFile
    max_regression: float  # threshold as a fraction (0.1 = 10%)
    rows: tuple[RowComparison, ...]
    environment_differences: tuple[str, ...]  # "field: baseline value vs new value"
    settings_differences: tuple[str, ...] = ()  # likewise for TIMING_SETTINGS

    def with_verdict(self, verdict: Verdict) -> tuple[RowComparison, ...]:
        return tuple(row for row in self.rows if row.verdict is verdict)


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


# ---- loading ---------------------------------------------------------------------------------


def load_results(path: Path | str) -> ResultsFile:
    """Read and validate one results file; SlcbenchError (naming the file) when it cannot be used."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except IsADirectoryError:
        raise SlcbenchError(f"{path} is a folder, not a results file") from None
    except OSError as exc:
        raise SlcbenchError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise SlcbenchError(f"{path} is not a text file (expected JSON)") from None
    if not text.strip():
        raise SlcbenchError(f"{path} is empty")
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SlcbenchError(f"{path} is not JSON ({exc.msg} at line {exc.lineno})") from None
    except (ValueError, RecursionError) as exc:  # a 5000-digit number, or arrays nested 100,000 deep
        raise SlcbenchError(f"{path} is not JSON that slcbench can read ({type(exc).__name__})") from None
    if isinstance(payload, dict) and payload.get("kind") == KIND_SPEED:
        return _load_speed(path, payload)
    if isinstance(payload, dict) and "kind" not in payload and isinstance(payload.get("benchmarks"), list) \
            and "machine_info" in payload:
        return _load_pytest_benchmark(path, payload)
    found = f"kind {payload['kind']!r}" if isinstance(payload, dict) and "kind" in payload else "no known kind"
    raise SlcbenchError(
        f"{path} has {found}: expected slcbench speed JSON (\"kind\": \"{KIND_SPEED}\") "
        f"or pytest-benchmark JSON (pytest --benchmark-json)"
    )


def _number(value: Any) -> float | None:
    """A finite float, or None for null, NaN, infinities and non-numbers (bool is not a number here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        value = float(value)
    except OverflowError:  # an integer of hundreds of digits
        return None
    return value if math.isfinite(value) else None


def _object(payload: dict[str, Any], name: str) -> dict[str, Any]:
    """``payload[name]`` when it is a JSON object; {} when absent or malformed (those blocks are optional)."""
    value = payload.get(name)
    return value if isinstance(value, dict) else {}


def _recorded_environment(environment: dict[str, Any]) -> dict[str, Any]:
    """The ENVIRONMENT_FIELDS that ``environment`` records (a null counts as not recorded)."""
    return {k: environment[k] for k in ENVIRONMENT_FIELDS if environment.get(k) is not None}


def _check_unique(path: Path, measurements: list[Measurement], describe) -> None:
    seen: set[RowKey] = set()
    for m in measurements:
        if m.key in seen:
            raise SlcbenchError(f"{path} has two rows for {describe(m.key)}; cannot tell which to compare")
        seen.add(m.key)


def _load_speed(path: Path, payload: dict[str, Any]) -> ResultsFile:
    version = payload.get("schema_version")
    if version != SPEED_SCHEMA_VERSION:
        raise SlcbenchError(
            f"{path} has speed schema_version {version!r}; this slcbench reads version {SPEED_SCHEMA_VERSION}"
        )
    rows = payload.get("rows")
    if not isinstance(rows, list):
        raise SlcbenchError(f"{path} has no \"rows\" list")
    if not rows:
        raise SlcbenchError(f"{path} has no rows: nothing to compare")
    measurements = []
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise SlcbenchError(f"{path}: row {index} is not an object")
        absent = [name for name in (*SPEED_ROW_IDENTITY, "status") if name not in row]
        if absent:
            raise SlcbenchError(f"{path}: row {index} lacks {', '.join(absent)}")
        odd = [name for name in SPEED_ROW_IDENTITY if not isinstance(row[name], (str, int, float, bool))]
        if odd:  # a list or object could not identify a row (and cannot be hashed)
            raise SlcbenchError(f"{path}: row {index} has a non-scalar {', '.join(odd)}")
        status = str(row["status"])
        time_ms = _number(row.get("batch_ms"))
        if status == STATUS_OK and (time_ms is None or time_ms <= 0):
            raise SlcbenchError(f"{path}: row {index} has status ok but no positive batch_ms")
        measurements.append(Measurement(
            key=tuple((name, row[name]) for name in SPEED_ROW_IDENTITY),
            status=status,
            error=row.get("error"),
            time_ms=time_ms,
            spread_pct=_number(row.get("iqr_pct")),
            ratio=_number(row.get("speedup")),
            calls_per_sample=_calls_per_sample(row),
        ))
    _check_unique(path, measurements, lambda key: ", ".join(f"{k}={v}" for k, v in key))
    environment, settings = _object(payload, "environment"), _object(payload, "settings")
    return ResultsFile(
        path=path,
        kind=KIND_SPEED,
        environment=_recorded_environment(environment),
        measurements=tuple(measurements),
        settings={k: settings[k] for k in TIMING_SETTINGS if k in settings},
    )


def _calls_per_sample(row: dict[str, Any]) -> int | None:
    # Files written before the field existed timed one batch per sample, so absent means 1.
    value = row.get("calls_per_sample", 1)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _load_pytest_benchmark(path: Path, payload: dict[str, Any]) -> ResultsFile:
    benchmarks = payload["benchmarks"]
    if not benchmarks:
        raise SlcbenchError(f"{path} holds no benchmarks (were they skipped or disabled?)")
    measurements = []
    for index, bench in enumerate(benchmarks):
        name = bench.get("fullname") if isinstance(bench, dict) else None
        stats = bench.get("stats") if isinstance(bench, dict) else None
        if not isinstance(name, str) or not isinstance(stats, dict):
            raise SlcbenchError(f"{path}: benchmark {index} lacks \"fullname\" or \"stats\"")
        median = _number(stats.get("median"))
        if median is None or median <= 0:
            raise SlcbenchError(f"{path}: benchmark {name} has no positive stats.median")
        iqr = _number(stats.get("iqr"))
        measurements.append(Measurement(
            key=(("benchmark", name),),
            status=STATUS_OK,
            error=None,
            time_ms=median * 1e3,
            spread_pct=None if iqr is None else 100.0 * iqr / median,
            ratio=None,
        ))
    _check_unique(path, measurements, lambda key: key[0][1])
    machine = _object(payload, "machine_info")
    # tests/benchmarks/conftest.py stores slcbench's own environment (torch, device) in machine_info;
    # a plain pytest-benchmark file only knows the CPU and Python.
    own = machine.get("slcbench_environment")
    environment = dict(own) if isinstance(own, dict) else {}
    cpu = machine.get("cpu")
    if "device_name" not in environment and isinstance(cpu, dict) and cpu.get("brand_raw"):
        environment["device_name"] = cpu["brand_raw"]
    environment.setdefault("python", machine.get("python_version"))
    return ResultsFile(
        path=path,
        kind=KIND_PYTEST_BENCHMARK,
        environment=_recorded_environment(environment),
        measurements=tuple(measurements),
    )


# ---- comparing -------------------------------------------------------------------------------


def _change(baseline: float | None, new: float | None) -> float | None:
    if baseline is None or new is None or baseline <= 0 or new <= 0:
        return None
    return new / baseline - 1.0


def compare_rows(
    baseline: Measurement, new: Measurement, max_regression: float, basis: Basis = Basis.ratio
) -> RowComparison:
    """The verdict for one matched pair of rows (see the module docstring for the rules)."""
    time_change = _change(baseline.time_ms, new.time_ms)

    def result(verdict, used, base_value, new_value, change, note=""):
        return RowComparison(
            key=baseline.key, verdict=verdict, basis=used, baseline=base_value, new=new_value, change=change,
            baseline_time_ms=baseline.time_ms, new_time_ms=new.time_ms, time_change=time_change, note=note,
        )

    if baseline.status != STATUS_OK:
        note = f"baseline: {baseline.status}" + (f"; new: {new.status}" if new.status != STATUS_OK else "")
        return result(Verdict.not_comparable, None, None, None, None, note)
    if new.status != STATUS_OK:
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
        if name in baseline.environment and name in new.environment
        and baseline.environment[name] != new.environment[name]
    )


def settings_differences(baseline: ResultsFile, new: ResultsFile) -> tuple[str, ...]:
    """``"field: old vs new"`` for each TIMING_SETTINGS entry that differs or that one file lacks.

    A setting recorded by one file only (a baseline older than the setting, say) is reported as
    "not recorded": the older run cannot be assumed to have used today's default.
    """
    def shown(settings: dict[str, Any], name: str) -> Any:
        return settings[name] if name in settings else "not recorded"

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
            f"cannot compare {KIND_NAMES[baseline.kind]} ({baseline.path}) with "
            f"{KIND_NAMES[new.kind]} ({new.path}): both files must be of the same kind"
        )
    if not (max_regression >= 0 and math.isfinite(max_regression)):
        raise SlcbenchError(f"the regression threshold must be a non-negative number, got {max_regression}")
    new_by_key: Mapping[RowKey, Measurement] = {m.key: m for m in new.measurements}
    base_keys = {m.key for m in baseline.measurements}
    if base_keys.isdisjoint(new_by_key):
        raise SlcbenchError(
            f"no row of {new.path} matches a row of {baseline.path}: they measured different "
            f"configurations (e.g. another device, precision or batch size)"
        )
    rows = []
    for m in baseline.measurements:
        if m.key in new_by_key:
            rows.append(compare_rows(m, new_by_key[m.key], max_regression, basis))
        else:
            rows.append(_unmatched(m, Verdict.missing_in_new, baseline_side=True))
    rows.extend(_unmatched(m, Verdict.new_only, baseline_side=False) for m in new.measurements if m.key not in base_keys)
    return Comparison(
        kind=baseline.kind, baseline=baseline, new=new, max_regression=max_regression, rows=tuple(rows),
        environment_differences=environment_differences(baseline, new),
        settings_differences=settings_differences(baseline, new),
    )


def _unmatched(m: Measurement, verdict: Verdict, baseline_side: bool) -> RowComparison:
    # Nothing is compared; the row's own time is kept so the report can still show it.
    return RowComparison(
        key=m.key, verdict=verdict, basis=None, baseline=None, new=None, change=None,
        baseline_time_ms=m.time_ms if baseline_side else None, new_time_ms=None if baseline_side else m.time_ms,
        time_change=None, note="" if m.status == STATUS_OK else m.status,
    )


def compare_files(
    baseline_path: Path | str, new_path: Path | str, max_regression: float, basis: Basis = Basis.ratio
) -> Comparison:
    """``load_results`` both files, then ``compare_results``."""
    return compare_results(load_results(baseline_path), load_results(new_path), max_regression, basis)
