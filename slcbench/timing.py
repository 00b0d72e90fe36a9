"""How forward passes are timed: one sampling loop, a host clock or CUDA events, optional graph replay.

The estimand matters (see the timing-methodology notes): by default on CUDA we time *the GPU's work
per batch*: the forward pass captured once as a CUDA graph and replayed, with a CUDA event between
consecutive replays, and one synchronisation after the last. ``eager`` instead times the forward
launched from Python, so launch overhead the GPU waits for is included. On the CPU the host clock
times each call (CPU work is synchronous).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

import numpy as np
import torch


@dataclass(frozen=True)
class Measurement:
    """Raw per-call times in milliseconds, with the summary statistics computed from them."""

    samples_ms: tuple[float, ...]
    calls_per_sample: int = 1

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

    def synchronize(self) -> None: ...

    def durations_ms(self, marks: Sequence[object]) -> list[float]: ...


class HostClock:
    """perf_counter marks: right for the CPU, where each call has finished when it returns."""

    def mark(self) -> float:
        return time.perf_counter()

    def synchronize(self) -> None:
        pass

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

    def synchronize(self) -> None:
        torch.cuda.synchronize(self.device)

    def durations_ms(self, marks: Sequence[object]) -> list[float]:
        torch.cuda.synchronize(self.device)
        return [a.elapsed_time(b) for a, b in zip(marks, marks[1:])]  # type: ignore[union-attr]


def clock_for(device: torch.device) -> Marker:
    return CudaEventClock(device) if device.type == "cuda" else HostClock()


def sample_calls(
    run: Callable[[], object], *, warmup: int, samples: int, clock: Marker, min_warmup_s: float = 0.0
) -> Measurement:
    """Call ``run`` untimed until ``warmup`` calls *and* ``min_warmup_s`` seconds have passed, then
    ``samples`` times with a mark between calls.

    The time floor matters for short calls: 20 replays of a 1.7 ms graph are 34 ms, too little for
    the GPU's clocks to settle. Marks are taken back to back (the end of one sample is the start of
    the next), so the loop itself adds no gaps on the GPU; durations are read once, after the last call.
    """
    if samples < 1:
        raise ValueError("samples must be at least 1")
    deadline = time.perf_counter() + min_warmup_s
    done = 0
    while done < warmup or (min_warmup_s > 0 and time.perf_counter() < deadline):
        run()
        done += 1
        if done % 8 == 0:
            clock.synchronize()  # let the time floor count finished work, not queued launches
    marks = [clock.mark()]
    for _ in range(samples):
        run()
        marks.append(clock.mark())
    return Measurement(tuple(clock.durations_ms(marks)))


def capture_cuda_graph(run: Callable[[], object], *, warmup: int = 3) -> Callable[[], None]:
    """Capture one call of ``run`` as a CUDA graph and return its replay.

    ``run`` must read and write only static tensors (the input it closes over, the output it
    returns). Warm-up happens on a side stream before capture, as PyTorch requires, so lazy
    initialisation and cuDNN autotuning stay outside the graph.
    """
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(max(1, warmup)):
            run()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        run()
    return graph.replay


def time_callable(
    run: Callable[[], object], *, device: torch.device, warmup: int, samples: int, use_graph: bool,
    min_warmup_s: float = 0.0,
) -> Measurement:
    """Time ``run`` on ``device``: replayed as a CUDA graph when ``use_graph`` (CUDA only), else directly."""
    if use_graph:
        if device.type != "cuda":
            raise ValueError("CUDA graphs need a CUDA device")
        run = capture_cuda_graph(run)
    return sample_calls(run, warmup=warmup, samples=samples, clock=clock_for(device), min_warmup_s=min_warmup_s)


def measure_copy_bandwidth_gbs(device: torch.device, *, mebibytes: int = 1024, samples: int = 20) -> float:
    """Device-memory bandwidth in GB/s from a large device-to-device copy (bytes read + bytes written).

    This is the measured ceiling the head's weight-streaming floor is computed from.
    """
    n = mebibytes * 2**20 // 4
    src = torch.rand(n, device=device)
    dst = torch.empty_like(src)
    measurement = sample_calls(lambda: dst.copy_(src), warmup=3, samples=samples, clock=clock_for(device))
    moved = 2 * src.numel() * src.element_size()
    del src, dst
    return moved / (measurement.median * 1e-3) / 1e9
