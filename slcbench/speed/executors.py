"""Where a sweep's configurations are measured: the ``EXECUTORS`` registry (``--executor``).

A sweep is split into configurations, one per architecture (its rows are timed against the k=1
row of the same trunk, so they stay together in one worker). An executor measures each
configuration and yields an ``Outcome`` per configuration as it finishes, in any order; the driver
(``slcbench.speed.run``) merges them into one results file. A worker that dies (killed, out of
memory, its node lost) yields an outcome with no rows and the reason, and the sweep goes on.

* ``inline``: in this process, one configuration after another (the sweep as it always ran).
* ``process``: each configuration in a fresh spawned process; on CUDA one per GPU at once.
* ``ray``: each configuration a Ray task in a fresh worker (one GPU each on CUDA).
* ``slurm``: a submitit job array, one task per configuration.

Importing this module does not import torch, Ray or submitit: each executor imports what it needs
when it runs. An executor is added by registering an ``ExecutorKind``.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import socket
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnProcess
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from slcbench.console import Progress
from slcbench.extras import install_command, is_installed
from slcbench.registry import Registry
from slcbench.results import SpeedRow
from slcbench.speed.config import SpeedConfig
from slcbench.speed.worker import Measured, WorkerRecord, measure_configuration, this_worker, visible_gpu_index

if TYPE_CHECKING:
    from slcbench.speed.config import ExecutorSettings
    from slcbench.speed.sweep import SweepParts

WorkerTarget = Callable[[SpeedConfig], Measured]


@dataclass(frozen=True)
class Configuration:
    """One unit of work: the sweep's config narrowed to one architecture, and its place in the sweep."""

    index: int
    config: SpeedConfig

    @property
    def arch(self) -> str:
        return self.config.archs[0].name


@dataclass(frozen=True)
class Outcome:
    """What became of one configuration: its rows and worker, or (``lost``) why its worker returned none.

    ``stamped``: the rows already carry their worker's identity (rows read back from a results file).
    """

    index: int
    rows: tuple[SpeedRow, ...]
    worker: WorkerRecord
    lost: str | None = None
    stamped: bool = False


class Executor(Protocol):
    """Measures configurations and yields their outcomes as they finish; reports rows done to ``progress``."""

    @property
    def name(self) -> str:
        """What the results file records as ``execution.executor``."""
        ...

    @property
    def in_process(self) -> bool:
        """True when configurations are measured in the driver's own process (its environment is theirs)."""
        ...

    def placement(self) -> str:
        """Where the work runs, for the line printed before the sweep."""
        ...

    def run(self, configurations: Sequence[Configuration], progress: Progress) -> Generator[Outcome, None, None]: ...


@dataclass(frozen=True)
class ExecutorKind:
    """An ``--executor`` choice.

    Parameters
    ----------
    make : callable
        ``(settings, config) -> Executor``.
    missing : callable
        ``settings -> str or None``: what this machine lacks to use it (a package, a command), named in one
        line before any work; None when nothing is missing.
    remote : callable
        ``settings -> bool``: whether the workers run on other machines (then ``--device cuda`` is not
        checked here).
    """

    make: Callable[[ExecutorSettings, SpeedConfig], Executor]
    missing: Callable[[ExecutorSettings], str | None] = lambda settings: None
    remote: Callable[[ExecutorSettings], bool] = lambda settings: False


EXECUTORS: Registry[ExecutorKind] = Registry("executor")


class InlineExecutor:
    """Every configuration in this process, one after another, exactly as the sweep always ran."""

    name = "inline"
    in_process = True

    def __init__(self, parts: SweepParts | None = None) -> None:
        self.parts = parts

    def placement(self) -> str:
        return "this process"

    def run(self, configurations: Sequence[Configuration], progress: Progress) -> Generator[Outcome, None, None]:
        from slcbench.speed.report import row_label
        from slcbench.speed.sweep import SweepParts, measure_rows

        if not configurations:
            return
        config = replace(configurations[0].config, archs=tuple(c.config.archs[0] for c in configurations))
        index_of = {c.arch: c.index for c in configurations}
        worker = this_worker(config.device)  # no environment of its own: the driver's
        rows: list[SpeedRow] = []
        started = time.perf_counter()
        on_start = lambda row: progress.started(row_label(row))
        for row in measure_rows(config, parts=self.parts or SweepParts(), on_start=on_start):
            rows.append(row)
            progress.advance()
            if len(rows) == config.rows_per_arch:  # the architecture's last row: its configuration is done
                yield Outcome(index_of[row.arch], tuple(rows), replace(worker, wall_s=time.perf_counter() - started))
                rows, started = [], time.perf_counter()


def _process_worker(connection: Connection, target: WorkerTarget, config: SpeedConfig) -> None:
    """The body of a spawned worker: measure, send back the result or the error, exit."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle: it stops the workers
    from slcbench.speed.sweep import first_line  # torch: imported by the work anyway

    try:
        message: tuple[str, Any] = ("ok", target(config))
    except BaseException as exc:  # an interrupt or a failure: the driver marks the rows with it
        message = ("error", first_line(exc))
    connection.send(message)
    connection.close()


def exit_reason(exitcode: int | None) -> str:
    """How a process ended, in words: the signal that killed it, or its exit code."""
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (as the out-of-memory killer does)" if -exitcode == signal.SIGKILL else ""
        return f"killed by {name}{hint}"
    return f"exited with code {exitcode}"


@contextlib.contextmanager
def _environment_variable(name: str, value: str | None) -> Iterator[None]:
    """``name`` set to ``value`` (None: left as it is) while a child process is started, restored afterwards."""
    saved = os.environ.get(name)
    if value is not None:
        os.environ[name] = value
    try:
        yield
    finally:
        if value is not None:
            if saved is None:
                del os.environ[name]
            else:
                os.environ[name] = saved


@dataclass
class _RunningProcess:
    configuration: Configuration
    slot: str | None
    process: SpawnProcess
    connection: Connection

    def finished(self) -> bool:
        return self.connection.poll() or not self.process.is_alive()

    def outcome(self) -> Outcome:
        message = None
        with contextlib.suppress(EOFError, OSError):  # a worker that died sent nothing, or half of it
            if self.connection.poll():
                message = self.connection.recv()
        self.process.join()
        self.connection.close()
        worker = WorkerRecord(host=socket.gethostname(), pid=self.process.pid, gpu_index=visible_gpu_index(self.slot))
        if message is not None and message[0] == "ok":
            measured: Measured = message[1]
            return Outcome(self.configuration.index, measured.rows, measured.worker)
        reason = message[1] if message is not None else exit_reason(self.process.exitcode)
        return Outcome(self.configuration.index, (), worker, lost=f"worker process {self.process.pid} {reason}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.connection.close()


class ProcessExecutor:
    """Each configuration in a fresh process (spawned: a new interpreter, no state inherited from the
    driver or an earlier model), as many at once as there are slots.

    Parameters
    ----------
    slots : sequence of str or None
        One per worker that may run at once: the ``CUDA_VISIBLE_DEVICES`` value it gets (a GPU), or None
        (the CPU, nothing pinned).
    target : callable
        What each worker runs (``measure_configuration``; tests hand it stand-ins).
    """

    name = "process"
    in_process = False

    def __init__(self, slots: Sequence[str | None], target: WorkerTarget = measure_configuration) -> None:
        if not slots:
            raise ValueError("a process executor needs at least one slot")
        self.slots = tuple(slots)
        self.target = target

    def placement(self) -> str:
        gpus = [slot for slot in self.slots if slot is not None]
        on = f" on GPU {', '.join(gpus)}" if gpus else ""
        return f"a fresh process per configuration, {len(self.slots)} at a time{on}"

    def run(self, configurations: Sequence[Configuration], progress: Progress) -> Generator[Outcome, None, None]:
        context = multiprocessing.get_context("spawn")
        pending = deque(configurations)
        free = list(self.slots)
        running: list[_RunningProcess] = []
        try:
            while pending or running:
                while pending and free:
                    running.append(self._start(context, pending.popleft(), free.pop(0), progress))
                waitables = [job.connection for job in running] + [job.process.sentinel for job in running]
                multiprocessing.connection.wait(waitables)
                for job in [job for job in running if job.finished()]:
                    running.remove(job)
                    free.append(job.slot)
                    outcome = job.outcome()
                    progress.advance(job.configuration.config.rows_total)
                    yield outcome
        finally:
            for job in running:
                job.stop()

    def _start(
        self, context: Any, configuration: Configuration, slot: str | None, progress: Progress
    ) -> _RunningProcess:
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(
            target=_process_worker,
            args=(sender, self.target, configuration.config),
            name=f"slcbench {configuration.arch}",
        )
        with _environment_variable("CUDA_VISIBLE_DEVICES", slot):
            process.start()
        sender.close()  # the child holds the sending end; the driver sees EOF when the child dies
        progress.started(f"{configuration.arch} (process {process.pid}{f', GPU {slot}' if slot is not None else ''})")
        return _RunningProcess(configuration, slot, process, receiver)


def process_slots(device: str, parallel: int | None, *, gpu_count: int, visible: str | None) -> tuple[str | None, ...]:
    """The workers of ``--executor process`` that may run at once.

    On CUDA one per GPU, each pinned to its GPU: those ``CUDA_VISIBLE_DEVICES`` names (``visible``), or
    0 .. ``gpu_count`` - 1, at most ``parallel``. On the CPU ``parallel`` workers (default 1), unpinned:
    workers timed at once on one machine share its cores and memory bandwidth.
    """
    if not device.startswith("cuda"):
        return (None,) * (parallel or 1)
    named = [entry.strip() for entry in visible.split(",") if entry.strip()] if visible else []
    gpus = (named or [str(index) for index in range(gpu_count)])[: max(gpu_count, 1)]
    return tuple(gpus[: parallel or len(gpus)])


def _make_process(settings: ExecutorSettings, config: SpeedConfig) -> ProcessExecutor:
    gpu_count = 0
    if config.on_cuda:
        import torch

        gpu_count = torch.cuda.device_count()
    return ProcessExecutor(
        process_slots(
            config.device, settings.parallel, gpu_count=gpu_count, visible=os.environ.get("CUDA_VISIBLE_DEVICES")
        )
    )


class RayExecutor:
    """Each configuration a Ray task with a fresh worker process (``max_calls=1``), never retried.

    Parameters
    ----------
    address : str or None
        A running cluster (``ray://head:10001``, ``auto``, or what ``RAY_ADDRESS`` says); None and no
        ``RAY_ADDRESS``: a local cluster started for the run and shut down after it.
    parallel : int or None
        Tasks submitted at once, at most (None: all at once on CUDA, where each holds a GPU; one on the CPU).
    resources : dict
        What each task asks for: ``{"num_gpus": 1, "num_cpus": 1}`` on CUDA, ``{"num_cpus": threads}`` on the CPU.
    """

    name = "ray"
    in_process = False

    def __init__(
        self,
        address: str | None,
        parallel: int | None,
        resources: dict[str, float],
        target: WorkerTarget = measure_configuration,
    ) -> None:
        self.address = address
        self.parallel = parallel
        self.resources = resources
        self.target = target

    def placement(self) -> str:
        where = f"the Ray cluster at {self.address}" if self.address else "a local Ray cluster"
        return f"Ray tasks on {where}, a fresh worker each, {self.parallel or 'all'} at a time"

    def run(self, configurations: Sequence[Configuration], progress: Progress) -> Generator[Outcome, None, None]:
        import ray

        started_here = not ray.is_initialized()
        if started_here:
            connect: dict[str, Any] = (
                {"address": self.address} if self.address else {"address": "local", "include_dashboard": False}
            )
            ray.init(**connect, log_to_driver=False, logging_level=logging.ERROR)
        try:
            yield from self._tasks(ray, configurations, progress)
        finally:
            if started_here:
                ray.shutdown()

    def _tasks(
        self, ray: Any, configurations: Sequence[Configuration], progress: Progress
    ) -> Generator[Outcome, None, None]:
        if self.resources.get("num_gpus") and not ray.cluster_resources().get("GPU"):
            progress.note("the Ray cluster has no GPU now: the tasks wait until one joins it")
        remote = ray.remote(max_calls=1, max_retries=0)(self.target)
        pending = deque(configurations)
        running: dict[Any, Configuration] = {}
        try:
            while pending or running:
                while pending and len(running) < (self.parallel or len(configurations)):
                    configuration = pending.popleft()
                    task = remote.options(**self.resources, name=f"slcbench {configuration.arch}")
                    running[task.remote(configuration.config)] = configuration
                    progress.started(f"{configuration.arch} (Ray task)")
                done, _ = ray.wait(list(running), num_returns=1)
                for ref in done:
                    configuration = running.pop(ref)
                    job = ref.task_id().hex()
                    progress.advance(configuration.config.rows_total)
                    try:
                        measured: Measured = ray.get(ref)
                    except ray.exceptions.RayError as exc:  # the worker crashed or was killed, its node lost
                        from slcbench.speed.sweep import first_line  # torch: the driver has it already

                        cause = getattr(exc, "cause", None) or exc  # the worker's own exception, when it raised
                        yield Outcome(
                            configuration.index, (), WorkerRecord(job=job), lost=f"Ray task {first_line(cause)}"
                        )
                    else:
                        yield Outcome(configuration.index, measured.rows, replace(measured.worker, job=job))
        finally:
            for ref in running:
                with contextlib.suppress(Exception):  # a task that finished meanwhile cannot be cancelled
                    ray.cancel(ref, force=True)


def _ray_address(settings: ExecutorSettings) -> str | None:
    return settings.ray_address or os.environ.get("RAY_ADDRESS") or None


def _make_ray(settings: ExecutorSettings, config: SpeedConfig) -> RayExecutor:
    resources: dict[str, float] = (
        {"num_gpus": 1, "num_cpus": 1} if config.on_cuda else {"num_cpus": config.protocol.threads or 1}
    )
    parallel = settings.parallel or (None if config.on_cuda else 1)
    return RayExecutor(_ray_address(settings), parallel, resources)


class SlurmExecutor:
    """A submitit job array, one task per configuration; the driver waits for the tasks and collects them.

    Parameters
    ----------
    folder : Path
        Where submitit keeps each job's pickled call, result and logs (a file system the nodes share).
    parameters : dict
        submitit's ``update_parameters`` (``timeout_min``, ``gpus_per_node``, ``slurm_partition``,
        ``slurm_array_parallelism``, ...).
    cluster : str
        submitit's cluster: ``"slurm"``, or ``"local"`` (its LocalExecutor: the same path on this machine).
    poll_s : float
        Seconds between looks at the jobs' states.
    """

    in_process = False

    def __init__(
        self,
        folder: Path,
        parameters: dict[str, Any],
        *,
        cluster: str = "slurm",
        poll_s: float = 10.0,
        target: WorkerTarget = measure_configuration,
    ) -> None:
        self.folder = folder
        self.parameters = parameters
        self.cluster = cluster
        self.name = "slurm" if cluster == "slurm" else f"slurm ({cluster} stand-in)"
        self.poll_s = poll_s
        self.target = target

    def placement(self) -> str:
        partition = self.parameters.get("slurm_partition")
        on = f" on partition {partition}" if partition else ""
        return f"a {self.cluster} job array{on}, one task per configuration"

    def run(self, configurations: Sequence[Configuration], progress: Progress) -> Generator[Outcome, None, None]:
        import submitit

        if not configurations:
            return
        executor = submitit.AutoExecutor(folder=self.folder / "%j", cluster=self.cluster)
        executor.update_parameters(**self.parameters)
        jobs = executor.map_array(self.target, [c.config for c in configurations])
        progress.started(f"job array {jobs[0].job_id.split('_')[0]} ({len(jobs)} tasks) submitted")
        of_job = {job.job_id: configuration for job, configuration in zip(jobs, configurations, strict=True)}
        unfinished = {job.job_id: job for job in jobs}
        try:
            for job in submitit.helpers.as_completed(jobs, poll_frequency=self.poll_s):
                configuration = of_job[job.job_id]
                del unfinished[job.job_id]
                yield self._outcome(submitit, job, configuration)
                progress.advance(configuration.config.rows_total)
        finally:
            for job in unfinished.values():  # Ctrl-C: no one would collect them
                with contextlib.suppress(Exception):
                    job.cancel(check=False)

    @staticmethod
    def _outcome(submitit: Any, job: Any, configuration: Configuration) -> Outcome:
        lost_worker = WorkerRecord(job=str(job.job_id))
        try:
            measured: Measured = job.result()
        except submitit.core.utils.FailedJobError as exc:  # the task raised: its traceback's last line says why
            lines = [line for line in str(exc).strip().splitlines() if line.strip()]
            why = lines[-1].strip()[:300] if lines else "failed"
            return Outcome(configuration.index, (), lost_worker, lost=f"job {job.job_id} failed: {why}")
        except submitit.core.utils.UncompletedJobError:  # killed, out of memory, timed out, its node lost
            return Outcome(
                configuration.index,
                (),
                lost_worker,
                lost=f"job {job.job_id} ended without a result (state {job.state})",
            )
        return Outcome(configuration.index, measured.rows, replace(measured.worker, job=str(job.job_id)))


def slurm_parameters(settings: ExecutorSettings, config: SpeedConfig) -> dict[str, Any]:
    """submitit's parameters for the job array of ``settings`` measuring ``config``."""
    parameters: dict[str, Any] = {
        "name": "slcbench-speed",
        "timeout_min": settings.time_limit_min or 60,
        "nodes": 1,
        "tasks_per_node": 1,
        "gpus_per_node": settings.gpus_per_task if settings.gpus_per_task is not None else int(config.on_cuda),
    }
    if not config.on_cuda and config.protocol.threads:
        parameters["cpus_per_task"] = config.protocol.threads
    if settings.partition:
        parameters["slurm_partition"] = settings.partition
    if settings.parallel:
        parameters["slurm_array_parallelism"] = settings.parallel
    return parameters


def _missing_module(module: str, what: str) -> str | None:
    if not is_installed(module):
        return f"{what}, which is not installed: {install_command('cluster')}"
    return None


def _slurm_missing(settings: ExecutorSettings) -> str | None:
    missing = _missing_module("submitit", "submitit")
    if missing is None and shutil.which("sbatch") is None:
        missing = "Slurm's sbatch, which is not on PATH (run it on a Slurm login node)"
    return missing


EXECUTORS.register("inline", ExecutorKind(make=lambda settings, config: InlineExecutor()))
EXECUTORS.register("process", ExecutorKind(make=_make_process))
EXECUTORS.register(
    "ray",
    ExecutorKind(
        make=_make_ray,
        missing=lambda settings: _missing_module("ray", "Ray"),
        remote=lambda settings: _ray_address(settings) is not None,
    ),
)
EXECUTORS.register(
    "slurm",
    ExecutorKind(
        make=lambda settings, config: SlurmExecutor(settings.job_folder, slurm_parameters(settings, config)),
        missing=_slurm_missing,
        remote=lambda settings: True,
    ),
)
