"""The speed sweep: per architecture one trunk, per class count a fresh k-unit head, every row timed.

For each class count k a k-unit head is allocated on the device; the whole forward pass
head(trunk(x)) is timed, then the head alone, then (``pad_head``) the same with the head padded, and
(``query``) the model answering single-class queries with each query head. SLC speedup =
time(k) / time(k=1). Where NVML reports on the GPU, each row records what the GPU did while it was
timed and (``energy_window_s``) the energy of its batches. A row that runs out of memory or fails is
kept with its status and error, and the sweep goes on.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace

import torch
from torch import nn

from slcbench.errors import SlcbenchError
from slcbench.paper import paper_reference
from slcbench.results import QUERY_HEADS, Head, Measurement, SpeedRow, Status, Timing
from slcbench.speed.architectures import ARCH_SOURCES, ArchSpec, build_model
from slcbench.speed.config import Precision, SpeedConfig
from slcbench.speed.heads import PaddedHead, make_head, make_query_head, split_classifier
from slcbench.speed.nvml import (
    SAMPLE_INTERVAL_S,
    NvmlGpu,
    NvmlUnavailable,
    Sampler,
    fit_power,
    open_gpu,
    row_validity,
)
from slcbench.speed.timing import PairedTiming, Timer, measure_copy_bandwidth_gbs, timer_for
from slcbench.stats import median_interval

DTYPES = {
    Precision.fp32: torch.float32,
    Precision.tf32: torch.float32,
    Precision.bf16: torch.bfloat16,
    Precision.fp16: torch.float16,
}


def _bandwidth_gbs(device: torch.device) -> float | None:
    return measure_copy_bandwidth_gbs(device) if device.type == "cuda" else None


@dataclass(frozen=True)
class SweepParts:
    """What a sweep builds and times with; tests hand it stand-ins for single parts."""

    build_model: Callable[[ArchSpec, torch.device], nn.Module] = build_model
    make_head: Callable[[int, int, torch.device, torch.dtype], nn.Linear] = make_head
    query_head: Callable[[Head, nn.Linear, torch.Tensor], nn.Module] = make_query_head
    timer_for: Callable[[torch.device], Timer] = timer_for
    bandwidth_gbs: Callable[[torch.device], float | None] = _bandwidth_gbs
    open_gpu: Callable[[torch.device], NvmlGpu] = open_gpu  # raises NvmlUnavailable where NVML cannot report
    sample_interval_s: float = SAMPLE_INTERVAL_S  # between NVML readings


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
    ``torch.cuda.graph`` then raises its own error while the OOM is being handled.
    """
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        if _is_out_of_memory(link):
            return link
        seen.add(id(link))
        link = link.__cause__ or link.__context__
    return None


def first_line(exc: BaseException) -> str:
    """``Type: first line of the message``, at most 300 characters: what a failed row records."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def _marked(row: SpeedRow, exc: BaseException) -> SpeedRow:
    """The row, marked as out of memory or failed, with the first line of the error."""
    oom = _out_of_memory_behind(exc)
    return replace(row, status=Status.failed if oom is None else Status.oom, error=first_line(oom or exc))


def blank_row(config: SpeedConfig, arch: str, classes: int, head: Head) -> SpeedRow:
    """A row's identity and the paper's reference values, before anything is measured."""
    paper_ms, paper_speedup = paper_reference(arch, classes) if head is Head.full else (None, None)
    return SpeedRow(
        arch=arch,
        classes=classes,
        head=head,
        precision=config.precision.value,
        timing=config.timing,
        channels_last=config.channels_last,
        compiled=config.compile,
        batch_size=config.protocol.batch_size,
        device=config.device.split(":")[0],
        paper_example_ms=paper_ms,
        paper_speedup=paper_speedup,
    )


class _Bench:
    """Per-architecture state: the trunk on the device, a static noise input, and the timing settings."""

    def __init__(
        self,
        config: SpeedConfig,
        spec: ArchSpec,
        parts: SweepParts,
        bandwidth_gbs: float | None,
        sampler: Sampler | None = None,
    ) -> None:
        self.config = config
        self.spec = spec
        self.parts = parts
        self.device = torch.device(config.device)
        self.dtype = DTYPES[config.precision]
        self.bandwidth_gbs = bandwidth_gbs
        self.sampler = sampler
        self.timer = parts.timer_for(self.device)
        self.reference: Callable[[], torch.Tensor] | None = None  # the k=1 forward, once it ran
        self.reference_energy_mj: float | None = None  # the k=1 row's energy per batch
        torch.manual_seed(config.seed)
        size = spec.input_size
        memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        model = parts.build_model(spec, self.device).to(dtype=self.dtype).to(memory_format=memory_format)
        probe = torch.randn(1, 3, size, size, device=self.device, dtype=self.dtype)
        outputs = ARCH_SOURCES.get(spec.source).classifier_outputs
        trunk, old_head = split_classifier(model, probe.contiguous(memory_format=memory_format), outputs)
        self.in_features = old_head.in_features
        del old_head
        batch = config.protocol.batch_size
        self.input = torch.randn(batch, 3, size, size, device=self.device, dtype=self.dtype).contiguous(
            memory_format=memory_format
        )
        self.features = torch.randn(batch, self.in_features, device=self.device, dtype=self.dtype)
        # Compiled once per architecture: the head is a single GEMM, the trunk is what compiles.
        self.trunk = torch.compile(trunk) if config.compile else trunk
        # One untimed trunk call at full batch, so that the k=1 row does not alone pay for compilation,
        # cuDNN autotuning, allocator growth and thread start-up; its time is reported per row.
        self.trunk_first_call_ms = self._first_call_ms(lambda: self.trunk(self.input))

    def new_row(self, classes: int, head: Head) -> SpeedRow:
        return replace(
            blank_row(self.config, self.spec.name, classes, head), trunk_first_call_ms=self.trunk_first_call_ms
        )

    def _time(self, fn: Callable[[], torch.Tensor]) -> Measurement:
        config = self.config
        return self.timer.time(
            fn,
            samples=config.protocol.batches,
            warmup=config.warmup_plan,
            use_graph=config.timing is Timing.graph,
            min_sample_ms=config.min_sample_ms,
        )

    def _time_against_reference(self, fn: Callable[[], torch.Tensor]) -> PairedTiming:
        assert self.reference is not None
        config = self.config
        protocol = config.protocol
        return self.timer.time_pair(
            self.reference,
            fn,
            blocks=protocol.blocks,
            warmup=config.warmup_plan,
            use_graph=config.timing is Timing.graph,
            min_sample_ms=config.min_sample_ms,
            target_pct=protocol.ci_target_pct,
            budget_s=protocol.row_budget_s,
        )

    def _first_call_ms(self, fn: Callable[[], torch.Tensor]) -> float:
        # One-time costs (compilation, cuDNN autotuning, lazy init) are reported, never averaged in.
        start = time.perf_counter()
        fn()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return (time.perf_counter() - start) * 1e3

    def _head(self, row: SpeedRow, full_head: nn.Linear) -> nn.Module:
        """The module that computes this row's top layer from the full k-unit head."""
        if row.head is Head.padded:
            assert self.config.pad_head is not None
            padded = PaddedHead(full_head, self.config.pad_head)
            row.padded_to = padded.padded_to
            return padded
        if row.head in QUERY_HEADS:
            generator = torch.Generator(device="cpu").manual_seed(self.config.seed)
            query = torch.randint(0, row.classes, (self.config.protocol.batch_size,), generator=generator)
            return self.parts.query_head(row.head, full_head, query)
        return full_head

    def _gpu_record(self, row: SpeedRow, forward: Callable[[], torch.Tensor], start_s: float) -> SpeedRow:
        """The row with what NVML saw since ``start_s`` and, with an energy window, its energy per batch."""
        assert self.sampler is not None
        sustained = None
        if self.config.energy_window_s and self.sampler.gpu.has_energy_counter and row.batch_ms:
            sustained = self.timer.sustain(
                forward,
                seconds=self.config.energy_window_s,
                call_ms=row.batch_ms,
                use_graph=self.config.timing is Timing.graph,
                min_sample_ms=self.config.min_sample_ms,
            )
        readings = self.sampler.take(start_s, self.sampler.now())  # the timer's ``now`` is the sampler's clock
        row = replace(row, **asdict(row_validity(readings)))
        fit = None if sustained is None else fit_power(readings, sustained.start_s, sustained.end_s)
        if fit is not None and sustained is not None:
            row.avg_power_w, row.energy_window_s = fit.avg_power_w, fit.span_s
            row.energy_mj_per_batch = fit.avg_power_w * sustained.call_ms  # W x ms = mJ
            if row.classes == 1 and row.head is Head.full:
                self.reference_energy_mj = row.energy_mj_per_batch
            elif self.reference_energy_mj:
                row.energy_ratio = row.energy_mj_per_batch / self.reference_energy_mj
        return row

    def measure(self, classes: int, head_kind: Head, full_head: nn.Linear) -> SpeedRow:
        row = self.new_row(classes, head_kind)
        head = self._head(row, full_head)

        def forward() -> torch.Tensor:
            return head(self.trunk(self.input))

        row.first_call_ms = self._first_call_ms(forward)
        start_s = self.sampler.now() if self.sampler is not None else 0.0
        if self.device.type == "cuda":
            # Peak of steady-state inference (weights, activations, graph pool), not of cuDNN's
            # one-time autotuning workspaces during the first call.
            torch.cuda.reset_peak_memory_stats(self.device)
        if self.reference is None or (classes == 1 and head_kind is Head.full):
            measurement = self._time(forward)
            row.record(measurement, median_interval(measurement.samples_ms))
            if classes == 1 and head_kind is Head.full:
                row.speedup, row.speedup_ci, row.speedup_method = 1.0, [1.0, 1.0], "the reference row (k=1)"
                self.reference = forward
        else:
            paired = self._time_against_reference(forward)
            row.record(paired.timed, median_interval(paired.timed.samples_ms))
            row.record_speedup(
                paired.ratio,
                ratios=list(paired.ratios),
                reference_ms=list(paired.reference.samples_ms),
                converged=paired.converged,
            )
        if head_kind in (Head.full, Head.padded):
            head_time = self._time(lambda: head(self.features))
            row.head_ms, row.head_ms_ci = head_time.median, median_interval(head_time.samples_ms).bounds()
            row.head_bytes = sum(t.numel() * t.element_size() for t in head.parameters())
            if self.bandwidth_gbs:
                row.head_floor_ms = row.head_bytes / (self.bandwidth_gbs * 1e9) * 1e3
        if self.sampler is not None:
            row = self._gpu_record(row, forward, start_s)
        if self.device.type == "cuda":
            row.peak_mem_mib = torch.cuda.max_memory_allocated(self.device) / 2**20
        return row


RowStarted = Callable[[SpeedRow], None]


def measure_rows(
    config: SpeedConfig, *, parts: SweepParts = SweepParts(), on_start: RowStarted | None = None
) -> Iterator[SpeedRow]:
    """Measure every (architecture, class count, head) row of ``config``, yielding rows as they finish.

    ``on_start`` is called with each row's identity (a blank row) before it is measured. Each step
    of the sweep runs under the run's numerics and inference mode, entered and left around it, so
    that the caller does not run in them while the generator waits between rows.
    """
    device = torch.device(config.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SlcbenchError("CUDA was requested but no CUDA device is available (use --device cpu or auto)")
    torch.manual_seed(config.seed)
    sampler = _start_sampler(parts, device)
    try:
        rows = _sweep(config, parts, on_start or (lambda row: None), sampler)
        while True:
            with numerics(config.precision, device, config.cudnn_benchmark), torch.inference_mode():
                row = next(rows, None)
            if row is None:
                return
            yield row
    finally:
        if sampler is not None:
            sampler.stop()


def _start_sampler(parts: SweepParts, device: torch.device) -> Sampler | None:
    """A running sampler of the device's NVML readings, or None where NVML cannot report (the run's
    ``gpu_state`` says why)."""
    try:
        return Sampler(parts.open_gpu(device), parts.sample_interval_s).start()
    except NvmlUnavailable:
        return None


def _sweep(config: SpeedConfig, parts: SweepParts, on_start: RowStarted, sampler: Sampler | None) -> Iterator[SpeedRow]:
    bandwidth = parts.bandwidth_gbs(torch.device(config.device))
    for spec in config.archs:
        yield from _run_arch(config, spec, parts, bandwidth, on_start, sampler)


def _run_arch(
    config: SpeedConfig,
    spec: ArchSpec,
    parts: SweepParts,
    bandwidth: float | None,
    on_start: RowStarted,
    sampler: Sampler | None,
) -> Iterator[SpeedRow]:
    device = torch.device(config.device)
    try:
        bench = _Bench(config, spec, parts, bandwidth, sampler)
    except Exception as exc:
        for k, heads in config.heads.items():
            for kind in heads:
                yield _marked(blank_row(config, spec.name, k, kind), exc)
        del exc
        _free_device_memory(device)
        return
    for k, heads in config.heads.items():
        rows = []
        full_head = None
        try:
            full_head = parts.make_head(bench.in_features, k, device, bench.dtype)
        except Exception as exc:
            rows = [_marked(bench.new_row(k, kind), exc) for kind in heads]
        else:
            for kind in heads:  # each row on its own: a failing query row keeps its full row
                on_start(bench.new_row(k, kind))
                try:
                    rows.append(bench.measure(k, kind, full_head))
                except Exception as exc:
                    rows.append(_marked(bench.new_row(k, kind), exc))
        finally:
            del full_head
            _free_device_memory(device)
        yield from rows
    del bench
    _free_device_memory(device)
