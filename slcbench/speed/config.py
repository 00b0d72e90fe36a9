"""What a speed run measures: every setting, validated once, recorded verbatim in the results file."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from slcbench.class_counts import parse_class_spec
from slcbench.device import DeviceChoice, resolve_device
from slcbench.errors import SlcbenchError
from slcbench.extras import require
from slcbench.io import check_output_folder, read_json
from slcbench.results import (
    DEFAULT_CONFIDENCE,
    MAX_SEED,
    QUERY_HEADS,
    SPEED_SCHEMA_VERSION,
    Head,
    ResultsKind,
    SpeedRow,
    Timing,
)
from slcbench.speed.nvml import ENERGY_WINDOW_S
from slcbench.speed.protocol import CPU_QUICK_PROTOCOL, PAPER_PROTOCOL, Protocol, WarmupPlan

if TYPE_CHECKING:
    from slcbench.speed.architectures import ArchSpec
    from slcbench.speed.executors import Executor


class Precision(StrEnum):
    fp32 = "fp32"  # strict IEEE float32: TF32 off for matmul and cuDNN (the paper's arithmetic)
    tf32 = "tf32"  # float32 storage, TF32 tensor-core math
    bf16 = "bf16"  # model and input cast to bfloat16
    fp16 = "fp16"  # model and input cast to float16


# --pad-head at most: a multiple beyond a few cache lines of rows buys no alignment, only weights.
MAX_PAD_HEAD = 1024


def default_protocol(device: str) -> Protocol:
    """The paper's protocol on a GPU; the quick, labelled CPU protocol elsewhere."""
    return PAPER_PROTOCOL if device.startswith("cuda") else CPU_QUICK_PROTOCOL


@dataclass(frozen=True)
class SpeedConfig:
    """Everything that defines what a speed run measures.

    Parameters
    ----------
    archs : tuple of ArchSpec
        The architectures, in order.
    classes : tuple of int
        Class counts (top-layer units), sorted, with 1 first: every speedup is time(k) / time(1).
    device : str
        ``"cpu"`` or ``"cuda"`` (resolved: see ``from_options``).
    protocol : Protocol
        Batch size, samples, warm-up and sample length.
    precision, eager, channels_last, compile, query, cudnn_benchmark, seed
        As the command-line options of the same names.
    pad_head : int or None
        ``--pad-head``: also time, at each k > 1 that is not a multiple of it, the head padded to one.
    energy_window_s : float
        Seconds of back-to-back batches per row over which NVML's energy counter is read (0: none;
        ``--energy`` gives ``ENERGY_WINDOW_S``).
    """

    archs: tuple[ArchSpec, ...]
    classes: tuple[int, ...]
    device: str
    protocol: Protocol
    precision: Precision = Precision.fp32
    eager: bool = False
    channels_last: bool = False
    compile: bool = False
    query: bool = False
    cudnn_benchmark: bool = True
    seed: int = 0
    pad_head: int | None = None
    energy_window_s: float = 0.0

    def __post_init__(self) -> None:
        if self.pad_head is not None and not 2 <= self.pad_head <= MAX_PAD_HEAD:
            raise SlcbenchError(f"--pad-head must be between 2 and {MAX_PAD_HEAD}, got {self.pad_head}")
        if not 0 <= self.energy_window_s <= 60:  # also refuses NaN
            raise SlcbenchError(f"the energy window must be between 0 and 60 seconds, got {self.energy_window_s:g}")
        if not self.device.startswith("cuda") and self.precision is Precision.tf32:
            raise SlcbenchError("--precision tf32 needs a CUDA device (TF32 is a tensor-core mode)")
        if not 0 <= self.seed <= MAX_SEED:
            raise SlcbenchError(f"--seed must be between 0 and 2^63 - 1, got {self.seed}")
        if not self.classes or self.classes[0] != 1 or list(self.classes) != sorted(set(self.classes)):
            raise SlcbenchError("class counts must be sorted, unique and start with 1 (the SLC reference)")

    @classmethod
    def from_options(
        cls,
        *,
        arch: str,
        classes: str,
        device: DeviceChoice,
        batch_size: int | None = None,
        batches: int | None = None,
        warmup: int | None = None,
        min_sample_ms: float | None = None,
        ci_target_pct: float | None = None,
        row_budget_s: float | None = None,
        threads: int | None = None,
        precision: Precision = Precision.fp32,
        eager: bool = False,
        channels_last: bool = False,
        compile: bool = False,
        query: bool = False,
        cudnn_benchmark: bool = True,
        seed: int = 0,
        pad_head: int | None = None,
        energy: bool = False,
        device_here: bool = True,
    ) -> SpeedConfig:
        """The config the command line's options describe: the device resolved (``auto`` = CUDA when
        present), the protocol that fits it with the options given, the architectures looked up.
        ``device_here=False``: the workers run elsewhere (a cluster), and check an explicit ``cuda`` themselves."""
        from slcbench.speed.architectures import resolve_arch_list  # imports torch, torchvision

        target = str(resolve_device(device, here=device_here))
        protocol = default_protocol(target).customised(
            batch_size=batch_size,
            batches=batches,
            warmup=warmup,
            min_sample_ms=min_sample_ms,
            ci_target_pct=ci_target_pct,
            row_budget_s=row_budget_s,
            threads=threads,
        )
        return cls(
            archs=resolve_arch_list(arch),
            classes=parse_class_spec(classes),
            device=target,
            protocol=protocol,
            precision=precision,
            eager=eager,
            channels_last=channels_last,
            compile=compile,
            query=query,
            cudnn_benchmark=cudnn_benchmark,
            seed=seed,
            pad_head=pad_head,
            energy_window_s=ENERGY_WINDOW_S if energy else 0.0,
        )

    @property
    def on_cuda(self) -> bool:
        return self.device.startswith("cuda")

    @property
    def timing(self) -> Timing:
        return Timing.graph if self.on_cuda and not self.eager else Timing.eager

    @property
    def heads(self) -> dict[int, tuple[Head, ...]]:
        """The heads measured at each class count: the full head; with ``pad_head`` the padded head where k
        is not already a multiple; with ``query`` the query heads. k = 1 (the reference) has the full head only."""
        return {k: self._heads_at(k) for k in self.classes}

    def _heads_at(self, classes: int) -> tuple[Head, ...]:
        if classes == 1:
            return (Head.full,)
        padded = (Head.padded,) if self.pad_head is not None and classes % self.pad_head else ()
        return (Head.full, *padded, *(QUERY_HEADS if self.query else ()))

    @property
    def warmup_plan(self) -> WarmupPlan:
        """The protocol's warm-up; waiting for a steady time only under graph timing, where the time
        is the GPU's own (eager times include the host's launch jitter, which need not settle)."""
        p = self.protocol
        settle = p.settle_pct if self.timing is Timing.graph else None
        return WarmupPlan(
            calls=p.warmup, min_s=p.min_warmup_s, settle_pct=settle, max_s=p.max_warmup_s if settle is not None else 0.0
        )

    @property
    def min_sample_ms(self) -> float:
        """Batches are unrolled into longer samples only in a CUDA graph (one batch per sample otherwise)."""
        return self.protocol.min_sample_ms if self.timing is Timing.graph else 0.0

    @property
    def rows_total(self) -> int:
        return len(self.archs) * self.rows_per_arch

    @property
    def rows_per_arch(self) -> int:
        return sum(len(heads) for heads in self.heads.values())

    def configurations(self) -> tuple[SpeedConfig, ...]:
        """One config per architecture: what one worker measures (each row is timed against the k=1 row of
        the same trunk, so an architecture's rows stay together)."""
        return tuple(replace(self, archs=(spec,)) for spec in self.archs)

    def notes(self) -> list[str]:
        """Options that have no effect in this configuration, one line each."""
        notes = []
        if self.eager and not self.on_cuda:
            notes.append("--eager only changes CUDA timing; CPU calls are always timed as launched")
        asked_for_blocks = self.protocol.min_sample_ms != default_protocol(self.device).min_sample_ms
        if asked_for_blocks and self.protocol.min_sample_ms and self.timing is not Timing.graph:
            notes.append("--min-sample-ms only changes CUDA graph timing; here each sample is one batch")
        if self.energy_window_s and not self.on_cuda:
            notes.append("--energy reads an NVIDIA GPU's energy counter; on the CPU the energy fields stay null")
        return notes

    def settings(self) -> dict[str, Any]:
        """The settings block of the results file."""
        warmup = self.warmup_plan
        return {
            "device": self.device.split(":")[0],
            "precision": self.precision.value,
            "timing": self.timing.value,
            "batch_size": self.protocol.batch_size,
            "batches": self.protocol.batches,
            "warmup": self.protocol.warmup,
            "min_warmup_s": self.protocol.min_warmup_s,
            "settle_pct": warmup.settle_pct,
            "max_warmup_s": warmup.max_s,
            "min_sample_ms": self.min_sample_ms,
            "blocks": self.protocol.blocks,
            "ci_target_pct": self.protocol.ci_target_pct,
            "row_budget_s": self.protocol.row_budget_s,
            "threads": self.protocol.threads,
            "confidence": DEFAULT_CONFIDENCE,
            "speedup_method": "median of A-B-B-A block ratios against k=1, order-statistic (binomial) interval",
            "channels_last": self.channels_last,
            "compiled": self.compile,
            "query": self.query,
            "seed": self.seed,
            "pad_head": self.pad_head,
            "energy_window_s": self.energy_window_s,
            "protocol": self.protocol.name,
            "archs": [a.name for a in self.archs],
            "classes": list(self.classes),
            "cuda_graphs": self.timing is Timing.graph,
            "cudnn_benchmark": self.on_cuda and self.cudnn_benchmark,
            "tf32_matmul": self.precision is Precision.tf32,
            "cast": "model and input cast" if self.precision in (Precision.bf16, Precision.fp16) else "none",
            "input": "random normal noise, fixed for the run",
            "l2_cache": "warm (back-to-back batches, as in the paper)",
        }


@dataclass(frozen=True)
class SpeedOutputs:
    """Where a speed run's files go, checked before the sweep: a folder, and whether to plot."""

    folder: Path
    plot: bool = False

    def __post_init__(self) -> None:
        check_output_folder(self.folder)
        if self.plot:
            require_matplotlib()


def require_matplotlib() -> None:
    """Refuse ``--plot`` before a sweep of minutes when matplotlib is missing."""
    require("matplotlib", "plot", "--plot")


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@dataclass(frozen=True)
class ExecutorSettings:
    """Where a sweep's configurations (one per architecture) are measured: ``--executor`` and its options.

    Parameters
    ----------
    name : str
        An entry of ``slcbench.speed.executors.EXECUTORS``: ``inline`` (this process, one after another),
        ``process`` (a fresh process each, one per GPU at once), ``ray`` (Ray tasks), ``slurm`` (a job array).
    parallel : int or None
        Configurations measured at once, at most (None: the executor's default; see ``--parallel``).
    ray_address : str or None
        ``ray``: a running cluster's address (None: a local cluster started for the run).
    partition, gpus_per_task, time_limit_min : str or None, int or None, int or None
        ``slurm``: the job array's partition (None: the cluster's default), GPUs per task (None: 1 on
        CUDA, 0 on the CPU) and time limit per task in minutes (None: 60).
    job_folder : Path
        ``slurm``: where submitit keeps the jobs' files and logs (a folder the compute nodes share).
    """

    name: str
    parallel: int | None = None
    ray_address: str | None = None
    partition: str | None = None
    gpus_per_task: int | None = None
    time_limit_min: int | None = None
    job_folder: Path = field(default=Path("slurm-jobs"))

    def __post_init__(self) -> None:
        from slcbench.speed.executors import EXECUTORS  # torch-free

        kind = EXECUTORS.get(self.name)
        if self.parallel is not None and self.parallel < 1:
            raise SlcbenchError(f"--parallel must be positive, got {self.parallel}")
        if self.gpus_per_task is not None and not 0 <= self.gpus_per_task <= 64:
            raise SlcbenchError(f"--gpus-per-task must be between 0 and 64, got {self.gpus_per_task}")
        if self.time_limit_min is not None and self.time_limit_min < 1:
            raise SlcbenchError(f"--time-limit must be at least 1 (minute), got {self.time_limit_min}")
        for option, value, owner in (
            ("--ray-address", self.ray_address, "ray"),
            ("--partition", self.partition, "slurm"),
            ("--gpus-per-task", self.gpus_per_task, "slurm"),
            ("--time-limit", self.time_limit_min, "slurm"),
        ):
            if value is not None and self.name != owner:
                raise SlcbenchError(f"{option} only applies to --executor {owner}")
        missing = kind.missing(self)
        if missing is not None:
            raise SlcbenchError(f"--executor {self.name} needs {missing}")

    @classmethod
    def from_options(
        cls,
        *,
        executor: str | None,
        device: DeviceChoice,
        output: Path,
        parallel: int | None = None,
        ray_address: str | None = None,
        partition: str | None = None,
        gpus_per_task: int | None = None,
        time_limit_min: int | None = None,
    ) -> ExecutorSettings:
        """The settings the options describe; without ``--executor``: ``process`` on CUDA (a fresh process per
        configuration costs seconds against a sweep of minutes), ``inline`` on the CPU."""
        if executor is None:
            executor = "process" if resolve_device(device).type == "cuda" else "inline"
        return cls(
            name=executor.strip().lower(),
            parallel=parallel,
            ray_address=ray_address,
            partition=partition,
            gpus_per_task=gpus_per_task,
            time_limit_min=time_limit_min,
            job_folder=output / "slurm-jobs",
        )

    def executor(self, config: SpeedConfig) -> Executor:
        """The executor these settings describe, for ``config``."""
        from slcbench.speed.executors import EXECUTORS

        return EXECUTORS.get(self.name).make(self, config)

    @property
    def device_here(self) -> bool:
        """Whether the workers run on this machine, so that ``--device cuda`` must find a GPU here."""
        from slcbench.speed.executors import EXECUTORS

        return not EXECUTORS.get(self.name).remote(self)


_ABSENT = "not recorded"


@dataclass(frozen=True)
class SweepResume:
    """An interrupted or partly failed run of the same sweep, to continue (``--resume FILE``).

    Parameters
    ----------
    path : Path
        The results file.
    settings, environment : dict
        Its settings and environment blocks.
    command : str
        The command that made it.
    rows : tuple of SpeedRow
        Its rows, in its order.
    workers : dict
        Its ``execution.workers`` entries by architecture (empty for a file written before they existed).
    """

    path: Path
    settings: dict[str, Any]
    environment: dict[str, Any]
    command: str
    rows: tuple[SpeedRow, ...]
    workers: dict[str, dict[str, Any]]

    @classmethod
    def read(cls, path: Path, config: SpeedConfig) -> SweepResume:
        """The run in ``path``, checked to be a speed results file of ``config``'s settings; SlcbenchError (one
        line naming the file) otherwise."""
        resume = cls.from_document(path, read_json(path))
        resume.check_matches(config)
        return resume

    @classmethod
    def from_document(cls, path: Path, payload: Any) -> SweepResume:
        """The run in ``payload``, the JSON document read from ``path``."""
        if not isinstance(payload, dict) or payload.get("kind") != ResultsKind.speed:
            raise SlcbenchError(f"--resume {path} is not an slcbench speed results file")
        if payload.get("schema_version") != SPEED_SCHEMA_VERSION:
            raise SlcbenchError(
                f"--resume {path} has speed schema_version {payload.get('schema_version')!r}; "
                f"only files of version {SPEED_SCHEMA_VERSION} can be continued"
            )
        entries, settings = payload.get("rows"), payload.get("settings")
        if not isinstance(entries, list) or not isinstance(settings, dict):
            raise SlcbenchError(f'--resume {path} lacks its "rows" list or its "settings"')
        rows = []
        for index, entry in enumerate(entries):
            try:
                if not isinstance(entry, dict):
                    raise ValueError("is not an object")
                rows.append(SpeedRow.from_dict(entry))
            except ValueError as exc:
                raise SlcbenchError(f"--resume {path}: row {index} {exc}") from None
        execution = payload.get("execution")
        listed = execution.get("workers") if isinstance(execution, dict) else None
        workers = {
            entry["arch"]: entry
            for entry in (listed if isinstance(listed, list) else [])
            if isinstance(entry, dict) and isinstance(entry.get("arch"), str)
        }
        environment, command = payload.get("environment"), payload.get("command")
        return cls(
            path=path,
            settings=settings,
            environment=environment if isinstance(environment, dict) else {},
            command=_one_line(command) if isinstance(command, str) else "",
            rows=tuple(rows),
            workers=workers,
        )

    def check_matches(self, config: SpeedConfig) -> None:
        """Refuse to continue the file with a sweep of other settings (one line: the first difference)."""
        ours = json.loads(json.dumps(config.settings()))  # as the file holds them: lists, not tuples
        differing = sorted(
            name
            for name in ours.keys() | self.settings.keys()
            if ours.get(name, _ABSENT) != self.settings.get(name, _ABSENT)
        )
        if differing:
            name = differing[0]
            more = f", and {len(differing) - 1} more" if len(differing) > 1 else ""
            again = f"; its command was: {self.command}" if self.command else ""
            raise SlcbenchError(
                f"--resume {self.path} was measured with other settings ({name}: "
                f"{self.settings.get(name, _ABSENT)!r} there, {ours.get(name, _ABSENT)!r} here{more}): repeat its "
                f"options{again}"
            )
