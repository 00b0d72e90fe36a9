"""Scoring a model's saved logits for Single Logit Classification: the contract other code uses.

``evaluate_logits`` takes arrays (the training code calls it on a test set), ``evaluate_file`` a
file; both return an ``EvaluationResult`` with three blocks of metrics (definitions in
``slcbench.metrics``):

- ``slc``: per class j, examples ranked by the single logit z_j (the paper's Table I);
- ``all_logits``: ranked by softmax p_j computed from all k logits (Table II's baseline);
- ``pols``: Principle-of-Logit-Separation diagnostics over all n*k logits.

Macro averages leave out classes without positive examples; their number is reported.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from slcbench.errors import SlcbenchError
from slcbench.logits import check_logits_and_labels, load_logits, looks_like_probabilities
from slcbench.metrics import (
    AuprcMethod,
    ClassMetrics,
    PolsMetrics,
    Ranking,
    class_metrics,
    macro_mean,
    pols_metrics,
)

DEFAULT_RECALLS = (0.9, 0.99)
PROBABILITIES_WARNING = (
    "the logits look like probabilities (rows in [0, 1] summing to 1); "
    "SLC metrics of softmax outputs measure the all-logits baseline, not single logits"
)


def _recall_text(recall: float) -> str:
    # 15 significant digits: 0.9 stays "0.9", 1 stays "1", and 0.9999999 is not rounded to "1".
    return f"{recall:.15g}"


def precision_key(recall: float) -> str:
    """Result key of Precision@r: ``precision_at_0.9``."""
    return f"precision_at_{_recall_text(recall)}"


def threshold_key(recall: float) -> str:
    """Per-class column of T*, the threshold that Precision@r uses (rule: score >= T*)."""
    return f"threshold_at_{_recall_text(recall)}"


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
    def classes_evaluated(self) -> int:
        return int(self.slc.evaluated.sum())

    @property
    def classes_skipped(self) -> int:
        """Classes without positive examples, left out of every macro average."""
        return self.n_classes - self.classes_evaluated

    @property
    def recalls(self) -> tuple[float, ...]:
        return self.slc.recalls

    def ranking_summary(self, ranking: Ranking) -> dict[str, float]:
        """Macro averages over evaluated classes: ``{"auprc", "precision_at_<r>" ...}``."""
        metrics = self.slc if ranking is Ranking.slc else self.all_logits
        summary = {"auprc": macro_mean(metrics.auprc)}
        for row, recall in enumerate(metrics.recalls):
            summary[precision_key(recall)] = macro_mean(metrics.precision_at_recall[row])
        return summary

    def to_dict(self) -> dict:
        """The per-file JSON object of ``slcbench evaluate --json``."""
        return {
            "file": self.name,
            "n_examples": self.n_examples,
            "n_classes": self.n_classes,
            "classes_evaluated": self.classes_evaluated,
            "classes_skipped": self.classes_skipped,
            "slc": self.ranking_summary(Ranking.slc),
            "all_logits": self.ranking_summary(Ranking.all_logits),
            "pols": {"pair_auroc": self.pols.pair_auroc, "pooled_auprc": self.pols.pooled_auprc, "margin": self.pols.margin},
        }

    @property
    def per_class(self) -> pd.DataFrame:
        """One row per (ranking, class): class, positives (P), auprc, precision_at_<r>, threshold_at_<r>.

        Classes without positives have NaN metrics. ``threshold_at_<r>`` is T* in the ranking's units
        (logits for ``slc``, log-odds z_j - logsumexp_{i != j} z_i for ``all_logits``).
        """
        frames = []
        for ranking, metrics in ((Ranking.slc, self.slc), (Ranking.all_logits, self.all_logits)):
            columns = {
                "ranking": ranking.value,
                "class": np.arange(self.n_classes),
                "positives": metrics.positives,
                "auprc": metrics.auprc,
            }
            for row, recall in enumerate(metrics.recalls):
                columns[precision_key(recall)] = metrics.precision_at_recall[row]
                columns[threshold_key(recall)] = metrics.threshold_at_recall[row]
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
    texts = [_recall_text(r) for r in unique]
    if len(set(texts)) < len(texts):
        raise SlcbenchError("recall levels must differ within 15 significant digits, got " + ", ".join(map(repr, unique)))
    return unique


def evaluate_logits(
    logits: np.ndarray,
    labels: np.ndarray,
    *,
    name: str = "logits",
    recalls: Sequence[float] = DEFAULT_RECALLS,
    auprc: AuprcMethod = AuprcMethod.average_precision,
    interpolated: bool = False,
    threads: int | None = None,
) -> EvaluationResult:
    """All SLC metrics of ``logits`` (n x k floats) against ``labels`` (n ints in [0, k)).

    ``auprc`` chooses average precision (default, = scikit-learn) or the trapezoidal area;
    ``interpolated`` switches Precision@r from first reach (default) to the interpolated form.
    Raises SlcbenchError for invalid arrays (see ``check_logits_and_labels``) or recall levels.
    """
    recalls = check_recalls(recalls)
    logits, labels = check_logits_and_labels(logits, labels, name=name)
    auprc = AuprcMethod(auprc)
    slc, all_logits = (
        class_metrics(
            logits, labels, ranking=ranking, recalls=recalls, auprc_method=auprc, interpolated=interpolated, threads=threads
        )
        for ranking in (Ranking.slc, Ranking.all_logits)
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
    recalls: Sequence[float] = DEFAULT_RECALLS,
    auprc: AuprcMethod = AuprcMethod.average_precision,
    interpolated: bool = False,
    threads: int | None = None,
) -> EvaluationResult:
    """``evaluate_logits`` on a file read by ``slcbench.logits.load_logits``; the result is named by the path."""
    logits, labels = load_logits(path, logits_key=logits_key, labels_key=labels_key)
    return evaluate_logits(
        logits, labels, name=str(path), recalls=recalls, auprc=auprc, interpolated=interpolated, threads=threads
    )


def results_payload(results: Sequence[EvaluationResult], *, baseline_names: Sequence[str] = ()) -> dict:
    """The document ``slcbench evaluate --json`` writes: the metric definitions used, then one object per file."""
    first = results[0]
    return {
        "metric_definitions": {
            "auprc": first.slc.auprc_method.value,
            "precision_at_recall": "interpolated" if first.slc.interpolated else "first-reach",
            "macro_average": "over classes with at least one positive example",
        },
        "baseline": list(baseline_names),
        "results": [result.to_dict() for result in results],
    }


def per_class_frame(results: Sequence[EvaluationResult]) -> pd.DataFrame:
    """Every result's ``per_class`` rows under a leading ``file`` column (``slcbench evaluate --csv``)."""
    return pd.concat([result.per_class.assign(file=result.name) for result in results], ignore_index=True)[
        ["file", *results[0].per_class.columns]
    ]
