"""A training job as one object: each loss trained and its ``.npz`` written as it finishes; with several
losses, the paper's Table I computed through ``slcbench evaluate``'s code and written at the end."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from rich.console import Group

from slcbench.console import Progress, render_text
from slcbench.device import DeviceChoice, cpu_threads, resolve_device
from slcbench.env.collect import collect_environment
from slcbench.errors import SlcbenchError
from slcbench.evaluate.evaluation import EvaluationResult, evaluate_logits
from slcbench.evaluate.run import EvaluateRun
from slcbench.formats import Output
from slcbench.io import write_outputs
from slcbench.results import TRAIN_SCHEMA_VERSION, ResultsKind
from slcbench.train.config import (
    DEFAULT_BATCH_SIZE,
    LEARNING_RATES,
    DatasetName,
    LossSettings,
    TrainConfig,
    TrainJob,
    TrainOutputs,
    default_steps,
)
from slcbench.train.data import DataSplits, load_dataset
from slcbench.train.losses import LOSSES, losses_to_train
from slcbench.train.training import TrainResult, train_with_lr_search

TRAIN_MORE = "--wide, or table.csv"


def training_job(
    *,
    loss: str,
    dataset: DatasetName,
    data_dir: Path | None = None,
    out: Path | None = None,
    steps: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    lr: float | None = None,
    loss_settings: LossSettings = LossSettings(),
    threads: int | None = None,
    device: DeviceChoice = DeviceChoice.auto,
    seed: int = 0,
    force: bool = False,
) -> TrainJob:
    """The job the command line's options describe: ``loss`` is a comma list of registered names or
    'all' (the paper's seven); outputs are planned and checked here, before any training."""
    names = tuple(losses_to_train([part.strip() for part in loss.split(",") if part.strip()]))
    if not names:
        raise SlcbenchError("--loss is empty; choose losses by name (slcbench train --list-losses) or 'all'")
    configs = tuple(
        TrainConfig(
            loss=name,
            steps=default_steps(dataset) if steps is None else steps,
            batch_size=batch_size,
            learning_rates=LEARNING_RATES if lr is None else (lr,),
            seed=seed,
            loss_settings=loss_settings,
        )
        for name in names
    )
    outputs = TrainOutputs.plan(out, names, dataset, force=force)
    return TrainJob(configs, dataset, outputs, data_dir, device, threads)


def evaluate_trained(results: Sequence[TrainResult]) -> tuple[list[EvaluationResult], list[str]]:
    """SLC metrics of each run's test logits via ``slcbench evaluate``'s code path, rows named as in the
    paper's Table I; returns (evaluation results, baseline row names = the non-PoLS-aligned losses)."""
    evaluations = [evaluate_logits(r.test_logits, r.test_labels, name=LOSSES.get(r.config.loss).title) for r in results]
    baseline = [LOSSES.get(r.config.loss).title for r in results if not LOSSES.get(r.config.loss).pols_aligned]
    return evaluations, baseline


REPRODUCES_WITH = ("torch", "torch_git", "cpu_capability", "torch_threads", "device_name")


@dataclass(frozen=True)
class TrainRun:
    """The trained losses of one job and, with two or more, their Table I comparison."""

    job: TrainJob
    results: tuple[TrainResult, ...]
    environment: dict[str, Any]
    command: str
    evaluation: EvaluateRun | None = field(default=None)

    def table(self, *, wide: bool = False) -> Group | None:
        """Table I (and Table II) of the trained losses; None for one loss."""
        return self.evaluation.table(wide=wide, more=TRAIN_MORE) if self.evaluation is not None else None

    def summary_rows(self) -> list[dict[str, Any]]:
        """One flat row per trained loss (settings, accuracies, every block's metrics) for table.csv."""
        assert self.evaluation is not None
        rows = []
        for result, evaluation in zip(self.results, self.evaluation.results, strict=True):
            blocks = evaluation.blocks()
            rows.append(
                {
                    "loss": result.config.loss,
                    "row": evaluation.name,
                    "pols_aligned": LOSSES.get(result.config.loss).pols_aligned,
                    "learning_rate": result.learning_rate,
                    "validation_accuracy": result.validation_accuracy,
                    "test_accuracy": result.test_accuracy,
                    **{f"{block}_{key}": value for block, values in blocks.items() for key, value in values.items()},
                }
            )
        return rows

    def summary(self) -> dict[str, Any]:
        assert self.evaluation is not None
        return {
            "kind": ResultsKind.train.value,
            "schema_version": TRAIN_SCHEMA_VERSION,
            "command": self.command,
            "environment": self.environment,
            # What a bit-identical rerun needs the same of; elsewhere the numbers agree to float rounding.
            "reproduces_with": list(REPRODUCES_WITH),
            "training": [r.settings() for r in self.results],
            "evaluation": self.evaluation.document(),
        }

    def write(self) -> list[Path]:
        """table.txt (with the command), table.csv and summary.json, all or none; nothing for one loss."""
        table, paths = self.table(), self.job.outputs.tables
        if table is None or not paths:
            return []
        return write_outputs(
            [
                Output(paths[0], "txt", f"$ {self.command}\n\n{render_text(self.table(wide=True), width=200)}"),
                Output(paths[1], "csv", pd.DataFrame(self.summary_rows())),
                Output(paths[2], "json", self.summary()),
            ],
            overwrite=self.job.outputs.force,
        )


def run_training(job: TrainJob, *, command: str, progress: Progress) -> TrainRun:
    """Train every loss of ``job`` (learning-rate search included), writing each ``.npz`` as it finishes."""
    data = load_dataset(job.dataset, job.data_dir)
    device = resolve_device(job.device)
    # One CPU thread by default: the order of float sums follows the thread count, so runs repeat bit for bit.
    threads = job.threads if job.threads is not None or device.type != "cpu" else 1
    with cpu_threads(threads):
        return _train_every_loss(job, data, device, command, progress)


def _train_every_loss(
    job: TrainJob, data: DataSplits, device: torch.device, command: str, progress: Progress
) -> TrainRun:
    job.outputs.folder.mkdir(parents=True, exist_ok=True)
    first = job.configs[0]
    progress.begin(
        f"[bold]slcbench train[/] {job.dataset.value}: {len(data.train)} train / {len(data.validation)} validation"
        f" / {len(data.test)} test, {data.num_classes} classes · {first.steps} steps × batch {first.batch_size} · "
        f"learning rates {', '.join(f'{r:g}' for r in first.learning_rates)} · {device}",
        sum(config.total_steps for config in job.configs),
    )
    results = []
    for config in job.configs:
        progress.started(config.loss)
        result = train_with_lr_search(data, config, device, on_step=progress.advance)
        path = job.outputs.npz[config.loss]
        write_outputs([Output(path, "npz", result.arrays())], overwrite=job.outputs.force)
        progress.note(
            f"{config.loss}: learning rate {result.learning_rate:g}, validation accuracy "
            f"{result.validation_accuracy:.3f}, test accuracy {result.test_accuracy:.3f} → {path}"
        )
        results.append(result)
    evaluation = None
    if len(results) > 1:
        evaluations, baseline = evaluate_trained(results)
        evaluation = EvaluateRun(tuple(evaluations), tuple(baseline))
    return TrainRun(job, tuple(results), collect_environment(device), command, evaluation)
