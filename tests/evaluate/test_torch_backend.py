"""The torch backend (``--device cuda``) run on the CPU: the same numbers as the NumPy backend, exactly
where they are counts and to rounding where torch's exp, log and sums enter."""

import numpy as np
import pandas.testing
import pytest

from slcbench.evaluate.backend import NumpyBackend
from slcbench.evaluate.evaluation import evaluate_logits
from slcbench.evaluate.metrics import CLASS_METRICS, ClassMetric, Column, class_metrics

torch = pytest.importorskip("torch")
from slcbench.evaluate.torch_backend import TorchBackend  # noqa: E402

# Blocks of 3 to 7 classes and chunks of a few rows: every loop runs several times.
SMALL = TorchBackend(torch.device("cpu"), block_elements=1500, chunk_elements=120)


def make(n, k, dtype, seed=0, ties=False):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k - 1 if k > 2 else k, size=n)  # the last class has no positive (k > 2)
    logits = rng.normal(size=(n, k)) * 3
    logits[np.arange(n), labels] += 2
    if ties:
        logits = logits.round()
        logits[1::5] = logits[::5][: len(logits[1::5]), ::-1]  # rows holding the same values in another order
    return logits.astype(dtype), labels


@pytest.mark.parametrize(
    ("n", "k", "dtype", "ties"),
    [
        (300, 25, np.float32, False),
        (300, 25, np.float32, True),
        (200, 9, np.float64, True),
        (250, 12, np.float16, False),
        (400, 2, np.float64, False),
        (120, 2, np.float32, True),
    ],
)
def test_torch_gives_numpys_numbers(n, k, dtype, ties):
    logits, labels = make(n, k, dtype, ties=ties)
    expected = evaluate_logits(logits, labels, threads=1)
    result = evaluate_logits(logits, labels, backend=SMALL, threads=1)
    # Ranks and counts are exact: the single logits, PoLS and the exactly ranked two-class log-odds.
    assert result.blocks()["slc"] == expected.blocks()["slc"]
    assert result.blocks()["pols"] == expected.blocks()["pols"]
    # Per class: T* of the all-logits ranking is a log-odds, equal to rounding; everything else exactly.
    pandas.testing.assert_frame_equal(result.per_class, expected.per_class, check_exact=False, rtol=1e-12, atol=1e-12)
    for key in ("all_logits", "self_normalization"):
        for name, value in expected.blocks()[key].items():
            assert result.blocks()[key][name] == pytest.approx(value, rel=1e-12, abs=1e-12), (key, name)
    if k == 2:
        assert result.blocks()["all_logits"] == expected.blocks()["all_logits"]


def test_undecided_pairs_are_counted_alike():
    logits, labels = make(300, 25, np.float32, ties=True)
    expected = class_metrics(logits, labels, ranking="all_logits")
    result = class_metrics(logits, labels, ranking="all_logits", backend=SMALL)
    assert expected.undecided_pairs.sum() > 0  # the rows holding the same values tie exactly
    np.testing.assert_array_equal(result.undecided_pairs, expected.undecided_pairs)


def test_a_metric_that_reads_all_sorted_scores_gets_them_from_the_device():
    # The median score of each class column, as a registered metric that needs every score.
    CLASS_METRICS.register(
        "median",
        ClassMetric(lambda settings: (Column("median", None),), lambda r: (float(np.median(r.sorted_scores)),)),
    )
    try:
        logits, labels = make(200, 9, np.float32)
        for ranking in ("slc", "all_logits"):
            expected = class_metrics(logits, labels, ranking=ranking, backend=NumpyBackend())
            result = class_metrics(logits, labels, ranking=ranking, backend=SMALL)
            np.testing.assert_allclose(result.values["median"], expected.values["median"], rtol=1e-12)
        two = make(100, 2, np.float64)
        expected = class_metrics(*two, ranking="all_logits")
        np.testing.assert_array_equal(
            class_metrics(*two, ranking="all_logits", backend=SMALL).values["median"], expected.values["median"]
        )
        np.testing.assert_array_equal(expected.values["median"], np.median(two[0][:, [0, 1]] - two[0][:, [1, 0]], 0))
    finally:
        CLASS_METRICS.unregister("median")


def test_the_backend_on_cuda_is_refused_without_a_gpu():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    from slcbench.errors import SlcbenchError

    with pytest.raises(SlcbenchError, match="^--device cuda was requested but no CUDA device is available$"):
        TorchBackend.on_cuda()
