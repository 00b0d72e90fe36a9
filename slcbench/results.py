"""The results schema: what a measurement is, what a speed row holds, and the documents that carry them.

``slcbench speed`` writes these documents, ``slcbench train`` writes its summary, and
``slcbench compare`` reads them back through the same definitions: one ``Measurement`` (raw samples
and their statistics), one ``SpeedRow`` (its fields are the row's JSON object, in order), one row
identity and one list of timing settings. Torch-free, so ``compare`` starts fast.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any

import numpy as np


class ResultsKind(StrEnum):
    """The ``kind`` a results document declares (pytest-benchmark files carry none; compare reads them too)."""

    speed = "slcbench.speed"
    train = "slcbench.train"
    pytest_benchmark = "pytest-benchmark"

    @property
    def description(self) -> str:
        return {
            "slcbench.speed": "slcbench speed JSON",
            "slcbench.train": "slcbench train summary",
            "pytest-benchmark": "pytest-benchmark JSON",
        }[self.value]


SPEED_SCHEMA_VERSION = 2
DEFAULT_CONFIDENCE = 0.95  # of every interval in a results file
MAX_SEED = 2**63 - 1  # a seed every library here takes (torch's generators, numpy) and JSON readers keep exact
# Version 1 rows lack the intervals and the paired samples; they are read as rows without them.
SPEED_SCHEMA_VERSIONS_READ = (1, 2)
TRAIN_SCHEMA_VERSION = 1


class Status(StrEnum):
    """Whether a row was measured; a row that was not keeps its identity and says why."""

    ok = "ok"
    oom = "oom"
    failed = "failed"


class Head(StrEnum):
    """What the top layer computes.

    ``full``: all k logits; ``padded``: all k logits from a head whose output rows are padded to a
    multiple (``--pad-head``), sliced back to k. The query heads answer one queried class per example:
    ``query`` (SLC: one weight row, one dot product), ``full-gather`` (all k logits, then the queried
    column) and ``adaptive-softmax`` (the queried class's log-probability from a
    ``torch.nn.AdaptiveLogSoftmaxWithLoss``: its head cluster and the queried class's cluster only).
    """

    full = "full"
    padded = "padded"
    query = "query"
    full_gather = "full-gather"
    adaptive_softmax = "adaptive-softmax"


# The heads ``--query`` adds at every k > 1, in the order a sweep measures them.
QUERY_HEADS = (Head.query, Head.full_gather, Head.adaptive_softmax)


class Timing(StrEnum):
    """How a forward pass is timed: CUDA-graph replay (the GPU's work) or launched from Python."""

    graph = "graph"
    eager = "eager"


@dataclass(frozen=True)
class Interval:
    """An estimate with its confidence interval (``low``/``high`` None when the samples cannot give one)."""

    estimate: float
    low: float | None
    high: float | None
    confidence: float
    method: str

    @property
    def decided(self) -> bool:
        return self.low is not None and self.high is not None

    def bounds(self) -> list[float] | None:
        """``[low, high]`` as results files hold an interval; None when there is none."""
        return [self.low, self.high] if self.low is not None and self.high is not None else None

    def half_width_pct(self) -> float | None:
        """The larger distance from the estimate to an end, as a percentage of the estimate."""
        if self.low is None or self.high is None or self.estimate == 0:
            return None
        return 100.0 * max(self.estimate - self.low, self.high - self.estimate) / abs(self.estimate)


@dataclass(frozen=True)
class Warmup:
    """What untimed warm-up did before the samples.

    ``call_ms`` is the last warm-up window's median time per call; ``settled`` says whether two
    consecutive windows agreed (None where no steady state was asked for).
    """

    calls: int = 0
    seconds: float = 0.0
    call_ms: float | None = None
    settled: bool | None = None

    def then(self, later: Warmup, *, calls_per_run: int = 1) -> Warmup:
        """This warm-up followed by ``later``, whose runs each made ``calls_per_run`` calls (an unrolled
        graph): calls and time per call stay counted in single calls."""
        later_call_ms = None if later.call_ms is None else later.call_ms / calls_per_run
        return Warmup(
            self.calls + later.calls * calls_per_run,
            self.seconds + later.seconds,
            self.call_ms if later_call_ms is None else later_call_ms,
            self.settled if later.settled is None else later.settled,
        )


@dataclass(frozen=True)
class Measurement:
    """Raw per-call times in milliseconds and the statistics computed from them.

    Parameters
    ----------
    samples_ms : tuple of float
        One time per sample, already divided by ``calls_per_sample``: always per call.
    calls_per_sample : int
        Calls timed together in each sample (batches unrolled into one CUDA graph).
    warmup : Warmup or None
        What the untimed warm-up before the samples did.
    """

    samples_ms: tuple[float, ...]
    calls_per_sample: int = 1
    warmup: Warmup | None = None

    def __post_init__(self) -> None:
        if not self.samples_ms:
            raise ValueError("a Measurement needs at least one sample")

    def _quantile(self, q: float) -> float:
        return float(np.quantile(np.asarray(self.samples_ms, dtype=np.float64), q))

    @property
    def median(self) -> float:
        return float(statistics.median(self.samples_ms))

    @property
    def q1(self) -> float:
        return self._quantile(0.25)

    @property
    def q3(self) -> float:
        return self._quantile(0.75)

    @property
    def iqr_pct(self) -> float:
        """IQR as a percentage of the median (NaN for a zero median): the spread every row reports."""
        return 100.0 * (self.q3 - self.q1) / self.median if self.median > 0 else math.nan

    @property
    def min(self) -> float:
        return float(min(self.samples_ms))

    @property
    def p90(self) -> float:
        return self._quantile(0.90)


def _identity() -> Any:
    return field(metadata={"identity": True})


@dataclass
class SpeedRow:
    """One measured configuration of ``slcbench speed``; its fields, in order, are the row's JSON object.

    A row that could not be measured keeps its identity, with ``status`` saying why and ``error``
    the first line of the error. Times are per batch in milliseconds; ``samples_ms`` holds every
    timed sample (per batch, divided by ``calls_per_sample``).
    """

    arch: str = _identity()
    classes: int = _identity()
    head: Head = _identity()
    precision: str = _identity()
    timing: Timing = _identity()
    channels_last: bool = _identity()
    compiled: bool = _identity()
    batch_size: int = _identity()
    device: str = _identity()
    status: Status = Status.ok
    error: str | None = None
    batch_ms: float | None = None
    batch_ms_q1: float | None = None
    batch_ms_q3: float | None = None
    batch_ms_min: float | None = None
    batch_ms_p90: float | None = None
    iqr_pct: float | None = None
    example_ms: float | None = None
    speedup: float | None = None
    head_ms: float | None = None
    head_bytes: int | None = None
    head_floor_ms: float | None = None
    peak_mem_mib: float | None = None
    first_call_ms: float | None = None
    trunk_first_call_ms: float | None = None
    paper_example_ms: float | None = None
    paper_speedup: float | None = None
    calls_per_sample: int | None = None
    warmup_calls: int | None = None
    warmup_s: float | None = None
    settled: bool | None = None
    batch_ms_ci: list[float] | None = None  # interval of the median batch time
    head_ms_ci: list[float] | None = None
    speedup_ci: list[float] | None = None
    speedup_method: str | None = None
    blocks: int | None = None  # A-B-B-A blocks timed against the k=1 reference
    speedup_half_width_pct: float | None = None
    converged: bool | None = None  # adaptive sampling reached its target width (None: no target)
    padded_to: int | None = None  # output rows of a padded head (the logits are sliced back to ``classes``)
    # What NVML saw of the GPU while the row was timed (null without NVML: the CPU, or no nvidia-ml-py);
    # clock statistics over the samples in which the GPU was not idle.
    sm_clock_mhz: float | None = None  # mean
    sm_clock_min_mhz: float | None = None
    sm_clock_moved_pct: float | None = None  # (max - min) / max of the SM clock during the row
    memory_clock_mhz: float | None = None  # mean
    memory_clock_min_mhz: float | None = None
    throttle_reasons: list[str] | None = None  # NVML clock-event reasons seen, e.g. sw_power_cap ([]: none)
    temperature_c: float | None = None  # highest
    power_w: float | None = None  # mean of NVML's power readings
    gpu_samples: int | None = None  # NVML readings behind these fields
    flagged: bool | None = None  # the SM clock moved beyond its tolerance, or the GPU throttled
    # Energy from NVML's total-energy counter over a window of back-to-back batches (--energy).
    energy_mj_per_batch: float | None = None
    avg_power_w: float | None = None
    energy_window_s: float | None = None  # the span of counter readings the power was fitted over
    energy_ratio: float | None = None  # E(this row) / E(k=1), beside the time speedup
    worker_host: str | None = None  # the machine whose worker measured the row
    worker_pid: int | None = None  # ... and its process
    worker_job: str | None = None  # the scheduler's name for that work (a Slurm array task, a Ray task id)
    gpu_index: int | None = None  # on CUDA, the GPU as the machine numbers it
    gpu_uuid: str | None = None  # ... and its UUID (as ``nvidia-smi -L`` shows it)
    ratio_samples: list[float] = field(default_factory=list)  # one ratio per A-B-B-A block
    reference_samples_ms: list[float] = field(default_factory=list)  # the k=1 samples interleaved with this row's
    samples_ms: list[float] = field(default_factory=list)

    def record(self, measurement: Measurement, median: Interval | None = None) -> None:
        """Fill the timing fields from ``measurement`` and the interval of its ``median``."""
        self.batch_ms = measurement.median
        self.batch_ms_ci = median.bounds() if median is not None else None
        self.batch_ms_q1 = measurement.q1
        self.batch_ms_q3 = measurement.q3
        self.batch_ms_min = measurement.min
        self.batch_ms_p90 = measurement.p90
        iqr_pct = measurement.iqr_pct
        self.iqr_pct = iqr_pct if math.isfinite(iqr_pct) else None  # JSON has no NaN
        self.example_ms = measurement.median / self.batch_size
        self.samples_ms = list(measurement.samples_ms)
        self.calls_per_sample = measurement.calls_per_sample
        if measurement.warmup is not None:
            self.warmup_calls = measurement.warmup.calls
            self.warmup_s = measurement.warmup.seconds
            self.settled = measurement.warmup.settled

    def record_speedup(
        self, speedup: Interval, *, ratios: list[float], reference_ms: list[float], converged: bool | None
    ) -> None:
        """The paired estimate of time(this row) / time(k=1) from its A-B-B-A blocks."""
        self.speedup = speedup.estimate
        self.speedup_ci = speedup.bounds()
        self.speedup_method = speedup.method
        self.speedup_half_width_pct = speedup.half_width_pct()
        self.blocks = len(ratios)
        self.converged = converged
        self.ratio_samples = list(ratios)
        self.reference_samples_ms = list(reference_ms)

    @property
    def measurement(self) -> Measurement | None:
        """The row's samples as a Measurement, or None where it has none (not measured, or an old file)."""
        if not self.samples_ms:
            return None
        return Measurement(tuple(self.samples_ms), calls_per_sample=self.calls_per_sample or 1)

    def identity(self) -> RowKey:
        """The row's identity fields and values: what makes two rows "the same measurement"."""
        return tuple(
            (name, str(value) if isinstance(value, StrEnum) else value)
            for name, value in ((n, getattr(self, n)) for n in SPEED_ROW_IDENTITY)
        )

    def to_dict(self) -> dict[str, Any]:
        return {key: value.value if isinstance(value, StrEnum) else value for key, value in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SpeedRow:
        """A row from its JSON object, as any schema version 1 file holds it.

        Identity fields and ``status`` are required; every other field is optional and read as null
        when it is missing or not a value of its type (files written before a field existed lack it;
        ``calls_per_sample`` then means one batch per sample). Raises ValueError, worded to follow
        "row N", for a row that cannot be used.
        """
        absent = [name for name in (*SPEED_ROW_IDENTITY, "status") if name not in data]
        if absent:
            raise ValueError(f"lacks {', '.join(absent)}")
        odd = [name for name in SPEED_ROW_IDENTITY if not isinstance(data[name], (str, int, float, bool))]
        if odd:  # a list or object could not identify a row (and cannot be hashed)
            raise ValueError(f"has a non-scalar {', '.join(odd)}")
        values: dict[str, Any] = {name: data[name] for name in SPEED_ROW_IDENTITY}
        for name, kind in (("status", Status), ("head", Head), ("timing", Timing)):
            try:
                values[name] = kind(data[name])
            except ValueError:
                raise ValueError(f"has an unknown {name} {data[name]!r}") from None
        for name, reader in _OPTIONAL_FIELD_READERS:
            if name in data:
                values[name] = reader(data[name])
        if "calls_per_sample" not in data:
            values["calls_per_sample"] = 1  # files from before the field timed one batch per sample
        elif not values["calls_per_sample"]:
            values["calls_per_sample"] = None  # zero batches per sample is no block size
        row = cls(**values)
        if row.status is Status.ok and not (row.batch_ms is not None and row.batch_ms > 0):
            raise ValueError("has status ok but no positive batch_ms")
        return row


RowKey = tuple[tuple[str, Any], ...]

# The raw samples of a row: in the JSON, not in the CSV.
SAMPLE_FIELDS = ("ratio_samples", "reference_samples_ms", "samples_ms")

# The configuration that makes two speed rows "the same measurement" (status and timings excluded).
SPEED_ROW_IDENTITY: tuple[str, ...] = tuple(f.name for f in fields(SpeedRow) if f.metadata.get("identity"))

# Speed settings that change times or spreads without changing what a row computes: a difference
# between two files is worth a warning, not a refusal to compare.
TIMING_SETTINGS = (
    "batches",
    "warmup",
    "min_warmup_s",
    "settle_pct",
    "max_warmup_s",
    "min_sample_ms",
    "blocks",
    "ci_target_pct",
    "row_budget_s",
    "threads",
    "cudnn_benchmark",
    "tf32_matmul",
    "cast",
    "input",
    "l2_cache",
)

# Environment fields whose difference makes a comparison suspect (another GPU, driver or torch).
ENVIRONMENT_FIELDS = ("device_name", "driver", "cuda_runtime", "torch", "python")


def finite_number(value: Any) -> float | None:
    """A finite float, or None for null, NaN, infinities and non-numbers (bool is not a number here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer of hundreds of digits
        return None
    return number if math.isfinite(number) else None


def _float_list(value: Any) -> list[float]:
    if not isinstance(value, list):
        return []
    if all(type(v) is float for v in value) and math.isfinite(sum(value)):  # NaN or inf makes the sum so
        return list(value)
    numbers = [finite_number(v) for v in value]
    return [] if None in numbers else numbers  # type: ignore[return-value]


def _bounds(value: Any) -> list[float] | None:
    numbers = _float_list(value)
    return numbers if len(numbers) == 2 and numbers[0] <= numbers[1] else None


# How an optional SpeedRow field is read from JSON, by its annotation: a value of another type is null.
_FIELD_READERS: dict[str, Any] = {
    "float | None": finite_number,
    "int | None": lambda v: v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None,
    "bool | None": lambda v: v if isinstance(v, bool) else None,
    "str | None": lambda v: v if isinstance(v, str) else None,
    "list[float]": _float_list,
    "list[float] | None": _bounds,
    "list[str] | None": lambda v: v if isinstance(v, list) and all(isinstance(s, str) for s in v) else None,
}


# Each optional SpeedRow field with its reader, found once from the annotations.
_OPTIONAL_FIELD_READERS = tuple(
    (spec.name, _FIELD_READERS[str(spec.type)])
    for spec in fields(SpeedRow)
    if spec.name not in (*SPEED_ROW_IDENTITY, "status", "head", "timing")
)


def speed_document(
    *,
    settings: dict[str, Any],
    rows: list[SpeedRow],
    environment: dict[str, Any],
    created: str,
    command: str,
    gpu_state: dict[str, Any] | None = None,
    execution: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON document of one speed run: its environment, every setting, what NVML said of the GPU at
    the start of the run (``gpu_state``), how and where it ran (``execution``: the executor, whether
    the sweep completed, each configuration's worker), every row with raw samples."""
    document = {
        "kind": ResultsKind.speed.value,
        "schema_version": SPEED_SCHEMA_VERSION,
        "created": created,
        "command": command,
        "environment": environment,
        "gpu_state": gpu_state,
        "settings": settings,
    }
    if execution is not None:
        document["execution"] = execution
    return document | {"rows": [row.to_dict() for row in rows]}
