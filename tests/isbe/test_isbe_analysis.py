"""Tables 1-4 from synthetic steps and accuracies whose answers are known: the warm-up is left out,
A-B-B-A blocks cancel a linear drift exactly, accuracy intervals are scipy's t intervals, verdicts
follow the intervals."""

import numpy as np
import pytest
from scipy import stats as scipy_stats

from slcbench.isbe.analysis import analyse, mean_interval, timed_steps, verdict
from slcbench.isbe.config import LossKind, LossOption, Network, Reduction, Variant
from slcbench.isbe.records import Curves, GroupResult, OptionResult
from slcbench.isbe.timing import StepTimes
from slcbench.stats import Interval

CE = LossOption(LossKind.ce, Reduction.none)
SOFTMAX = LossOption(LossKind.isbe, Reduction.none, "softmax")
TANH = LossOption(LossKind.isbe, Reduction.none, "tanh")
TANH_BLURRED = LossOption(LossKind.isbe, Reduction.none, "tanh", blurred=True)
OPTIONS = (CE, SOFTMAX, TANH, TANH_BLURRED)
VARIANT = Variant(Network.net1, False)
# (forward, backward) ms per option before drift: ISBE softmax's backward is 20% shorter than CE's
BASE_MS = {CE: (2.0, 2.0), SOFTMAX: (2.0, 1.6), TANH: (2.0, 2.2), TANH_BLURRED: (2.0, 2.2)}
ACCURACY = {
    CE: [0.95, 0.96, 0.97],
    SOFTMAX: [0.96, 0.96, 0.98],
    TANH: [0.95, 0.97, 0.97],
    TANH_BLURRED: [0.95, 0.97, 0.97],
}
WARMUP, STEPS = 2, 41  # 39 steps after warm-up: the last one is dropped (no whole block)


def drifting_group(seed: int) -> GroupResult:
    """Steps taken in the experiment's serpentine order while the machine slows down linearly;
    the two warm-up steps are 100 times slower."""
    steps: dict[LossOption, list[StepTimes]] = {option: [] for option in OPTIONS}
    n = len(OPTIONS)
    for step in range(STEPS):
        order = range(n) if step % 2 == 0 else reversed(range(n))
        for position, i in enumerate(order):
            drift = (1.0 + 0.01 * (step * n + position)) * (100.0 if step < WARMUP else 1.0)
            forward, backward = BASE_MS[OPTIONS[i]]
            steps[OPTIONS[i]].append(StepTimes(forward * drift, backward * drift, 0.5))
    results = {}
    for option in OPTIONS:
        curves = Curves()
        curves.append(
            train_loss=0.1,
            validation_loss=0.1,
            train_accuracy=1.0,
            validation_accuracy=1.0,
            test_accuracy=ACCURACY[option][seed],
        )
        results[option.name] = OptionResult(option, tuple(steps[option]), curves)
    return GroupResult(VARIANT, seed, STEPS, results)


@pytest.fixture(scope="module")
def analysis():
    return analyse([drifting_group(seed) for seed in range(3)], [VARIANT], OPTIONS, timed_from=WARMUP, confidence=0.95)


def test_timed_steps_leave_out_the_warm_up_and_an_unpaired_last_step():
    steps = [StepTimes(i, 1.0, 0.0) for i in range(9)]
    assert [s.forward_ms for s in timed_steps(steps, 2)] == [2, 3, 4, 5, 6, 7]


def test_table_1_medians_of_the_timed_steps(analysis):
    row = next(r for r in analysis.times if r.option == SOFTMAX)
    group_steps = [timed_steps(drifting_group(seed).results[SOFTMAX.name].steps, WARMUP) for seed in range(3)]
    pooled = [s for steps in group_steps for s in steps]
    assert row.steps == len(pooled) == 3 * 38
    assert row.forward_ms.estimate == pytest.approx(np.median([s.forward_ms for s in pooled]))
    assert row.backward_ms.estimate == pytest.approx(np.median([s.backward_ms for s in pooled]))
    assert row.share_pct.estimate == pytest.approx(100 * 1.6 / 3.6)  # drift scales both stages alike
    assert row.forward_ms.low < row.forward_ms.estimate < row.forward_ms.high  # warm-up's 100× left out
    assert row.forward_ms.high < 2.0 * 3.0


def test_table_2_abba_blocks_cancel_the_drift_exactly(analysis):
    row = next(r for r in analysis.savings if r.option == SOFTMAX)
    assert row.baseline == CE and row.blocks == 3 * 19
    # (1.6 + 2.0) / (2.0 + 2.0) = 0.9 in every block, although each step's drift differs
    assert (row.saving_pct.estimate, row.saving_pct.low, row.saving_pct.high) == pytest.approx((10.0, 10.0, 10.0))
    change = 100 * (1.6 / 3.6 - 0.5)
    assert (row.share_change_pts.estimate, row.share_change_pts.low, row.share_change_pts.high) == pytest.approx(
        (change, change, change)
    )
    assert row.verdict == "-" and row.time_verdict == "-"  # a lower share, and less time
    tanh = next(r for r in analysis.savings if r.option == TANH)
    assert tanh.saving_pct.estimate == pytest.approx(100 * (1 - 4.2 / 4.0))
    assert tanh.verdict == "+" and tanh.time_verdict == "+"


def test_tables_3_and_4_use_t_intervals_paired_by_seed(analysis):
    row = next(r for r in analysis.accuracy if r.option == SOFTMAX)
    values = np.array([96.0, 96.0, 98.0])
    low, high = scipy_stats.t.interval(0.95, 2, loc=values.mean(), scale=scipy_stats.sem(values))
    assert row.per_seed_pct == pytest.approx(tuple(values))
    assert (row.accuracy_pct.estimate, row.accuracy_pct.low, row.accuracy_pct.high) == pytest.approx(
        (values.mean(), low, high)
    )
    difference = next(r for r in analysis.differences if r.option == SOFTMAX)
    differences = np.array([1.0, 0.0, 1.0])  # paired by seed: 96 − 95, 96 − 96, 98 − 97
    low, high = scipy_stats.t.interval(0.95, 2, loc=differences.mean(), scale=scipy_stats.sem(differences))
    assert difference.per_seed_pts == pytest.approx(tuple(differences))
    assert (difference.difference_pts.low, difference.difference_pts.high) == pytest.approx((low, high))
    assert difference.verdict == "="  # +0.67 points, but the interval contains 0: no difference


def test_blurred_targets_are_compared_with_the_same_option_on_hard_targets(analysis):
    (row,) = analysis.blur
    assert (row.option, row.baseline) == (TANH_BLURRED, TANH)
    assert row.difference_pts == Interval(0.0, 0.0, 0.0, 0.95, row.difference_pts.method) and row.verdict == "="


def test_mean_interval_edge_cases_and_verdicts():
    assert mean_interval([97.0], 0.95).low is None
    assert verdict(mean_interval([97.0], 0.95)) == "?"
    equal = mean_interval([0.5, 0.5, 0.5], 0.95)
    assert (equal.low, equal.high) == (0.5, 0.5) and verdict(equal) == "+"
    assert verdict(Interval(-1.0, -2.0, -0.1, 0.95, "")) == "-"
    assert verdict(Interval(-1.0, -2.0, 0.0, 0.95, "")) == "="


def test_the_document_form_names_rows_and_carries_intervals(analysis):
    document = analysis.to_dict()
    assert document["confidence"] == 0.95
    saving = next(r for r in document["savings"] if r["option"] == "isbe-softmax-none")
    assert saving["baseline"] == "ce-none" and saving["variant"] == "net1" and saving["verdict"] == "-"
    assert saving["time_verdict"] == "-"
    assert saving["saving_pct"]["estimate"] == pytest.approx(10.0) and "A-B-B-A" in saving["saving_pct"]["method"]


def test_the_report_prints_intervals_verdicts_and_the_conclusions(analysis):
    from slcbench.console import render_text
    from slcbench.isbe.report import conclusions, curves_figure, tables

    text = "\n".join(render_text(table, width=200) for table in tables(analysis, [Network.net1]))
    assert "Table 1 · net1" in text and "44.4 [44.4, 44.4]" in text  # ISBE softmax's share, 1.6 / 3.6
    assert "-5.56 [-5.56, -5.56] -" in text and "saves +10.0 [+10.0, +10.0]" in text
    assert "none − CE none" in text and "none, blurred − hard" in text
    lines = conclusions(analysis)
    assert lines[1] == (
        "ours, backprop share ISBE − CE: 1 '-', 1 '+' of 2 (not lower in every comparison); "
        "forward + backward time ISBE − CE: 1 '-', 1 '+', time saved -5.0% to +10.0%"
    )
    assert lines[2].startswith("ours, test accuracy ISBE − CE: 3 '=' of 3")
    figure = curves_figure([drifting_group(seed) for seed in range(3)], Network.net1, OPTIONS)
    assert len(figure.axes) == 4 and "mean over 3 seed(s)" in figure._suptitle.get_text()
