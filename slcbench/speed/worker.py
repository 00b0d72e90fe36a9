"""What runs in a worker: one configuration measured, and a record of who measured it.

A *configuration* is one architecture of a sweep at the run's precision and options: its rows (every
class count and head) stay together in one worker, because each is timed against the k=1 row of the
same trunk. ``measure_configuration`` is the function every executor runs, in this process or in a
fresh one (a spawned process, a Ray task, a Slurm job); it imports torch only when called, so that
executors and the command line can name it without importing torch.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from slcbench.results import SpeedRow
from slcbench.speed.config import SpeedConfig


@dataclass(frozen=True)
class WorkerRecord:
    """Who measured a configuration, as the results file records it.

    Parameters
    ----------
    host, pid : str or None, int or None
        The machine and the process that measured (None where a lost worker left no trace).
    job : str or None
        The scheduler's name for the work: a Slurm array task (``"1234_5"``) or a Ray task id.
    gpu_index, gpu_uuid : int or None, str or None
        On CUDA, the GPU: its index as the machine numbers it (from ``CUDA_VISIBLE_DEVICES`` when a
        scheduler pinned the worker to it) and its UUID as ``nvidia-smi -L`` shows it.
    wall_s : float or None
        Seconds the worker spent on the configuration (model building and warm-up included).
    environment : dict or None
        The worker's environment block (``slcbench env``); None: the driver's, for work done in its process.
    """

    host: str | None = None
    pid: int | None = None
    job: str | None = None
    gpu_index: int | None = None
    gpu_uuid: str | None = None
    wall_s: float | None = None
    environment: dict[str, Any] | None = field(default=None, compare=False)

    def stamp(self, row: SpeedRow) -> SpeedRow:
        """``row`` with this worker's identity in its worker fields."""
        return replace(
            row,
            worker_host=self.host,
            worker_pid=self.pid,
            worker_job=self.job,
            gpu_index=self.gpu_index,
            gpu_uuid=self.gpu_uuid,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorkerRecord:
        """A record from a results file's ``execution.workers`` entry; values of the wrong type read as None."""

        def typed(name: str, kind: type | tuple[type, ...]) -> Any:
            value = data.get(name)
            return value if isinstance(value, kind) and not isinstance(value, bool) else None

        environment = data.get("environment")
        return cls(
            host=typed("host", str),
            pid=typed("pid", int),
            job=typed("job", str),
            gpu_index=typed("gpu_index", int),
            gpu_uuid=typed("gpu_uuid", str),
            wall_s=typed("wall_s", (int, float)),
            environment=environment if isinstance(environment, dict) else None,
        )


def visible_gpu_index(visible: str | None) -> int | None:
    """The machine's index of the first GPU that ``CUDA_VISIBLE_DEVICES`` names, when it names one by number."""
    first = (visible or "").split(",")[0].strip()
    return int(first) if first.isdigit() else None


def this_worker(device: str, *, environment: dict[str, Any] | None = None, wall_s: float | None = None) -> WorkerRecord:
    """The record of the current process measuring on ``device`` (``"cpu"`` or ``"cuda"``)."""
    gpu_index = gpu_uuid = None
    if device.startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            index = torch.cuda.current_device()
            uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
            gpu_uuid = f"GPU-{uuid}" if uuid is not None else None
            pinned = visible_gpu_index(os.environ.get("CUDA_VISIBLE_DEVICES"))
            gpu_index = pinned if pinned is not None else index
    return WorkerRecord(
        host=socket.gethostname(),
        pid=os.getpid(),
        gpu_index=gpu_index,
        gpu_uuid=gpu_uuid,
        wall_s=wall_s,
        environment=environment,
    )


@dataclass(frozen=True)
class Measured:
    """What a worker sends back: the configuration's rows (stamped with the worker) and its record."""

    rows: tuple[SpeedRow, ...]
    worker: WorkerRecord


def measure_configuration(config: SpeedConfig) -> Measured:
    """Measure every row of ``config`` (one architecture) in this process, with its CPU threads and its
    own environment block; the function an executor runs in each fresh worker."""
    import torch

    from slcbench.device import cpu_threads
    from slcbench.env.collect import collect_environment
    from slcbench.speed.sweep import measure_rows

    start = time.perf_counter()
    with cpu_threads(config.protocol.threads):
        environment = collect_environment(torch.device(config.device))
        rows = list(measure_rows(config))
    worker = this_worker(config.device, environment=environment, wall_s=time.perf_counter() - start)
    return Measured(tuple(worker.stamp(row) for row in rows), worker)
