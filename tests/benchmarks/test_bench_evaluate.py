"""pytest-benchmark benchmarks of ``slcbench evaluate`` on 50,000 x 1,000 float32 logits.

Run: ``python -m pytest tests/benchmarks/test_bench_evaluate.py --benchmark-only``. Benchmarks
report times; they assert only correctness (agreement with scikit-learn) and the memory bound.

- the ``slc`` block (per-class AP and first-reach Precision@0.9/0.99 of the raw logits);
- the three blocks of the paper's tables (``evaluate_logits``: slc, all_logits, pols, validation
  included), and the self_normalization block alone;
- file loading, separately: compressed ``.npz`` (inflated into memory) and uncompressed (mapped);
- a per-class scikit-learn loop computing the slc numbers, on the first ``SKLEARN_CLASSES``
  classes only (the full loop takes tens of seconds); multiply its time by
  ``extra_info["scale_to_all_classes"]`` to compare.
"""

import tracemalloc

import numpy as np
import pytest
from sklearn.metrics import precision_recall_curve

from slcbench.evaluate.evaluation import evaluate_logits
from slcbench.evaluate.logits import load_logits
from slcbench.evaluate.metrics import Ranking, class_metrics

pytestmark = pytest.mark.slow

N, K = 50_000, 1_000
SKLEARN_CLASSES = 50
RECALLS = (0.9, 0.99)


@pytest.fixture(scope="module")
def data():
    """Standard normal logits with +3 on the true class (the setup of the metrics spec, section 8)."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, K, size=N)
    logits = rng.standard_normal((N, K), dtype=np.float32)
    logits[np.arange(N), labels] += 3
    return logits, labels


def sklearn_slc_loop(logits, labels, classes):
    """AP and first-reach Precision@r per class from one scikit-learn PR curve each (the fastest fair loop)."""
    out = []
    for j in classes:
        precision, recall, thresholds = precision_recall_curve(labels == j, logits[:, j])
        ap = -np.sum(np.diff(recall) * precision[:-1])  # average_precision_score's formula
        n_pos = int((labels == j).sum())
        tp = np.rint(recall[:-1] * n_pos)
        at_recall = [
            precision[np.flatnonzero(tp >= np.ceil(round(r * n_pos, 9)))[-1]] for r in RECALLS
        ]  # highest threshold
        out.append((ap, *at_recall))
    return np.array(out)


def test_bench_slc_block(benchmark, data):
    logits, labels = data
    result = benchmark.pedantic(
        class_metrics,
        args=(logits, labels),
        kwargs=dict(ranking=Ranking.slc, recalls=RECALLS),
        rounds=3,
        iterations=1,
        warmup_rounds=1,
    )
    assert result.evaluated.all()


def test_bench_all_three_blocks(benchmark, data):
    logits, labels = data
    result = benchmark.pedantic(
        evaluate_logits,
        args=(logits, labels),
        kwargs=dict(blocks=["slc", "all_logits", "pols"]),
        rounds=3,
        iterations=1,
        warmup_rounds=1,
    )
    assert 0.5 < result.pols.pair_auroc < 1


def test_bench_self_normalization_block(benchmark, data):
    logits, labels = data
    result = benchmark.pedantic(
        evaluate_logits,
        args=(logits, labels),
        kwargs=dict(blocks=["self_normalization"]),
        rounds=3,
        iterations=1,
        warmup_rounds=1,
    )
    assert result.self_normalization.values["mean_abs_gap"] > 1


def test_bench_sklearn_loop_on_a_subset_of_classes(benchmark, data):
    logits, labels = data
    classes = range(SKLEARN_CLASSES)
    reference = benchmark.pedantic(sklearn_slc_loop, args=(logits, labels, classes), rounds=1, iterations=1)
    benchmark.extra_info["classes_timed"] = SKLEARN_CLASSES
    benchmark.extra_info["scale_to_all_classes"] = K / SKLEARN_CLASSES
    ours = class_metrics(logits, labels, ranking=Ranking.slc, recalls=RECALLS)
    np.testing.assert_allclose(ours.auprc[:SKLEARN_CLASSES], reference[:, 0], rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours.precision_at_recall[:, :SKLEARN_CLASSES].T, reference[:, 1:], rtol=0, atol=1e-12)


@pytest.mark.parametrize("writer", [np.savez_compressed, np.savez], ids=["compressed", "uncompressed"])
def test_bench_file_loading(benchmark, data, tmp_path_factory, writer):
    logits, labels = data
    path = tmp_path_factory.mktemp("bench") / "logits.npz"
    writer(path, logits=logits, labels=labels)

    def load_and_read():
        loaded, loaded_labels = load_logits(path)
        return np.asarray(loaded).sum(
            dtype=np.float64
        ), loaded_labels  # touch every value: mapped pages are read lazily

    total, loaded_labels = benchmark.pedantic(load_and_read, rounds=3, iterations=1)
    benchmark.extra_info["file_bytes"] = path.stat().st_size
    assert total == logits.sum(dtype=np.float64)
    np.testing.assert_array_equal(loaded_labels, labels)


def test_peak_memory_of_all_blocks_stays_under_one_logits_array(data):
    """Extra memory (tracemalloc, numpy buffers included) over the input: under 1x, so the total stays under 2x."""
    logits, labels = data
    tracemalloc.start()
    try:
        evaluate_logits(logits, labels)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    mib = 2**20
    share = peak / logits.nbytes
    print(f"peak extra memory {peak / mib:.0f} MiB = {share:.2f} x the {logits.nbytes / mib:.0f} MiB logits")
    assert peak < logits.nbytes
