"""The timing statistics against scipy's Mann-Whitney test and against simulation with known answers."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from slcbench.stats import (
    abba_ratios,
    change_interval,
    mann_whitney_null_cdf,
    median_interval,
    ratio_interval,
    samples_to_decide,
)


@pytest.mark.parametrize("n, m", [(1, 1), (3, 4), (5, 5), (7, 11), (20, 25), (50, 50)])
def test_the_exact_null_distribution_is_scipys(n, m):
    cdf = mann_whitney_null_cdf(n, m)
    rng = np.random.default_rng(n * 100 + m)
    for _ in range(5):
        x, y = rng.normal(size=n), rng.normal(size=m)
        test = scipy_stats.mannwhitneyu(y, x, alternative="less", method="exact")
        assert cdf[int(test.statistic)] == pytest.approx(test.pvalue, abs=1e-12)
    assert cdf[-1] == pytest.approx(1.0)


@pytest.mark.parametrize("n, m, tied", [(12, 15, False), (60, 70, False), (20, 20, True)])
def test_the_change_interval_inverts_the_mann_whitney_test(n, m, tied):
    rng = np.random.default_rng(7)
    x, y = rng.lognormal(0.0, 0.3, size=n), rng.lognormal(0.2, 0.3, size=m)
    if tied:
        x, y = np.round(x, 1), np.round(y, 1)
    interval = change_interval(x, y, 0.95)
    log_x, log_y = np.log(x), np.log(y)
    method = "exact" if max(n, m) <= 50 and not tied else "asymptotic"
    for end, outward in ((interval.low, -1), (interval.high, 1)):
        bound = math.log1p(end)

        def p_value(delta):
            return scipy_stats.mannwhitneyu(log_y - delta, log_x, method=method, use_continuity=False).pvalue

        if tied:  # ties: the normal approximation's boundary is only near the interval's end
            assert p_value(bound - outward * 0.1) > 0.05 > p_value(bound + outward * 0.1)
        else:
            assert p_value(bound + outward * 1e-9) < 0.05 <= p_value(bound - outward * 1e-9)
    # Hodges-Lehmann: the median of all pairwise differences of the logs.
    assert interval.estimate == pytest.approx(math.expm1(np.median(log_y[None, :] - log_x[:, None])))


def test_too_few_samples_give_no_interval_rather_than_a_false_one():
    assert not change_interval([1.0, 1.1], [1.2, 1.3], 0.95).decided  # 2 vs 2 cannot reach 95%
    assert not median_interval([1.0, 2.0, 3.0, 4.0, 5.0]).decided  # 5 samples cannot reach 95%
    assert median_interval([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).decided


def _aa_false_alarms(samples, noise, trials, rng):
    alarms = 0
    for _ in range(trials):
        a = rng.lognormal(0.0, noise, size=samples)
        b = rng.lognormal(0.0, noise, size=samples)
        interval = change_interval(a, b, 0.95)
        alarms += interval.decided and (interval.low > 0 or interval.high < 0)
    return alarms / trials


@pytest.mark.parametrize("samples, noise", [(5, 0.6), (10, 0.05), (30, 0.05), (30, 0.6), (80, 0.2)])
def test_identical_distributions_exclude_no_change_at_most_at_the_stated_rate(samples, noise):
    rng = np.random.default_rng(samples)
    rate = _aa_false_alarms(samples, noise, 400, rng)
    assert rate <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / 400)  # 95% intervals: at most 5% miss the truth


def test_a_real_shift_is_found_and_a_buried_one_is_not_called_no_change():
    rng = np.random.default_rng(3)
    found = change_interval(rng.lognormal(0, 0.05, 30), 1.3 * rng.lognormal(0, 0.05, 30))
    assert found.low > 0.2 and found.estimate == pytest.approx(0.3, abs=0.05)
    for _ in range(200):  # +30% in 60% noise with 5 samples: the interval is wide or absent, never tight at 0
        buried = change_interval(rng.lognormal(0, 0.6, 5), 1.3 * rng.lognormal(0, 0.6, 5))
        assert not buried.decided or buried.high - buried.low > 0.2


def test_block_ratios_cancel_a_linear_drift():
    t = np.arange(40, dtype=float)
    drift = 1 + 0.01 * t  # the machine slows down 1% per sample
    order = np.tile(["A", "B", "B", "A"], 10)
    times = np.where(order == "A", 1.0, 1.5) * drift
    ratios = abba_ratios(times[order == "A"], times[order == "B"])
    np.testing.assert_allclose(ratios, 1.5)
    with pytest.raises(ValueError):
        abba_ratios([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])


@pytest.mark.parametrize("blocks", [6, 10, 30])
def test_the_ratio_interval_covers_the_true_ratio_at_its_nominal_rate(blocks):
    rng = np.random.default_rng(blocks)
    true_ratio, covered, trials = 2.5, 0, 1000
    for _ in range(trials):
        # Multiplicative noise per sample, a random walk of machine speed, A-B-B-A order.
        speed = np.exp(np.cumsum(rng.normal(0, 0.01, 4 * blocks)))
        noise = rng.lognormal(0, 0.1, 4 * blocks)
        order = np.tile([0, 1, 1, 0], blocks)
        times = np.where(order == 1, true_ratio, 1.0) * speed * noise
        interval = ratio_interval(abba_ratios(times[order == 0], times[order == 1]))
        covered += interval.low <= true_ratio <= interval.high
    assert 0.93 <= covered / trials <= 1.0


def test_samples_to_decide_scales_as_the_square_of_the_width():
    assert samples_to_decide(10, 0.2, 0.1) == 40
    assert samples_to_decide(10, 0.2, 0.0) is None
