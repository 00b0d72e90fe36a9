"""NVML bookkeeping against a stand-in with known counters: readings, the run's GPU state, each row's
validity (clocks, throttling) and the power fitted from the energy counter."""

import os
import re
import sys
import time

import numpy as np
import pytest
import torch

from slcbench.extras import install_command
from slcbench.speed.nvml import (
    GPU_IDLE,
    GpuReading,
    NvmlGpu,
    NvmlUnavailable,
    Sampler,
    fit_power,
    gpu_state,
    open_gpu,
    reason_names,
    row_validity,
)
from tests.speed.nvml_stand_in import StandInNvml, constant

SW_POWER_CAP, APPLICATIONS_CLOCKS = 0x4, 0x2


def test_reason_bits_are_named_in_bit_order():
    assert reason_names(0) == []
    assert reason_names(GPU_IDLE | 0x4 | 0x40) == ["gpu_idle", "sw_power_cap", "hw_thermal_slowdown"]
    assert reason_names(0x800) == ["reason_0x800"]


def readings(sm, reasons=None, temperatures=None, powers=None):
    count = len(sm)
    return [
        GpuReading(
            at_s=0.01 * i,
            sm_mhz=sm[i],
            memory_mhz=2619.0,
            reasons=None if reasons is None else reasons[i],
            temperature_c=None if temperatures is None else temperatures[i],
            power_w=None if powers is None else powers[i],
        )
        for i in range(count)
    ]


def test_a_steady_row_is_summarised_and_not_flagged():
    validity = row_validity(readings([1980, 1965, 1980, 1950], [0] * 4, [40, 43, 41, 42], [300, 310, 320, 330]))
    assert validity.sm_clock_mhz == pytest.approx(np.mean([1980, 1965, 1980, 1950]))
    assert validity.sm_clock_min_mhz == 1950
    assert validity.sm_clock_moved_pct == pytest.approx(100 * 30 / 1980)  # 1.52%: within the 2% tolerance
    assert (validity.memory_clock_mhz, validity.memory_clock_min_mhz) == (2619.0, 2619.0)
    assert validity.throttle_reasons == [] and validity.flagged is False
    assert (validity.temperature_c, validity.power_w, validity.gpu_samples) == (43, 315.0, 4)


def test_a_clock_that_moved_beyond_the_tolerance_or_a_throttle_flags_the_row():
    moved = row_validity(readings([1980, 1980, 1920], [0] * 3))
    assert moved.sm_clock_moved_pct == pytest.approx(100 * 60 / 1980) and moved.flagged is True
    throttled = row_validity(readings([1980] * 3, [0, SW_POWER_CAP, 0]))
    assert throttled.throttle_reasons == ["sw_power_cap"] and throttled.flagged is True
    # Locked clocks show as the applications-clocks reason: a person's setting, not throttling.
    locked = row_validity(readings([1755] * 3, [APPLICATIONS_CLOCKS] * 3))
    assert locked.throttle_reasons == ["applications_clocks_setting"] and locked.flagged is False


def test_idle_readings_do_not_count_as_a_moving_clock():
    # A graph capture lets the GPU idle for a moment; its clock starts to drop. Only busy readings count.
    validity = row_validity(readings([1980, 345, 1980], [0, GPU_IDLE, 0]))
    assert (validity.sm_clock_min_mhz, validity.gpu_samples, validity.flagged) == (1980, 2, False)
    assert validity.throttle_reasons == []
    nothing = row_validity([])
    assert nothing.gpu_samples == 0 and nothing.sm_clock_mhz is None and nothing.flagged is None


def test_without_reasons_only_the_clock_decides_the_flag():
    validity = row_validity(readings([1980, 1980]))
    assert validity.throttle_reasons is None and validity.flagged is False


def counter_readings(power_before, power_during, start_s, end_s, update_s, interval_s, seed=0):
    """Readings every ``interval_s`` (with random phase jitter) of a counter that integrates the power and
    shows its value every ``update_s``: ``power_before`` until ``start_s``, ``power_during`` after."""
    rng = np.random.default_rng(seed)

    def energy_mj(t):
        shown = t // update_s * update_s
        return 1e3 * (power_before * min(shown, start_s) + power_during * max(0.0, shown - start_s))

    times = np.arange(0.0, end_s + 0.2, interval_s) + rng.uniform(0, interval_s * 0.9, size=1)
    return [GpuReading(at_s=float(t), energy_mj=energy_mj(float(t))) for t in times]


@pytest.mark.parametrize("update_s", [0.02, 0.05, 0.1])
def test_power_is_fitted_through_the_counters_updates(update_s):
    # 80 W idle before the window, 450 W in it: the fit must not be pulled towards the idle power.
    taken = counter_readings(80.0, 450.0, start_s=1.0, end_s=2.3, update_s=update_s, interval_s=0.01)
    fit = fit_power(taken, start_s=1.0, end_s=2.3)
    assert fit.avg_power_w == pytest.approx(450.0, rel=0.01)
    assert fit.updates == pytest.approx(1.2 / update_s, abs=2) and 1.05 <= fit.span_s <= 1.2


def test_too_few_counter_updates_give_no_power():
    taken = counter_readings(80.0, 450.0, start_s=1.0, end_s=1.25, update_s=0.1, interval_s=0.01)
    assert fit_power(taken, start_s=1.0, end_s=1.25) is None
    assert fit_power([GpuReading(at_s=1.5)], start_s=1.0, end_s=2.0) is None  # no counter at all


def test_the_gpu_is_read_through_nvml_and_what_it_does_not_report_is_left_out():
    nvml = StandInNvml(reasons=constant(SW_POWER_CAP), unsupported={"nvmlDeviceGetTotalEnergyConsumption"})
    gpu = NvmlGpu(nvml, "gpu0")
    reading = gpu.read(12.5)
    assert reading == GpuReading(12.5, 1980, 2619, SW_POWER_CAP, 40, 300.0, None)
    assert not gpu.has_energy_counter and "energy_mj" not in gpu.readers
    gpu.close()
    assert nvml.shut_down


def test_the_runs_gpu_state_names_other_processes_and_locked_clocks():
    mine = (os.getpid(), 2**30)
    nvml = StandInNvml(processes=[mine, (4242, 3 * 2**30)], app_clocks=(1980, 1980, 2619, 2619))
    state = NvmlGpu(nvml, "gpu0").state(reads=3)
    assert state["other_processes"] == [{"pid": 4242, "used_memory_mib": 3072.0}]  # not this process
    assert state["clocks_locked"] is False and state["energy_counter"] is True
    assert state["device_name"] == "Stand-in H200" and state["power_limit_w"] == 700.0
    assert state["reasons_at_start"] == [] and state["read_ms"] >= 0
    pinned = NvmlGpu(StandInNvml(app_clocks=(1755, 1980, 2619, 2619)), "gpu0").state(reads=1)
    assert pinned["clocks_locked"] is True
    by_reason = NvmlGpu(StandInNvml(reasons=constant(APPLICATIONS_CLOCKS)), "gpu0").state(reads=1)
    assert by_reason["clocks_locked"] is True
    unknown = StandInNvml(unsupported={"nvmlDeviceGetClock", "nvmlDeviceGetCurrentClocksEventReasons"})
    assert NvmlGpu(unknown, "gpu0").state(reads=1)["clocks_locked"] is None


def test_there_is_no_nvml_on_the_cpu_or_without_nvidia_ml_py(monkeypatch):
    with pytest.raises(NvmlUnavailable, match="a CPU run"):
        open_gpu(torch.device("cpu"))
    assert gpu_state(torch.device("cpu")) == {"nvml": False, "unavailable": "a CPU run"}
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes ``import pynvml`` raise ImportError
    with pytest.raises(NvmlUnavailable, match=re.escape(f"nvidia-ml-py is not installed: {install_command('gpu')}")):
        open_gpu(torch.device("cuda"))


def test_importing_slcbench_speed_does_not_import_pynvml():
    import subprocess

    code = "import slcbench.speed.nvml, slcbench.speed.config, sys; print('pynvml' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False"


def test_the_sampler_reads_at_its_interval_and_hands_each_reading_over_once():
    nvml = StandInNvml(sm_mhz=lambda t: 1000 + t)  # each reading carries its own time
    sampler = Sampler(NvmlGpu(nvml, "gpu0"), interval_s=0.002).start()
    try:
        start = time.perf_counter()
        time.sleep(0.1)
        middle = time.perf_counter()
        time.sleep(0.05)
        first = sampler.take(start, middle)
        second = sampler.take(start, time.perf_counter())
    finally:
        sampler.stop()
    assert 10 <= len(first) <= 55  # about 50 at 2 ms; a busy machine delays readings, never doubles them
    assert all(start <= r.at_s <= middle for r in first) and all(r.at_s > middle for r in second)
    times = [r.at_s for r in first]
    assert times == sorted(times) and min(np.diff(times)) > 0
    assert all(r.sm_mhz == pytest.approx(1000 + r.at_s, abs=0.01) for r in first)
    assert nvml.shut_down


def _real_nvml():
    try:
        import pynvml  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available()


@pytest.mark.skipif(not _real_nvml(), reason="needs CUDA and nvidia-ml-py")
def test_the_real_gpu_is_found_and_read():
    gpu = open_gpu(torch.device("cuda"))
    try:
        reading = gpu.read(0.0)
        state = gpu.state(reads=5)
    finally:
        gpu.close()
    assert reading.sm_mhz is None or reading.sm_mhz > 0
    assert state["nvml"] is True and state["device_name"] and state["read_ms"] < 50
    print(state)  # what this driver reports, for the record (pytest -s)
