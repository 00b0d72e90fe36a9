"""What a person sees of a speed run: sampling summary, notes against spread targets, the table's columns."""

from rich.console import Console

from slcbench.results import Head, SpeedRow, Timing
from slcbench.speed.architectures import resolve_arch
from slcbench.speed.config import SpeedConfig
from slcbench.speed.protocol import PAPER_PROTOCOL, Protocol
from slcbench.speed.report import sampling_summary, speed_table, spread_notes


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
