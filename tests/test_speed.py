"""slcbench speed on the CPU: class specs, head swapping, query mode, the timing loop, CLI errors."""

from __future__ import annotations

import json
import sys

import pytest
import torch
from typer.testing import CliRunner

from slcbench.cli import app
from slcbench.errors import SlcbenchError
from slcbench.models import QueryHead, build_model, find_classifier, make_head, replace_classifier, resolve_arch
from slcbench.paper import PAPER_ARCHS, PAPER_CLASS_GRID, format_class_count, parse_class_count, parse_class_spec
from slcbench.paper import CPU_QUICK_PROTOCOL, Protocol
from slcbench.speed import Precision, SpeedConfig, run_speed
from slcbench.timing import HostClock, Measurement, Warmup, WarmupPlan, calls_per_sample, sample_calls, warm_up

CPU = torch.device("cpu")
runner = CliRunner()


# ---- class specs ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "token, expected",
    [("1", 1), ("1000", 1000), ("2^10", 1024), ("2^18.5", 370727), ("2**14", 16384), ("10^3", 1000), (" 2^16 ", 65536)],
)
def test_parse_class_count(token, expected):
    assert parse_class_count(token) == expected


def test_two_to_the_eighteen_point_five_is_the_papers_floor():
    assert 2**18.5 == pytest.approx(370727.6, abs=0.1)
    assert parse_class_count("2^18.5") == 370727 == PAPER_CLASS_GRID[-1]


@pytest.mark.parametrize("bad", ["0", "-3", "2^", "abc", "2^x", "1.5", "2^40", "", "²", "١٠", "2^100000", "10^400",
                                 "9" * 5000, "2^" + "9" * 400, "9" * 5000 + "^2"])
def test_malformed_class_counts_are_errors(bad):
    with pytest.raises(SlcbenchError):
        parse_class_spec(bad)


def test_class_spec_all_sorted_unique_and_always_has_one():
    assert parse_class_spec("all") == (1, 1024, 16384, 65536, 262144, 370727)
    assert parse_class_spec("2^14,1000,2^14") == (1, 1000, 16384)
    assert parse_class_spec("all,5") == (1, 5, 1024, 16384, 65536, 262144, 370727)


def test_format_class_count_round_trips_the_grid():
    assert [format_class_count(k) for k in PAPER_CLASS_GRID] == ["1", "2^10", "2^14", "2^16", "2^18", "2^18.5"]
    assert format_class_count(1000) == "1000"


# ---- architectures and head replacement ----------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("arch", [*PAPER_ARCHS, "timm:resnet18"])
def test_head_replacement_gives_k_outputs(arch):
    spec = resolve_arch(arch)
    torch.manual_seed(0)
    model = build_model(spec, CPU)
    path, old = find_classifier(model)
    assert old.out_features == 1000
    replace_classifier(model, path, make_head(old.in_features, 37, CPU, torch.float32))
    size = spec.input_size
    with torch.inference_mode():
        out = model(torch.randn(2, 3, size, size))
    assert out.shape == (2, 37)
    assert torch.isfinite(out).all()


def test_split_classifier_matches_the_whole_model_and_refuses_layers_after_the_head():
    from torch import nn

    from slcbench.models import split_classifier

    torch.manual_seed(3)
    model = build_model(resolve_arch("resnet18"), CPU)
    probe = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        expected = model(probe)
    trunk, head = split_classifier(model, probe)
    with torch.inference_mode():
        torch.testing.assert_close(head(trunk(probe)), expected)

    after_head = nn.Sequential(nn.Flatten(), nn.Linear(12, 1000), nn.Softmax(dim=1))
    with pytest.raises(SlcbenchError, match="not the model's last operation"):
        split_classifier(after_head, torch.randn(2, 3, 2, 2))
    assert isinstance(after_head[1], nn.Linear)  # left intact after the refusal


class _AfterTheHead(torch.nn.Module):
    """A model that computes something after its classifier: the split must be refused."""

    def __init__(self, inner: torch.nn.Module, scale: float) -> None:
        super().__init__()
        self.inner, self.scale = inner, scale

    def forward(self, x):
        return -self.scale * self.inner(x).flip(1)


@pytest.mark.parametrize("logit_scale", [1e-14, 0.0])
def test_split_refuses_layers_after_the_head_even_when_untrained_logits_are_tiny_or_zero(logit_scale):
    # Untrained efficientnet gives logits of ~1e-14 and vit_b_16 starts with a zero head: a check
    # of values with an absolute tolerance would accept any operation after the head.
    from torch import nn

    from slcbench.models import split_classifier

    features = nn.Sequential(nn.Flatten(), nn.Linear(12, 16))
    head = nn.Linear(16, 1000)
    with torch.no_grad():
        head.weight.mul_(logit_scale)
        head.bias.zero_()
    model = _AfterTheHead(nn.Sequential(features, head), scale=100.0).eval()
    with pytest.raises(SlcbenchError, match="not the model's last operation"):
        split_classifier(model, torch.randn(2, 3, 2, 2))
    assert model.inner[1] is head  # restored
    plain = nn.Sequential(features, head).eval()
    trunk, found = split_classifier(plain, torch.randn(2, 3, 2, 2))
    assert found is head and isinstance(trunk[1], nn.Identity)


def test_native_resolutions():
    assert resolve_arch("inception_v3").input_size == 299
    assert resolve_arch("resnet50").input_size == 224
    assert resolve_arch("timm:convnext_tiny").input_size == 224


def test_unknown_architecture_lists_choices():
    with pytest.raises(SlcbenchError, match="alexnet, vgg16, inception_v3, resnet50, resnet101"):
        resolve_arch("resnet5000")
    with pytest.raises(SlcbenchError, match="unknown timm model"):
        resolve_arch("timm:no_such_model")


def test_convolutional_head_is_refused_clearly():
    model = build_model(resolve_arch("squeezenet1_0"), CPU)
    with pytest.raises(SlcbenchError, match="no single nn.Linear classification layer"):
        find_classifier(model)


# ---- query mode ----------------------------------------------------------------------------------

@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs CUDA"))])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
def test_query_logit_equals_the_full_forward_column(device, dtype):
    torch.manual_seed(1)
    device = torch.device(device)
    full = make_head(64, 5000, device, dtype)
    features = torch.randn(16, 64, device=device, dtype=dtype)
    query = torch.randint(0, 5000, (16,))
    with torch.inference_mode():
        expected = full(features).gather(1, query.to(device).unsqueeze(1))
        got = QueryHead(full, query)(features)
    assert got.shape == (16, 1)
    if dtype in (torch.bfloat16, torch.float16) and device.type == "cpu":
        # One float32 accumulation and one rounding, like nn.Linear: bit for bit on the CPU.
        assert torch.equal(got, expected)
    elif dtype in (torch.bfloat16, torch.float16):
        torch.testing.assert_close(got, expected)  # GPU kernels may sum in another order: dtype's tolerance
    else:
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert QueryHead(full, query).weight.data_ptr() == full.weight.data_ptr()  # shares, never copies


def test_query_mode_inside_a_real_model_matches_full_model():
    torch.manual_seed(2)
    model = build_model(resolve_arch("resnet18"), CPU)
    path, old = find_classifier(model)
    full = make_head(old.in_features, 3000, CPU, torch.float32)
    x = torch.randn(3, 3, 64, 64)
    query = torch.tensor([0, 2999, 1234])
    with torch.inference_mode():
        replace_classifier(model, path, full)
        all_logits = model(x)
        replace_classifier(model, path, QueryHead(full, query))
        single = model(x)
    torch.testing.assert_close(single[:, 0], all_logits[torch.arange(3), query], rtol=1e-5, atol=1e-5)


# ---- timing loop ---------------------------------------------------------------------------------

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


def test_count_only_warm_up_makes_exactly_its_calls_and_samples_are_per_call():
    clock = FakeClock([9.0, 9.0, 0.001, 0.002, 0.004, 0.003])
    warm = warm_up(clock.advance, clock, WarmupPlan(calls=2))
    assert (warm.calls, warm.call_ms, warm.settled) == (2, pytest.approx(9000.0), None)
    m = sample_calls(clock.advance, samples=4, clock=clock)
    assert clock.calls == 6
    assert m.samples_ms == pytest.approx((1.0, 2.0, 4.0, 3.0))
    assert m.median == pytest.approx(2.5)
    assert m.min == pytest.approx(1.0)
    assert m.q1 == pytest.approx(1.75) and m.q3 == pytest.approx(3.25)
    assert m.iqr_pct == pytest.approx(100 * 1.5 / 2.5)


def test_no_warm_up_asked_makes_no_calls():
    clock = FakeClock([])
    assert warm_up(clock.advance, clock, WarmupPlan()) == Warmup(calls=0, seconds=pytest.approx(0.0, abs=0.1))
    assert clock.calls == 0


def test_warm_up_goes_on_until_the_time_per_call_is_steady():
    # 2 ms per call, easing to 1 ms by the 300th call (a clock that settles), then steady.
    clock = FakeClock(lambda i: 1e-3 * (1 + max(0, 300 - i) / 300))
    plan = WarmupPlan(calls=20, settle_pct=0.5, max_s=60.0, window_ms=50.0)
    warm = warm_up(clock.advance, clock, plan)
    assert warm.settled is True
    assert warm.call_ms == pytest.approx(1.0)
    # Windows of 25-50 calls: it stops once two windows' medians lie past the drift, not before.
    assert 300 <= warm.calls <= 300 + 3 * 50
    assert clock.calls == warm.calls


def test_warm_up_that_never_settles_stops_at_its_limit_and_says_so():
    import random

    jitter = random.Random(0)
    clock = FakeClock(lambda i: 1e-3 * (1 + jitter.random()))  # 1-2 ms, no two windows' medians equal
    plan = WarmupPlan(settle_pct=1e-9, max_s=0.05, window_ms=10.0)
    warm = warm_up(clock.advance, clock, plan)
    assert warm.settled is False and warm.calls > 0 and warm.seconds >= 0.05


@pytest.mark.parametrize(
    "call_ms, min_sample_ms, expected",
    [(0.47, 5.0, 11), (1.38, 5.0, 4), (5.2, 5.0, 1), (5.0, 5.0, 1), (1e-6, 5.0, 1000), (None, 5.0, 1), (1.0, 0.0, 1)],
)
def test_calls_per_sample_reaches_the_minimum_sample_time(call_ms, min_sample_ms, expected):
    assert calls_per_sample(call_ms, min_sample_ms) == expected


def test_unrolled_samples_are_divided_into_per_call_times():
    clock = FakeClock([0.004, 0.008])  # two runs of 4 calls each
    m = sample_calls(clock.advance, samples=2, clock=clock, calls_per_run=4)
    assert m.samples_ms == pytest.approx((1.0, 2.0)) and m.calls_per_sample == 4


def _fake_graphs(monkeypatch, clock, replay_s):
    """CPU stand-ins for the CUDA path: ``clock`` for the events, and a capture whose replay of
    ``calls`` unrolled calls advances the clock by ``replay_s(calls)``. Returns the captured sizes."""
    import slcbench.timing as timing

    captured = []

    def fake_capture(run, *, calls=1, warmup=3):
        captured.append(calls)

        def replay():
            clock.now += replay_s(calls)
            clock.calls += 1

        return replay

    monkeypatch.setattr(timing, "clock_for", lambda device: clock)
    monkeypatch.setattr(timing, "capture_cuda_graph", fake_capture)
    return captured


def test_graph_timing_unrolls_short_calls_to_the_minimum_sample_time(monkeypatch):
    from slcbench.timing import time_callable

    call_s = 2.0**-11  # 0.48828125 ms: exact in binary, so the sizes below are exact
    clock = FakeClock([])
    captured = _fake_graphs(monkeypatch, clock, lambda calls: calls * call_s)
    plan = WarmupPlan(calls=20, settle_pct=0.5, max_s=60.0, window_ms=20.0)
    m = time_callable(lambda: None, device=torch.device("cuda"), samples=10, warmup=plan,
                      use_graph=True, min_sample_ms=10 * call_s * 1e3)
    assert captured == [1, 10]  # one call to measure it, then 10 unrolled: one sample = the minimum
    assert m.calls_per_sample == 10 and m.samples_ms == pytest.approx((call_s * 1e3,) * 10)
    # Warm-up: 8 probe replays of each graph, then the plan on the timed graph, which settles.
    assert m.warmup.settled is True and m.warmup.call_ms == pytest.approx(call_s * 1e3)
    assert m.warmup.calls >= 8 + 8 * 10 + 20


def test_graph_timing_of_calls_shorter_than_a_launch_still_reaches_the_minimum_sample_time(monkeypatch):
    """A 7.6 us call replayed alone is timed at the 30.5 us launch rate; the graph is re-sized until
    one replay (calls x 7.6 us, once more than a launch) really lasts the minimum sample time."""
    from slcbench.timing import time_callable

    launch_s, call_s = 2.0**-15, 2.0**-17  # exact in binary, so the sizes below are exact
    clock = FakeClock([])
    captured = _fake_graphs(monkeypatch, clock, lambda calls: max(launch_s, calls * call_s))
    min_sample_ms = 2.0**-8 * 1e3  # 3.90625 ms
    m = time_callable(lambda: None, device=torch.device("cuda"), samples=5, warmup=WarmupPlan(calls=2),
                      use_graph=True, min_sample_ms=min_sample_ms)
    assert captured == [1, 128, 512]  # sized by the launch rate first (too short), then by the call
    assert m.calls_per_sample == 512 and m.median * m.calls_per_sample == pytest.approx(min_sample_ms)
    assert m.median == pytest.approx(call_s * 1e3)


def test_warm_up_reads_the_clock_once_per_decision(monkeypatch):
    """The count is met and the time floor passes between two clock readings: the next window must
    still make a call (it once made none and took the median of nothing)."""
    import slcbench.timing as timing

    readings = iter([0.0, 0.0, 0.0199999, 0.0200001] + [0.0200002] * 100)
    monkeypatch.setattr(timing.time, "perf_counter", lambda: next(readings))
    clock = FakeClock(lambda i: 1e-3)
    warm = warm_up(clock.advance, clock, WarmupPlan(calls=3, min_s=0.02))
    assert warm.calls == 4 and clock.calls == 4  # 3 owed calls, then 1 call for the last 0.1 us owed


def test_a_settling_warm_up_needs_a_time_limit():
    with pytest.raises(ValueError, match="max_s"):
        WarmupPlan(settle_pct=0.5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_graph_timing_of_a_short_kernel_on_cuda():
    from slcbench.timing import time_callable

    a = torch.randn(256, 256, device="cuda")
    m = time_callable(lambda: a @ a, device=torch.device("cuda"), samples=20,
                      warmup=WarmupPlan(calls=5, settle_pct=1.0, max_s=2.0), use_graph=True, min_sample_ms=1.0)
    assert m.calls_per_sample > 1 and len(m.samples_ms) == 20
    assert 0 < m.median < 1.0 and m.warmup.calls >= 5
    assert m.median * m.calls_per_sample >= 0.9  # one sample lasts about the minimum, launch-bound or not


def test_measurement_statistics_against_numpy():
    import numpy as np

    samples = tuple(float(x) for x in np.random.default_rng(0).gamma(5.0, size=101))
    m = Measurement(samples)
    assert m.median == pytest.approx(np.median(samples))
    assert m.p90 == pytest.approx(np.percentile(samples, 90))
    with pytest.raises(ValueError):
        Measurement(())


# ---- the sweep on the CPU ------------------------------------------------------------------------

def _tiny_config(**overrides):
    settings = dict(
        archs=(resolve_arch("resnet18"),), classes=(1, 1000), device=CPU,
        protocol=Protocol("test", batch_size=2, batches=2, warmup=0), query=True,
    )
    settings.update(overrides)
    return SpeedConfig(**settings)


def test_run_speed_on_cpu_yields_every_row_with_speedups():
    rows = list(run_speed(_tiny_config()))
    assert [(r.classes, r.head) for r in rows] == [(1, "full"), (1000, "full"), (1000, "query")]
    assert all(r.status == "ok" and r.timing == "eager" and len(r.samples_ms) == 2 for r in rows)
    assert rows[0].speedup == 1.0
    assert rows[1].speedup == pytest.approx(rows[1].batch_ms / rows[0].batch_ms)
    assert rows[1].head_bytes == (512 * 1000 + 1000) * 4
    assert rows[1].example_ms == pytest.approx(rows[1].batch_ms / 2)


def test_rows_record_what_warm_up_did_and_how_samples_were_taken():
    protocol = Protocol("test", batch_size=2, batches=3, warmup=2, settle_pct=50.0, max_warmup_s=5.0, min_sample_ms=9.0)
    rows = list(run_speed(_tiny_config(protocol=protocol, query=False)))
    for row in rows:
        # CPU timing: one call per sample and no settling, whatever the protocol says (graph timing only).
        assert row.calls_per_sample == 1 and row.settled is None
        assert row.warmup_calls == 2 and row.warmup_s > 0
        json.dumps(row.to_dict(), allow_nan=False)


def test_spread_and_settling_are_reported_against_their_targets():
    from slcbench.reporting import sampling_summary, spread_notes
    from slcbench.speed import SpeedRow

    def row(timing, iqr_pct, settled):
        return SpeedRow(arch="a", classes=1, head="full", precision="fp32", timing=timing, channels_last=False,
                        compiled=False, batch_size=1, device="cuda", iqr_pct=iqr_pct, settled=settled)

    rows = [row("graph", 0.9, True), row("graph", 1.2, True), row("eager", 3.0, None), row("graph", 0.1, False)]
    assert spread_notes(rows, 2.0) == [
        "1 row(s) have an IQR above 1% (graph) of their median (yellow)",
        "1 row(s) did not reach a steady time per call within 2 s of warm-up ('settled' is false in the results); "
        "their times may drift",
    ]
    assert spread_notes(rows[:1], 2.0) == []
    from rich.console import Console

    from slcbench.reporting import speed_table

    def rendered(table_rows):
        console = Console(width=200, record=True)
        console.print(speed_table(table_rows, title="t"))
        return console.export_text()

    assert "batches/sample" not in rendered(rows)  # every sample one batch: no column
    rows[0].calls_per_sample = 7
    assert "batches/sample" in rendered(rows)
    assert sampling_summary(_tiny_config()) == "2 timed batches (warm-up: the untimed first call of each row)"
    from slcbench.paper import PAPER_PROTOCOL

    config = _tiny_config(protocol=PAPER_PROTOCOL)
    # Eager (CPU) timing: one batch per sample, and no waiting for a steady time (host jitter need not settle).
    assert sampling_summary(config) == "100 timed batches (≥ 20 warm-up calls, ≥ 0.3 s)"
    assert config.settings()["min_sample_ms"] == 0.0 and config.settings()["settle_pct"] is None
    graph = SpeedConfig(archs=config.archs, classes=(1,), device=torch.device("cuda"), protocol=PAPER_PROTOCOL)
    assert sampling_summary(graph) == ("100 samples of ≥ 3 ms (batches unrolled in the graph) "
                                       "(≥ 20 warm-up calls, ≥ 0.3 s, until steady within 0.25% (≤ 2 s))")
    assert graph.settings()["min_sample_ms"] == 3.0 and graph.settings()["settle_pct"] == 0.25


def test_failed_architecture_keeps_its_rows(monkeypatch):
    import slcbench.speed as speed_module

    def broken(*_args, **_kwargs):
        raise RuntimeError("CUDA out of memory. Tried to allocate 6 GiB")

    monkeypatch.setattr(speed_module, "make_head", broken)
    rows = list(run_speed(_tiny_config(query=False)))
    assert [(r.classes, r.status) for r in rows] == [(1, "oom"), (1000, "oom")]
    assert "out of memory" in rows[0].error


def test_an_architecture_that_cannot_be_built_keeps_all_its_rows(monkeypatch):
    import slcbench.speed as speed_module

    def broken(*_args, **_kwargs):
        raise ValueError("no such weights")

    monkeypatch.setattr(speed_module, "build_model", broken)
    rows = list(run_speed(_tiny_config()))
    assert [(r.classes, r.head, r.status) for r in rows] == [(1, "full", "failed"), (1000, "full", "failed"),
                                                              (1000, "query", "failed")]
    assert rows[0].error == "ValueError: no such weights"


def _query_head_that_runs(forward):
    """A stand-in for QueryHead (same constructor) whose forward pass is ``forward()``."""

    class StandIn(torch.nn.Module):
        def __init__(self, *_args):
            super().__init__()

        def forward(self, _features):
            return forward()

    return StandIn


def test_a_failing_query_row_keeps_the_full_row_of_its_class_count(monkeypatch):
    import slcbench.speed as speed_module

    def forward():
        raise RuntimeError("CUDA out of memory. Tried to allocate 1 GiB")

    monkeypatch.setattr(speed_module, "QueryHead", _query_head_that_runs(forward))
    rows = list(run_speed(_tiny_config()))
    assert [(r.classes, r.head, r.status) for r in rows] == [(1, "full", "ok"), (1000, "full", "ok"), (1000, "query", "oom")]
    assert rows[1].speedup is not None and rows[1].batch_ms > 0


def test_the_caller_does_not_run_in_the_sweeps_inference_mode_between_rows():
    rows = run_speed(_tiny_config(query=False))
    next(rows)
    assert not torch.is_inference_mode_enabled()
    assert not torch.zeros(1).is_inference()
    assert [r.classes for r in rows] == [1000]


def test_a_zero_median_has_no_spread_percentage_and_stays_valid_json():
    from slcbench.speed import SpeedRow
    from slcbench.timing import Measurement

    row = SpeedRow(arch="a", classes=1, head="full", precision="fp32", timing="eager", channels_last=False,
                   compiled=False, batch_size=1, device="cpu")
    row.record(Measurement((0.0, 0.0, 0.0)))
    assert row.iqr_pct is None
    json.dumps(row.to_dict(), allow_nan=False)


def test_tf32_on_cpu_is_refused_when_the_config_is_made():
    with pytest.raises(SlcbenchError, match="tf32"):
        _tiny_config(precision=Precision.tf32)


def test_cpu_default_protocol_is_labelled_not_paper():
    assert CPU_QUICK_PROTOCOL.name == "cpu-quick"


# ---- CLI -----------------------------------------------------------------------------------------

def test_cli_speed_writes_csv_and_json_and_never_overwrites(tmp_path):
    args = ["speed", "--arch", "resnet18", "--classes", "1,2^8", "--device", "cpu", "--batch-size", "2",
            "--batches", "2", "--warmup", "0", "--query", "-o", str(tmp_path / "out")]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    second = runner.invoke(app, args)
    assert second.exit_code == 0, second.output
    jsons = sorted((tmp_path / "out").glob("speed-*.json"))
    assert len(jsons) == 2 and len(list((tmp_path / "out").glob("speed-*.csv"))) == 2
    payload = json.loads(jsons[0].read_text())
    assert payload["kind"] == "slcbench.speed"
    assert payload["settings"]["batch_size"] == 2 and payload["settings"]["protocol"] == "cpu-quick+custom"
    assert payload["settings"]["settle_pct"] is None and payload["settings"]["min_sample_ms"] == 0.0
    assert all(r["calls_per_sample"] == 1 and r["warmup_calls"] == 0 for r in payload["rows"])
    assert payload["environment"]["torch"] == torch.__version__
    assert [(r["classes"], r["head"]) for r in payload["rows"]] == [(1, "full"), (256, "full"), (256, "query")]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--arch", "resnet5000"], "unknown architecture 'resnet5000'; choose from alexnet"),
        (["--classes", "2^x"], "malformed class count '2^x'"),
        (["--batch-size", "0"], "--batch-size must be positive"),
        (["--batches", "-1"], "--batches must be positive"),
        (["--device", "cuda"], "no CUDA device"),
        (["--precision", "tf32"], "--precision tf32 needs a CUDA device"),
        (["--min-sample-ms", "-1"], "--min-sample-ms must be between 0 and 1000, got -1"),
        (["--min-sample-ms", "nan"], "--min-sample-ms must be between 0 and 1000, got nan"),
    ],
)
def test_cli_speed_errors_are_one_line(args, message, tmp_path):
    if "--device" in args and torch.cuda.is_available():
        pytest.skip("CUDA present")
    result = runner.invoke(app, ["speed", "--device", "cpu", "-o", str(tmp_path), *args] if "--device" not in args
                           else ["speed", "-o", str(tmp_path), *args])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.output and result.stdout == ""  # refused before the run header
    assert not list(tmp_path.glob("speed-*"))


def test_plot_without_matplotlib_is_refused_before_the_sweep(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes ``import matplotlib`` raise ImportError
    result = runner.invoke(app, ["speed", "--device", "cpu", "--arch", "resnet18", "--plot", "-o", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == ["slcbench: error: --plot needs matplotlib: pip install 'slcbench[plot]'"]
    assert result.stdout == "" and not list(tmp_path.iterdir())


def test_an_out_of_memory_hidden_behind_a_failed_graph_capture_is_still_oom(monkeypatch):
    import slcbench.speed as speed_module

    def capture_invalidated():
        # What torch.cuda.graph does when an allocation fails inside capture: leaving the context
        # raises its own error while the OOM is being handled.
        try:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        except torch.OutOfMemoryError:
            raise RuntimeError("CUDA error: operation failed due to a previous error during capture")

    monkeypatch.setattr(speed_module, "QueryHead", _query_head_that_runs(capture_invalidated))
    rows = list(run_speed(_tiny_config()))
    query = [r for r in rows if r.head == "query"]
    assert [(r.classes, r.status) for r in query] == [(1000, "oom")]
    assert query[0].error == "OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"


def test_a_failure_with_no_out_of_memory_behind_it_stays_failed(monkeypatch):
    import slcbench.speed as speed_module

    def broken():
        try:
            raise ValueError("bad shape")
        except ValueError as exc:
            raise RuntimeError("capture failed") from exc

    monkeypatch.setattr(speed_module, "QueryHead", _query_head_that_runs(broken))
    query = [r for r in run_speed(_tiny_config()) if r.head == "query"]
    assert [(r.status, r.error) for r in query] == [("failed", "RuntimeError: capture failed")]
