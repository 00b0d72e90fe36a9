"""Scoring a model's saved logits for Single Logit Classification: the contract other code uses.

``evaluate_logits`` takes arrays (the training code calls it on a test set), ``evaluate_file`` a
file; both give ``EvaluationResult``s holding the blocks of metrics asked for (``slcbench.evaluate.blocks``;
definitions in ``slcbench.evaluate.metrics``):

- ``slc``: per class j, examples ranked by the single logit z_j (the paper's Table I);
- ``all_logits``: ranked by softmax p_j computed from all k logits (Table II's baseline);
- ``pols``: Principle-of-Logit-Separation diagnostics over all n*k logits;
- ``self_normalization``: whether the logits read as log-probabilities (log Z over the examples).

Macro averages leave out classes without positive examples; their number is reported. Each
result records the wall time of loading, checking and each block.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from slcbench.errors import SlcbenchError
from slcbench.evaluate.backend import Backend, Ranking
from slcbench.evaluate.blocks import BLOCKS, BlockValues, Scoring, block_keys
from slcbench.evaluate.logits import check_logits_and_labels, input_files, load_logits, looks_like_probabilities
from slcbench.evaluate.metrics import (
    NUMPY,
    UNDECIDED_PAIRS,
    AuprcMethod,
    ClassMetrics,
    MetricSettings,
    PolsMetrics,
    SetMetrics,
    recall_text,
)
from slcbench.io import check_input, check_outputs

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


def evaluation_warnings(logits: np.ndarray, classes_skipped: int, undecided_pairs: int = 0) -> tuple[str, ...]:
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
    if undecided_pairs:
        warnings.append(
            f"all logits: {undecided_pairs} (positive, negative) pairs have log-odds within float64's error bound "
            "of each other; they are ranked by the computed value (see undecided_pairs in the JSON and CSV)"
        )
    return tuple(warnings)


@dataclass(frozen=True)
class EvaluationResult:
    """SLC metrics of one set of logits, by block; raw values, higher is better (the table shows 1 - value).

    ``block_values`` holds the blocks computed, by key in registration order; ``seconds`` the wall
    time of each step (``load``, ``check``, then each block).
    """

    name: str
    n_examples: int
    n_classes: int
    positives: np.ndarray  # (k,) examples per class
    settings: MetricSettings
    block_values: dict[str, BlockValues]
    seconds: dict[str, float]
    warnings: tuple[str, ...] = ()

    def block(self, key: str) -> BlockValues:
        """The values of the block ``key``; SlcbenchError when it was not computed."""
        if key not in self.block_values:
            raise SlcbenchError(f"{self.name}: the {key} block was not computed (see --blocks)")
        return self.block_values[key]

    def ranking(self, ranking: Ranking) -> ClassMetrics:
        values = self.block(Ranking(ranking).value)
        assert isinstance(values, ClassMetrics)
        return values

    @property
    def slc(self) -> ClassMetrics:
        return self.ranking(Ranking.slc)

    @property
    def all_logits(self) -> ClassMetrics:
        return self.ranking(Ranking.all_logits)

    @property
    def pols(self) -> PolsMetrics:
        values = self.block("pols")
        assert isinstance(values, PolsMetrics)
        return values

    @property
    def self_normalization(self) -> SetMetrics:
        values = self.block("self_normalization")
        assert isinstance(values, SetMetrics)
        return values

    @property
    def classes_evaluated(self) -> int:
        return int((self.positives > 0).sum())

    @property
    def classes_skipped(self) -> int:
        """Classes without positive examples, left out of every macro average."""
        return self.n_classes - self.classes_evaluated

    @property
    def recalls(self) -> tuple[float, ...]:
        return self.settings.recalls

    def ranking_summary(self, ranking: Ranking) -> dict[str, float]:
        """Macro averages over evaluated classes: ``{"auprc", "precision_at_<r>" ...}``."""
        return self.ranking(ranking).summary()

    def blocks(self) -> dict[str, dict[str, float]]:
        """Every computed block's summary by key, in registration order (the JSON's and the table's values)."""
        return {key: values.summary() for key, values in self.block_values.items()}

    def to_dict(self, *, wall_seconds: bool = True) -> dict[str, Any]:
        """The per-file JSON object of ``slcbench evaluate --json`` (without the timings if not ``wall_seconds``)."""
        return {
            "file": self.name,
            "n_examples": self.n_examples,
            "n_classes": self.n_classes,
            "classes_evaluated": self.classes_evaluated,
            "classes_skipped": self.classes_skipped,
            **self.blocks(),
            **({"wall_seconds": dict(self.seconds)} if wall_seconds else {}),
        }

    @property
    def per_class(self) -> pd.DataFrame:
        """One row per (ranking, class): class, positives (P), then every per-class column.

        Classes without positives have NaN metrics. ``threshold_at_<r>`` is T* in the ranking's units
        (logits for ``slc``, log-odds z_j - logsumexp_{i != j} z_i for ``all_logits``); ``undecided_pairs``
        counts the class's (positive, negative) pairs within float64's error bound (0 for ``slc``).
        """
        frames = [
            pd.DataFrame(
                {"ranking": key, "class": np.arange(self.n_classes), "positives": self.positives, **values.per_class()}
            )
            for key, values in self.block_values.items()
            if isinstance(values, ClassMetrics)
        ]
        if not frames:
            return pd.DataFrame(columns=["ranking", "class", "positives"])
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
    blocks: Sequence[str] | None = None,
    backend: Backend = NUMPY,
) -> EvaluationResult:
    """SLC metrics of ``logits`` (n x k floats) against ``labels`` (n ints in [0, k)).

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
    blocks : sequence of str or None
        The blocks to compute, by key or ``--blocks`` name (default: all, see ``BLOCKS``).
    backend : Backend
        Where the heavy work runs: NumPy on CPU threads, or torch (``slcbench.evaluate.torch_backend``).

    Returns
    -------
    EvaluationResult
        The blocks' values, with the wall time of the check and of each block in ``seconds``.
    """
    started = time.perf_counter()
    logits, labels = check_logits_and_labels(logits, labels, name=name, threads=threads)
    seconds = {"check": time.perf_counter() - started}
    scoring = Scoring(logits, labels, settings, threads, backend)
    block_values: dict[str, BlockValues] = {}
    for key in block_keys(blocks):
        started = time.perf_counter()
        block_values[key] = BLOCKS[key].compute(scoring)
        seconds[key] = time.perf_counter() - started
    positives = np.bincount(labels, minlength=logits.shape[1]).astype(np.int64)
    result = EvaluationResult(name, logits.shape[0], logits.shape[1], positives, settings, block_values, seconds)
    all_logits = block_values.get(Ranking.all_logits.value)
    undecided = int(all_logits.summary()[UNDECIDED_PAIRS]) if all_logits is not None else 0
    warnings = evaluation_warnings(logits, classes_skipped=result.classes_skipped, undecided_pairs=undecided)
    return replace(result, warnings=warnings)


def evaluate_file(
    path: Path | str,
    *,
    logits_key: str = "logits",
    labels_key: str = "labels",
    settings: MetricSettings = MetricSettings(),
    threads: int | None = None,
    blocks: Sequence[str] | None = None,
    backend: Backend = NUMPY,
) -> EvaluationResult:
    """``evaluate_logits`` on a file read by ``load_logits`` (an ``.npz``, a folder of ``.npy`` files or a
    logits ``.npy``); the result is named by the path, and ``seconds["load"]`` is the reading time."""
    started = time.perf_counter()
    logits, labels = load_logits(path, logits_key=logits_key, labels_key=labels_key, threads=threads)
    load_seconds = time.perf_counter() - started
    result = evaluate_logits(
        logits, labels, name=str(path), settings=settings, threads=threads, blocks=blocks, backend=backend
    )
    return replace(result, seconds={"load": load_seconds, **result.seconds})


class EvaluateDevice(StrEnum):
    """Where ``slcbench evaluate`` computes: NumPy on the CPU, or torch on a CUDA GPU."""

    cpu = "cpu"
    cuda = "cuda"


def cuda_backend() -> Backend:
    """The torch backend on the GPU; SlcbenchError when torch or a CUDA device is missing."""
    try:
        from slcbench.evaluate.torch_backend import TorchBackend  # torch only when --device cuda is asked for
    except ImportError:
        raise SlcbenchError("--device cuda needs torch, which is not installed (pip install torch)") from None
    return TorchBackend.on_cuda()


@dataclass(frozen=True)
class EvaluateConfig:
    """What ``slcbench evaluate`` is asked to do, checked before any file is scored.

    ``baseline`` files (e.g. plain cross-entropy) come first in the table, with a mean relative
    improvement row; ``json_path``/``csv_path`` are the outputs asked for (None: not written);
    ``blocks`` names the blocks to compute (by ``--blocks`` name or key; None: all), normalised to
    their keys; ``threads`` caps the worker threads; ``device`` cuda is checked for torch and a GPU here.
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
    blocks: tuple[str, ...] | None = None
    threads: int | None = None
    device: EvaluateDevice = EvaluateDevice.cpu

    def __post_init__(self) -> None:
        if len({p.resolve() for p in self.inputs}) < len(self.inputs):
            raise SlcbenchError("the same logits file is given twice")
        if self.threads is not None and self.threads < 1:
            raise SlcbenchError(f"--threads must be at least 1, got {self.threads}")
        object.__setattr__(self, "blocks", block_keys(self.blocks))
        object.__setattr__(self, "device", EvaluateDevice(self.device))
        if self.device is EvaluateDevice.cuda:
            cuda_backend()
        for path in self.inputs:
            check_input(path, folder_ok=True)
        read = [f for p in self.inputs for f in input_files(p, logits_key=self.logits_key, labels_key=self.labels_key)]
        check_outputs({"--json": self.json_path, "--csv": self.csv_path}, read, overwrite=self.force)

    @property
    def inputs(self) -> tuple[Path, ...]:
        return (*self.baseline, *self.files)

    def backend(self) -> Backend:
        """Where the heavy work runs, as ``device`` says."""
        return cuda_backend() if self.device is EvaluateDevice.cuda else NUMPY
