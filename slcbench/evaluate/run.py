"""One ``slcbench evaluate`` as an object: the files scored by ``evaluate_files``, written by ``EvaluateRun.write``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Group

from slcbench.errors import SlcbenchError
from slcbench.evaluate.evaluation import EvaluateConfig, EvaluationResult, evaluate_file
from slcbench.evaluate.report import EVALUATE_MORE, evaluation_table, paper_rows, table_ii
from slcbench.formats import Output
from slcbench.io import write_outputs


@dataclass(frozen=True)
class EvaluateRun:
    """The results of one ``slcbench evaluate``, baseline rows named in ``baseline_names``."""

    results: tuple[EvaluationResult, ...]
    baseline_names: tuple[str, ...] = ()
    config: EvaluateConfig | None = field(default=None, compare=False)

    def document(self) -> dict[str, Any]:
        """The ``--json`` document: the metric definitions used, then one object per file."""
        settings = self.results[0].settings
        return {
            "metric_definitions": {
                "auprc": settings.auprc_method.value,
                "precision_at_recall": "interpolated" if settings.interpolated else "first-reach",
                "macro_average": "over classes with at least one positive example",
            },
            "baseline": list(self.baseline_names),
            "results": [result.to_dict() for result in self.results],
            **({"paper_rows": rows.to_dict()} if (rows := paper_rows(self.results, self.baseline_names)) else {}),
        }

    def per_class_frame(self) -> pd.DataFrame:
        """Every result's ``per_class`` rows under a leading ``file`` column (the ``--csv`` file)."""
        columns = ["file", *self.results[0].per_class.columns]
        return pd.concat([r.per_class.assign(file=r.name) for r in self.results], ignore_index=True)[columns]

    def table(self, *, wide: bool = False, more: str = EVALUATE_MORE) -> Group:
        """The metrics table and, with baseline and other files, the paper's Table II below it (``wide``:
        every column, however wide; ``more``: where the columns left out are, said below the table)."""
        tables = [evaluation_table(self.results, baseline_names=self.baseline_names, wide=wide, more=more)]
        second = table_ii(self.results, baseline_names=self.baseline_names, wide=wide)
        return Group(*tables, *([second] if second is not None else []))

    def write(self) -> list[Path]:
        """The ``--json`` and ``--csv`` files that were asked for, all or none."""
        config = self.config
        if config is None:
            return []
        outputs = [Output(config.json_path, "json", self.document())] if config.json_path else []
        if config.csv_path:
            outputs.append(Output(config.csv_path, "csv", self.per_class_frame()))
        return write_outputs(outputs, overwrite=config.force)


def evaluate_files(config: EvaluateConfig, *, warn: Callable[[str], None] = lambda line: None) -> EvaluateRun:
    """Score every file of ``config`` (baseline first); each warning line goes to ``warn``, prefixed with its file."""
    results = []
    backend = config.backend()
    for path in config.inputs:
        result = evaluate_file(
            path,
            logits_key=config.logits_key,
            labels_key=config.labels_key,
            settings=config.settings,
            threads=config.threads,
            blocks=config.blocks,
            backend=backend,
        )
        if config.strict and result.classes_skipped:
            raise SlcbenchError(
                f"{path}: {result.classes_skipped} of {result.n_classes} classes have no positive example (--strict)"
            )
        for warning in result.warnings:
            warn(f"{path}: {warning}")
        results.append(result)
    return EvaluateRun(tuple(results), tuple(str(p) for p in config.baseline), config)
