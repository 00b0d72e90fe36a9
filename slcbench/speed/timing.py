"""How a forward pass is timed: one sampling loop, a host clock or CUDA events, optional graph replay.

On CUDA, by default, the estimand is the GPU's work per batch: the forward pass captured as a CUDA
graph (with several calls unrolled into it when one is shorter than the minimum sample time) and
replayed, with a CUDA event between consecutive replays and one synchronisation after the last.
Eager timing instead times the forward launched from Python, launch overhead included. On the CPU
the host clock times each call (CPU work is synchronous). Warm-up runs until a count, a time floor
and, under graph timing, a steady state are reached; what it did is kept with the samples.

A ``Timer`` carries the three things timing depends on (the clock, the graph capture and the host's
time source), so tests can hand it stand-ins.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import torch

from slcbench.results import DEFAULT_CONFIDENCE, Interval, Measurement, Warmup
from slcbench.speed.protocol import MAX_BLOCKS, MAX_CALLS_PER_SAMPLE, WarmupPlan
from slcbench.stats import abba_ratios, ratio_interval


class Marker(Protocol):
    """Something that marks points in time and turns consecutive marks into durations."""

    def mark(self) -> object: ...

    def durations_ms(self, marks: Sequence[object]) -> list[float]: ...


class HostClock:
    """perf_counter marks: right for the CPU, where each call has finished when it returns."""

    def mark(self) -> float:
        return time.perf_counter()

    def durations_ms(self, marks: Sequence[object]) -> list[float]:
        return [(float(b) - float(a)) * 1e3 for a, b in zip(marks, marks[1:], strict=False)]  # type: ignore[arg-type]


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
        return [a.elapsed_time(b) for a, b in zip(marks, marks[1:], strict=False)]  # type: ignore[attr-defined]


Capture = Callable[..., Callable[[], None]]  # (run, *, calls, warmup) -> replay


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


def calls_per_sample(call_ms: float | None, min_sample_ms: float) -> int:
    """Calls to unroll into one sample so that it lasts at least ``min_sample_ms`` (1 when unknown)."""
    if not min_sample_ms or not call_ms or call_ms <= 0:
        return 1
    return max(1, min(MAX_CALLS_PER_SAMPLE, math.ceil(min_sample_ms / call_ms)))


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


@dataclass(frozen=True)
class PairedTiming:
    """A row timed in A-B-B-A blocks against a reference: both sides' samples (per call), the block
    ratios time(B) / time(A), their estimate and interval, and whether adaptive sampling reached its
    target (None when it had none)."""

    reference: Measurement
    timed: Measurement
    ratios: tuple[float, ...]
    ratio: Interval
    converged: bool | None


@dataclass(frozen=True)
class Sustained:
    """A window of back-to-back calls: its host start and end (``Timer.now``), the calls made and the
    device's time for all of them."""

    start_s: float
    end_s: float
    calls: int
    device_ms: float

    @property
    def call_ms(self) -> float:
        return self.device_ms / self.calls


@dataclass(frozen=True)
class Timer:
    """Times calls on one device.

    Parameters
    ----------
    clock : Marker
        Marks time between calls (host clock on the CPU, CUDA events on a GPU).
    capture : callable or None
        Captures calls as a CUDA graph (``capture_cuda_graph``); None where graphs are not used.
    now : callable
        The host's seconds, for warm-up's time limits.
    """

    clock: Marker
    capture: Capture | None = None
    now: Callable[[], float] = time.perf_counter

    def warm_up(self, run: Callable[[], object], plan: WarmupPlan) -> Warmup:
        """Call ``run`` untimed (for the result) until ``plan`` says it is warm; see ``WarmupPlan``."""
        start = self.now()
        calls, window_medians = 0, list[float]()
        while True:
            elapsed = self.now() - start  # read once: both decisions must see the same time
            if _warm_enough(plan, calls, elapsed, window_medians):
                break
            length = _window_length(plan, calls, elapsed, window_medians[-1] if window_medians else None)
            marks = [self.clock.mark()]
            for _ in range(length):
                run()
                marks.append(self.clock.mark())
            calls += length
            window_medians.append(statistics.median(self.clock.durations_ms(marks)))  # synchronises
        return Warmup(
            calls=calls,
            seconds=self.now() - start,
            call_ms=window_medians[-1] if window_medians else None,
            settled=None if plan.settle_pct is None else _settled(plan, window_medians),
        )

    def sample(self, run: Callable[[], object], *, samples: int, calls_per_run: int = 1) -> Measurement:
        """Call ``run`` ``samples`` times with a mark between calls; each sample is per call of the
        timed work (``run`` may perform ``calls_per_run`` of them, e.g. an unrolled graph).

        Marks are taken back to back (the end of one sample is the start of the next), so the loop
        itself adds no gaps on the GPU; durations are read once, after the last call.
        """
        if samples < 1:
            raise ValueError("samples must be at least 1")
        marks = [self.clock.mark()]
        for _ in range(samples):
            run()
            marks.append(self.clock.mark())
        durations = self.clock.durations_ms(marks)
        return Measurement(tuple(d / calls_per_run for d in durations), calls_per_sample=calls_per_run)

    def time(
        self,
        run: Callable[[], object],
        *,
        samples: int,
        warmup: WarmupPlan,
        use_graph: bool,
        min_sample_ms: float = 0.0,
    ) -> Measurement:
        """Time ``run``, warm-up first, returning per-call samples and what warm-up did.

        With ``use_graph`` ``run`` is captured as a CUDA graph and replayed. Where one call is
        shorter than ``min_sample_ms`` the graph holds several calls unrolled, so that one sample
        lasts that long; the whole warm-up (count, time floor, steady state) then runs on the graph
        that is timed. Longer samples average out sub-millisecond jitter, and 100 of them span long
        enough that a transient of a few milliseconds touches too few to move the median or IQR.
        """
        if not use_graph:
            done = self.warm_up(run, warmup)
            return replace(self.sample(run, samples=samples), warmup=done)
        if self.capture is None:
            raise ValueError("graph timing needs a capture (CUDA graphs need a CUDA device)")
        replay, calls, probed = self._graph(run, min_sample_ms)
        # The probes were warm-up too; the plan's remainder runs on the graph that is timed.
        rest = self.warm_up(replay, warmup.after(probed).in_runs_of(calls))
        done = probed.then(rest, calls_per_run=calls)
        return replace(self.sample(replay, samples=samples, calls_per_run=calls), warmup=done)

    def time_pair(
        self,
        reference: Callable[[], object],
        timed: Callable[[], object],
        *,
        blocks: int,
        warmup: WarmupPlan,
        use_graph: bool,
        min_sample_ms: float = 0.0,
        target_pct: float | None = None,
        budget_s: float = 0.0,
        confidence: float = DEFAULT_CONFIDENCE,
    ) -> PairedTiming:
        """Time ``timed`` (B) against ``reference`` (A) in interleaved A-B-B-A blocks.

        Both are warmed up together (the plan counts pairs of calls), so that neither starts cold.
        ``blocks`` blocks are taken; with ``target_pct``, further blocks follow one at a time until the
        ratio's interval lies within ``target_pct`` percent of its estimate, or sampling has taken
        ``budget_s`` seconds, or ``MAX_BLOCKS`` are reached. Under graph timing each side is its own
        CUDA graph (unrolled to ``min_sample_ms``), replayed alternately.
        """
        probed = Warmup()
        run_a: Callable[[], object]
        run_b: Callable[[], object]
        if use_graph:
            if self.capture is None:
                raise ValueError("graph timing needs a capture (CUDA graphs need a CUDA device)")
            run_a, calls_a, _ = self._graph(reference, min_sample_ms)
            run_b, calls_b, probed = self._graph(timed, min_sample_ms)
        else:
            run_a, calls_a, run_b, calls_b = reference, 1, timed, 1

        def pair() -> None:
            run_a()
            run_b()

        done = probed.then(self.warm_up(pair, warmup.after(probed).in_runs_of(calls_b)), calls_per_run=calls_b)
        a_samples: list[float] = []
        b_samples: list[float] = []
        start, converged = self.now(), None
        while True:
            count = blocks if not a_samples else 1
            marks = [self.clock.mark()]
            for _ in range(count):
                for run in (run_a, run_b, run_b, run_a):
                    run()
                    marks.append(self.clock.mark())
            durations = self.clock.durations_ms(marks)
            for block in range(count):
                a1, b1, b2, a2 = durations[4 * block : 4 * block + 4]
                a_samples += [a1 / calls_a, a2 / calls_a]
                b_samples += [b1 / calls_b, b2 / calls_b]
            ratios = abba_ratios(a_samples, b_samples)
            interval = ratio_interval(ratios, confidence)
            if target_pct is None:
                break
            width = interval.half_width_pct()
            if width is not None and width <= target_pct:
                converged = True
                break
            if self.now() - start >= budget_s or len(ratios) >= MAX_BLOCKS:
                converged = False
                break
        return PairedTiming(
            reference=Measurement(tuple(a_samples), calls_per_sample=calls_a),
            timed=Measurement(tuple(b_samples), calls_per_sample=calls_b, warmup=done),
            ratios=tuple(ratios),
            ratio=interval,
            converged=converged,
        )

    def sustain(
        self, run: Callable[[], object], *, seconds: float, call_ms: float, use_graph: bool, min_sample_ms: float = 0.0
    ) -> Sustained:
        """Call ``run`` back to back for at least ``seconds`` of the device's time, ``call_ms`` being the time
        of one call, with one mark before the first call and one after the last: a window of steady work
        (for reading an energy counter beside it). With ``use_graph``, as ``time`` captures and replays it."""
        replay, calls = run, 1
        if use_graph:
            if self.capture is None:
                raise ValueError("graph timing needs a capture (CUDA graphs need a CUDA device)")
            replay, calls, _ = self._graph(run, min_sample_ms)
        runs = max(1, math.ceil(seconds * 1e3 / (max(call_ms, 1e-6) * calls)))
        start = self.now()
        marks = [self.clock.mark()]
        for _ in range(runs):
            replay()
        marks.append(self.clock.mark())
        device_ms = sum(self.clock.durations_ms(marks))  # synchronises
        return Sustained(start_s=start, end_s=self.now(), calls=runs * calls, device_ms=device_ms)

    def _graph(self, run: Callable[[], object], min_sample_ms: float) -> tuple[Callable[[], None], int, Warmup]:
        """``run`` captured as a CUDA graph, unrolled to ``min_sample_ms`` when that is set."""
        assert self.capture is not None
        if min_sample_ms > 0:
            return self._unrolled_graph(run, min_sample_ms)
        return self.capture(run), 1, Warmup()

    def _unrolled_graph(
        self, run: Callable[[], object], min_sample_ms: float
    ) -> tuple[Callable[[], None], int, Warmup]:
        """A CUDA graph of ``run`` with enough calls unrolled that one replay lasts ``min_sample_ms``.

        A call's time is first estimated from replays of a one-call graph. Where a call is shorter
        than launching a graph from the host, those replays time the launch rate, so the estimate is
        too long and the unrolled graph too short: each larger graph is probed again and re-captured
        until one replay is long enough (or ``MAX_CALLS_PER_SAMPLE`` is reached).
        """
        assert self.capture is not None
        calls, replay = 1, self.capture(run)
        probed = Warmup()
        while True:
            probed = probed.then(self.warm_up(replay, PROBE), calls_per_run=calls)  # call_ms per single call
            wanted = calls_per_sample(probed.call_ms, min_sample_ms)
            if wanted <= calls:
                return replay, calls, probed
            del replay  # free the smaller graph's memory pool before capturing the larger one
            calls, replay = wanted, self.capture(run, calls=wanted, warmup=1)


def timer_for(device: torch.device) -> Timer:
    """CUDA events and graph capture on a GPU; the host clock, without graphs, elsewhere."""
    if device.type == "cuda":
        return Timer(CudaEventClock(device), capture_cuda_graph)
    return Timer(HostClock())


def measure_copy_bandwidth_gbs(device: torch.device, *, mebibytes: int = 1024, samples: int = 20) -> float:
    """Device-memory bandwidth in GB/s from a large device-to-device copy (bytes read + bytes written):
    the measured ceiling from which the head's weight-streaming floor is computed."""
    n = mebibytes * 2**20 // 4
    src = torch.rand(n, device=device)
    dst = torch.empty_like(src)

    def copy() -> None:
        dst.copy_(src)

    measurement = timer_for(device).time(copy, samples=samples, warmup=WarmupPlan(calls=3), use_graph=False)
    moved = 2 * src.numel() * src.element_size()
    return moved / (measurement.median * 1e-3) / 1e9
