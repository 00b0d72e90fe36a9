"""How forward passes are timed: one sampling loop, a host clock or CUDA events, optional graph replay.

The estimand matters (see the timing-methodology notes): by default on CUDA we time *the GPU's work
per batch*: the forward pass captured as a CUDA graph (with several calls unrolled into it when one
is shorter than the minimum sample time) and replayed, with a CUDA event between consecutive
replays, and one synchronisation after the last. ``eager`` instead times the forward launched from
Python, so launch overhead the GPU waits for is included. On the CPU the host clock times each call
(CPU work is synchronous). Warm-up runs until a count, a time floor and, on CUDA, a steady state are
reached, and what it did is kept with the samples.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Protocol, Sequence

import numpy as np
import torch


@dataclass(frozen=True)
class Measurement:
    """Raw per-call times in milliseconds, with the summary statistics computed from them."""

    samples_ms: tuple[float, ...]
    calls_per_sample: int = 1  # calls timed together in each sample; samples are per call
    warmup: Warmup | None = None  # what the untimed warm-up before the samples did

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
    def iqr(self) -> float:
        return self.q3 - self.q1

    @property
    def iqr_pct(self) -> float:
        """IQR as a percentage of the median: the spread figure every row reports."""
        return 100.0 * self.iqr / self.median if self.median > 0 else float("nan")

    @property
    def min(self) -> float:
        return float(min(self.samples_ms))

    @property
    def p90(self) -> float:
        return self._quantile(0.90)


class Marker(Protocol):
    """Something that marks points in time and turns consecutive marks into durations."""

    def mark(self) -> object: ...

    def durations_ms(self, marks: Sequence[object]) -> list[float]: ...


class HostClock:
    """perf_counter marks: right for the CPU, where each call has finished when it returns."""

    def mark(self) -> float:
        return time.perf_counter()

    def durations_ms(self, marks: Sequence[object]) -> list[float]:
        return [(float(b) - float(a)) * 1e3 for a, b in zip(marks, marks[1:])]  # type: ignore[arg-type]


@dataclass
class CudaEventClock:
    """CUDA event marks on the current stream: GPU time between consecutive marks, no host sync in between."""

    device: torch.device = field(default_factory=lambda: torch.device("cuda"))

    def mark(self) -> torch.cuda.Event:
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def durations_ms(self, marks: Sequence[object]) -> list[float]:
        torch.cuda.synchronize(self.device)
        return [a.elapsed_time(b) for a, b in zip(marks, marks[1:])]  # type: ignore[union-attr]


def clock_for(device: torch.device) -> Marker:
    return CudaEventClock(device) if device.type == "cuda" else HostClock()


# Calls per unrolled graph (and per warm-up window) at most: 1000 calls of a 5 µs GEMM fill 5 ms,
# and capturing them stays quick.
MAX_CALLS_PER_SAMPLE = 1000


@dataclass(frozen=True)
class WarmupPlan:
    """When untimed warm-up may stop: after ``calls`` calls *and* ``min_s`` seconds, and, when
    ``settle_pct`` is set, once two consecutive windows of about ``window_ms`` have median call
    times within ``settle_pct`` percent of each other, or ``max_s`` seconds have passed.

    Counting and a time floor alone did not reach steady state for every row: on an H100 a few rows
    were up to 3% faster or slower at the start of their timed replays than at the end (after the
    short idle gap of building the next head; GPU clocks are the likely cause, not verified), which
    showed up as IQR. Warm-up is timed in windows, one synchronisation per window, so its clock
    counts finished work rather than queued launches.
    """

    calls: int = 0
    min_s: float = 0.0
    settle_pct: float | None = None
    max_s: float = 0.0
    window_ms: float = 100.0

    def __post_init__(self) -> None:
        if self.settle_pct is not None and not self.max_s > 0:
            raise ValueError("a warm-up that waits for a steady time needs max_s > 0 to end")

    def after(self, done: Warmup) -> WarmupPlan:
        """What is left of this plan once ``done`` has run (its calls and seconds count towards it)."""
        spent = done.seconds
        return replace(self, calls=max(0, self.calls - done.calls), min_s=max(0.0, self.min_s - spent),
                       max_s=max(1e-9, self.max_s - spent) if self.settle_pct is not None else self.max_s)

    def in_runs_of(self, calls_per_run: int) -> WarmupPlan:
        """The same plan for a ``run`` that makes ``calls_per_run`` calls (an unrolled graph)."""
        return replace(self, calls=math.ceil(self.calls / calls_per_run))


@dataclass(frozen=True)
class Warmup:
    """What warm-up did: calls made, seconds taken, the last window's median time per call, and whether
    it settled (None where settling was not asked for)."""

    calls: int = 0
    seconds: float = 0.0
    call_ms: float | None = None
    settled: bool | None = None

    def then(self, later: Warmup, *, calls_per_run: int = 1) -> Warmup:
        """This warm-up followed by ``later``, whose runs each made ``calls_per_run`` calls (an unrolled
        graph): calls and time per call stay counted in single calls."""
        later_call_ms = None if later.call_ms is None else later.call_ms / calls_per_run
        return Warmup(self.calls + later.calls * calls_per_run, self.seconds + later.seconds,
                      self.call_ms if later_call_ms is None else later_call_ms,
                      self.settled if later.settled is None else later.settled)


def _settled(plan: WarmupPlan, window_medians: Sequence[float]) -> bool:
    if plan.settle_pct is None or len(window_medians) < 2:
        return False
    previous, last = window_medians[-2], window_medians[-1]
    return abs(last - previous) <= plan.settle_pct / 100 * previous


def _warm_enough(plan: WarmupPlan, calls: int, elapsed_s: float, window_medians: Sequence[float]) -> bool:
    if calls < plan.calls or elapsed_s < plan.min_s:
        return False
    return plan.settle_pct is None or _settled(plan, window_medians) or elapsed_s >= plan.max_s


def _window_length(plan: WarmupPlan, calls: int, elapsed_s: float, call_ms: float | None) -> int:
    """Calls in the next warm-up window (at least 1): a settle window lasts about ``window_ms``;
    otherwise the window makes the calls still owed, or lasts the time still owed, whichever is more."""
    remaining = max(0, plan.calls - calls)
    if not call_ms:
        length = min(8, remaining) if remaining else 8
    elif plan.settle_pct is not None:
        length = math.ceil(plan.window_ms / call_ms)
    else:
        time_owed_ms = max(0.0, plan.min_s - elapsed_s) * 1e3
        length = max(remaining, math.ceil(time_owed_ms / call_ms))
    return max(1, min(MAX_CALLS_PER_SAMPLE, length))


def warm_up(run: Callable[[], object], clock: Marker, plan: WarmupPlan) -> Warmup:
    """Call ``run`` untimed (for the result) until ``plan`` says it is warm; see ``WarmupPlan``."""
    start = time.perf_counter()
    calls, window_medians = 0, []
    while True:
        elapsed = time.perf_counter() - start  # read once: both decisions must see the same time
        if _warm_enough(plan, calls, elapsed, window_medians):
            break
        length = _window_length(plan, calls, elapsed, window_medians[-1] if window_medians else None)
        marks = [clock.mark()]
        for _ in range(length):
            run()
            marks.append(clock.mark())
        calls += length
        window_medians.append(statistics.median(clock.durations_ms(marks)))  # synchronises
    return Warmup(
        calls=calls, seconds=time.perf_counter() - start,
        call_ms=window_medians[-1] if window_medians else None,
        settled=None if plan.settle_pct is None else _settled(plan, window_medians),
    )


def sample_calls(run: Callable[[], object], *, samples: int, clock: Marker, calls_per_run: int = 1) -> Measurement:
    """Call ``run`` ``samples`` times with a mark between calls; each sample is per call of the timed
    work (``run`` may perform ``calls_per_run`` of them, e.g. an unrolled graph).

    Marks are taken back to back (the end of one sample is the start of the next), so the loop itself
    adds no gaps on the GPU; durations are read once, after the last call.
    """
    if samples < 1:
        raise ValueError("samples must be at least 1")
    marks = [clock.mark()]
    for _ in range(samples):
        run()
        marks.append(clock.mark())
    return Measurement(tuple(d / calls_per_run for d in clock.durations_ms(marks)), calls_per_sample=calls_per_run)


def calls_per_sample(call_ms: float | None, min_sample_ms: float) -> int:
    """Calls to unroll into one sample so that it lasts at least ``min_sample_ms`` (1 when unknown)."""
    if not min_sample_ms or not call_ms or call_ms <= 0:
        return 1
    return max(1, min(MAX_CALLS_PER_SAMPLE, math.ceil(min_sample_ms / call_ms)))


def capture_cuda_graph(run: Callable[[], object], *, calls: int = 1, warmup: int = 3) -> Callable[[], None]:
    """Capture ``calls`` back-to-back calls of ``run`` as one CUDA graph and return its replay.

    ``run`` must read and write only static tensors (the input it closes over, the output it
    returns). Warm-up happens on a side stream before capture, as PyTorch requires, so lazy
    initialisation and cuDNN autotuning stay outside the graph. Unrolling several calls into one
    graph (as triton's ``do_bench_cudagraph`` does) leaves no host launch between them: a call
    shorter than a graph launch is then timed as GPU work, not as the launch rate.
    """
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(max(1, warmup)):
            run()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(calls):
            run()
    return graph.replay


# Sizing an unrolled graph: this many replays estimate a call's time (a window, no time floor).
PROBE = WarmupPlan(calls=8)


def _unrolled_graph(
    run: Callable[[], object], clock: Marker, min_sample_ms: float
) -> tuple[Callable[[], None], int, Warmup]:
    """A CUDA graph of ``run`` with enough calls unrolled that one replay lasts ``min_sample_ms``.

    A call's time is first estimated from replays of a one-call graph. Where a call is shorter than
    launching a graph from the host, those replays time the launch rate, not the GPU's work, so the
    estimate is too long and the unrolled graph too short: each larger graph is probed again and
    re-captured until one replay is long enough (or ``MAX_CALLS_PER_SAMPLE`` is reached).
    """
    calls, replay = 1, capture_cuda_graph(run)
    probed = Warmup()
    while True:
        probe = warm_up(replay, clock, PROBE)
        probed = probed.then(probe, calls_per_run=calls)  # keeps call_ms per single call
        wanted = calls_per_sample(probed.call_ms, min_sample_ms)
        if wanted <= calls:
            return replay, calls, probed
        del replay  # free the smaller graph's memory pool before capturing the larger one
        calls, replay = wanted, capture_cuda_graph(run, calls=wanted, warmup=1)


def time_callable(
    run: Callable[[], object], *, device: torch.device, samples: int, warmup: WarmupPlan, use_graph: bool,
    min_sample_ms: float = 0.0,
) -> Measurement:
    """Time ``run`` on ``device``, warm-up first, returning per-call samples and what warm-up did.

    With ``use_graph`` (CUDA only) ``run`` is captured as a CUDA graph and replayed. Where one call
    is shorter than ``min_sample_ms`` the graph holds several calls unrolled, so that one sample lasts
    that long; the whole warm-up ``warmup`` (count, time floor, steady state) then runs on the graph
    that is timed, after its capture. A longer sample averages out sub-millisecond jitter, and 100
    samples then span a long enough stretch of time that a transient of a few milliseconds touches
    too few of them to move the median or IQR. Samples are always per call.
    """
    clock = clock_for(device)
    if not use_graph:
        done = warm_up(run, clock, warmup)
        return replace(sample_calls(run, samples=samples, clock=clock), warmup=done)
    if device.type != "cuda":
        raise ValueError("CUDA graphs need a CUDA device")
    if min_sample_ms > 0:
        replay, calls, probed = _unrolled_graph(run, clock, min_sample_ms)
    else:
        replay, calls, probed = capture_cuda_graph(run), 1, Warmup()
    # The probes were warm-up too; the plan's remainder runs on the graph that is timed.
    done = probed.then(warm_up(replay, clock, warmup.after(probed).in_runs_of(calls)), calls_per_run=calls)
    return replace(sample_calls(replay, samples=samples, clock=clock, calls_per_run=calls), warmup=done)


def measure_copy_bandwidth_gbs(device: torch.device, *, mebibytes: int = 1024, samples: int = 20) -> float:
    """Device-memory bandwidth in GB/s from a large device-to-device copy (bytes read + bytes written).

    This is the measured ceiling the head's weight-streaming floor is computed from.
    """
    n = mebibytes * 2**20 // 4
    src = torch.rand(n, device=device)
    dst = torch.empty_like(src)

    def copy() -> None:
        dst.copy_(src)

    measurement = time_callable(copy, device=device, samples=samples, warmup=WarmupPlan(calls=3), use_graph=False)
    moved = 2 * src.numel() * src.element_size()
    del src, dst
    return moved / (measurement.median * 1e-3) / 1e9
