"""A speed run as one object: measured by ``run_speed``, written by ``SpeedRun.write``.

``run_speed`` is the driver: it splits the sweep into configurations (one per architecture), hands
them to an executor (this process, fresh processes, Ray, Slurm), and merges what comes back into
one run, in the sweep's order, whichever worker measured what and in whichever order they finished.
A configuration whose worker died keeps its rows, marked failed with the reason; with ``--resume``
only the configurations an earlier file lacks or holds as failed are measured again.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from slcbench.console import FittedTable, Progress
from slcbench.device import cpu_threads
from slcbench.env.collect import collect_environment
from slcbench.io import timestamp, write_new_results
from slcbench.results import SAMPLE_FIELDS, SpeedRow, Status, speed_document
from slcbench.speed.config import SpeedConfig, SpeedOutputs, SweepResume
from slcbench.speed.executors import Configuration, Executor, InlineExecutor, Outcome
from slcbench.speed.nvml import gpu_state
from slcbench.speed.report import gpu_notes, placement_header, run_header, speed_figure, speed_table, spread_notes
from slcbench.speed.sweep import SweepParts, blank_row
from slcbench.speed.worker import WorkerRecord


@dataclass(frozen=True)
class SpeedRun:
    """The rows of one sweep with everything needed to read them later: settings, environment, command."""

    config: SpeedConfig
    rows: tuple[SpeedRow, ...]
    environment: dict[str, Any]
    created: str
    command: str
    execution: dict[str, Any] | None = None  # the executor, whether the sweep completed, who measured what
    gpu_state: dict[str, Any] = field(default_factory=dict)  # what NVML said of the GPU at the start

    def document(self) -> dict[str, Any]:
        """The JSON that ``slcbench compare`` reads: environment, every setting, every row with raw samples."""
        return speed_document(
            settings=self.config.settings(),
            rows=list(self.rows),
            environment=self.environment,
            created=self.created,
            command=self.command,
            gpu_state=self.gpu_state,
            execution=self.execution,
        )

    def frame(self) -> pd.DataFrame:
        """One line per row for the CSV: intervals as ``_low``/``_high`` columns; raw samples stay in the JSON."""
        lines = []
        for row in self.rows:
            line: dict[str, Any] = {}
            for key, value in row.to_dict().items():
                if key in SAMPLE_FIELDS:
                    continue
                if key == "throttle_reasons":
                    line[key] = None if value is None else "|".join(value)
                elif key.endswith("_ci"):
                    line[f"{key}_low"], line[f"{key}_high"] = value if value is not None else (None, None)
                else:
                    line[key] = value
            lines.append(line)
        return pd.DataFrame(lines)

    def table(self, *, wide: bool = False) -> FittedTable:
        return speed_table(
            self.rows,
            title=f"Forward time, {self.config.timing.value} timing, {self.config.precision.value}",
            wide=wide,
        )

    def notes(self) -> list[str]:
        """Warnings about the rows: failures, wide spreads, warm-ups that never settled, the GPU's validity."""
        failed = [r for r in self.rows if r.status is not Status.ok]
        notes = [f"{len(failed)} row(s) did not complete (OOM or failure): see the 'error' column"] if failed else []
        return (
            notes
            + spread_notes(self.rows, self.config.protocol.max_warmup_s)
            + gpu_notes(self.rows, self.gpu_state, energy_asked=bool(self.config.energy_window_s))
        )

    def write(self, outputs: SpeedOutputs) -> list[Path]:
        """``speed-<UTC time>.json`` and ``.csv`` (and ``.png`` with ``plot``), new files, all or none."""
        files: list[tuple[str, str, object]] = [(".json", "json", self.document()), (".csv", "csv", self.frame())]
        if outputs.plot:
            files.append((".png", "png", speed_figure(self.rows, hardware=self.environment.get("device_name"))))
        return write_new_results(outputs.folder, "speed", files)


class _SilentProgress:
    def begin(self, header: str, total: int) -> None: ...

    def started(self, label: str) -> None: ...

    def advance(self, steps: int = 1) -> None: ...

    def note(self, line: str) -> None: ...


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep, carrying the run so far: written, it is a partial file that ``--resume`` continues."""

    def __init__(self, run: SpeedRun) -> None:
        super().__init__()
        self.run = run

    def saved(self, outputs: SpeedOutputs) -> str:
        """Write the partial run; the line that says so and how to resume it."""
        path = self.run.write(replace(outputs, plot=False))[0]
        execution = self.run.execution or {}
        done, total = len(execution.get("workers", [])), execution.get("configurations", "?")
        return f"interrupted; the {done} of {total} configuration(s) done are in {path}: continue with --resume {path}"


def run_speed(
    config: SpeedConfig,
    *,
    command: str,
    progress: Progress | None = None,
    parts: SweepParts = SweepParts(),
    executor: Executor | None = None,
    resume: SweepResume | None = None,
) -> SpeedRun:
    """Measure every row of ``config`` (with its CPU threads); ``command`` is recorded to repeat the run.

    ``executor`` says where the configurations are measured (default: inline, in this process, with
    ``parts``); ``resume`` is an earlier file of the same settings whose finished configurations are kept.
    Ctrl-C raises SweepInterrupted with the configurations finished so far.
    """
    executor = executor if executor is not None else InlineExecutor(parts)
    progress = progress if progress is not None else _SilentProgress()
    configurations = [Configuration(index, one) for index, one in enumerate(config.configurations())]
    outcomes = _kept_outcomes(resume, configurations) if resume is not None else {}
    to_measure = [c for c in configurations if c.index not in outcomes]
    with cpu_threads(config.protocol.threads):
        # Before anything of ours touches the GPU, so that other processes on it are theirs. Workers in
        # other processes record their GPU's clocks per row; the run's state is read where it measures.
        state = gpu_state(torch.device(config.device), parts.open_gpu) if executor.in_process else {}
        environment = collect_environment(torch.device(config.device)) if executor.in_process else None
        header = (
            run_header(config, environment, state)
            if environment is not None
            else placement_header(config, executor.placement())
        )
        progress.begin(header, len(to_measure) * config.rows_per_arch)
        merge = _Merge(config, configurations, executor, environment, resume, command, state)
        try:
            with contextlib.closing(executor.run(to_measure, progress)) as finishing:  # closed: workers stopped
                for outcome in finishing:
                    outcomes[outcome.index] = outcome
        except KeyboardInterrupt:
            raise SweepInterrupted(merge.run(outcomes, complete=False)) from None
    return merge.run(outcomes, complete=True)


def _expected_rows(configuration: Configuration) -> list[SpeedRow]:
    """The rows a configuration measures, in the sweep's order, with their identities and nothing measured."""
    config = configuration.config
    return [blank_row(config, configuration.arch, k, head) for k, heads in config.heads.items() for head in heads]


def _kept_outcomes(resume: SweepResume, configurations: list[Configuration]) -> dict[int, Outcome]:
    """The configurations ``resume`` holds in full and none of whose rows failed: they are not measured again."""
    by_identity = {row.identity(): row for row in resume.rows}
    kept = {}
    for configuration in configurations:
        rows = [by_identity.get(row.identity()) for row in _expected_rows(configuration)]
        if all(row is not None and row.status is not Status.failed for row in rows):
            entry = resume.workers.get(configuration.arch)
            worker = (
                WorkerRecord.from_dict(entry) if entry is not None else WorkerRecord(environment=resume.environment)
            )
            if worker.environment is None:
                worker = replace(worker, environment=resume.environment)
            kept[configuration.index] = Outcome(
                configuration.index, tuple(r for r in rows if r is not None), worker, stamped=True
            )
    return kept


def common_environment(environments: list[dict[str, Any]]) -> dict[str, Any]:
    """The environment block of a run measured by several workers: each field as they all have it, null
    where they differ (each worker's own block stays in ``execution.workers``)."""
    if not environments:
        return {}
    first = environments[0]
    return {key: value if all(e.get(key) == value for e in environments[1:]) else None for key, value in first.items()}


@dataclass(frozen=True)
class _Merge:
    """How the outcomes of a sweep's configurations become one run."""

    config: SpeedConfig
    configurations: list[Configuration]
    executor: Executor
    environment: dict[str, Any] | None  # the driver's, when it measures in its own process
    resume: SweepResume | None
    command: str
    gpu_state: dict[str, Any]

    def run(self, outcomes: dict[int, Outcome], *, complete: bool) -> SpeedRun:
        rows: list[SpeedRow] = []
        workers: list[dict[str, Any]] = []
        for configuration in self.configurations:
            outcome = outcomes.get(configuration.index)
            if outcome is None:
                continue
            measured = outcome.rows or tuple(
                replace(row, status=Status.failed, error=outcome.lost) for row in _expected_rows(configuration)
            )
            rows.extend(measured if outcome.stamped else (outcome.worker.stamp(row) for row in measured))
            worker = outcome.worker
            if worker.environment is None:
                worker = replace(worker, environment=self.environment or {})
            workers.append({"arch": configuration.arch, **worker.to_dict(), "lost": outcome.lost})
        environment = common_environment([w["environment"] for w in workers if w["lost"] is None])
        execution = {
            "executor": self.executor.name,
            "complete": complete,
            "configurations": len(self.configurations),
            "resumed_from": str(self.resume.path) if self.resume is not None else None,
            "workers": workers,
        }
        return SpeedRun(
            self.config,
            tuple(rows),
            environment or self.environment or {},
            timestamp(),
            self.command,
            execution=execution,
            gpu_state=self.gpu_state,
        )
