"""Reading the two kinds of results file that ``slcbench compare`` judges, into one row shape.

* ``slcbench speed`` JSON (``"kind": "slcbench.speed"``, schema versions 1 and 2): rows are
  ``SpeedRow`` objects of the results schema, identified by ``SPEED_ROW_IDENTITY``. A row's time is
  ``batch_ms`` (median per batch) with its raw ``samples_ms``, its spread ``iqr_pct``, and its in-run
  reference ``speedup`` = time(k) / time(k=1), since version 2 with the ratio of each A-B-B-A block
  (``ratio_samples``). Version 1 files carry no block ratios: their speedups compare as points.
* pytest-benchmark JSON (``pytest --benchmark-json FILE``): a row is identified by ``fullname``; its
  time is ``stats.median`` (seconds, held here in milliseconds) with the raw times ``stats.data``,
  and its spread ``stats.iqr / stats.median``. There is no in-run reference.

A side of a comparison can also be a folder of such files: the *rounds* of one run, made on one
machine (e.g. the benchmark suite run several times, interleaved with the other side's rounds). Its
rows pool the rounds: a row's value is the median of its rounds', and each round's value is kept,
so that a comparison can judge the rounds rather than samples taken seconds apart.

Unreadable files, unknown kinds, empty files and duplicate rows raise SlcbenchError naming the file.
"""

from __future__ import annotations

import stat
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slcbench.errors import SlcbenchError
from slcbench.io import check_input, read_json
from slcbench.results import (
    ENVIRONMENT_FIELDS,
    SPEED_SCHEMA_VERSIONS_READ,
    TIMING_SETTINGS,
    ResultsKind,
    RowKey,
    SpeedRow,
    Status,
    finite_number,
)


@dataclass(frozen=True)
class ComparedRow:
    """One row of either kind of file, as a comparison sees it.

    ``time_ms`` is the median time of the timed unit (a batch for speed rows, one call for
    pytest-benchmark); ``ratio`` the time relative to the in-run reference, None where there is none.
    """

    key: RowKey
    status: Status
    error: str | None
    time_ms: float | None
    spread_pct: float | None
    ratio: float | None
    calls_per_sample: int | None = None  # batches averaged per sample (speed rows); None where unknown
    samples_ms: tuple[float, ...] = ()  # raw times of the timed unit; () where the file has none
    ratio_samples: tuple[float, ...] = ()  # one ratio to the reference per A-B-B-A block
    reference: bool = False  # the row every ratio of its run is relative to (k=1)
    round_times_ms: tuple[float, ...] = ()  # the time of each round (a side of several files)
    round_ratios: tuple[float, ...] = ()  # the ratio of each round

    @classmethod
    def of_speed_row(cls, row: SpeedRow) -> ComparedRow:
        return cls(
            key=row.identity(),
            status=row.status,
            error=row.error,
            time_ms=row.batch_ms,
            spread_pct=row.iqr_pct,
            ratio=row.speedup,
            calls_per_sample=row.calls_per_sample,
            samples_ms=tuple(row.samples_ms),
            ratio_samples=tuple(row.ratio_samples),
            reference=row.classes == 1 and row.head == "full",
        )


@dataclass(frozen=True)
class ResultsFile:
    path: Path
    kind: ResultsKind
    environment: dict[str, Any]  # the ENVIRONMENT_FIELDS that the file records
    rows: tuple[ComparedRow, ...]
    settings: dict[str, Any] = field(default_factory=dict)  # TIMING_SETTINGS of a speed file; {} otherwise
    rounds: int = 1  # files pooled (a folder of rounds)


def side_files(path: Path | str) -> list[Path]:
    """The files a side reads: the file itself, or a folder's ``*.json`` files (checked to be regular files)."""
    path = Path(path)
    if stat.S_ISDIR(check_input(path, folder_ok=True).st_mode):
        return [file for file in sorted(path.glob("*.json")) if check_input(file)]
    return [path]


def load_side(path: Path | str) -> ResultsFile:
    """A results file, or a folder whose ``*.json`` files are rounds of one run on one machine, pooled."""
    path = Path(path)
    files = side_files(path)
    if files == [path]:
        return load_results(path)
    if not files:
        raise SlcbenchError(f"{path} is a folder without .json results files")
    return pool_rounds(path, [load_results(file) for file in files])


def pool_rounds(path: Path, rounds: list[ResultsFile]) -> ResultsFile:
    """One side made of several rounds: rows matched by identity, each round's time and ratio kept."""
    first = rounds[0]
    for other in rounds[1:]:
        if other.kind is not first.kind:
            raise SlcbenchError(f"{path}: {other.path} is {other.kind.description}, {first.path} is not")
        if other.environment != first.environment:
            raise SlcbenchError(f"{path}: the rounds come from different machines or software ({other.path})")
    keys = list(dict.fromkeys(row.key for results in rounds for row in results.rows))
    by_key: dict[RowKey, list[ComparedRow]] = {key: [] for key in keys}
    for results in rounds:
        for row in results.rows:
            by_key[row.key].append(row)
    return ResultsFile(
        path=path,
        kind=first.kind,
        environment=first.environment,
        rows=tuple(_pooled(by_key[key]) for key in keys),
        settings=first.settings,
        rounds=len(rounds),
    )


def _pooled(rows: list[ComparedRow]) -> ComparedRow:
    failed = next((row for row in rows if row.status is not Status.ok), None)
    if failed is not None:
        return failed
    times = tuple(row.time_ms for row in rows if row.time_ms is not None)
    ratios = tuple(row.ratio for row in rows if row.ratio is not None)
    return ComparedRow(
        key=rows[0].key,
        status=Status.ok,
        error=None,
        time_ms=float(statistics.median(times)) if times else None,
        spread_pct=None,
        ratio=float(statistics.median(ratios)) if len(ratios) == len(rows) else None,
        calls_per_sample=rows[0].calls_per_sample,
        samples_ms=tuple(sample for row in rows for sample in row.samples_ms),
        ratio_samples=tuple(sample for row in rows for sample in row.ratio_samples),
        reference=rows[0].reference,
        round_times_ms=times if len(times) == len(rows) else (),
        round_ratios=ratios if len(ratios) == len(rows) else (),
    )


def load_results(path: Path | str) -> ResultsFile:
    """Read and validate one results file; SlcbenchError (naming the file) when it cannot be used."""
    path = Path(path)
    payload = read_json(path)
    if isinstance(payload, dict) and payload.get("kind") == ResultsKind.speed:
        return _load_speed(path, payload)
    if (
        isinstance(payload, dict)
        and "kind" not in payload
        and isinstance(payload.get("benchmarks"), list)
        and "machine_info" in payload
    ):
        return _load_pytest_benchmark(path, payload)
    found = f"kind {payload['kind']!r}" if isinstance(payload, dict) and "kind" in payload else "no known kind"
    raise SlcbenchError(
        f'{path} has {found}: expected slcbench speed JSON ("kind": "{ResultsKind.speed}") '
        f"or pytest-benchmark JSON (pytest --benchmark-json)"
    )


def _object(payload: dict[str, Any], name: str) -> dict[str, Any]:
    """``payload[name]`` when it is a JSON object; {} when absent or malformed (those blocks are optional)."""
    value = payload.get(name)
    return value if isinstance(value, dict) else {}


def _recorded_environment(environment: dict[str, Any]) -> dict[str, Any]:
    """The ENVIRONMENT_FIELDS that ``environment`` records (a null counts as not recorded)."""
    return {k: environment[k] for k in ENVIRONMENT_FIELDS if environment.get(k) is not None}


def _check_unique(path: Path, rows: list[ComparedRow], describe: Callable[[RowKey], str]) -> None:
    seen: set[RowKey] = set()
    for row in rows:
        if row.key in seen:
            raise SlcbenchError(f"{path} has two rows for {describe(row.key)}; cannot tell which to compare")
        seen.add(row.key)


def _load_speed(path: Path, payload: dict[str, Any]) -> ResultsFile:
    version = payload.get("schema_version")
    if version not in SPEED_SCHEMA_VERSIONS_READ:
        readable = " and ".join(map(str, SPEED_SCHEMA_VERSIONS_READ))
        raise SlcbenchError(f"{path} has speed schema_version {version!r}; this slcbench reads versions {readable}")
    entries = payload.get("rows")
    if not isinstance(entries, list):
        raise SlcbenchError(f'{path} has no "rows" list')
    if not entries:
        raise SlcbenchError(f"{path} has no rows: nothing to compare")
    rows = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise SlcbenchError(f"{path}: row {index} is not an object")
        try:
            rows.append(ComparedRow.of_speed_row(SpeedRow.from_dict(entry)))
        except ValueError as exc:
            raise SlcbenchError(f"{path}: row {index} {exc}") from None
    _check_unique(path, rows, lambda key: ", ".join(f"{k}={v}" for k, v in key))
    settings = _object(payload, "settings")
    return ResultsFile(
        path=path,
        kind=ResultsKind.speed,
        environment=_recorded_environment(_object(payload, "environment")),
        rows=tuple(rows),
        settings={k: settings[k] for k in TIMING_SETTINGS if k in settings},
    )


def _load_pytest_benchmark(path: Path, payload: dict[str, Any]) -> ResultsFile:
    benchmarks = payload["benchmarks"]
    if not benchmarks:
        raise SlcbenchError(f"{path} holds no benchmarks (were they skipped or disabled?)")
    rows = []
    for index, bench in enumerate(benchmarks):
        name = bench.get("fullname") if isinstance(bench, dict) else None
        stats = bench.get("stats") if isinstance(bench, dict) else None
        if not isinstance(name, str) or not isinstance(stats, dict):
            raise SlcbenchError(f'{path}: benchmark {index} lacks "fullname" or "stats"')
        median = finite_number(stats.get("median"))
        if median is None or median <= 0:
            raise SlcbenchError(f"{path}: benchmark {name} has no positive stats.median")
        iqr = finite_number(stats.get("iqr"))
        data = stats.get("data")
        seconds = [finite_number(v) for v in data] if isinstance(data, list) else []
        usable = all(s is not None and s > 0 for s in seconds)
        rows.append(
            ComparedRow(
                key=(("benchmark", name),),
                status=Status.ok,
                error=None,
                time_ms=median * 1e3,
                spread_pct=None if iqr is None else 100.0 * iqr / median,
                ratio=None,
                samples_ms=tuple(s * 1e3 for s in seconds if s is not None) if usable else (),
            )
        )
    _check_unique(path, rows, lambda key: str(key[0][1]))
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
        path=path, kind=ResultsKind.pytest_benchmark, environment=_recorded_environment(environment), rows=tuple(rows)
    )
