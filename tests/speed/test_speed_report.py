"""What a person sees of a speed run: sampling summary, notes against spread targets, the table's columns."""

from rich.console import Console

from slcbench.results import Head, SpeedRow, Timing
from slcbench.speed.architectures import resolve_arch
from slcbench.speed.config import SpeedConfig
from slcbench.speed.protocol import PAPER_PROTOCOL, Protocol
from slcbench.speed.report import gpu_note, gpu_notes, sampling_summary, speed_table, spread_notes


def row(timing, iqr_pct, settled):
    return SpeedRow(
        arch="a",
        classes=1,
        head=Head.full,
        precision="fp32",
        timing=timing,
        channels_last=False,
        compiled=False,
        batch_size=1,
        device="cuda",
        iqr_pct=iqr_pct,
        settled=settled,
    )


def rendered(table_rows):
    console = Console(width=200, record=True)
    console.print(speed_table(table_rows, title="t"))
    return console.export_text()


def test_spread_and_settling_are_reported_against_their_targets():
    rows = [
        row(Timing.graph, 0.9, True),
        row(Timing.graph, 1.2, True),
        row(Timing.eager, 3.0, None),
        row(Timing.graph, 0.1, False),
    ]
    assert spread_notes(rows, 2.0) == [
        "1 row(s) have an IQR above 1% (graph) of their median (yellow)",
        "1 row(s) did not reach a steady time per call within 2 s of warm-up ('settled' is false in the results); "
        "their times may drift",
    ]
    assert spread_notes(rows[:1], 2.0) == []
    assert "batches/sample" not in rendered(rows)  # every sample one batch: no column
    rows[0].calls_per_sample = 7
    assert "batches/sample" in rendered(rows)


def test_speedup_intervals_show_in_the_table_and_wide_ones_are_flagged():
    rows = [row(Timing.eager, 1.0, None), row(Timing.eager, 1.0, None)]
    rows[0].speedup, rows[0].speedup_ci = 1.0, [1.0, 1.0]
    rows[1].speedup, rows[1].speedup_ci, rows[1].speedup_half_width_pct = 2.5, [2.3, 2.6], 8.0
    rows[1].converged = False
    text = rendered(rows)
    assert "95% CI" in text and "2.30–2.60" in text and "1.00–1.00" in text
    notes = spread_notes(rows, 2.0)
    assert any("1 row(s) have a speedup interval wider than ±2%" in n for n in notes)
    assert any("1 row(s) ran out of their time budget" in n for n in notes)


def test_the_header_says_how_rows_are_sampled():
    archs = (resolve_arch("resnet18"),)
    quick = SpeedConfig(
        archs=archs, classes=(1,), device="cpu", protocol=Protocol("t", batch_size=2, batches=2, warmup=0)
    )
    assert sampling_summary(quick) == (
        "k=1: 2 timed batches; other rows: ≥ 6 A-B-B-A blocks against k=1 (warm-up: the untimed first call of each row)"
    )
    config = SpeedConfig(archs=archs, classes=(1,), device="cpu", protocol=PAPER_PROTOCOL)
    # Eager (CPU) timing: one batch per sample, and no waiting for a steady time (host jitter need not settle).
    assert sampling_summary(config) == (
        "k=1: 100 timed batches; other rows: ≥ 50 A-B-B-A blocks against k=1 (≥ 20 warm-up calls, ≥ 0.3 s)"
    )
    assert config.settings()["min_sample_ms"] == 0.0 and config.settings()["settle_pct"] is None
    graph = SpeedConfig(archs=archs, classes=(1,), device="cuda", protocol=PAPER_PROTOCOL)
    assert sampling_summary(graph) == (
        "k=1: 100 samples of ≥ 3 ms (batches unrolled in the graph); other rows: ≥ 50 A-B-B-A blocks against k=1 "
        "(≥ 20 warm-up calls, ≥ 0.3 s, until steady within 0.25% (≤ 2 s))"
    )
    assert graph.settings()["min_sample_ms"] == 3.0 and graph.settings()["settle_pct"] == 0.25


def test_flagged_rows_energy_and_padded_heads_show_in_the_table_and_notes():
    rows = [row(Timing.graph, 0.1, True), row(Timing.graph, 0.1, True), row(Timing.graph, 0.1, True)]
    rows[0].sm_clock_mhz, rows[0].flagged, rows[0].energy_mj_per_batch = 1980.0, False, 120.0
    rows[1].sm_clock_mhz, rows[1].flagged, rows[1].throttle_reasons = 1650.0, True, ["sw_power_cap"]
    rows[1].energy_mj_per_batch, rows[1].energy_ratio = 150.0, 1.25
    rows[2].head, rows[2].classes, rows[2].padded_to = Head.padded, 370727, 370728
    text = rendered(rows)
    assert "SM MHz" in text and "1980" in text and "1650 !" in text
    assert "mJ/batch" in text and "120.0" in text and "energy ratio" in text and "×1.25" in text
    assert "padded (370728)" in text and "2^18.5" in text
    state = {"nvml": True, "other_processes": [{"pid": 4242, "used_memory_mib": 900.0}], "energy_counter": True}
    assert gpu_notes(rows, state, energy_asked=True) == [
        "1 other process(es) were on the GPU at the start (pid 4242): rows may be slowed",
        "1 row(s) flagged (!): the SM clock moved more than 2% during the row, or the GPU throttled (sw_power_cap); "
        "'flagged' in the results",
    ]
    no_counter = {"nvml": True, "energy_counter": False}
    assert gpu_notes([], no_counter, energy_asked=True) == [
        "--energy: this GPU has no total-energy counter in NVML; the energy fields are null"
    ]
    assert gpu_notes([], no_counter, energy_asked=False) == []


def test_the_header_says_once_what_nvml_records():
    assert gpu_note({"nvml": False, "unavailable": "a CPU run"}) == (
        "no NVML (a CPU run): clock, throttle and energy fields are null"
    )
    state = {"nvml": True, "clocks_locked": False, "energy_counter": True, "other_processes": []}
    assert gpu_note(state) == "NVML: clocks not locked, energy counter"
    state.update(clocks_locked=None, energy_counter=False, other_processes=[{"pid": 1}])
    assert gpu_note(state) == (
        "NVML: clock lock unknown, no energy counter: energy fields are null · "
        "[bold yellow]1 other process(es) on the GPU[/]"
    )
