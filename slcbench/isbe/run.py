"""An ISBE run as one object: trained and timed by ``run_isbe``, written by ``IsbeRun.write``."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from slcbench.console import FittedTable, Progress, render_text
from slcbench.device import cpu_threads, resolve_device
from slcbench.env.collect import collect_environment
from slcbench.errors import SlcbenchError
from slcbench.io import timestamp, write_new_results
from slcbench.isbe.analysis import Analysis, SavingRow, analyse
from slcbench.isbe.config import IsbeConfig
from slcbench.isbe.experiment import DeviceData, train_variant
from slcbench.isbe.records import GroupResult
from slcbench.isbe.report import CPU_NOTE, conclusions, curves_figure, run_header, tables
from slcbench.isbe.timing import StepRecorder, clock_for
from slcbench.stats import Interval
from slcbench.train.data import load_dataset

ISBE_KIND = "slcbench.isbe"
ISBE_SCHEMA_VERSION = 1


def _interval_columns(prefix: str, interval: Interval | None) -> dict[str, float | None]:
    if interval is None:
        return {prefix: None, f"{prefix}_low": None, f"{prefix}_high": None}
    return {prefix: interval.estimate, f"{prefix}_low": interval.low, f"{prefix}_high": interval.high}


@dataclass(frozen=True)
class IsbeRun:
    """Every group trained (one per network variant and seed), the tables' numbers, and how they were made."""

    config: IsbeConfig
    groups: tuple[GroupResult, ...]
    analysis: Analysis
    environment: dict[str, Any]
    created: str
    command: str
    wall_s: float

    def document(self) -> dict[str, Any]:
        """The JSON: settings, environment, the tables with their intervals, every step's times and curves."""
        return {
            "kind": ISBE_KIND,
            "schema_version": ISBE_SCHEMA_VERSION,
            "created": self.created,
            "command": self.command,
            "wall_s": round(self.wall_s, 1),
            "environment": self.environment,
            "settings": self.config.settings(),
            "conclusions": conclusions(self.analysis),
            "tables": self.analysis.to_dict(),
            "groups": [group.to_dict() for group in self.groups],
        }

    def options_frame(self) -> pd.DataFrame:
        """One line per network variant and option: Table 1 (times, backprop share) and Table 3 (accuracy)."""
        rows = []
        for time_row, accuracy in zip(self.analysis.times, self.analysis.accuracy, strict=True):
            rows.append(
                {
                    "network": time_row.variant.network.value,
                    "relocated": time_row.variant.relocated,
                    "option": time_row.option.name,
                    "timed_steps": time_row.steps,
                    **_interval_columns("forward_ms", time_row.forward_ms),
                    **_interval_columns("backward_ms", time_row.backward_ms),
                    **_interval_columns("backprop_share_pct", time_row.share_pct),
                    "seeds": len(accuracy.per_seed_pct),
                    **_interval_columns("test_accuracy_pct", accuracy.accuracy_pct),
                }
            )
        return pd.DataFrame(rows)

    def comparisons_frame(self) -> pd.DataFrame:
        """One line per comparison: Table 2 (share change, time saved), Table 4 and blurred targets (accuracy)."""
        a = self.analysis
        rows: list[dict[str, Any]] = []
        for table, comparisons in (("time", a.savings), ("accuracy", a.differences), ("blur", a.blur)):
            for row in comparisons:
                rows.append(
                    {
                        "table": table,
                        "network": row.variant.network.value,
                        "relocated": row.variant.relocated,
                        "option": row.option.name,
                        "baseline": row.baseline.name,
                        **(
                            {
                                **_interval_columns("share_change_pts", row.share_change_pts),
                                **_interval_columns("time_saved_pct", row.saving_pct),
                                "time_verdict": row.time_verdict,
                                "blocks": row.blocks,
                            }
                            if isinstance(row, SavingRow)
                            else _interval_columns("accuracy_change_pts", row.difference_pts)
                        ),
                        "verdict": row.verdict,
                    }
                )
        return pd.DataFrame(rows)

    def tables(self, *, wide: bool = False) -> list[FittedTable]:
        return tables(self.analysis, self.config.networks, wide=wide)

    def notes(self) -> list[str]:
        """The paper's claims beside ours, and what CPU times can show."""
        cpu = [CPU_NOTE] if self.environment.get("device_type") == "cpu" else []
        return [*conclusions(self.analysis), *cpu]

    def text(self) -> str:
        """The tables and notes as plain text, with the command that made them."""
        body = "\n".join(render_text(table, width=200) for table in self.tables(wide=True))
        return f"$ {self.command}\n\n{body}\n" + "\n".join(self.notes()) + f"\n\nwall time {self.wall_s:.0f} s\n"

    def write(self) -> list[Path]:
        """``isbe-<data>-<UTC time>.json``, ``.csv`` (per option), ``-comparisons.csv``, ``.txt`` and a
        learning-curve PNG per network (with ``plot``), new files, all or none."""
        files: list[tuple[str, str, object]] = [
            (".json", "json", self.document()),
            (".csv", "csv", self.options_frame()),
            ("-comparisons.csv", "csv", self.comparisons_frame()),
            (".txt", "txt", self.text()),
        ]
        if self.config.plot:
            options = self.config.options()
            files += [
                (f"-{network.value}.png", "png", curves_figure(self.groups, network, options))
                for network in self.config.networks
            ]
        return write_new_results(self.config.output, f"isbe-{self.config.dataset.value}", files)


def run_isbe(config: IsbeConfig, *, command: str, progress: Progress) -> IsbeRun:
    """Train and time every option of ``config`` on every network variant and seed; ``command`` is recorded."""
    start = time.perf_counter()
    data = load_dataset(config.dataset.value, config.data_dir)
    device = resolve_device(config.device)
    options, variants = config.options(), config.variants()
    with cpu_threads(config.threads):
        device_data = DeviceData.load(data, device, config.curve_examples)
        steps_per_epoch = device_data.steps_per_epoch(config)
        if config.epochs * steps_per_epoch - config.timed_from_step < 2:
            raise SlcbenchError(
                f"{config.epochs} epoch(s) of {steps_per_epoch} steps leave fewer than 2 steps after "
                f"{config.timed_from_step} warm-up steps; train longer or lower --warmup-steps"
            )
        examples = (len(data.train), len(data.validation), len(data.test))
        progress.begin(
            run_header(config, str(device), examples, steps_per_epoch),
            len(variants) * len(config.seeds) * len(options) * config.epochs * steps_per_epoch,
        )
        recorder = StepRecorder[int](clock_for(device))
        groups = []
        for variant in variants:
            for seed in config.seeds:
                progress.started(f"{variant.title}, seed {seed}")
                groups.append(train_variant(device_data, variant, seed, options, config, recorder, progress.advance))
        environment = collect_environment(device)  # inside: it records the threads the run used
    analysis = analyse(groups, variants, options, timed_from=config.timed_from_step, confidence=config.confidence)
    return IsbeRun(config, tuple(groups), analysis, environment, timestamp(), command, time.perf_counter() - start)
