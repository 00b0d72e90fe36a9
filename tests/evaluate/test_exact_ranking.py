"""The all-logits ranking against exact arithmetic: Fractions for two classes, 60-digit decimals beyond."""

import math
from decimal import Decimal, localcontext
from fractions import Fraction

import numpy as np
import pytest
from scipy.special import softmax
from sklearn.metrics import average_precision_score

from slcbench.evaluate.backend import UNIT_ROUNDOFF, NumpyBackend, log_odds_tile
from slcbench.evaluate.metrics import Ranking, class_metrics

GRID = np.round(np.arange(-3.0, 3.05, 0.1), 1)  # 0.1-step logits: decimals that binary floats cannot hold


def exact_metrics(scores, is_positive, recall=0.5):
    """AP, first-reach Precision@recall and its threshold from exactly comparable scores (Fractions or Decimals)."""
    positives = [s for s, p in zip(scores, is_positive, strict=True) if p]
    precisions = [
        Fraction(sum(q >= s for q in positives), sum(q >= s for q in scores)) for s in sorted(positives, reverse=True)
    ]
    ap = sum(precisions) / len(positives)
    threshold = sorted(positives, reverse=True)[math.ceil(Fraction(str(recall)) * len(positives)) - 1]
    at_recall = Fraction(sum(q >= threshold for q in positives), sum(q >= threshold for q in scores))
    return float(ap), float(at_recall), threshold


def misordered_pairs(computed, exact, is_positive):
    """(positive, negative) pairs whose computed order (ties included) differs from the exact one."""

    def sign(a, b):
        return int(a > b) - int(a < b)

    positives = [i for i, p in enumerate(is_positive) if p]
    negatives = [i for i, p in enumerate(is_positive) if not p]
    return [(p, e) for p in positives for e in negatives if sign(computed[p], computed[e]) != sign(exact[p], exact[e])]


def test_the_issue_case_two_classes_follow_the_exact_difference():
    logits = np.array([[-0.66, -0.75], [1.78, 1.69]])
    labels = np.array([1, 0])
    # z1 - z0 is exact in float64 here, and row 0's is the larger: each class's positive ranks first.
    assert Fraction(logits[0, 1]) - Fraction(logits[0, 0]) > Fraction(logits[1, 1]) - Fraction(logits[1, 0])
    p = softmax(logits, axis=1)
    assert p[0, 1] == p[1, 1] and average_precision_score(labels == 1, p[:, 1]) == 0.5  # float64 softmax ties them
    result = class_metrics(logits, labels, ranking=Ranking.all_logits)
    np.testing.assert_array_equal(result.auprc, [1.0, 1.0])
    assert result.undecided_pairs.tolist() == [0, 0]


def test_two_classes_on_a_grid_of_tenths_match_exact_fractions():
    rng = np.random.default_rng(0)
    rounded_ties_split = 0
    for _ in range(150):  # 300 classes
        logits = rng.choice(GRID, size=(40, 2))
        labels = rng.integers(0, 2, size=40)
        result = class_metrics(logits, labels, ranking=Ranking.all_logits, recalls=(0.5,))
        for j in np.unique(labels):
            exact = [Fraction(row[j]) - Fraction(row[1 - j]) for row in logits]
            ap, at_recall, threshold = exact_metrics(exact, labels == j)
            assert result.auprc[j] == pytest.approx(ap, abs=1e-15)
            assert result.precision_at_recall[0, j] == pytest.approx(at_recall, abs=1e-15)
            assert result.threshold_at_recall[0, j] == float(threshold)  # reported as the rounded log-odds
            rounded = logits[:, j] - logits[:, 1 - j]
            rounded_ties_split += len(misordered_pairs(rounded, exact, labels == j))
        assert result.undecided_pairs.sum() == 0
    assert rounded_ties_split > 100  # the grid has many exact differences that round alike


def exact_log_odds(logits):
    """z_j - ln sum_{c != j} exp(z_c) for every entry, in 60-digit decimals, rounded to 40 digits so that
    rows holding the same values in another order tie."""
    with localcontext() as context:
        context.prec = 60
        rows = []
        for row in logits:
            terms = [Decimal(float(z)).exp() for z in row]
            rows.append(
                [
                    (Decimal(float(z)) - sum(sorted(t for c, t in enumerate(terms) if c != j)).ln()).quantize(
                        Decimal("1e-40")
                    )
                    for j, z in enumerate(row)
                ]
            )
    return rows


@pytest.mark.parametrize("k", [3, 5])
def test_more_classes_on_a_grid_of_tenths_agree_with_exact_decimals_within_the_documented_bound(k):
    rng = np.random.default_rng(k)
    logits = rng.choice(GRID, size=(60, k))
    logits[1::7] = logits[::7][: len(logits[1::7]), ::-1]  # rows with the same values in another order: exact ties
    labels = rng.integers(0, k, size=60)
    stats = NumpyBackend().row_log_sum_exp(logits, threads=1)
    computed = log_odds_tile(logits, stats, 0)
    exact = exact_log_odds(logits)
    result = class_metrics(logits, labels, ranking=Ranking.all_logits, recalls=(0.5,))
    for j in range(k):
        bound = UNIT_ROUNDOFF * (9 * np.abs(computed[:, j]).max() + stats.log_odds_error_bound())
        errors = [abs(Decimal(float(computed[i, j])) - exact[i][j]) for i in range(len(logits))]
        assert max(errors) <= Decimal(bound)  # the documented bound holds
        column = [row[j] for row in exact]
        wrong = misordered_pairs(computed[:, j], column, labels == j)
        assert all(abs(computed[a, j] - computed[b, j]) <= 2 * bound for a, b in wrong)
        assert len(wrong) <= result.undecided_pairs[j]
        if result.undecided_pairs[j] == 0 and (labels == j).any():
            ap, at_recall, _ = exact_metrics(column, labels == j)
            assert result.auprc[j] == pytest.approx(ap, abs=1e-15)
            assert result.precision_at_recall[0, j] == pytest.approx(at_recall, abs=1e-15)


def test_computed_ties_and_near_ties_are_counted_and_ranked_deterministically():
    # Rows 0 and 1 hold the same values in another order, 0.3 in column 0 in both: p_0 ties exactly, and
    # the count says that float64 did not certify it.
    logits = np.array([[0.3, 0.1, -0.2], [0.3, -0.2, 0.1], [-1.0, 0.5, 0.0]])
    labels = np.array([0, 1, 2])
    result = class_metrics(logits, labels, ranking=Ranking.all_logits)
    assert result.undecided_pairs.tolist() == [1, 0, 0]
    assert result.auprc[0] == 0.5  # the positive shares the top with a negative
    reordered = class_metrics(logits[[2, 1, 0]], labels[[2, 1, 0]], ranking=Ranking.all_logits)
    np.testing.assert_array_equal(reordered.auprc, result.auprc)
    np.testing.assert_array_equal(reordered.undecided_pairs, result.undecided_pairs)


def test_the_single_logit_ranking_is_exact_and_never_undecided():
    logits = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    result = class_metrics(logits, np.array([0, 1, 1]))
    assert result.undecided_pairs.tolist() == [0, 0] and "undecided_pairs" not in result.summary()
