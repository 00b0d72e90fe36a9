"""SLC metrics against independent oracles: scikit-learn, brute force over its PR curve, hand values, the paper."""

import functools
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import auc, average_precision_score, precision_recall_curve

from slcbench.evaluate.backend import NumpyBackend
from slcbench.evaluate.metrics import AuprcMethod, Ranking, class_metrics, pols_metrics, positives_needed

slc_class_metrics = functools.partial(class_metrics, ranking=Ranking.slc)
all_logits_class_metrics = functools.partial(class_metrics, ranking=Ranking.all_logits)

RECALLS = (0.5, 0.9, 0.99, 1.0)


@st.composite
def tied_logits(draw, max_n=40, max_k=6):
    """Integer-valued logits from a few levels (many ties); labels skip some classes (no positives)."""
    n = draw(st.integers(1, max_n))
    k = draw(st.integers(2, max_k))
    levels = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    logits = rng.integers(-levels, levels + 1, size=(n, k)).astype(draw(st.sampled_from([np.float32, np.float64])))
    present = rng.choice(k, size=draw(st.integers(1, k)), replace=False)  # the other classes get no example
    labels = rng.choice(present, size=n)
    return logits, labels


def brute_force_precision_at_recall(is_positive, scores, recall, interpolated):
    """(precision, threshold) from scikit-learn's curve: the operating points with TP >= ceil(r P)."""
    precision, recall_curve, thresholds = precision_recall_curve(is_positive, scores)
    n_pos = int(is_positive.sum())
    needed = math.ceil(Fraction(str(recall)) * n_pos)
    true_positives = np.rint(recall_curve[:-1] * n_pos)  # integer counts, not float recalls compared with r
    eligible = np.flatnonzero(true_positives >= needed)
    if interpolated:
        best = precision[eligible].max()
        pick = eligible[precision[eligible] == best]
        chosen = pick[np.argmin(thresholds[pick])]  # equal precision: the highest recall
    else:
        chosen = eligible[np.argmax(thresholds[eligible])]  # the highest threshold reaching r
    return precision[chosen], thresholds[chosen]


@settings(max_examples=80, deadline=None)
@given(tied_logits(), st.booleans())
def test_per_class_metrics_match_scikit_learn_and_brute_force(data, interpolated):
    logits, labels = data
    ap = slc_class_metrics(logits, labels, recalls=RECALLS, interpolated=interpolated)
    trapezoid = slc_class_metrics(logits, labels, recalls=RECALLS, auprc_method=AuprcMethod.trapezoid)
    for j in range(logits.shape[1]):
        is_positive = labels == j
        scores = logits[:, j].astype(np.float64)
        if not is_positive.any():
            assert ap.positives[j] == 0
            assert np.isnan(ap.auprc[j]) and np.isnan(trapezoid.auprc[j])
            assert np.isnan(ap.precision_at_recall[:, j]).all() and np.isnan(ap.threshold_at_recall[:, j]).all()
            continue
        assert ap.positives[j] == is_positive.sum()
        assert ap.auprc[j] == pytest.approx(average_precision_score(is_positive, scores), abs=1e-9)
        precision, recall, _ = precision_recall_curve(is_positive, scores)
        assert trapezoid.auprc[j] == pytest.approx(auc(recall, precision), abs=1e-9)
        for row, r in enumerate(RECALLS):
            expected_precision, expected_threshold = brute_force_precision_at_recall(
                is_positive, scores, r, interpolated
            )
            assert ap.precision_at_recall[row, j] == pytest.approx(expected_precision, abs=1e-12)
            assert ap.threshold_at_recall[row, j] == expected_threshold


@settings(max_examples=50, deadline=None)
@given(tied_logits(), st.integers(0, 2**32 - 1))
def test_invariant_to_row_order_and_to_positive_affine_maps_per_column(data, seed):
    logits, labels = data
    rng = np.random.default_rng(seed)
    reference = slc_class_metrics(logits, labels, recalls=RECALLS)

    perm = rng.permutation(len(labels))
    permuted = slc_class_metrics(logits[perm], labels[perm], recalls=RECALLS)
    np.testing.assert_allclose(permuted.auprc, reference.auprc, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(permuted.precision_at_recall, reference.precision_at_recall)
    np.testing.assert_array_equal(permuted.threshold_at_recall, reference.threshold_at_recall)
    assert pols_metrics(logits[perm], labels[perm]) == pols_metrics(logits, labels)

    # a in powers of two and integer b keep integer-valued logits exact: no ties made or broken.
    a = 2.0 ** rng.integers(-2, 3, size=logits.shape[1])
    b = rng.integers(-8, 9, size=logits.shape[1]).astype(np.float64)
    moved = slc_class_metrics((logits * a + b).astype(logits.dtype), labels, recalls=RECALLS)
    np.testing.assert_allclose(moved.auprc, reference.auprc, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(moved.precision_at_recall, reference.precision_at_recall)
    np.testing.assert_array_equal(moved.threshold_at_recall, reference.threshold_at_recall * a + b)


@settings(max_examples=50, deadline=None)
@given(tied_logits())
def test_all_logits_ranking_matches_scikit_learn_on_float64_softmax(data):
    labels = data[1]
    # Continuous logits: rows that are shifts of each other tie exactly in p_j, but two float
    # computations of p_j may break such ties differently.
    logits = np.random.default_rng(len(labels)).normal(0, 3, size=data[0].shape)
    z = logits.astype(np.float64)
    softmax = np.exp(z - z.max(axis=1, keepdims=True))
    softmax /= softmax.sum(axis=1, keepdims=True)
    result = all_logits_class_metrics(logits, labels, recalls=RECALLS)
    for j in np.unique(labels):
        is_positive = labels == j
        assert result.auprc[j] == pytest.approx(average_precision_score(is_positive, softmax[:, j]), abs=1e-9)
        for row, r in enumerate(RECALLS):
            expected, _ = brute_force_precision_at_recall(is_positive, softmax[:, j], r, interpolated=False)
            assert result.precision_at_recall[row, j] == pytest.approx(expected, abs=1e-12)
        # T* is in log-odds units: log(p / (1 - p)) of the chosen softmax threshold.
        _, threshold = brute_force_precision_at_recall(is_positive, softmax[:, j], RECALLS[0], interpolated=False)
        if threshold < 1 - 1e-9:
            assert result.threshold_at_recall[0, j] == pytest.approx(np.log(threshold / (1 - threshold)), abs=1e-6)


@settings(max_examples=60, deadline=None)
@given(tied_logits())
def test_pols_metrics_match_pairwise_brute_force_and_scikit_learn(data):
    logits, labels = data
    z = logits.astype(np.float64)
    n, k = z.shape
    is_true = np.zeros((n, k), dtype=bool)
    is_true[np.arange(n), labels] = True
    true_logits, false_logits = z[is_true], z[~is_true]
    diff = true_logits[:, None] - false_logits[None, :]
    expected_auroc = ((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size

    result = pols_metrics(logits, labels)
    assert result.pair_auroc == pytest.approx(expected_auroc, abs=1e-12)
    assert result.pooled_auprc == pytest.approx(average_precision_score(is_true.ravel(), z.ravel()), abs=1e-9)
    assert result.margin == true_logits.min() - false_logits.max()


def test_hand_computed_case_from_the_spec():
    labels = np.array([0, 0, 1, 1, 1, 0, 1, 0])
    scores = np.array([0.9, 0.8, 0.8, 0.7, 0.5, 0.5, 0.5, 0.1])
    logits = np.stack([-scores, scores], axis=1)
    ap = slc_class_metrics(logits, labels, recalls=(0.5, 0.75, 1.0))
    # Positives of class 1 at 0.8 (tied with a negative, below one at 0.9), 0.7 and two at 0.5 (tied
    # with a negative): prec = 1/3, 2/4, 4/7, 4/7; AP = (1/3 + 1/2 + 8/7) / 4.
    assert ap.auprc[1] == pytest.approx((1 / 3 + 1 / 2 + 8 / 7) / 4, abs=1e-15)
    assert ap.auprc[1] == pytest.approx(0.494048, abs=1e-6)
    trapezoid = slc_class_metrics(logits, labels, auprc_method=AuprcMethod.trapezoid)
    assert trapezoid.auprc[1] == pytest.approx(0.413690, abs=1e-6)  # below AP here
    # r = 0.75: m = 3 -> T* = 0.5, which takes in the whole tie group (recall 1, precision 4/7).
    np.testing.assert_allclose(ap.precision_at_recall[:, 1], [1 / 2, 4 / 7, 4 / 7])
    np.testing.assert_allclose(ap.threshold_at_recall[:, 1], [0.7, 0.5, 0.5])


def test_constant_perfect_and_reversed_rankings():
    labels = np.array([1, 0, 0, 1, 0, 0, 0, 1, 0, 0])  # P = 3, N = 7
    constant = slc_class_metrics(np.zeros((10, 2)), labels, recalls=(0.9,))
    trapezoid = slc_class_metrics(np.zeros((10, 2)), labels, auprc_method=AuprcMethod.trapezoid)
    assert constant.auprc[1] == pytest.approx(0.3) and constant.precision_at_recall[0, 1] == pytest.approx(0.3)
    assert trapezoid.auprc[1] == pytest.approx((1 + 0.3) / 2)  # the straight line to (0, 1) inflates it

    perfect = np.stack([-labels, labels], axis=1).astype(float)
    result = slc_class_metrics(perfect, labels, auprc_method=AuprcMethod.trapezoid, interpolated=True)
    np.testing.assert_array_equal(result.auprc, [1.0, 1.0])
    np.testing.assert_array_equal(result.precision_at_recall, 1.0)

    reversed_ranking = slc_class_metrics(-perfect + np.arange(10)[:, None] * 1e-3, labels)
    expected = np.mean([i / (7 + i) for i in range(1, 4)])
    assert reversed_ranking.auprc[1] == pytest.approx(expected, abs=1e-15)


def test_positives_needed_is_exact_where_float_products_are_not():
    assert 0.07 * 100 > 7  # why a float ceiling would ask for one positive too many
    np.testing.assert_array_equal(positives_needed(0.07, np.array([100])), [7])
    np.testing.assert_array_equal(positives_needed(0.9, np.array([1, 9, 10, 11, 50, 100])), [1, 9, 9, 10, 45, 90])
    np.testing.assert_array_equal(positives_needed(0.99, np.array([50, 100, 101])), [50, 99, 100])
    with pytest.raises(ValueError):
        positives_needed(0.0, np.array([3]))


def test_float32_recall_pitfall_uses_the_ninth_positive_for_p_at_0_9():
    # 10 positives with descending scores, a negative after the 9th: P@0.9 must stop at the 9th.
    scores = np.array([10, 9, 8, 7, 6, 5, 4, 3, 2, 1.5, 1], dtype=np.float32)
    labels = np.array([1] * 9 + [0, 1])
    result = slc_class_metrics(np.stack([-scores, scores], axis=1), labels, recalls=(0.9,))
    assert result.precision_at_recall[0, 1] == 1.0 and result.threshold_at_recall[0, 1] == 2.0


def test_all_logits_ranking_does_not_saturate_like_float32_softmax():
    # Class 0: the positive (margin 40) outranks the negative (margin 30); float32 softmax gives both 1.0.
    logits = np.array([[40.0, 0.0], [30.0, 0.0], [0.0, 5.0]], dtype=np.float32)
    labels = np.array([0, 1, 1])
    p32 = np.exp(logits - logits.max(1, keepdims=True))
    p32 /= p32.sum(1, keepdims=True)
    assert p32[0, 0] == p32[1, 0] == 1.0
    assert average_precision_score(labels == 0, p32[:, 0]) == 0.5  # the false tie
    assert all_logits_class_metrics(logits, labels).auprc[0] == 1.0


def test_paper_section_iii_counter_example_tiny_cross_entropy_yet_pols_fails():
    alpha = 20.0
    # Labels 1 and 2 of the paper are columns 0 and 1 here.
    logits = np.array([[2 * alpha, alpha], [-2 * alpha, -alpha]])
    labels = np.array([0, 1])
    log_softmax = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
    cross_entropy = -log_softmax[np.arange(2), labels].sum()
    assert cross_entropy == pytest.approx(2 * np.log1p(np.exp(-alpha)))
    assert cross_entropy < 1e-8

    pols = pols_metrics(logits, labels)
    assert pols.margin == -2 * alpha  # min true (-alpha) - max false (alpha)
    assert pols.pair_auroc == 0.75  # -alpha loses to the false logit alpha; the other 3 pairs are ordered
    # Softmax ranks every column perfectly, the single logit z_2 does not (x1's false alpha > x2's true -alpha).
    np.testing.assert_array_equal(all_logits_class_metrics(logits, labels).auprc, [1.0, 1.0])
    assert slc_class_metrics(logits, labels).auprc[1] == 0.5


def test_separated_logits_satisfy_pols_and_score_one_everywhere():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, size=200)
    logits = rng.uniform(-3, -1, size=(200, 5))
    logits[np.arange(200), labels] = rng.uniform(1, 3, size=200)
    pols = pols_metrics(logits, labels)
    assert pols.margin > 0 and pols.pair_auroc == 1.0 and pols.pooled_auprc == 1.0
    slc = slc_class_metrics(logits, labels)
    np.testing.assert_array_equal(slc.auprc, 1.0)
    np.testing.assert_array_equal(slc.precision_at_recall, 1.0)

    # A per-example shift is invisible to softmax (and to cross-entropy) but breaks PoLS.
    shifted = logits + rng.normal(0, 5, size=(200, 1))
    assert pols_metrics(shifted, labels).margin < 0
    assert np.nanmean(slc_class_metrics(shifted, labels).auprc) < 1
    np.testing.assert_allclose(all_logits_class_metrics(shifted, labels).auprc, 1.0)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_many_blocks_and_threads_give_the_same_numbers(dtype):
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(300, 37)).round(1).astype(dtype)
    labels = rng.integers(0, 30, size=300)
    one_block = [f(logits, labels, threads=1) for f in (slc_class_metrics, all_logits_class_metrics)]
    pols_one_block = pols_metrics(logits, labels, threads=1)
    # 4 float64 (8 float32) columns per block, tiles of 1 or 2 rows, 4 rows per PoLS chunk and per row-sum chunk.
    small = NumpyBackend(
        block_bytes=300 * 4 * 8, tile_elements=8, row_chunk_elements=4 * 37, pols_chunk_elements=(4 * 37, 4 * 37)
    )
    many_blocks = [f(logits, labels, threads=2, backend=small) for f in (slc_class_metrics, all_logits_class_metrics)]
    pols_many_blocks = pols_metrics(logits, labels, threads=2, backend=small)
    for single, blocked in zip(one_block, many_blocks, strict=False):
        np.testing.assert_array_equal(single.auprc, blocked.auprc)
        np.testing.assert_array_equal(single.precision_at_recall, blocked.precision_at_recall)
        np.testing.assert_array_equal(single.threshold_at_recall, blocked.threshold_at_recall)
    assert pols_many_blocks == pols_one_block
    assert np.isnan(one_block[0].auprc[30:]).all() and not np.isnan(one_block[0].auprc[:30]).any()


def test_input_logits_are_not_modified():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(50, 3))  # one block covers the whole (transposed) matrix
    labels = rng.integers(0, 3, size=50)
    before = logits.copy()
    slc_class_metrics(logits, labels)
    all_logits_class_metrics(logits, labels)
    pols_metrics(logits, labels)
    np.testing.assert_array_equal(logits, before)


def test_all_logits_ranking_survives_margins_where_float64_exp_underflows():
    # exp(-900) underflows to 0, so the logsumexp of the non-argmax logits is recomputed around them.
    logits = np.array([[1000.0, 0.0, -5.0], [900.0, 0.0, -5.0], [0.0, 1.0, 0.0]])
    labels = np.array([0, 1, 1])
    result = all_logits_class_metrics(logits, labels, recalls=(1.0,))
    assert result.auprc[0] == 1.0  # log-odds 1000 - log(1 + e^-5) outranks 900 - log(1 + e^-5)
    assert result.threshold_at_recall[0, 0] == pytest.approx(1000 - np.log1p(np.exp(-5.0)), abs=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x", [1e4, 1e20, 1e30])
def test_all_logits_ties_survive_huge_logits(x, dtype):
    # p = (1/3, 1/3, 1/3, 0) in both rows, so class 1's two scores tie: AP = 1/2. Subtracting a row
    # maximum of 1e20 that was added back first would leave nothing of the gap and split the tie.
    logits = np.array([[x, x, x, 0], [0, x, x, x]], dtype=dtype)
    result = all_logits_class_metrics(logits, np.array([1, 0]), recalls=(1.0,))
    assert result.auprc[1] == 0.5


def test_rows_with_the_same_values_in_another_order_tie_exactly_under_all_logits():
    # Each row is a permutation of one multiset, so p_j depends only on z_j: the softmax ranking
    # must give exactly the SLC ranking's numbers, tie groups included (quantised logits look like this).
    rng = np.random.default_rng(0)
    values = rng.integers(-3, 4, size=50)
    logits = np.stack([rng.permutation(values) for _ in range(3000)]).astype(np.float32)
    labels = rng.integers(0, 50, size=3000)
    slc = slc_class_metrics(logits, labels, recalls=RECALLS)
    softmax = all_logits_class_metrics(logits, labels, recalls=RECALLS)
    np.testing.assert_array_equal(softmax.auprc, slc.auprc)
    np.testing.assert_array_equal(softmax.precision_at_recall, slc.precision_at_recall)


@pytest.mark.parametrize("dtype", [np.dtype(">f8"), np.dtype(np.longdouble)])
def test_wide_floats_of_any_byte_order_are_not_downcast_to_float32(dtype):
    # 1 and 1 + 1e-12 are distinct in float64 but equal in float32: a downcast would make them tie.
    logits = np.array([[1.0, 0.0], [1.0 + 1e-12, 0.0]]).astype(dtype)
    labels = np.array([1, 0])
    assert slc_class_metrics(logits, labels, recalls=(1.0,)).auprc[0] == 1.0
    assert pols_metrics(np.array([[1.0 + 1e-12, 1.0]]).astype(dtype), np.array([0])).margin > 0


def test_a_float32_recall_is_read_as_the_decimal_it_prints_as():
    assert positives_needed(np.float32(0.3), np.array([10])).tolist() == [3]
