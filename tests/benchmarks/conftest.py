"""Shared set-up of the pytest-benchmark suite: which device it runs on, and what the JSON records.

The suite runs on the CPU by default; ``SLCBENCH_BENCH_DEVICE=cuda`` runs the device-aware
benchmarks on the GPU. pytest-benchmark reads the host clock, so on CUDA every timed call ends with
``torch.cuda.synchronize()`` and measures host-visible latency (launches included), not the GPU's
work per batch: for that, use ``slcbench speed`` (CUDA-graph replay timed with events).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
import torch

from slcbench.env.collect import collect_environment

DEVICE_VARIABLE = "SLCBENCH_BENCH_DEVICE"


def benchmark_device() -> torch.device:
    name = os.environ.get(DEVICE_VARIABLE, "cpu").strip().lower()
    if name not in ("cpu", "cuda"):
        raise pytest.UsageError(f"{DEVICE_VARIABLE} must be cpu or cuda, not {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise pytest.UsageError(f"{DEVICE_VARIABLE}=cuda but CUDA is not available (torch {torch.__version__})")
    return torch.device(name)


@pytest.fixture(scope="session")
def bench_device() -> torch.device:
    return benchmark_device()


@pytest.fixture(scope="session")
def synchronized(bench_device) -> Callable[[Callable[[], object]], Callable[[], object]]:
    """Wrap a callable so that its time includes the device work it queued (a no-op on the CPU)."""

    def wrap(fn: Callable[[], object]) -> Callable[[], object]:
        if bench_device.type != "cuda":
            return fn

        def call() -> object:
            out = fn()
            torch.cuda.synchronize(bench_device)
            return out

        return call

    return wrap


def pytest_benchmark_update_machine_info(config, machine_info):
    # pytest-benchmark records no GPU, driver or torch version; `slcbench compare` reads these to warn
    # when two runs come from different machines or software.
    machine_info["slcbench_environment"] = collect_environment(benchmark_device())
