"""Scoring a model's saved logits for Single Logit Classification: the contract other code uses.

``evaluate_logits`` takes arrays (the training code calls it on a test set), ``evaluate_file`` a
file; both give ``EvaluationResult``s with three blocks of metrics (definitions in
``slcbench.evaluate.metrics``):

- ``slc``: per class j, examples ranked by the single logit z_j (the paper's Table I);
- ``all_logits``: ranked by softmax p_j computed from all k logits (Table II's baseline);
- ``pols``: Principle-of-Logit-Separation diagnostics over all n*k logits.

Macro averages leave out classes without positive examples; their number is reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from slcbench.errors import SlcbenchError
from slcbench.evaluate.logits import check_logits_and_labels, load_logits, looks_like_probabilities
from slcbench.evaluate.metrics import (
    AuprcMethod,
    ClassMetrics,
    MetricSettings,
    PolsMetrics,
    Ranking,
    class_metrics,
    pols_metrics,
    recall_text,
)
from slcbench.io import check_outputs

DEFAULT_RECALLS = (0.9, 0.99)
PROBABILITIES_WARNING = (
    "the logits look like probabilities (rows in [0, 1] summing to 1); "
    "SLC metrics of softmax outputs measure the all-logits baseline, not single logits"
)


def low_precision_ties(logits: np.ndarray, columns: int = 64) -> float | None:
    """For float16 logits, the fraction of tied neighbours in sorted columns (a sample of ``columns``);
    None for wider floats. Half precision merges scores that the model told apart, and upcasting
    cannot undo it."""
    if logits.dtype.itemsize > 2:
        return None
    picked = np.linspace(0, logits.shape[1] - 1, min(columns, logits.shape[1])).astype(np.int64)
    block = np.sort(np.asarray(logits[:, picked], dtype=np.float32), axis=0)
    return float(np.mean(block[1:] == block[:-1])) if block.shape[0] > 1 else 0.0


def evaluation_warnings(logits: np.ndarray, classes_skipped: int) -> tuple[str, ...]:
    """The lines ``slcbench evaluate`` prints as warnings for one file."""
    warnings = []
    if looks_like_probabilities(logits):
        warnings.append(PROBABILITIES_WARNING)
    if classes_skipped:
        warnings.append(
            f"{classes_skipped} of {logits.shape[1]} classes have no positive example; they are left out of the means"
        )
    ties = low_precision_ties(logits)
    if ties is not None and ties > 0.01:
        warnings.append(
            f"{logits.dtype} logits: {100 * ties:.1f}% of sorted neighbours tie; metrics see those scores "
            "as equal (save logits as float32 to keep them apart)"
        )
    return tuple(warnings)


RANKINGS = (Ranking.slc, Ranking.all_logits)


@dataclass(frozen=True)
class EvaluationResult:
    """SLC metrics of one set of logits; raw values, higher is better (the table shows 1 - value)."""

    name: str
    n_examples: int
    n_classes: int
    slc: ClassMetrics
    all_logits: ClassMetrics
    pols: PolsMetrics
    warnings: tuple[str, ...] = ()

    @property
    def settings(self) -> MetricSettings:
        return self.slc.settings

    @property
    def classes_evaluated(self) -> int:
        return int(self.slc.evaluated.sum())

    @property
    def classes_skipped(self) -> int:
        """Classes without positive examples, left out of every macro average."""
        return self.n_classes - self.classes_evaluated

    @property
    def recalls(self) -> tuple[float, ...]:
        return self.slc.recalls

    def ranking(self, ranking: Ranking) -> ClassMetrics:
        return self.slc if ranking is Ranking.slc else self.all_logits

    def ranking_summary(self, ranking: Ranking) -> dict[str, float]:
        """Macro averages over evaluated classes: ``{"auprc", "precision_at_<r>" ...}``."""
        return self.ranking(ranking).summary()

    def blocks(self) -> dict[str, dict[str, float]]:
        """Every block's summary by block name: ``slc``, ``all_logits`` (macro averages) and ``pols``."""
        return {**{r.value: self.ranking_summary(r) for r in RANKINGS}, "pols": dict(self.pols.values)}

    def to_dict(self) -> dict[str, Any]:
        """The per-file JSON object of ``slcbench evaluate --json``."""
        return {
            "file": self.name,
            "n_examples": self.n_examples,
            "n_classes": self.n_classes,
            "classes_evaluated": self.classes_evaluated,
            "classes_skipped": self.classes_skipped,
            **self.blocks(),
        }

    @property
    def per_class(self) -> pd.DataFrame:
        """One row per (ranking, class): class, positives (P), then every per-class column.

        Classes without positives have NaN metrics. ``threshold_at_<r>`` is T* in the ranking's units
        (logits for ``slc``, log-odds z_j - logsumexp_{i != j} z_i for ``all_logits``).
        """
        frames = []
        for ranking in RANKINGS:
            metrics = self.ranking(ranking)
            columns: dict[str, Any] = {
                "ranking": ranking.value,
                "class": np.arange(self.n_classes),
                "positives": metrics.positives,
            }
            columns.update((column.key, metrics.values[column.key]) for column in metrics.columns)
            frames.append(pd.DataFrame(columns))
        return pd.concat(frames, ignore_index=True)


def check_recalls(recalls: Sequence[float]) -> tuple[float, ...]:
    """Recall levels for Precision@r, each in (0, 1], duplicates dropped (order kept)."""
    if not recalls:
        raise SlcbenchError("give at least one recall level for Precision@r")
    for recall in recalls:
        if not 0 < recall <= 1:
            raise SlcbenchError(f"recall levels must lie in (0, 1], got {recall:g}")
    unique = tuple(dict.fromkeys(float(r) for r in recalls))
    texts = [recall_text(r) for r in unique]
    if len(set(texts)) < len(texts):
        raise SlcbenchError(
            "recall levels must differ within 15 significant digits, got " + ", ".join(map(repr, unique))
        )
    return unique


def metric_settings(
    recalls: Sequence[float] = DEFAULT_RECALLS,
    auprc: AuprcMethod | str = AuprcMethod.average_precision,
    interpolated: bool = False,
) -> MetricSettings:
    """Validated metric settings (SlcbenchError for recall levels outside (0, 1] or that print alike)."""
    return MetricSettings(check_recalls(recalls), AuprcMethod(auprc), interpolated)


def evaluate_logits(
    logits: np.ndarray,
    labels: np.ndarray,
    *,
    name: str = "logits",
    settings: MetricSettings = MetricSettings(),
    threads: int | None = None,
) -> EvaluationResult:
    """All SLC metrics of ``logits`` (n x k floats) against ``labels`` (n ints in [0, k)).

    Parameters
    ----------
    logits, labels : array
        Validated by ``check_logits_and_labels`` (SlcbenchError, prefixed with ``name``, if unusable).
    name : str
        What the result is called in tables and files.
    settings : MetricSettings
        Recall levels, the AUPRC estimator (average precision, = scikit-learn, or trapezoid) and
        whether Precision@r is interpolated; build it with ``metric_settings`` to validate it.
    threads : int or None
        Worker threads (default: one per CPU).
    """
    logits, labels = check_logits_and_labels(logits, labels, name=name)
    slc, all_logits = (
        class_metrics(
            logits,
            labels,
            ranking=ranking,
            recalls=settings.recalls,
            auprc_method=settings.auprc_method,
            interpolated=settings.interpolated,
            threads=threads,
        )
        for ranking in RANKINGS
    )
    result = EvaluationResult(
        name=name,
        n_examples=logits.shape[0],
        n_classes=logits.shape[1],
        slc=slc,
        all_logits=all_logits,
        pols=pols_metrics(logits, labels, threads=threads),
    )
    return replace(result, warnings=evaluation_warnings(logits, classes_skipped=result.classes_skipped))


def evaluate_file(
    path: Path | str,
    *,
    logits_key: str = "logits",
    labels_key: str = "labels",
    settings: MetricSettings = MetricSettings(),
    threads: int | None = None,
) -> EvaluationResult:
    """``evaluate_logits`` on a file read by ``load_logits`` (an ``.npz``, a folder of ``.npy`` files or a
    logits ``.npy``); the result is named by the path."""
    logits, labels = load_logits(path, logits_key=logits_key, labels_key=labels_key)
    return evaluate_logits(logits, labels, name=str(path), settings=settings, threads=threads)


@dataclass(frozen=True)
class EvaluateConfig:
    """What ``slcbench evaluate`` is asked to do, checked before any file is scored.

    ``baseline`` files (e.g. plain cross-entropy) come first in the table, with a mean relative
    improvement row; ``json_path``/``csv_path`` are the outputs asked for (None: not written).
    """

    files: tuple[Path, ...]
    baseline: tuple[Path, ...] = ()
    logits_key: str = "logits"
    labels_key: str = "labels"
    settings: MetricSettings = MetricSettings()
    strict: bool = False
    json_path: Path | None = None
    csv_path: Path | None = None
    force: bool = False

    def __post_init__(self) -> None:
        if len({p.resolve() for p in self.inputs}) < len(self.inputs):
            raise SlcbenchError("the same logits file is given twice")
        check_outputs({"--json": self.json_path, "--csv": self.csv_path}, self.inputs, overwrite=self.force)

    @property
    def inputs(self) -> tuple[Path, ...]:
        return (*self.baseline, *self.files)
