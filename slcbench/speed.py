"""The speed experiment (the paper's Table III): forward time with a top layer of 1 or k units.

One trunk is built per architecture; for each class count k a fresh k-unit head is allocated on the
device and swapped in, the whole forward pass head(trunk(x)) is timed, then the head alone, and (with ``query``)
the full-head model answering single-class queries. SLC speedup = time(k) / time(k=1).
"""

from __future__ import annotations

import contextlib
import gc
import math
import time
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from typing import Callable, Iterator

import pandas as pd
import torch
from torch import nn

from slcbench.compare import KIND_SPEED, SPEED_SCHEMA_VERSION
from slcbench.errors import SlcbenchError
from slcbench.models import ArchSpec, QueryHead, build_model, make_head, split_classifier
from slcbench.paper import CPU_QUICK_PROTOCOL, PAPER_PROTOCOL, Protocol, paper_reference
from slcbench.timing import Measurement, WarmupPlan, measure_copy_bandwidth_gbs, time_callable


class Precision(str, Enum):
    fp32 = "fp32"  # strict IEEE float32: TF32 off for matmul and cuDNN (the paper's arithmetic)
    tf32 = "tf32"  # float32 storage, TF32 tensor-core math
    bf16 = "bf16"  # model and input cast to bfloat16
    fp16 = "fp16"  # model and input cast to float16


DTYPES = {Precision.fp32: torch.float32, Precision.tf32: torch.float32, Precision.bf16: torch.bfloat16, Precision.fp16: torch.float16}


def default_protocol(device: torch.device) -> Protocol:
    return PAPER_PROTOCOL if device.type == "cuda" else CPU_QUICK_PROTOCOL


@dataclass(frozen=True)
class SpeedConfig:
    """Everything that defines what a speed run measures (recorded verbatim in the results file)."""

    archs: tuple[ArchSpec, ...]
    classes: tuple[int, ...]
    device: torch.device
    protocol: Protocol
    precision: Precision = Precision.fp32
    eager: bool = False
    channels_last: bool = False
    compile: bool = False
    query: bool = False
    cudnn_benchmark: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.device.type != "cuda" and self.precision is Precision.tf32:
            raise SlcbenchError("--precision tf32 needs a CUDA device (TF32 is a tensor-core mode)")

    @property
    def timing(self) -> str:
        return "graph" if self.device.type == "cuda" and not self.eager else "eager"

    @property
    def warmup_plan(self) -> WarmupPlan:
        """The protocol's warm-up; waiting for a steady time only under graph timing, where the time
        is the GPU's own (eager times include the host's launch jitter, which need not settle)."""
        p = self.protocol
        settle = p.settle_pct if self.timing == "graph" else None
        return WarmupPlan(calls=p.warmup, min_s=p.min_warmup_s, settle_pct=settle,
                          max_s=p.max_warmup_s if settle is not None else 0.0)

    @property
    def min_sample_ms(self) -> float:
        """Batches are unrolled into longer samples only in a CUDA graph (one batch per sample otherwise)."""
        return self.protocol.min_sample_ms if self.timing == "graph" else 0.0

    @property
    def rows_total(self) -> int:
        query_rows = sum(1 for k in self.classes if k > 1) if self.query else 0
        return len(self.archs) * (len(self.classes) + query_rows)

    def settings(self) -> dict:
        warmup = self.warmup_plan
        return {
            "device": self.device.type,
            "precision": self.precision.value,
            "timing": self.timing,
            "batch_size": self.protocol.batch_size,
            "batches": self.protocol.batches,
            "warmup": self.protocol.warmup,
            "min_warmup_s": self.protocol.min_warmup_s,
            "settle_pct": warmup.settle_pct,
            "max_warmup_s": warmup.max_s,
            "min_sample_ms": self.min_sample_ms,
            "channels_last": self.channels_last,
            "compiled": self.compile,
            "query": self.query,
            "seed": self.seed,
            "protocol": self.protocol.name,
            "archs": [a.name for a in self.archs],
            "classes": list(self.classes),
            "cuda_graphs": self.timing == "graph",
            "cudnn_benchmark": self.device.type == "cuda" and self.cudnn_benchmark,
            "tf32_matmul": self.precision is Precision.tf32,
            "cast": "model and input cast" if self.precision in (Precision.bf16, Precision.fp16) else "none",
            "input": "random normal noise, fixed for the run",
            "l2_cache": "warm (back-to-back batches, as in the paper)",
        }


@dataclass
class SpeedRow:
    """One measured configuration; a failed one keeps its identity and says why (never dropped)."""

    arch: str
    classes: int
    head: str  # "full": k logits; "query": full k-class weights, one logit per example
    precision: str
    timing: str
    channels_last: bool
    compiled: bool
    batch_size: int
    device: str
    status: str = "ok"  # "ok", "oom" or "failed"
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
    calls_per_sample: int | None = None  # batches timed together per sample (graph replay of unrolled calls)
    warmup_calls: int | None = None
    warmup_s: float | None = None
    settled: bool | None = None  # warm-up reached a steady time per call (None: not checked)
    samples_ms: list[float] = field(default_factory=list)  # per batch: each sample divided by calls_per_sample

    def record(self, measurement: Measurement) -> None:
        self.batch_ms = measurement.median
        self.batch_ms_q1 = measurement.q1
        self.batch_ms_q3 = measurement.q3
        self.batch_ms_min = measurement.min
        self.batch_ms_p90 = measurement.p90
        iqr_pct = measurement.iqr_pct
        self.iqr_pct = iqr_pct if math.isfinite(iqr_pct) else None  # a zero median has no spread %; JSON has no NaN
        self.example_ms = measurement.median / self.batch_size
        self.samples_ms = list(measurement.samples_ms)
        self.calls_per_sample = measurement.calls_per_sample
        if measurement.warmup is not None:
            self.warmup_calls = measurement.warmup.calls
            self.warmup_s = measurement.warmup.seconds
            self.settled = measurement.warmup.settled

    def to_dict(self) -> dict:
        return asdict(self)


@contextlib.contextmanager
def numerics(precision: Precision, device: torch.device, cudnn_benchmark: bool) -> Iterator[None]:
    """Pin TF32 and cuDNN autotuning for the run and restore the caller's settings afterwards."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark)
    tf32 = precision is Precision.tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = device.type == "cuda" and cudnn_benchmark
    try:
        yield
    finally:
        (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark) = saved


def _free_device_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _is_out_of_memory(exc: BaseException) -> bool:
    # CPU allocation failures surface as RuntimeError("... not enough memory ..."/"DefaultCPUAllocator").
    return isinstance(exc, torch.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and ("out of memory" in str(exc).lower() or "DefaultCPUAllocator" in str(exc))
    )


def _out_of_memory_behind(exc: BaseException) -> BaseException | None:
    """``exc`` or the out-of-memory error in its chain of causes and contexts; None if there is none.

    An allocation that fails inside CUDA-graph capture invalidates the capture, and leaving
    ``torch.cuda.graph`` then raises its own error while the OOM is being handled: the OOM is only
    in the chain.
    """
    seen, link = set(), exc
    while link is not None and id(link) not in seen:
        if _is_out_of_memory(link):
            return link
        seen.add(id(link))
        link = link.__cause__ or link.__context__
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def _blank_row(config: SpeedConfig, arch: str, classes: int, head: str) -> SpeedRow:
    """A row's identity and the paper's reference values, before anything is measured."""
    paper_ms, paper_speedup = paper_reference(arch, classes) if head == "full" else (None, None)
    return SpeedRow(
        arch=arch, classes=classes, head=head, precision=config.precision.value, timing=config.timing,
        channels_last=config.channels_last, compiled=config.compile, batch_size=config.protocol.batch_size,
        device=config.device.type, paper_example_ms=paper_ms, paper_speedup=paper_speedup,
    )


class _Bench:
    """Per-architecture state: the trunk on the device, a static noise input, and the timing settings."""

    def __init__(self, config: SpeedConfig, spec: ArchSpec, bandwidth_gbs: float | None) -> None:
        self.config = config
        self.spec = spec
        self.device = config.device
        self.dtype = DTYPES[config.precision]
        self.bandwidth_gbs = bandwidth_gbs
        torch.manual_seed(config.seed)
        size = spec.input_size
        memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        model = build_model(spec, self.device).to(dtype=self.dtype, memory_format=memory_format)
        probe = torch.randn(1, 3, size, size, device=self.device, dtype=self.dtype)
        trunk, old_head = split_classifier(model, probe.contiguous(memory_format=memory_format))
        self.in_features = old_head.in_features
        del old_head
        batch = config.protocol.batch_size
        self.input = torch.randn(batch, 3, size, size, device=self.device, dtype=self.dtype).contiguous(
            memory_format=memory_format)
        self.features = torch.randn(batch, self.in_features, device=self.device, dtype=self.dtype)
        # Compiled once per architecture: the head is a single GEMM, the trunk is what compiles.
        self.trunk = torch.compile(trunk) if config.compile else trunk
        # One untimed trunk call at full batch, so the k=1 row does not alone pay for compilation,
        # cuDNN autotuning, allocator growth and thread start-up; its time is reported per row.
        self.trunk_first_call_ms = self._first_call_ms(lambda: self.trunk(self.input))

    def new_row(self, classes: int, head: str) -> SpeedRow:
        return replace(_blank_row(self.config, self.spec.name, classes, head), trunk_first_call_ms=self.trunk_first_call_ms)

    def _time(self, fn: Callable[[], torch.Tensor]) -> Measurement:
        config = self.config
        return time_callable(fn, device=self.device, samples=config.protocol.batches, warmup=config.warmup_plan,
                             use_graph=config.timing == "graph", min_sample_ms=config.min_sample_ms)

    def _first_call_ms(self, fn: Callable[[], torch.Tensor]) -> float:
        # One-time costs (compilation, cuDNN autotuning, lazy init) are reported, never averaged in.
        start = time.perf_counter()
        fn()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return (time.perf_counter() - start) * 1e3

    def measure(self, classes: int, head_kind: str, full_head: nn.Linear) -> SpeedRow:
        row = self.new_row(classes, head_kind)
        if head_kind == "query":
            generator = torch.Generator(device="cpu").manual_seed(self.config.seed)
            query = torch.randint(0, classes, (self.config.protocol.batch_size,), generator=generator)
            head: nn.Module = QueryHead(full_head, query)
        else:
            head = full_head

        def forward() -> torch.Tensor:
            return head(self.trunk(self.input))

        row.first_call_ms = self._first_call_ms(forward)
        if self.device.type == "cuda":
            # Peak of steady-state inference (weights, activations, graph pool), not of
            # cuDNN's one-time autotuning workspaces during the first call.
            torch.cuda.reset_peak_memory_stats(self.device)
        row.record(self._time(forward))
        if head_kind == "full":
            row.head_ms = self._time(lambda: head(self.features)).median
            row.head_bytes = sum(t.numel() * t.element_size() for t in full_head.parameters())
            if self.bandwidth_gbs:
                row.head_floor_ms = row.head_bytes / (self.bandwidth_gbs * 1e9) * 1e3
        if self.device.type == "cuda":
            row.peak_mem_mib = torch.cuda.max_memory_allocated(self.device) / 2**20
        return row


def results_document(
    config: SpeedConfig, rows: list[SpeedRow], *, environment: dict, created: str, command: str
) -> dict:
    """The JSON that ``slcbench speed`` writes and ``slcbench compare`` reads: the environment, every
    setting, and every row with its raw samples."""
    return {
        "kind": KIND_SPEED,
        "schema_version": SPEED_SCHEMA_VERSION,
        "created": created,
        "command": command,
        "environment": environment,
        "settings": config.settings(),
        "rows": [row.to_dict() for row in rows],
    }


def results_frame(rows: list[SpeedRow]) -> pd.DataFrame:
    """One line per row for the CSV; the raw samples stay in the JSON."""
    return pd.DataFrame([{k: v for k, v in row.to_dict().items() if k != "samples_ms"} for row in rows])


def run_speed(config: SpeedConfig) -> Iterator[SpeedRow]:
    """Measure every (architecture, class count[, query]) row of ``config``, yielding rows as they finish.

    A configuration that runs out of memory or fails yields a row with status "oom"/"failed" and the
    sweep goes on. An architecture whose trunk cannot be built yields failed rows for all its cells.
    """
    if config.device.type == "cuda" and not torch.cuda.is_available():
        raise SlcbenchError("CUDA was requested but no CUDA device is available (use --device cpu or auto)")
    torch.manual_seed(config.seed)
    rows = _sweep(config)
    while True:
        # Each step of the sweep runs under the run's numerics and inference mode, entered and left
        # around it, so that the caller does not run in them while the generator waits between rows.
        with numerics(config.precision, config.device, config.cudnn_benchmark), torch.inference_mode():
            row = next(rows, None)
        if row is None:
            return
        yield row


def _sweep(config: SpeedConfig) -> Iterator[SpeedRow]:
    bandwidth = measure_copy_bandwidth_gbs(config.device) if config.device.type == "cuda" else None
    for spec in config.archs:
        yield from _run_arch(config, spec, bandwidth)


def _marked(row: SpeedRow, exc: BaseException) -> SpeedRow:
    """The row, marked as out of memory or failed, with the first line of the error."""
    oom = _out_of_memory_behind(exc)
    return replace(row, status="failed" if oom is None else "oom", error=_first_line(exc if oom is None else oom))


def _run_arch(config: SpeedConfig, spec: ArchSpec, bandwidth: float | None) -> Iterator[SpeedRow]:
    def kinds_of(k: int) -> tuple[str, ...]:
        return ("full", "query") if config.query and k > 1 else ("full",)

    try:
        bench = _Bench(config, spec, bandwidth)
    except Exception as exc:  # noqa: BLE001 - any build failure becomes failed rows, the sweep goes on
        for k in config.classes:
            for kind in kinds_of(k):
                yield _marked(_blank_row(config, spec.name, k, kind), exc)
        del exc
        _free_device_memory(config.device)
        return
    reference_ms: float | None = None
    for k in config.classes:
        full_head = None
        try:
            full_head = make_head(bench.in_features, k, config.device, bench.dtype)
        except Exception as exc:  # noqa: BLE001 - e.g. the k-unit head itself does not fit
            rows = [_marked(bench.new_row(k, kind), exc) for kind in kinds_of(k)]
        else:
            rows = []
            for kind in kinds_of(k):  # each row on its own: a failing query row keeps its full row
                try:
                    rows.append(bench.measure(k, kind, full_head))
                except Exception as exc:  # noqa: BLE001 - OOM or a failing model: mark the row, continue
                    rows.append(_marked(bench.new_row(k, kind), exc))
        finally:
            del full_head
            _free_device_memory(config.device)
        for row in rows:
            if row.status == "ok" and k == 1 and row.head == "full":
                reference_ms = row.batch_ms
            if row.status == "ok" and reference_ms:
                row.speedup = row.batch_ms / reference_ms
            yield row
    del bench
    _free_device_memory(config.device)
