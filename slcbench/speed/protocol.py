"""How many calls a speed row makes and when its warm-up ends: the paper's protocol and a quick CPU one."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from slcbench.errors import SlcbenchError
from slcbench.results import Warmup

# Calls per unrolled graph (and per warm-up window) at most: 1000 calls of a 5 µs GEMM fill 5 ms.
MAX_CALLS_PER_SAMPLE = 1000
# A-B-B-A blocks per paired row at least: 6 is the fewest whose median has a 95% interval.
MIN_BLOCKS = 6
# Adaptive sampling adds blocks up to this many (a row of 2,000 timed batches a side).
MAX_BLOCKS = 1000


@dataclass(frozen=True)
class Protocol:
    """The sampling settings of a speed run.

    Parameters
    ----------
    name : str
        ``"paper"``, ``"cpu-quick"``, or either with ``+custom`` when options changed it.
    batch_size : int
        Examples per batch.
    batches : int
        Timed samples per side: of the k=1 row and of each head alone; a row timed against k=1
        gets max(batches / 2, MIN_BLOCKS) A-B-B-A blocks, so at least ``batches`` samples a side.
    warmup : int
        Untimed calls before them, at least.
    min_warmup_s : float
        ... and at least this long.
    settle_pct : float or None
        ... and, under graph timing, until consecutive ~100 ms windows agree within this percentage.
    max_warmup_s : float
        ... or until this long has passed (the row is then marked unsettled).
    min_sample_ms : float
        Graph timing: batches unrolled per sample so that one sample lasts this long (0: one batch).
    ci_target_pct : float or None
        Adaptive sampling: add A-B-B-A blocks until the speedup's 95% interval lies within this many
        percent of the estimate (None: a fixed number of blocks).
    row_budget_s : float
        ... or until the row's timing has taken this long (the row is then marked not converged).
    threads : int or None
        CPU threads for torch during the run (None: torch's choice).
    """

    name: str
    batch_size: int
    batches: int
    warmup: int
    min_warmup_s: float = 0.0
    settle_pct: float | None = None
    max_warmup_s: float = 0.0
    min_sample_ms: float = 0.0
    ci_target_pct: float | None = None
    row_budget_s: float = 0.0
    threads: int | None = None

    def __post_init__(self) -> None:
        for option, value in (("--batch-size", self.batch_size), ("--batches", self.batches)):
            if value < 1:
                raise SlcbenchError(f"{option} must be positive, got {value}")
        if self.warmup < 0:
            raise SlcbenchError(f"--warmup must be non-negative, got {self.warmup}")
        if not 0 <= self.min_sample_ms <= 1000:  # also refuses NaN
            raise SlcbenchError(f"--min-sample-ms must be between 0 and 1000, got {self.min_sample_ms:g}")
        if self.ci_target_pct is not None and not 0 < self.ci_target_pct <= 100:
            raise SlcbenchError(f"--ci-target must be between 0 and 100 (percent), got {self.ci_target_pct:g}")
        if self.threads is not None and not 1 <= self.threads <= 1024:
            raise SlcbenchError(f"--threads must be between 1 and 1024, got {self.threads}")
        if not 0 <= self.row_budget_s <= 3600:
            raise SlcbenchError(f"--row-budget must be between 0 and 3600 seconds, got {self.row_budget_s:g}")

    @property
    def blocks(self) -> int:
        """A-B-B-A blocks of a row timed against k=1 (adaptive sampling may add more)."""
        return max(-(-self.batches // 2), MIN_BLOCKS)

    def customised(
        self,
        *,
        batch_size: int | None = None,
        batches: int | None = None,
        warmup: int | None = None,
        min_sample_ms: float | None = None,
        ci_target_pct: float | None = None,
        row_budget_s: float | None = None,
        threads: int | None = None,
    ) -> Protocol:
        """This protocol with the options a user gave (None: keep), renamed ``+custom`` if any was given.

        ``ci_target_pct=0`` turns adaptive sampling off (a fixed number of blocks).
        """
        given = (batch_size, batches, warmup, min_sample_ms, ci_target_pct, row_budget_s, threads)
        if all(value is None for value in given):
            return self
        return replace(
            self,
            name=f"{self.name}+custom",
            batch_size=self.batch_size if batch_size is None else batch_size,
            batches=self.batches if batches is None else batches,
            warmup=self.warmup if warmup is None else warmup,
            min_sample_ms=self.min_sample_ms if min_sample_ms is None else min_sample_ms,
            ci_target_pct=self.ci_target_pct if ci_target_pct is None else (ci_target_pct or None),
            row_budget_s=self.row_budget_s if row_budget_s is None else row_budget_s,
            threads=self.threads if threads is None else threads,
        )


# The paper: 100 minibatches of 32. The warm-up and the 3 ms samples are ours (the paper states no
# warm-up); results/speed-h100/README.md gives the measurements behind them.
PAPER_PROTOCOL = Protocol(
    "paper",
    batch_size=32,
    batches=100,
    warmup=20,
    min_warmup_s=0.3,
    settle_pct=0.25,
    max_warmup_s=2.0,
    min_sample_ms=3.0,
)
# Not the paper's: 6 samples a side (the fewest with a 95% interval of the median), then blocks are
# added until the speedup is known within 2% or the row has taken 12 s, so that the README's default
# command is quick on a quiet machine and honest on a busy one.
# One thread: a second one waits at every parallel region for a core that another process may hold,
# which made the speedup of three runs on a half-busy 2-core machine spread by 11%; with one, by 1%.
CPU_QUICK_PROTOCOL = Protocol(
    "cpu-quick", batch_size=4, batches=6, warmup=0, ci_target_pct=2.0, row_budget_s=12.0, threads=1
)


@dataclass(frozen=True)
class WarmupPlan:
    """When untimed warm-up may stop.

    After ``calls`` calls *and* ``min_s`` seconds; and, when ``settle_pct`` is set, once two
    consecutive windows of about ``window_ms`` have median call times within ``settle_pct`` percent
    of each other, or ``max_s`` seconds have passed. Warm-up is timed in windows, one
    synchronisation per window, so its clock counts finished work rather than queued launches.
    """

    calls: int = 0
    min_s: float = 0.0
    settle_pct: float | None = None
    max_s: float = 0.0
    window_ms: float = 100.0

    def __post_init__(self) -> None:
        if self.settle_pct is not None and not self.max_s > 0:
            raise ValueError("a warm-up that waits for a steady time needs max_s > 0 to end")

    def after(self, done: Warmup) -> WarmupPlan:
        """What is left of this plan once ``done`` has run (its calls and seconds count towards it)."""
        spent = done.seconds
        return replace(
            self,
            calls=max(0, self.calls - done.calls),
            min_s=max(0.0, self.min_s - spent),
            max_s=max(1e-9, self.max_s - spent) if self.settle_pct is not None else self.max_s,
        )

    def in_runs_of(self, calls_per_run: int) -> WarmupPlan:
        """The same plan for a ``run`` that makes ``calls_per_run`` calls (an unrolled graph)."""
        return replace(self, calls=math.ceil(self.calls / calls_per_run))
