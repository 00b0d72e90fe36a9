"""The speed sweep on the CPU: every row, speedups, what warm-up did, and failures that keep their rows."""

import json
import time
from dataclasses import replace

import numpy as np
import pytest
import torch

from slcbench.errors import SlcbenchError
from slcbench.results import Head, Measurement, SpeedRow, Status, Timing
from slcbench.speed.architectures import resolve_arch
from slcbench.speed.config import Precision, SpeedConfig
from slcbench.speed.nvml import NvmlGpu
from slcbench.speed.protocol import CPU_QUICK_PROTOCOL, Protocol
from slcbench.speed.sweep import SweepParts, measure_rows
from slcbench.speed.timing import HostClock, Sustained, Timer
from tests.speed.nvml_stand_in import StandInNvml, constant, energy_counter

TINY = "python:tests.speed.models:tiny_cnn"


def tiny_config(**overrides):
    settings = dict(
        archs=(resolve_arch(TINY),),
        classes=(1, 1000),
        device="cpu",
        protocol=Protocol("test", batch_size=2, batches=2, warmup=0),
        query=True,
    )
    settings.update(overrides)
    return SpeedConfig(**settings)


def test_rows_on_cpu_come_with_every_head_and_speedups():
    rows = list(measure_rows(tiny_config()))
    assert [(r.classes, r.head) for r in rows] == [
        (1, "full"),
        (1000, "full"),
        (1000, "query"),
        (1000, "full-gather"),
        (1000, "adaptive-softmax"),
    ]
    assert all(r.status is Status.ok and r.timing is Timing.eager for r in rows)
    # No NVML on the CPU: every GPU field is null.
    assert all(r.sm_clock_mhz is None and r.throttle_reasons is None and r.flagged is None for r in rows)
    assert all(r.energy_mj_per_batch is None and r.energy_ratio is None for r in rows)
    # The k=1 reference: its 2 samples; the others: 6 A-B-B-A blocks against it, 12 samples a side.
    assert (len(rows[0].samples_ms), rows[0].speedup, rows[0].speedup_ci) == (2, 1.0, [1.0, 1.0])
    for row in rows[1:]:
        assert (len(row.samples_ms), len(row.reference_samples_ms), row.blocks) == (12, 12, 6)
        a, b = np.array(row.reference_samples_ms), np.array(row.samples_ms)
        ratios = (b[0::2] + b[1::2]) / (a[0::2] + a[1::2])
        np.testing.assert_allclose(row.ratio_samples, ratios)
        assert row.speedup == pytest.approx(np.median(ratios))
        assert row.speedup_ci == [min(ratios), max(ratios)]  # 6 blocks: the 95% interval is the range
        assert row.batch_ms_ci[0] <= row.batch_ms <= row.batch_ms_ci[1] and row.converged is None
    assert rows[1].head_bytes == (512 * 1000 + 1000) * 4
    assert rows[1].example_ms == pytest.approx(rows[1].batch_ms / 2)
    assert all(r.head_ms is None for r in rows[2:])  # the head alone is timed for the k-unit head only


def test_a_padded_head_is_timed_beside_the_unpadded_one_where_k_is_not_a_multiple():
    config = tiny_config(classes=(1, 1000, 1001), query=False, pad_head=8)
    assert config.heads == {1: (Head.full,), 1000: (Head.full,), 1001: (Head.full, Head.padded)}
    rows = list(measure_rows(config))
    padded = rows[-1]
    assert (padded.classes, padded.head, padded.padded_to) == (1001, "padded", 1008)
    assert padded.head_bytes == (512 * 1008 + 1008) * 4 and padded.head_ms > 0 and padded.speedup > 0
    assert rows[-2].padded_to is None


def stand_in_gpu(**scripts):
    # Read every millisecond: the tiny model's rows last a few milliseconds without an energy window.
    return SweepParts(open_gpu=lambda _device: NvmlGpu(StandInNvml(**scripts), "gpu0"), sample_interval_s=0.001)


class SteadyWindow(Timer):
    """A CPU timer whose energy window is known: it lasts ``seconds`` and holds 1000 calls."""

    def sustain(self, run, *, seconds, call_ms, use_graph, min_sample_ms=0.0):
        start = self.now()
        time.sleep(seconds)
        return Sustained(start_s=start, end_s=self.now(), calls=1000, device_ms=seconds * 1e3)


def test_rows_record_what_a_stand_in_gpu_reported_and_their_energy():
    start = time.perf_counter()
    parts = replace(
        stand_in_gpu(sm_mhz=constant(1980), energy_mj=energy_counter(250.0, 0.02, start)),
        timer_for=lambda _device: SteadyWindow(HostClock()),
    )
    rows = list(measure_rows(tiny_config(query=False, energy_window_s=0.4), parts=parts))
    for row in rows:
        assert (row.sm_clock_mhz, row.sm_clock_min_mhz, row.sm_clock_moved_pct) == (1980, 1980, 0.0)
        assert (row.memory_clock_mhz, row.temperature_c, row.power_w) == (2619, 40, 300.0)
        assert row.throttle_reasons == [] and row.flagged is False and row.gpu_samples >= 10
        # The counter adds 250 W in 20 ms steps; the fit over the window's updates recovers it.
        assert row.avg_power_w == pytest.approx(250.0, rel=0.05) and 0.24 <= row.energy_window_s <= 0.5
        assert row.energy_mj_per_batch == pytest.approx(row.avg_power_w * 0.4)  # W x (400 ms / 1000 calls)
        json.dumps(row.to_dict(), allow_nan=False)
    assert rows[0].energy_ratio is None
    assert rows[1].energy_ratio == pytest.approx(rows[1].energy_mj_per_batch / rows[0].energy_mj_per_batch)


def test_a_throttling_gpu_flags_every_row_and_no_energy_is_read_without_a_window():
    parts = stand_in_gpu(reasons=constant(0x4))  # sw_power_cap throughout
    rows = list(measure_rows(tiny_config(query=False), parts=parts))
    assert all(r.throttle_reasons == ["sw_power_cap"] and r.flagged is True for r in rows)
    assert all(r.energy_mj_per_batch is None and r.avg_power_w is None for r in rows)


def test_each_row_is_announced_before_it_is_measured():
    started = []
    rows = list(measure_rows(tiny_config(), on_start=lambda row: started.append((row.classes, row.head))))
    assert started == [(r.classes, r.head) for r in rows]


def test_rows_record_what_warm_up_did_and_how_samples_were_taken():
    protocol = Protocol("test", batch_size=2, batches=3, warmup=2, settle_pct=50.0, max_warmup_s=5.0, min_sample_ms=9.0)
    for row in measure_rows(tiny_config(protocol=protocol, query=False)):
        # CPU timing: one call per sample and no settling, whatever the protocol says (graph timing only).
        assert row.calls_per_sample == 1 and row.settled is None
        # The k=1 row warms up alone (2 calls); a paired row warms up 2 pairs of calls.
        assert row.warmup_calls == 2 and row.warmup_s > 0
        json.dumps(row.to_dict(), allow_nan=False)


def _broken(message, error=RuntimeError):
    def build(*_args, **_kwargs):
        raise error(message)

    return build


def test_a_head_that_cannot_be_made_keeps_its_rows_as_out_of_memory():
    parts = SweepParts(make_head=_broken("CUDA out of memory. Tried to allocate 6 GiB"))
    rows = list(measure_rows(tiny_config(query=False), parts=parts))
    assert [(r.classes, r.status) for r in rows] == [(1, "oom"), (1000, "oom")]
    assert "out of memory" in rows[0].error


def test_an_architecture_that_cannot_be_built_keeps_all_its_rows():
    rows = list(measure_rows(tiny_config(), parts=SweepParts(build_model=_broken("no such weights", ValueError))))
    assert [(r.classes, r.head, r.status) for r in rows] == [
        (1, "full", "failed"),
        (1000, "full", "failed"),
        (1000, "query", "failed"),
        (1000, "full-gather", "failed"),
        (1000, "adaptive-softmax", "failed"),
    ]
    assert rows[0].error == "ValueError: no such weights"


def _query_head_that_runs(forward):
    """A stand-in for QueryHead (same constructor) whose forward pass is ``forward()``."""

    class StandIn(torch.nn.Module):
        def __init__(self, *_args):
            super().__init__()

        def forward(self, _features):
            return forward()

    return StandIn


def test_a_failing_query_row_keeps_the_full_row_of_its_class_count():
    parts = SweepParts(query_head=_query_head_that_runs(_broken("CUDA out of memory. Tried to allocate 1 GiB")))
    rows = list(measure_rows(tiny_config(), parts=parts))
    assert [(r.classes, r.head, r.status) for r in rows] == [
        (1, "full", "ok"),
        (1000, "full", "ok"),
        (1000, "query", "oom"),
        (1000, "full-gather", "oom"),
        (1000, "adaptive-softmax", "oom"),
    ]
    assert rows[1].speedup is not None and rows[1].batch_ms > 0


def test_an_out_of_memory_hidden_behind_a_failed_graph_capture_is_still_oom():
    def capture_invalidated():
        # What torch.cuda.graph does when an allocation fails inside capture: leaving the context
        # raises its own error while the OOM is being handled.
        try:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        except torch.OutOfMemoryError:
            raise RuntimeError("CUDA error: operation failed due to a previous error during capture")  # noqa: B904

    rows = list(measure_rows(tiny_config(), parts=SweepParts(query_head=_query_head_that_runs(capture_invalidated))))
    query = [r for r in rows if r.head is Head.query]
    assert [(r.classes, r.status) for r in query] == [(1000, "oom")]
    assert query[0].error == "OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"


def test_a_failure_with_no_out_of_memory_behind_it_stays_failed():
    def broken():
        try:
            raise ValueError("bad shape")
        except ValueError as exc:
            raise RuntimeError("capture failed") from exc

    rows = measure_rows(tiny_config(), parts=SweepParts(query_head=_query_head_that_runs(broken)))
    query = [r for r in rows if r.head is Head.query]
    assert [(r.status, r.error) for r in query] == [("failed", "RuntimeError: capture failed")]


def test_the_caller_does_not_run_in_the_sweeps_inference_mode_between_rows():
    rows = measure_rows(tiny_config(query=False))
    next(rows)
    assert not torch.is_inference_mode_enabled()
    assert not torch.zeros(1).is_inference()
    assert [r.classes for r in rows] == [1000]


def test_a_zero_median_has_no_spread_percentage_and_stays_valid_json():
    row = SpeedRow(
        arch="a",
        classes=1,
        head=Head.full,
        precision="fp32",
        timing=Timing.eager,
        channels_last=False,
        compiled=False,
        batch_size=1,
        device="cpu",
    )
    row.record(Measurement((0.0, 0.0, 0.0)))
    assert row.iqr_pct is None
    json.dumps(row.to_dict(), allow_nan=False)


def test_tf32_on_cpu_is_refused_when_the_config_is_made():
    with pytest.raises(SlcbenchError, match="tf32"):
        tiny_config(precision=Precision.tf32)


def test_cpu_default_protocol_is_labelled_not_paper():
    assert CPU_QUICK_PROTOCOL.name == "cpu-quick"
    assert (
        CPU_QUICK_PROTOCOL.customised(batch_size=None, batches=None, warmup=None, min_sample_ms=None)
        == CPU_QUICK_PROTOCOL
    )
    custom = CPU_QUICK_PROTOCOL.customised(batch_size=2, batches=None, warmup=None, min_sample_ms=None)
    assert (custom.name, custom.batch_size, custom.batches) == ("cpu-quick+custom", 2, CPU_QUICK_PROTOCOL.batches)
