"""What a benchmark report must carry about the machine: device, driver, library versions, threads.

Results are only comparable between runs whose environment matches; every results file embeds this.
"""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from typing import Any

import torch

import slcbench


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _cpu_name() -> str:
    # platform.processor() is empty on most Linux machines; /proc/cpuinfo has the marketing name.
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def nvidia_driver_version() -> str | None:
    """The NVIDIA driver version from nvidia-smi, or None where there is none (torch does not expose it)."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    first = out.stdout.strip().splitlines()
    return first[0].strip() if first else None


def format_cudnn_version(number: int | None) -> str | None:
    """cuDNN's version integer as people write it: 92400 -> ``9.24.0``, 8907 -> ``8.9.7`` (None stays None).

    From cuDNN 9 the integer is major * 10000 + minor * 100 + patch; before, major * 1000 + minor * 100 + patch.
    """
    if number is None:
        return None
    major, rest = divmod(number, 10000) if number >= 90000 else divmod(number, 1000)
    return f"{major}.{rest // 100}.{rest % 100}"


def collect_environment(device: torch.device | str | None = None) -> dict[str, Any]:
    """A flat, JSON-ready description of the software and the device that ran (or will run) a benchmark."""
    device = torch.device(device) if device is not None else None
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "torch_git": torch.version.git_version,  # the exact build: float results can differ between builds
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),  # the vector kernels torch picked (AVX2, ...)
        "torchvision": _version("torchvision"),
        "timm": _version("timm"),
        "numpy": _version("numpy"),
        "slcbench": _version("slcbench") or slcbench.__version__,
        "cuda_available": torch.cuda.is_available(),
        "cuda_runtime": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
    }
    env["cudnn_version"] = format_cudnn_version(env["cudnn"])
    if device is None:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    env["device_type"] = device.type
    if device.type == "cuda" and torch.cuda.is_available():
        index = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        env.update(
            device_name=props.name,
            device_memory_gib=round(props.total_memory / 2**30, 1),
            device_multiprocessors=props.multi_processor_count,
            device_capability=f"{props.major}.{props.minor}",
            driver=nvidia_driver_version(),
        )
    else:
        env.update(device_name=env["cpu"], driver=None)
    return env
