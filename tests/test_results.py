"""The results schema: a speed row's JSON object, read back as written, and the row identity."""

import pytest

from slcbench.results import SPEED_ROW_IDENTITY, Head, Measurement, SpeedRow, Status, Timing, Warmup


def measured_row(**overrides):
    identity = dict(arch="resnet50", classes=1024, head=Head.query, precision="bf16", timing=Timing.graph)
    identity.update(channels_last=True, compiled=False, batch_size=32, device="cuda")
    row = SpeedRow(**{**identity, **overrides})
    row.record(Measurement((2.0, 1.0, 3.0, 4.0), calls_per_sample=3, warmup=Warmup(20, 0.4, 1.0, True)))
    return row


def test_a_row_reads_back_as_it_was_written():
    row = measured_row(speedup=1.25)
    data = row.to_dict()
    assert list(data)[: len(SPEED_ROW_IDENTITY)] == list(SPEED_ROW_IDENTITY)
    assert (data["head"], data["timing"], data["status"]) == ("query", "graph", "ok")  # plain strings in JSON
    assert (data["batch_ms"], data["calls_per_sample"], data["warmup_calls"], data["settled"]) == (2.5, 3, 20, True)
    assert SpeedRow.from_dict(data) == row
    assert row.measurement == Measurement((2.0, 1.0, 3.0, 4.0), calls_per_sample=3)
    assert dict(row.identity())["head"] == "query"


def test_files_from_before_a_field_existed_and_malformed_optional_fields_still_load():
    data = measured_row().to_dict()
    del data["calls_per_sample"], data["settled"]
    data.update(head_ms="fast", peak_mem_mib=float("nan"), samples_ms=[1.0, "x"])
    row = SpeedRow.from_dict(data)
    assert row.calls_per_sample == 1  # one batch per sample before blocks existed
    assert (row.settled, row.head_ms, row.peak_mem_mib, row.samples_ms, row.measurement) == (None, None, None, [], None)


def test_the_gpu_fields_read_back_and_a_malformed_reason_list_is_null():
    row = measured_row(head=Head.adaptive_softmax, sm_clock_mhz=1980.0, throttle_reasons=["sw_power_cap"], flagged=True)
    row.energy_mj_per_batch, row.energy_ratio, row.padded_to = 120.5, 1.02, None
    data = row.to_dict()
    assert (data["head"], data["sm_clock_mhz"], data["throttle_reasons"]) == (
        "adaptive-softmax",
        1980.0,
        ["sw_power_cap"],
    )
    assert SpeedRow.from_dict(data) == row
    assert SpeedRow.from_dict({**data, "throttle_reasons": ["ok", 3]}).throttle_reasons is None
    assert SpeedRow.from_dict({**data, "throttle_reasons": "sw_power_cap"}).throttle_reasons is None
    old = {k: v for k, v in data.items() if k not in ("sm_clock_mhz", "throttle_reasons", "energy_ratio")}
    assert SpeedRow.from_dict(old).throttle_reasons is None  # files from before NVML fields


@pytest.mark.parametrize(
    "change, message",
    [
        ({"status": "exploded"}, "unknown status 'exploded'"),
        ({"head": "sideways"}, "unknown head 'sideways'"),
        ({"arch": ["a"]}, "non-scalar arch"),
        ({"batch_ms": 0}, "status ok but no positive batch_ms"),
    ],
)
def test_rows_that_cannot_be_used_are_named(change, message):
    with pytest.raises(ValueError, match=message):
        SpeedRow.from_dict({**measured_row().to_dict(), **change})
    data = measured_row().to_dict()
    del data["device"]
    with pytest.raises(ValueError, match="lacks device"):
        SpeedRow.from_dict(data)


def test_a_failed_row_needs_no_time():
    data = {**measured_row().to_dict(), "status": "oom", "batch_ms": None, "error": "out of memory"}
    assert SpeedRow.from_dict(data).status is Status.oom
