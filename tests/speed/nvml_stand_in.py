"""A stand-in for ``pynvml``: one GPU whose readings follow scripts of the host's time, so that what the
sweep records from NVML can be checked against values known in advance."""

import time
from types import SimpleNamespace


class NVMLError(Exception):
    """pynvml's error class (a refusal such as NVML_ERROR_NOT_SUPPORTED)."""


def constant(value):
    return lambda _t: value


def energy_counter(power_w, update_s, start_s=0.0):
    """A total-energy counter in mJ that adds ``power_w`` and shows its sum only every ``update_s`` seconds."""
    return lambda t: int((t - start_s) // update_s * update_s * power_w * 1e3)


class StandInNvml:
    """The few pynvml functions slcbench calls, on one device (handle ``"gpu0"``).

    Each reading is a function of ``now()``; ``unsupported`` names functions that raise NVMLError, as
    NVML does for what a GPU does not report; ``processes`` are (pid, bytes) pairs running on it.
    """

    NVMLError = NVMLError

    def __init__(
        self,
        *,
        sm_mhz=constant(1980),
        memory_mhz=constant(2619),
        reasons=constant(0),
        temperature_c=constant(40),
        power_w=constant(300.0),
        energy_mj=None,
        processes=(),
        app_clocks=(1980, 1980, 2619, 2619),
        unsupported=(),
        now=time.perf_counter,
    ):
        self.scripts = dict(sm_mhz=sm_mhz, memory_mhz=memory_mhz, reasons=reasons, temperature_c=temperature_c)
        self.power_w = power_w
        self.energy_mj = energy_mj if energy_mj is not None else energy_counter(300.0, 0.02, now())
        self.processes = processes
        self.app_clocks = app_clocks  # sm target, sm default, memory target, memory default
        self.unsupported = set(unsupported)
        self.now = now
        self.shut_down = False

    def _refuse(self, name):
        if name in self.unsupported:
            raise NVMLError(f"{name}: Not Supported")

    def nvmlShutdown(self):
        self.shut_down = True

    def nvmlDeviceGetClockInfo(self, handle, clock):
        self._refuse("nvmlDeviceGetClockInfo")
        return self.scripts["sm_mhz" if clock == 1 else "memory_mhz"](self.now())

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle):
        self._refuse("nvmlDeviceGetCurrentClocksEventReasons")
        return self.scripts["reasons"](self.now())

    def nvmlDeviceGetTemperature(self, handle, sensor):
        self._refuse("nvmlDeviceGetTemperature")
        return self.scripts["temperature_c"](self.now())

    def nvmlDeviceGetPowerUsage(self, handle):
        self._refuse("nvmlDeviceGetPowerUsage")
        return int(self.power_w(self.now()) * 1e3)  # mW

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        self._refuse("nvmlDeviceGetTotalEnergyConsumption")
        return self.energy_mj(self.now())

    def nvmlDeviceGetComputeRunningProcesses(self, handle):
        return [SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used in self.processes]

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle):
        return []

    def nvmlDeviceGetClock(self, handle, clock, which):
        self._refuse("nvmlDeviceGetClock")
        return self.app_clocks[(0 if clock == 1 else 2) + (which - 1)]

    def nvmlDeviceGetEnforcedPowerLimit(self, handle):
        return 700_000

    def nvmlDeviceGetName(self, handle):
        return "Stand-in H200"
