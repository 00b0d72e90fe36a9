"""What a speed run measures: every setting, validated once, recorded verbatim in the results file."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from slcbench.class_counts import parse_class_spec
from slcbench.device import DeviceChoice, resolve_device
from slcbench.errors import SlcbenchError
from slcbench.io import check_output_folder
from slcbench.results import DEFAULT_CONFIDENCE, MAX_SEED, QUERY_HEADS, Head, Timing
from slcbench.speed.nvml import ENERGY_WINDOW_S
from slcbench.speed.protocol import CPU_QUICK_PROTOCOL, PAPER_PROTOCOL, Protocol, WarmupPlan

if TYPE_CHECKING:
    from slcbench.speed.architectures import ArchSpec


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
    ) -> SpeedConfig:
        """The config the command line's options describe: the device resolved (``auto`` = CUDA when
        present), the protocol that fits it with the options given, the architectures looked up."""
        from slcbench.speed.architectures import resolve_arch_list  # imports torch, torchvision

        target = str(resolve_device(device))
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
        return len(self.archs) * sum(len(heads) for heads in self.heads.values())

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
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise SlcbenchError("--plot needs matplotlib: pip install 'slcbench[plot]'") from None
