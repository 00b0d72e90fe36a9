"""A speed run as one object: measured by ``run_speed``, written by ``SpeedRun.write``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from rich.table import Table

from slcbench.console import Progress
from slcbench.env.collect import collect_environment
from slcbench.io import timestamp, write_new_results
from slcbench.results import SAMPLE_FIELDS, SpeedRow, Status, speed_document
from slcbench.speed.config import SpeedConfig, SpeedOutputs
from slcbench.speed.nvml import gpu_state
from slcbench.speed.report import gpu_notes, row_label, run_header, speed_figure, speed_table, spread_notes
from slcbench.speed.sweep import SweepParts, cpu_threads, measure_rows


@dataclass(frozen=True)
class SpeedRun:
    """The rows of one sweep with everything needed to read them later: settings, environment, command."""

    config: SpeedConfig
    rows: tuple[SpeedRow, ...]
    environment: dict[str, Any]
    created: str
    command: str
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

    def table(self) -> Table:
        return speed_table(
            self.rows, title=f"Forward time, {self.config.timing.value} timing, {self.config.precision.value}"
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
            files.append((".png", "png", speed_figure(self.rows)))
        return write_new_results(outputs.folder, "speed", files)


def run_speed(
    config: SpeedConfig, *, command: str, progress: Progress | None = None, parts: SweepParts = SweepParts()
) -> SpeedRun:
    """Measure every row of ``config`` (with its CPU threads); ``command`` is recorded to repeat the run."""
    with cpu_threads(config.protocol.threads):
        # Before anything of ours touches the GPU, so that other processes on it are theirs.
        state = gpu_state(torch.device(config.device), parts.open_gpu)
        environment = collect_environment(torch.device(config.device))
        if progress is not None:
            progress.begin(run_header(config, environment, state), config.rows_total)
        rows = []
        on_start = (lambda row: progress.started(row_label(row))) if progress is not None else None
        for row in measure_rows(config, parts=parts, on_start=on_start):
            rows.append(row)
            if progress is not None:
                progress.advance()
    return SpeedRun(config, tuple(rows), environment, timestamp(), command, state)
