"""What NVML says about the GPU during a speed run: its state at the start, its clocks, throttling,
temperature and power while each row is timed, and the energy the row's batches take.

nvidia-ml-py (``import pynvml``, the ``gpu`` extra) is optional: it is imported only when a CUDA run
opens the GPU. Where it is missing, or NVML cannot see the GPU (every CPU run), ``open_gpu`` raises
``NvmlUnavailable`` with the reason, the run's header says so once and the rows' NVML fields stay
null. Everything reads the GPU through ``NvmlGpu``, so tests hand it a stand-in library with known
counters.

Readings come from a background thread at a fixed interval (``Sampler``), not from the timing loop:
under graph timing the host queues replays far ahead of the GPU and then waits in a synchronisation
that releases the GIL, so a reading a few NVML calls long (ctypes calls, the GIL released) never
leaves the GPU waiting; the timing code stays as it is; and the readings cover warm-up and samples
alike at a known rate. Reads between A-B-B-A blocks would see a GPU still working through queued
blocks, at an irregular rate, and would need hooks in the timer. Under ``--eager`` CUDA timing (host
launch time included) the thread's reads share the host with the timed launches: the run's
``gpu_state`` records how long one read takes (``read_ms``), so that cost can be judged.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import operator
import os
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from slcbench.extras import install_command

if TYPE_CHECKING:
    import torch

# How often the background thread reads the GPU: the energy counter updates every 20-100 ms, so a
# counter update is seen within 10 ms of happening, and a row of ~1 s has about 100 readings.
SAMPLE_INTERVAL_S = 0.01
# A row is flagged when its SM clock moved more than this (max - min, % of max) while the GPU was
# busy: the precision to which speedups are quoted, since a compute-bound time moves with the clock.
CLOCK_MOVE_TOLERANCE_PCT = 2.0
# The energy counter may report energy up to some time before each update: updates within this long
# after a window starts may still hold the idle time before it.
ENERGY_LAG_S = 0.1
# Replays back to back per energy window: at least 1 s of them remains after the lag and the first
# and last counter updates are taken off.
ENERGY_WINDOW_S = 1.3

# NVML's C enum values (nvml.h), the same in every driver.
_CLOCK_SM, _CLOCK_MEM = 1, 2
_TEMPERATURE_GPU = 0
_CLOCK_ID_APP_TARGET, _CLOCK_ID_APP_DEFAULT = 1, 2

# The nvmlClocksEventReason bits (formerly "throttle reasons") and the names rows record.
GPU_IDLE = 0x1
REASON_NAMES = {
    GPU_IDLE: "gpu_idle",
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}
# Reasons that are not throttling: nothing to run, or a clock that a person set (locked clocks).
NOT_THROTTLING = frozenset({"gpu_idle", "applications_clocks_setting", "display_clock_setting"})


class NvmlUnavailable(Exception):
    """NVML cannot report on this run's device; the message says why, in a phrase."""


def reason_names(mask: int) -> list[str]:
    """The names of the clock-event reason bits set in ``mask``, lowest bit first (unknown bits by value)."""
    return [REASON_NAMES.get(1 << bit, f"reason_{1 << bit:#x}") for bit in range(mask.bit_length()) if mask >> bit & 1]


@dataclass(frozen=True)
class GpuReading:
    """One reading of the GPU at host time ``at_s``; a field is None where the GPU does not report it."""

    at_s: float
    sm_mhz: float | None = None
    memory_mhz: float | None = None
    reasons: int | None = None
    temperature_c: float | None = None
    power_w: float | None = None
    energy_mj: float | None = None


class NvmlGpu:
    """One GPU as NVML shows it.

    Parameters
    ----------
    nvml : module
        ``pynvml`` (initialised), or a stand-in with the same functions and ``NVMLError``.
    handle : object
        The device's NVML handle.
    """

    def __init__(self, nvml: Any, handle: Any) -> None:
        self.nvml = nvml
        self.handle = handle
        # Each quantity is tried once: what the GPU does not support (old GPUs, some sandboxes) is then
        # left out of every reading instead of failing 100 times a second.
        quantities: dict[str, Callable[[], Any]] = {
            "sm_mhz": functools.partial(self._call, "nvmlDeviceGetClockInfo", _CLOCK_SM),
            "memory_mhz": functools.partial(self._call, "nvmlDeviceGetClockInfo", _CLOCK_MEM),
            "reasons": self._reasons,
            "temperature_c": functools.partial(self._call, "nvmlDeviceGetTemperature", _TEMPERATURE_GPU),
            "power_w": self._power_w,
            "energy_mj": functools.partial(self._call, "nvmlDeviceGetTotalEnergyConsumption"),
        }
        self.readers = {name: read for name, read in quantities.items() if read() is not None}

    def _call(self, function: str, *args: Any) -> Any:
        """NVML's ``function(handle, *args)``, or None where NVML refuses it (not supported, no permission)
        or the binding lacks it."""
        try:
            return getattr(self.nvml, function)(self.handle, *args)
        except (self.nvml.NVMLError, AttributeError):
            return None

    def _reasons(self) -> int | None:
        if hasattr(self.nvml, "nvmlDeviceGetCurrentClocksEventReasons"):
            return self._call("nvmlDeviceGetCurrentClocksEventReasons")
        return self._call("nvmlDeviceGetCurrentClocksThrottleReasons")  # bindings before the rename

    def _power_w(self) -> float | None:
        milliwatts = self._call("nvmlDeviceGetPowerUsage")
        return None if milliwatts is None else milliwatts / 1e3

    @property
    def has_energy_counter(self) -> bool:
        return "energy_mj" in self.readers

    def read(self, at_s: float) -> GpuReading:
        """A reading of every quantity this GPU reports, stamped ``at_s``."""
        return GpuReading(at_s, **{name: read() for name, read in self.readers.items()})

    def state(self, *, reads: int = 20) -> dict[str, Any]:
        """The run's record of the GPU at its start: other processes on it, whether its clocks are locked,
        what it reports, and how long one reading takes (the median of ``reads``)."""
        processes = [
            *(self._call("nvmlDeviceGetComputeRunningProcesses") or []),
            *(self._call("nvmlDeviceGetGraphicsRunningProcesses") or []),
        ]
        others = [
            {"pid": p.pid, "used_memory_mib": None if p.usedGpuMemory is None else p.usedGpuMemory / 2**20}
            for p in processes
            if p.pid != os.getpid()
        ]
        app_sm, default_sm, app_mem, default_mem = (
            self._call("nvmlDeviceGetClock", clock, which)
            for clock in (_CLOCK_SM, _CLOCK_MEM)
            for which in (_CLOCK_ID_APP_TARGET, _CLOCK_ID_APP_DEFAULT)
        )
        reasons = self._reasons()
        limit_mw = self._call("nvmlDeviceGetEnforcedPowerLimit")
        name = self._call("nvmlDeviceGetName")
        read_s = []
        for _ in range(reads):
            start = time.perf_counter()
            self.read(start)
            read_s.append(time.perf_counter() - start)
        return {
            "nvml": True,
            "device_name": name.decode() if isinstance(name, bytes) else name,
            "other_processes": others,
            "clocks_locked": _clocks_locked(app_sm, default_sm, app_mem, default_mem, reasons),
            "application_clocks_mhz": {"sm": app_sm, "sm_default": default_sm, "memory": app_mem},
            "reasons_at_start": None if reasons is None else reason_names(reasons),
            "power_limit_w": None if limit_mw is None else limit_mw / 1e3,
            "reports": sorted(self.readers),
            "energy_counter": self.has_energy_counter,
            "sample_interval_ms": SAMPLE_INTERVAL_S * 1e3,
            "read_ms": statistics.median(read_s) * 1e3,
            "clock_move_tolerance_pct": CLOCK_MOVE_TOLERANCE_PCT,
        }

    def close(self) -> None:
        with contextlib.suppress(self.nvml.NVMLError):
            self.nvml.nvmlShutdown()


def _clocks_locked(
    app_sm: int | None, default_sm: int | None, app_mem: int | None, default_mem: int | None, reasons: int | None
) -> bool | None:
    """Whether a person pinned the clocks. NVML has no getter for locked clocks (``nvidia-smi -lgc``): they
    show as the "applications clocks setting" reason, application clocks as targets off their defaults."""
    if reasons is not None and reasons & 0x2:
        return True
    pairs = [(a, d) for a, d in ((app_sm, default_sm), (app_mem, default_mem)) if a is not None and d is not None]
    if any(a != d for a, d in pairs):
        return True
    return False if pairs or reasons is not None else None


def _load_pynvml() -> Any:
    try:
        nvml = importlib.import_module("pynvml")
    except ImportError:
        raise NvmlUnavailable(f"nvidia-ml-py is not installed: {install_command('gpu')}") from None
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as exc:
        raise NvmlUnavailable(f"NVML did not start ({exc})") from None
    return nvml


def open_gpu(device: torch.device, load: Callable[[], Any] = _load_pynvml) -> NvmlGpu:
    """The NVML view of ``device``, found by its PCI address (CUDA and NVML may number GPUs differently).

    Raises NvmlUnavailable on the CPU, without nvidia-ml-py, or where NVML cannot find the device.
    """
    if device.type != "cuda":
        raise NvmlUnavailable("a CPU run")
    import torch

    nvml = load()
    props: Any = torch.cuda.get_device_properties(
        device.index if device.index is not None else torch.cuda.current_device()
    )
    address: Any = [getattr(props, n, None) for n in ("pci_domain_id", "pci_bus_id", "pci_device_id")]
    bus_id = None if None in address else "{:08X}:{:02X}:{:02X}.0".format(*address)  # NVML's own form
    try:
        if bus_id is not None:
            return NvmlGpu(nvml, nvml.nvmlDeviceGetHandleByPciBusId(bus_id))
    except nvml.NVMLError:
        pass
    try:
        if nvml.nvmlDeviceGetCount() == 1:  # one GPU: it is this one, whatever its address looks like
            return NvmlGpu(nvml, nvml.nvmlDeviceGetHandleByIndex(0))
    except nvml.NVMLError:
        pass
    raise NvmlUnavailable(f"NVML has no GPU at PCI address {bus_id} and is not looking at exactly one")


def gpu_state(device: torch.device, open_gpu: Callable[[torch.device], NvmlGpu] = open_gpu) -> dict[str, Any]:
    """The run's ``gpu_state``: ``NvmlGpu.state`` of ``device``, or why NVML could not report on it."""
    try:
        gpu = open_gpu(device)
    except NvmlUnavailable as exc:
        return {"nvml": False, "unavailable": str(exc)}
    try:
        return gpu.state()
    finally:
        gpu.close()


class Sampler:
    """Reads ``gpu`` every ``interval_s`` on a daemon thread and keeps the readings with their host time.

    A fixed-rate schedule: a reading that overruns its slot delays the next, never doubles it.
    """

    def __init__(
        self, gpu: NvmlGpu, interval_s: float = SAMPLE_INTERVAL_S, now: Callable[[], float] = time.perf_counter
    ) -> None:
        self.gpu = gpu
        self.interval_s = interval_s
        self.now = now
        self._readings: list[GpuReading] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slcbench-nvml-sampler", daemon=True)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.gpu.close()

    def _run(self) -> None:
        next_at = self.now()
        while not self._stop.is_set():
            reading = self.gpu.read(self.now())
            with self._lock:
                self._readings.append(reading)
            next_at = max(next_at + self.interval_s, self.now())
            self._stop.wait(max(0.0, next_at - self.now()))

    def take(self, start_s: float, end_s: float) -> list[GpuReading]:
        """The readings from ``start_s`` to ``end_s``; every reading up to ``end_s`` is then forgotten."""
        with self._lock:
            taken = [r for r in self._readings if start_s <= r.at_s <= end_s]
            self._readings = [r for r in self._readings if r.at_s > end_s]
        return taken


@dataclass(frozen=True)
class RowValidity:
    """What the GPU did while a row was timed; the fields are ``SpeedRow``'s of the same names.

    Clock statistics come from the readings in which the GPU was not idle (brief gaps, such as graph
    capture, can let the clocks start to drop); ``throttle_reasons`` are the reasons seen in them.
    """

    sm_clock_mhz: float | None = None
    sm_clock_min_mhz: float | None = None
    sm_clock_moved_pct: float | None = None
    memory_clock_mhz: float | None = None
    memory_clock_min_mhz: float | None = None
    throttle_reasons: list[str] | None = None
    temperature_c: float | None = None
    power_w: float | None = None
    gpu_samples: int | None = None
    flagged: bool | None = None


def _values(readings: Sequence[GpuReading], name: str) -> list[float]:
    return [float(v) for v in (getattr(r, name) for r in readings) if v is not None]


def row_validity(readings: Sequence[GpuReading], tolerance_pct: float = CLOCK_MOVE_TOLERANCE_PCT) -> RowValidity:
    """Summarise a row's readings: mean and lowest clocks, how far the SM clock moved, the reasons seen,
    the highest temperature and the mean power; flagged when the SM clock moved more than
    ``tolerance_pct`` or a throttling reason was seen."""
    busy = [r for r in readings if r.reasons is None or not r.reasons & GPU_IDLE]
    if not busy:
        return RowValidity(gpu_samples=0)
    sm, memory = _values(busy, "sm_mhz"), _values(busy, "memory_mhz")
    moved = 100.0 * (max(sm) - min(sm)) / max(sm) if sm and max(sm) > 0 else None
    masks = [r.reasons for r in busy if r.reasons is not None]
    reasons = reason_names(functools.reduce(operator.or_, masks, 0) & ~GPU_IDLE) if masks else None
    throttled = None if reasons is None else any(name not in NOT_THROTTLING for name in reasons)
    clock_moved = None if moved is None else moved > tolerance_pct
    temperatures, powers = _values(busy, "temperature_c"), _values(busy, "power_w")
    return RowValidity(
        sm_clock_mhz=statistics.fmean(sm) if sm else None,
        sm_clock_min_mhz=min(sm) if sm else None,
        sm_clock_moved_pct=moved,
        memory_clock_mhz=statistics.fmean(memory) if memory else None,
        memory_clock_min_mhz=min(memory) if memory else None,
        throttle_reasons=reasons,
        temperature_c=max(temperatures) if temperatures else None,
        power_w=statistics.fmean(powers) if powers else None,
        gpu_samples=len(busy),
        flagged=None if throttled is None and clock_moved is None else bool(throttled or clock_moved),
    )


@dataclass(frozen=True)
class PowerFit:
    """Mean power over a window from the energy counter: the slope through its updates."""

    avg_power_w: float
    span_s: float
    updates: int


def fit_power(
    readings: Sequence[GpuReading], start_s: float, end_s: float, lag_s: float = ENERGY_LAG_S
) -> PowerFit | None:
    """The mean power while the GPU worked from ``start_s`` to ``end_s``, from the energy counter.

    The counter moves in steps every 20-100 ms, so the difference of two arbitrary readings is off by up
    to a step. Instead each update is placed at the first reading that shows it (at most one sampling
    interval late, at random), and the power is the least-squares slope of energy against that time,
    over the updates from ``start_s + lag_s`` to ``end_s``. None with fewer than three updates.
    """
    updates: list[tuple[float, float]] = []
    previous: float | None = None
    for reading in sorted(readings, key=lambda r: r.at_s):
        energy = reading.energy_mj
        if energy is None:
            continue
        if previous is not None and energy != previous and start_s + lag_s <= reading.at_s <= end_s:
            updates.append((reading.at_s, energy))
        previous = energy
    if len(updates) < 3:
        return None
    times, energies = np.asarray(updates).T
    slope_mj_per_s = float(np.polyfit(times - times[0], energies - energies[0], 1)[0])
    return PowerFit(slope_mj_per_s / 1e3, float(times[-1] - times[0]), len(updates))
