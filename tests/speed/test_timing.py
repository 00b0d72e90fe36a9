"""The timing loop with stand-ins: a scripted clock, a scripted graph capture, a scripted host time."""

import random

import numpy as np
import pytest
import torch

from slcbench.results import Measurement, Warmup
from slcbench.speed.protocol import WarmupPlan
from slcbench.speed.timing import HostClock, Timer, calls_per_sample


class FakeClock(HostClock):
    """Marks advance by a scripted time per call (``duration_s(i)`` for the i-th call), so the loops'
    bookkeeping is checked exactly."""

    def __init__(self, duration_s):
        self.now = 0.0
        self.duration_s = duration_s if callable(duration_s) else list(duration_s).__getitem__
        self.calls = 0

    def advance(self):
        self.now += self.duration_s(self.calls)
        self.calls += 1

    def mark(self):
        return self.now


def fake_timer(clock: FakeClock, replay_s=None) -> tuple[Timer, list[int]]:
    """A Timer on ``clock`` whose host time is the clock's; with ``replay_s``, a CPU stand-in for graph
    capture whose replay of ``calls`` unrolled calls advances the clock by ``replay_s(calls)``."""
    captured: list[int] = []

    def capture(run, *, calls=1, warmup=3):
        captured.append(calls)

        def replay():
            clock.now += replay_s(calls)
            clock.calls += 1

        return replay

    return Timer(clock, capture if replay_s else None, now=lambda: clock.now), captured


def test_count_only_warm_up_makes_exactly_its_calls_and_samples_are_per_call():
    clock = FakeClock([9.0, 9.0, 0.001, 0.002, 0.004, 0.003])
    timer, _ = fake_timer(clock)
    warm = timer.warm_up(clock.advance, WarmupPlan(calls=2))
    assert (warm.calls, warm.call_ms, warm.settled) == (2, pytest.approx(9000.0), None)
    m = timer.sample(clock.advance, samples=4)
    assert clock.calls == 6
    assert m.samples_ms == pytest.approx((1.0, 2.0, 4.0, 3.0))
    assert m.median == pytest.approx(2.5)
    assert m.min == pytest.approx(1.0)
    assert m.q1 == pytest.approx(1.75) and m.q3 == pytest.approx(3.25)
    assert m.iqr_pct == pytest.approx(100 * 1.5 / 2.5)


def test_no_warm_up_asked_makes_no_calls():
    clock = FakeClock([])
    timer, _ = fake_timer(clock)
    assert timer.warm_up(clock.advance, WarmupPlan()) == Warmup(calls=0, seconds=0.0)
    assert clock.calls == 0


def test_warm_up_goes_on_until_the_time_per_call_is_steady():
    # 2 ms per call, easing to 1 ms by the 300th call (a clock that settles), then steady.
    clock = FakeClock(lambda i: 1e-3 * (1 + max(0, 300 - i) / 300))
    timer, _ = fake_timer(clock)
    warm = timer.warm_up(clock.advance, WarmupPlan(calls=20, settle_pct=0.5, max_s=60.0, window_ms=50.0))
    assert warm.settled is True
    assert warm.call_ms == pytest.approx(1.0)
    # Windows of 25-50 calls: it stops once two windows' medians lie past the drift, not before.
    assert 300 <= warm.calls <= 300 + 3 * 50
    assert clock.calls == warm.calls


def test_warm_up_that_never_settles_stops_at_its_limit_and_says_so():
    jitter = random.Random(0)
    clock = FakeClock(lambda i: 1e-3 * (1 + jitter.random()))  # 1-2 ms, no two windows' medians equal
    timer, _ = fake_timer(clock)
    warm = timer.warm_up(clock.advance, WarmupPlan(settle_pct=1e-9, max_s=0.05, window_ms=10.0))
    assert warm.settled is False and warm.calls > 0 and 0.05 <= warm.seconds < 0.05 + 0.03


@pytest.mark.parametrize(
    "call_ms, min_sample_ms, expected",
    [(0.47, 5.0, 11), (1.38, 5.0, 4), (5.2, 5.0, 1), (5.0, 5.0, 1), (1e-6, 5.0, 1000), (None, 5.0, 1), (1.0, 0.0, 1)],
)
def test_calls_per_sample_reaches_the_minimum_sample_time(call_ms, min_sample_ms, expected):
    assert calls_per_sample(call_ms, min_sample_ms) == expected


def test_unrolled_samples_are_divided_into_per_call_times():
    clock = FakeClock([0.004, 0.008])  # two runs of 4 calls each
    timer, _ = fake_timer(clock)
    m = timer.sample(clock.advance, samples=2, calls_per_run=4)
    assert m.samples_ms == pytest.approx((1.0, 2.0)) and m.calls_per_sample == 4


def test_graph_timing_unrolls_short_calls_to_the_minimum_sample_time():
    call_s = 2.0**-11  # 0.48828125 ms: exact in binary, so the sizes below are exact
    clock = FakeClock([])
    timer, captured = fake_timer(clock, lambda calls: calls * call_s)
    plan = WarmupPlan(calls=20, settle_pct=0.5, max_s=60.0, window_ms=20.0)
    m = timer.time(lambda: None, samples=10, warmup=plan, use_graph=True, min_sample_ms=10 * call_s * 1e3)
    assert captured == [1, 10]  # one call to measure it, then 10 unrolled: one sample = the minimum
    assert m.calls_per_sample == 10 and m.samples_ms == pytest.approx((call_s * 1e3,) * 10)
    # Warm-up: 8 probe replays of each graph, then the plan on the timed graph, which settles.
    assert m.warmup.settled is True and m.warmup.call_ms == pytest.approx(call_s * 1e3)
    assert m.warmup.calls >= 8 + 8 * 10 + 20


def test_graph_timing_of_calls_shorter_than_a_launch_still_reaches_the_minimum_sample_time():
    """A 7.6 us call replayed alone is timed at the 30.5 us launch rate; the graph is re-sized until
    one replay (calls x 7.6 us, once more than a launch) really lasts the minimum sample time."""
    launch_s, call_s = 2.0**-15, 2.0**-17  # exact in binary, so the sizes below are exact
    clock = FakeClock([])
    timer, captured = fake_timer(clock, lambda calls: max(launch_s, calls * call_s))
    min_sample_ms = 2.0**-8 * 1e3  # 3.90625 ms
    m = timer.time(lambda: None, samples=5, warmup=WarmupPlan(calls=2), use_graph=True, min_sample_ms=min_sample_ms)
    assert captured == [1, 128, 512]  # sized by the launch rate first (too short), then by the call
    assert m.calls_per_sample == 512 and m.median * m.calls_per_sample == pytest.approx(min_sample_ms)
    assert m.median == pytest.approx(call_s * 1e3)


def test_graph_timing_without_a_capture_is_refused():
    with pytest.raises(ValueError, match="capture"):
        Timer(HostClock()).time(lambda: None, samples=1, warmup=WarmupPlan(), use_graph=True)


def test_warm_up_reads_the_clock_once_per_decision():
    """The count is met and the time floor passes between two clock readings: the next window must
    still make a call (it once made none and took the median of nothing)."""
    readings = iter([0.0, 0.0, 0.0199999, 0.0200001] + [0.0200002] * 100)
    clock = FakeClock(lambda i: 1e-3)
    timer = Timer(clock, now=lambda: next(readings))
    warm = timer.warm_up(clock.advance, WarmupPlan(calls=3, min_s=0.02))
    assert warm.calls == 4 and clock.calls == 4  # 3 owed calls, then 1 call for the last 0.1 us owed


def test_a_settling_warm_up_needs_a_time_limit():
    with pytest.raises(ValueError, match="max_s"):
        WarmupPlan(settle_pct=0.5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_graph_timing_of_a_short_kernel_on_cuda():
    from slcbench.speed.timing import timer_for

    a = torch.randn(256, 256, device="cuda")
    m = timer_for(torch.device("cuda")).time(
        lambda: a @ a,
        samples=20,
        use_graph=True,
        min_sample_ms=1.0,
        warmup=WarmupPlan(calls=5, settle_pct=1.0, max_s=2.0),
    )
    assert m.calls_per_sample > 1 and len(m.samples_ms) == 20
    assert 0 < m.median < 1.0 and m.warmup.calls >= 5
    assert m.median * m.calls_per_sample >= 0.9  # one sample lasts about the minimum, launch-bound or not


def test_measurement_statistics_against_numpy():
    samples = tuple(float(x) for x in np.random.default_rng(0).gamma(5.0, size=101))
    m = Measurement(samples)
    assert m.median == pytest.approx(np.median(samples))
    assert m.p90 == pytest.approx(np.percentile(samples, 90))
    with pytest.raises(ValueError):
        Measurement(())


def test_a_pair_is_timed_in_a_b_b_a_blocks_and_its_ratio_cancels_drift():
    # B costs 3x A; the machine slows by 1% per call: block ratios stay exactly 3 (drift is linear per block).
    clock = FakeClock([])
    order = []

    def run(name, cost):
        def call():
            order.append(name)
            clock.now += cost * (1 + 0.01 * len(order))

        return call

    timer = Timer(clock, now=lambda: clock.now)
    paired = timer.time_pair(run("A", 1e-3), run("B", 3e-3), blocks=6, warmup=WarmupPlan(calls=2), use_graph=False)
    assert order[:4] == ["A", "B"] * 2  # warm-up: two pairs
    assert order[4:] == ["A", "B", "B", "A"] * 6
    assert len(paired.ratios) == 6 and paired.converged is None
    assert paired.ratio.estimate == pytest.approx(3.0, rel=1e-3) and paired.ratio.decided
    assert len(paired.reference.samples_ms) == len(paired.timed.samples_ms) == 12
    assert paired.timed.warmup.calls == 2


def test_adaptive_sampling_adds_blocks_until_the_interval_is_narrow_or_the_budget_is_spent():
    jitter = random.Random(1)
    clock = FakeClock([])

    def noisy(cost, spread):
        def call():
            clock.now += cost * (1 + spread * jitter.random())

        return call

    timer = Timer(clock, now=lambda: clock.now)
    narrow = timer.time_pair(
        noisy(1e-3, 0.01),
        noisy(2e-3, 0.01),
        blocks=6,
        warmup=WarmupPlan(),
        use_graph=False,
        target_pct=2.0,
        budget_s=10.0,
    )
    assert narrow.converged is True and len(narrow.ratios) == 6 and narrow.ratio.half_width_pct() <= 2.0
    wide = timer.time_pair(
        noisy(1e-3, 0.5), noisy(2e-3, 0.5), blocks=6, warmup=WarmupPlan(), use_graph=False, target_pct=0.1, budget_s=0.5
    )
    assert wide.converged is False and len(wide.ratios) > 6
    assert 0.5 <= sum(wide.reference.samples_ms + wide.timed.samples_ms) / 1e3 < 0.5 + 0.05


def test_paired_graph_timing_captures_each_side_and_divides_per_call():
    call_s = 2.0**-11
    clock = FakeClock([])
    timer, captured = fake_timer(clock, lambda calls: calls * call_s)
    paired = timer.time_pair(
        lambda: None,
        lambda: None,
        blocks=6,
        warmup=WarmupPlan(calls=4),
        use_graph=True,
        min_sample_ms=10 * call_s * 1e3,
    )
    assert captured == [1, 10, 1, 10]  # each side probed, then unrolled to the minimum sample time
    assert paired.timed.calls_per_sample == paired.reference.calls_per_sample == 10
    assert paired.timed.samples_ms == pytest.approx((call_s * 1e3,) * 12)
    assert paired.ratio.estimate == pytest.approx(1.0)


def test_a_sustained_window_runs_back_to_back_for_at_least_its_seconds():
    call_s = 2.0**-11
    clock = FakeClock([])
    clock.now = 5.0
    timer, captured = fake_timer(clock, lambda calls: calls * call_s)
    window = timer.sustain(
        lambda: None, seconds=0.1, call_ms=call_s * 1e3, use_graph=True, min_sample_ms=10 * call_s * 1e3
    )
    # Unrolled as for timing (10 calls a replay); ceil(100 ms / 4.88 ms) = 21 replays, one mark each side.
    assert captured == [1, 10] and window.calls == 210
    assert window.device_ms == pytest.approx(210 * call_s * 1e3) and window.call_ms == pytest.approx(call_s * 1e3)
    assert window.end_s - window.start_s == pytest.approx(window.device_ms / 1e3)
    eager_clock = FakeClock(lambda i: 0.003)
    eager, _ = fake_timer(eager_clock)
    window = eager.sustain(eager_clock.advance, seconds=0.1, call_ms=3.0, use_graph=False)
    assert window.calls == eager_clock.calls == 34 and window.call_ms == pytest.approx(3.0)
