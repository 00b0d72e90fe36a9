"""``slcbench compare``: thresholds, row matching, the statistical verdicts, exit codes, outputs, bad files.

Speed JSON fixtures are written from the schema of ``slcbench speed`` (``SpeedRow.to_dict``), with raw
samples drawn from known distributions; the pytest-benchmark file is produced by really running
pytest-benchmark on a tiny benchmark.
"""

import copy
import json
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from typer.testing import CliRunner

from slcbench.cli import app
from slcbench.compare.config import Basis, CompareConfig, parse_max_regression
from slcbench.compare.files import ComparedRow, ResultsFile, load_results
from slcbench.compare.run import run_compare as run_comparison
from slcbench.compare.verdicts import Method, Verdict, compare_results
from slcbench.errors import SlcbenchError
from slcbench.results import Head, Measurement, ResultsKind, SpeedRow, Status, Timing

runner = CliRunner()

# resnet50 on one GPU at three class counts: median batch times (ms) of a plausible run.
BATCH_MS = {1: 2.80, 1024: 2.84, 65536: 4.34}
ENVIRONMENT = {"device_name": "NVIDIA H100 80GB HBM3", "torch": "2.11.0+cu128", "driver": "570.1", "python": "3.12.3"}


def speed_row(classes, batch_ms, reference_ms, *, noise=0.002, blocks=10, seed=0, version=2):
    """A row as ``slcbench speed`` writes it (SpeedRow.to_dict), its samples drawn with ``noise`` (log sd)."""
    rng = np.random.default_rng(seed * 7919 + classes)
    row = SpeedRow(
        arch="resnet50",
        classes=classes,
        head=Head.full,
        precision="bf16",
        timing=Timing.graph,
        channels_last=True,
        compiled=False,
        batch_size=32,
        device="cuda",
    )
    times = batch_ms * rng.lognormal(0, noise, 2 * blocks)
    row.record(Measurement(tuple(times)))
    if classes == 1 or version == 1:
        row.speedup = 1.0 if classes == 1 else row.batch_ms / reference_ms
        return row.to_dict()
    reference = reference_ms * rng.lognormal(0, noise, 2 * blocks)
    ratios = list((times[0::2] + times[1::2]) / (reference[0::2] + reference[1::2]))
    row.speedup, row.ratio_samples, row.reference_samples_ms = float(np.median(ratios)), ratios, list(reference)
    return row.to_dict()


def speed_payload(batch_ms=None, *, device_name=ENVIRONMENT["device_name"], noise=0.002, seed=0, version=2, **env):
    batch_ms = dict(BATCH_MS if batch_ms is None else batch_ms)
    rows = [speed_row(k, ms, batch_ms[1], noise=noise, seed=seed, version=version) for k, ms in batch_ms.items()]
    if version == 1:
        for row in rows:
            row["samples_ms"] = []
    return {
        "kind": "slcbench.speed",
        "schema_version": version,
        "created": "2026-01-01T00:00:00+00:00",
        "command": "slcbench speed --arch resnet50 --classes 1,2^10,2^16",
        "environment": {**ENVIRONMENT, "device_name": device_name, **env},
        "settings": {
            "device": "cuda",
            "precision": "bf16",
            "timing": "graph",
            "batch_size": 32,
            "batches": 100,
            "warmup": 20,
            "channels_last": True,
            "compiled": False,
            "protocol": "paper",
        },
        "rows": rows,
    }


def write(path, payload):
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload))
    return path


def run_compare(*args):
    return runner.invoke(app, ["compare", *map(str, args)], env={"COLUMNS": "250"})


def compared(base, new, threshold="10%", basis=Basis.ratio):
    return run_comparison(CompareConfig(base, new, threshold, basis)).comparison


def by_classes(comparison):
    return {dict(row.key)["classes"]: row for row in comparison.rows}


def one_error_line(result):
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("slcbench: error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


# ---- threshold -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected", [("10%", 0.10), ("2.5%", 0.025), (" 0% ", 0.0), ("150%", 1.5), (".5%", 0.005)]
)
def test_threshold_is_a_percentage(text, expected):
    assert parse_max_regression(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["10", "0.1", "ten%", "", "10%%", "nan%", "inf%", "1e1%", "%", "１０%"])
def test_threshold_without_a_clear_percentage_is_rejected(text):
    with pytest.raises(SlcbenchError, match="percentage with a % sign"):
        parse_max_regression(text)


def test_negative_threshold_is_named_as_such():
    with pytest.raises(SlcbenchError, match="must not be negative"):
        parse_max_regression("-5%")


def test_bare_number_error_offers_both_readings():
    with pytest.raises(SlcbenchError, match=r"did you mean 0\.1% or 10%\?"):
        parse_max_regression("0.1")


def test_bad_threshold_exits_2_with_one_line(tmp_path):
    base = write(tmp_path / "a.json", speed_payload())
    result = run_compare(base, base, "--max-regression", "10")
    assert result.exit_code == 2
    assert "percentage" in one_error_line(result)


# ---- speed JSON ------------------------------------------------------------------------------


def test_identical_speed_files_pass(tmp_path):
    base = write(tmp_path / "base.json", speed_payload())
    new = write(tmp_path / "new.json", speed_payload())
    result = run_compare(base, new)
    assert result.exit_code == 0, result.output
    comparison = compared(base, new)
    assert [row.verdict for row in comparison.rows] == [Verdict.ok] * 3
    assert [row.main.change for row in comparison.rows] == [0.0, 0.0, 0.0]
    assert comparison.same_machine and "PASS: 0 of 3 matched rows regressed" in result.stdout


def test_a_row_20_percent_slower_fails_and_is_named(tmp_path):
    base = write(tmp_path / "base.json", speed_payload())
    new = write(tmp_path / "new.json", speed_payload({**BATCH_MS, 65536: BATCH_MS[65536] * 1.2}, seed=1))
    result = run_compare(base, new, "--max-regression", "10%")
    assert result.exit_code == 1, result.output
    assert "FAIL: 1 of 3 matched rows regressed beyond +10%: resnet50 k=2^16" in result.stdout
    rows = by_classes(compared(base, new))
    row = rows[65536]
    assert row.verdict is Verdict.regressed and row.main.basis is Basis.ratio and row.main.method is Method.samples
    assert row.main.change == pytest.approx(0.20, abs=0.01) and 0.15 < row.main.low < 0.2 < row.main.high < 0.25
    assert row.judged_on(Basis.time).verdict is Verdict.regressed  # one machine: its time is judged too
    assert rows[1].verdict is Verdict.ok and rows[1024].verdict is Verdict.ok
    # The same slowdown passes a looser threshold: the whole interval lies within 25%.
    assert run_compare(base, new, "--max-regression", "25%").exit_code == 0


def test_points_when_a_file_has_no_raw_samples_and_the_boundary_is_inclusive(tmp_path):
    base = write(tmp_path / "base.json", speed_payload({1: 1.0, 2: 1.0}, version=1, device_name="a"))
    exactly = write(tmp_path / "exactly.json", speed_payload({1: 1.0, 2: 1.1}, version=1, device_name="b"))
    above = write(tmp_path / "above.json", speed_payload({1: 1.0, 2: 1.101}, version=1, device_name="b"))
    row = by_classes(compared(base, exactly))[2]
    assert row.main.method is Method.point and "compared as points" in row.note
    assert run_compare(base, exactly, "--max-regression", "10%").exit_code == 0
    assert run_compare(base, above, "--max-regression", "10%").exit_code == 1


def test_a_uniform_slowdown_passes_on_the_ratio_and_is_reported_on_one_machine(tmp_path):
    slower = {k: ms * 1.3 for k, ms in BATCH_MS.items()}
    base = write(tmp_path / "base.json", speed_payload())
    # Another GPU: the ratios cancel its speed, the gate passes (and warns that the machines differ).
    other = write(tmp_path / "other.json", speed_payload(slower, device_name="NVIDIA A100-SXM4-40GB", seed=1))
    result = run_compare(base, other)
    assert result.exit_code == 0, result.output
    assert "device_name" in result.stderr and "PASS: 0 of 3 matched rows regressed" in result.stdout
    # The same machine 30% slower in every row: the ratios did not move, and the absolute time is reported.
    same = write(tmp_path / "same.json", speed_payload(slower, seed=1))
    result = run_compare(base, same)
    assert result.exit_code == 0 and "3 slower in absolute time (one machine)" in result.stdout
    assert "the absolute time of 3 row(s) whose ratio to k=1 is not regressed got slower" in result.stderr
    rows = by_classes(compared(base, same))
    assert rows[65536].verdict is Verdict.ok and rows[65536].judged_on(Basis.time).verdict is Verdict.regressed
    assert "absolute time regressed" in rows[65536].note
    assert rows[1].main.change == 0.0 and rows[1].judged_on(Basis.time).verdict is Verdict.regressed  # k=1
    by_time = run_compare(base, same, "--basis", "time")
    assert by_time.exit_code == 1 and "3 of 3 matched rows regressed" in by_time.stdout
    assert compared(base, same, basis=Basis.time).rows[2].main.change == pytest.approx(0.3, abs=0.01)


def test_rounds_in_folders_are_judged_as_rounds(tmp_path):
    (tmp_path / "base").mkdir(), (tmp_path / "new").mkdir(), (tmp_path / "slow").mkdir()
    for i in range(6):  # six rounds a side, each round's machine state 10% faster or slower at random
        rng = np.random.default_rng(i)
        for side, factor in (("base", 1.0), ("new", 1.0), ("slow", 2.0)):
            state = rng.lognormal(0, 0.1)
            times = {k: ms * state * (factor if k == 65536 else 1.0) for k, ms in BATCH_MS.items()}
            write(tmp_path / side / f"round-{i}.json", speed_payload(times, seed=10 * i + len(side)))
    same = compared(tmp_path / "base", tmp_path / "new")
    assert (same.baseline.rounds, same.new.rounds) == (6, 6)
    assert {row.main.method for row in same.rows} == {Method.rounds}
    assert Verdict.regressed not in {row.verdict for row in same.rows}
    slow = by_classes(compared(tmp_path / "base", tmp_path / "slow"))[65536]
    assert slow.verdict is Verdict.regressed and slow.main.samples == 6 and slow.main.change > 0.5
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "folder without .json results files" in one_error_line(run_compare(empty, tmp_path / "base"))


def test_faster_row_is_improved(tmp_path):
    base = write(tmp_path / "base.json", speed_payload())
    new = write(tmp_path / "new.json", speed_payload({**BATCH_MS, 65536: BATCH_MS[65536] * 0.8}, seed=1))
    row = by_classes(compared(base, new))[65536]
    assert row.verdict is Verdict.improved and row.main.change == pytest.approx(-0.2, abs=0.01)
    result = run_compare(base, new)
    assert result.exit_code == 0 and "1 improved" in result.stdout


def test_file_without_speedup_falls_back_to_time_and_says_so(tmp_path):
    payload = speed_payload({**BATCH_MS, 65536: BATCH_MS[65536] * 1.05}, seed=1)
    for row in payload["rows"]:
        row["speedup"] = None
    base = write(tmp_path / "base.json", speed_payload())
    new = write(tmp_path / "new.json", payload)
    row = by_classes(compared(base, new))[65536]
    assert row.main.basis is Basis.time and row.main.change == pytest.approx(0.05, abs=0.005)
    assert "compared times" in row.note


def test_missing_and_new_rows_are_reported_not_dropped(tmp_path):
    base = write(tmp_path / "base.json", speed_payload())
    new = write(tmp_path / "new.json", speed_payload({1: BATCH_MS[1], 1024: BATCH_MS[1024], 4096: 3.1}))
    verdicts = {k: row.verdict for k, row in by_classes(compared(base, new)).items()}
    assert verdicts == {1: Verdict.ok, 1024: Verdict.ok, 65536: Verdict.missing_in_new, 4096: Verdict.new_only}
    result = run_compare(base, new)
    assert result.exit_code == 0
    assert "1 missing-in-new, 1 new-only" in result.stdout
    assert "missing-in-new" in result.stdout.split("FAIL")[0].split("PASS")[0]  # also in the table
    strict = run_compare(base, new, "--fail-on-missing")
    assert strict.exit_code == 1 and strict.stdout.rstrip().splitlines()[-1].startswith("FAIL")


def test_a_row_that_stopped_running_is_a_regression(tmp_path):
    base = write(tmp_path / "base.json", speed_payload())
    payload = speed_payload()
    payload["rows"][2].update(status="oom", error="CUDA out of memory", batch_ms=None, speedup=None)
    new = write(tmp_path / "new.json", payload)
    row = compared(base, new).rows[2]
    assert row.verdict is Verdict.regressed and "oom" in row.note
    result = run_compare(base, new)
    assert result.exit_code == 1 and "resnet50 k=2^16" in result.stdout


def test_a_row_that_failed_in_the_baseline_is_not_comparable_but_reported(tmp_path):
    payload = speed_payload()
    payload["rows"][2].update(status="oom", error="CUDA out of memory", batch_ms=None, speedup=None)
    base = write(tmp_path / "base.json", payload)
    new = write(tmp_path / "new.json", speed_payload())
    row = compared(base, new).rows[2]
    assert row.verdict is Verdict.not_comparable and row.note == "baseline: oom"
    result = run_compare(base, new)
    assert result.exit_code == 0 and "1 not-comparable" in result.stdout


def test_a_noisy_change_is_inconclusive_and_says_what_would_decide_it(tmp_path):
    base = write(tmp_path / "base.json", speed_payload(noise=0.3))
    new = write(tmp_path / "new.json", speed_payload({**BATCH_MS, 65536: BATCH_MS[65536] * 1.15}, noise=0.3, seed=3))
    row = by_classes(compared(base, new))[65536]
    assert row.verdict is Verdict.inconclusive and "samples a side" in row.note and "less noise" in row.note
    assert run_compare(base, new).exit_code == 0
    assert run_compare(base, new, "--fail-on-inconclusive").exit_code == 1


def test_rows_match_on_every_identity_field(tmp_path):
    # Same class counts, other precision: nothing in common, so the files are incompatible (exit 2).
    payload = speed_payload()
    for row in payload["rows"]:
        row["precision"] = "fp32"
    base = write(tmp_path / "base.json", speed_payload())
    new = write(tmp_path / "new.json", payload)
    result = run_compare(base, new)
    assert result.exit_code == 2
    assert "no row of" in one_error_line(result)


def test_varying_fields_appear_in_labels_and_shared_ones_in_the_caption(tmp_path):
    payload = speed_payload()
    extra = copy.deepcopy(payload["rows"][2])
    extra["head"] = "query"
    payload["rows"].append(extra)
    base = write(tmp_path / "base.json", payload)
    slower = copy.deepcopy(payload)
    slower["rows"][3]["speedup"] *= 1.5
    slower["rows"][3]["ratio_samples"] = [r * 1.5 for r in slower["rows"][3]["ratio_samples"]]
    new = write(tmp_path / "new.json", slower)
    result = run_compare(base, new)
    assert result.exit_code == 1
    assert "regressed beyond +10%: resnet50 k=2^16 head=query" in result.stdout
    assert "all rows: precision=bf16, timing=graph" in result.stdout


def test_environment_difference_warns_on_one_line(tmp_path):
    base = write(tmp_path / "base.json", speed_payload())
    new = write(tmp_path / "new.json", speed_payload(device_name="NVIDIA A100-SXM4-40GB"))
    result = run_compare(base, new)
    assert result.exit_code == 0
    warning = result.stderr.strip().splitlines()
    assert len(warning) == 1 and warning[0].startswith("slcbench: warning:")
    assert "device_name: NVIDIA H100 80GB HBM3 vs NVIDIA A100-SXM4-40GB" in warning[0]
    assert run_compare(base, base).stderr == ""


def test_json_and_markdown_say_the_same_as_the_table(tmp_path):
    base = write(tmp_path / "base.json", speed_payload())
    new = write(tmp_path / "new.json", speed_payload({**BATCH_MS, 65536: BATCH_MS[65536] * 1.2}, seed=1))
    result = run_compare(base, new, "--json", tmp_path / "c.json", "--markdown", tmp_path / "c.md")
    assert result.exit_code == 1
    document = json.loads((tmp_path / "c.json").read_text())
    assert (document["kind"], document["passed"], document["threshold"]) == ("slcbench.compare", False, 0.1)
    rows = {row["name"]: row for row in document["rows"]}
    assert rows["resnet50 k=2^16"]["verdict"] == "regressed" and rows["resnet50 k=2^16"]["basis"] == "ratio"
    low, high = rows["resnet50 k=2^16"]["ci"]
    assert low < rows["resnet50 k=2^16"]["change"] < high
    markdown = (tmp_path / "c.md").read_text()
    assert (
        markdown.startswith("**FAIL**: 1 of 3 matched rows regressed")
        and "| resnet50 k=2^16 | **regressed** |" in markdown
    )
    again = run_compare(base, new, "--json", tmp_path / "c.json")
    assert again.exit_code == 2 and "already exists" in one_error_line(again)


# ---- the statistics of the gate, with known answers ------------------------------------------------


def _file(name, rows):
    return ResultsFile(path=name, kind=ResultsKind.pytest_benchmark, environment={}, rows=tuple(rows))


def _rows(rng, rows, samples, noise, factor=1.0):
    return [
        ComparedRow(
            key=(("benchmark", f"b{i}"),),
            status=Status.ok,
            error=None,
            time_ms=None,
            spread_pct=None,
            ratio=None,
            samples_ms=tuple(factor * rng.lognormal(0, noise, samples)),
        )
        for i in range(rows)
    ]


def _fix_times(rows):
    return [ComparedRow(**{**r.__dict__, "time_ms": float(np.median(r.samples_ms))}) for r in rows]


@pytest.mark.parametrize("samples, noise", [(5, 0.6), (10, 0.05), (30, 0.05), (30, 0.6), (100, 0.2)])
def test_unchanged_code_fails_the_gate_at_most_at_the_false_alarm_rate(samples, noise):
    rng = np.random.default_rng(samples)
    trials, alarms = 200, 0
    for _ in range(trials):
        a = _file("a", _fix_times(_rows(rng, 10, samples, noise)))
        b = _file("b", _fix_times(_rows(rng, 10, samples, noise)))
        comparison = compare_results(a, b, 0.10, alpha=0.05)
        alarms += comparison.failed() or bool(comparison.with_verdict(Verdict.improved))
    assert alarms / trials <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / trials)


def test_a_real_30_percent_shift_at_5_percent_noise_is_regressed():
    rng = np.random.default_rng(1)
    base = _file("a", _fix_times(_rows(rng, 10, 30, 0.05)))
    new = _file("b", _fix_times(_rows(rng, 10, 30, 0.05, factor=1.3)))
    assert {row.verdict for row in compare_results(base, new, 0.10).rows} == {Verdict.regressed}


def test_a_30_percent_shift_buried_in_60_percent_noise_with_5_samples_is_never_ok():
    rng = np.random.default_rng(2)
    for _ in range(50):
        base = _file("a", _fix_times(_rows(rng, 1, 5, 0.6)))
        new = _file("b", _fix_times(_rows(rng, 1, 5, 0.6, factor=1.3)))
        (row,) = compare_results(base, new, 0.10).rows
        assert row.verdict is not Verdict.ok


# ---- bad files (exit 2, one line) ------------------------------------------------------------


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "is empty"),
        ("{not json", "is not JSON"),
        ("[1, 2]", "no known kind"),
        ('{"kind": "slcbench.evaluate", "rows": []}', "kind 'slcbench.evaluate'"),
        (
            '{"kind": "slcbench.speed", "schema_version": 3, "rows": []}',
            "schema_version 3; this slcbench reads versions 1 and 2",
        ),
        ('{"kind": "slcbench.speed", "schema_version": 1, "rows": []}', "has no rows"),
        ('{"kind": "slcbench.speed", "schema_version": 1, "rows": [{"arch": "resnet50"}]}', "row 0 lacks classes"),
        ('{"machine_info": {}, "benchmarks": []}', "holds no benchmarks"),
        ('{"machine_info": {}, "benchmarks": [{"fullname": "t", "stats": {"median": 0}}]}', "no positive stats.median"),
        ("9" * 5000, "is not JSON that slcbench can read"),
        ("[" * 100_000, "is not JSON"),
        (
            '{"kind": "slcbench.speed", "schema_version": 1, "rows": [{"arch": ["resnet50"], "classes": 1,'
            ' "head": "full", "precision": "fp32", "timing": "graph", "channels_last": false, "compiled": false,'
            ' "batch_size": 32,'
            ' "device": "cuda", "status": "ok", "batch_ms": 1.0}]}',
            "row 0 has a non-scalar arch",
        ),
        (
            '{"kind": "slcbench.speed", "schema_version": 1, "rows": [{"arch": "a", "classes": 1, "head": "full",'
            ' "precision": "fp32", "timing": "graph", "channels_last": false, "compiled": false, "batch_size": 32,'
            ' "device": "cuda", "status": "ok", "batch_ms": 1' + "0" * 400 + "}]}",
            "no positive batch_ms",
        ),
    ],
)
def test_bad_baseline_file_exits_2(tmp_path, content, message):
    bad = write(tmp_path / "bad.json", content)
    good = write(tmp_path / "good.json", speed_payload())
    result = run_compare(bad, good)
    assert result.exit_code == 2
    line = one_error_line(result)
    assert message in line and str(bad) in line


def test_missing_file_and_folder_exit_2(tmp_path):
    good = write(tmp_path / "good.json", speed_payload())
    (tmp_path / "sub").mkdir()
    assert "nope.json: no such file or folder" in one_error_line(run_compare(good, tmp_path / "nope.json"))
    assert "is a folder without .json results files" in one_error_line(run_compare(tmp_path / "sub", good))


def test_duplicate_rows_are_rejected(tmp_path):
    payload = speed_payload()
    payload["rows"].append(copy.deepcopy(payload["rows"][0]))
    with pytest.raises(SlcbenchError, match="two rows for arch=resnet50, classes=1"):
        load_results(write(tmp_path / "dup.json", payload))


def test_a_zero_ratio_in_the_new_file_is_not_comparable_rather_than_improved(tmp_path):
    new = speed_payload()
    new["rows"][1]["speedup"] = 0
    result = run_compare(write(tmp_path / "a.json", speed_payload()), write(tmp_path / "b.json", new))
    assert result.exit_code == 0
    assert "improved" not in result.stdout and "not-comparable" in result.stdout


def test_a_malformed_environment_block_in_a_benchmark_file_is_ignored(tmp_path):
    bench = {
        "machine_info": {"slcbench_environment": "abc"},
        "benchmarks": [{"fullname": "t", "stats": {"median": 1.0, "iqr": 0.01}}],
    }
    loaded = load_results(write(tmp_path / "b.json", bench))
    assert loaded.environment == {}


def test_ok_row_without_time_is_rejected(tmp_path):
    payload = speed_payload()
    payload["rows"][1]["batch_ms"] = None
    with pytest.raises(SlcbenchError, match="row 1 has status ok but no positive batch_ms"):
        load_results(write(tmp_path / "bad.json", payload))


# ---- pytest-benchmark JSON -------------------------------------------------------------------

TINY_BENCHMARKS = """
import pytest

def test_sum(benchmark):
    benchmark(sum, range(200))

@pytest.mark.parametrize("n", [10, 1000], ids=["n=10", "n=1000"])
def test_sorted(benchmark, n):
    benchmark(sorted, list(range(n, 0, -1)))
"""


@pytest.fixture(scope="module")
def pytest_benchmark_json(tmp_path_factory):
    """A real pytest-benchmark --benchmark-json file (three benchmarks), made by running pytest-benchmark."""
    folder = tmp_path_factory.mktemp("pb")
    (folder / "test_tiny.py").write_text(textwrap.dedent(TINY_BENCHMARKS))
    out = folder / "tiny.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(folder),
            "--benchmark-json",
            str(out),
            "--benchmark-min-rounds=5",
            "--benchmark-max-time=0.02",
            "test_tiny.py",
        ],
        cwd=folder,
        check=True,
        capture_output=True,
        timeout=120,
    )
    return json.loads(out.read_text())


def test_pytest_benchmark_file_is_read_as_written(tmp_path, pytest_benchmark_json):
    path = write(tmp_path / "base.json", pytest_benchmark_json)
    results = load_results(path)
    assert results.kind == "pytest-benchmark"
    names = [dict(m.key)["benchmark"] for m in results.rows]
    assert names == [b["fullname"] for b in pytest_benchmark_json["benchmarks"]]
    assert names[1] == "test_tiny.py::test_sorted[n=10]"
    first = pytest_benchmark_json["benchmarks"][0]["stats"]
    assert results.rows[0].time_ms == pytest.approx(first["median"] * 1e3)
    assert results.rows[0].spread_pct == pytest.approx(100 * first["iqr"] / first["median"])
    assert results.environment["python"] == pytest_benchmark_json["machine_info"]["python_version"]


def test_identical_pytest_benchmark_files_pass(tmp_path, pytest_benchmark_json):
    base = write(tmp_path / "base.json", pytest_benchmark_json)
    new = write(tmp_path / "new.json", pytest_benchmark_json)
    result = run_compare(base, new)
    assert result.exit_code == 0, result.output
    assert "PASS: 0 of 3 matched rows regressed" in result.stdout
    # The table shows the names whole: "[10]" is text, not rich markup.
    assert result.stdout.count("test_tiny.py::test_sorted[n=10]") == 1


def test_pytest_benchmark_20_percent_slower_fails_and_is_named(tmp_path, pytest_benchmark_json):
    slower = copy.deepcopy(pytest_benchmark_json)
    stats = slower["benchmarks"][2]["stats"]
    for name in ("min", "max", "mean", "median", "q1", "q3"):
        stats[name] *= 1.2
    stats["data"] = [t * 1.2 for t in stats["data"]]
    del slower["benchmarks"][0]  # and one benchmark disappeared
    base = write(tmp_path / "base.json", pytest_benchmark_json)
    new = write(tmp_path / "new.json", slower)
    result = run_compare(base, new, "--max-regression", "10%")
    assert result.exit_code == 1, result.output
    assert "regressed beyond +10%: test_tiny.py::test_sorted[n=1000]" in result.stdout
    assert "1 missing-in-new" in result.stdout
    rows = compared(base, new).rows
    assert [row.verdict for row in rows] == [Verdict.missing_in_new, Verdict.ok, Verdict.regressed]
    assert rows[2].main.basis is Basis.time and rows[2].main.change == pytest.approx(0.2, abs=0.005)
    assert rows[2].main.method is Method.samples


def test_pytest_benchmark_files_without_raw_data_compare_as_points(tmp_path, pytest_benchmark_json):
    plain = copy.deepcopy(pytest_benchmark_json)
    for bench in plain["benchmarks"]:
        del bench["stats"]["data"]
    path = write(tmp_path / "plain.json", plain)
    rows = compared(path, path).rows
    assert {row.main.method for row in rows} == {Method.point} and {row.verdict for row in rows} == {Verdict.ok}


def test_speed_and_pytest_benchmark_files_cannot_be_compared(tmp_path, pytest_benchmark_json):
    pb = write(tmp_path / "pb.json", pytest_benchmark_json)
    speed = write(tmp_path / "speed.json", speed_payload())
    result = run_compare(pb, speed)
    assert result.exit_code == 2
    assert "must be of the same kind" in one_error_line(result)
    with pytest.raises(SlcbenchError, match="same kind"):
        compare_results(load_results(speed), load_results(pb), 0.1)


# ---- rendering helpers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "ms, text",
    [(None, "-"), (2.8, "2.80 ms"), (123.4, "123 ms"), (0.0875, "87.5 µs"), (0.9997, "1000 µs"), (1.2e-4, "120 ns")],
)
def test_times_are_printed_with_a_readable_unit(ms, text):
    from slcbench.compare.report import format_ms

    assert format_ms(ms) == text


# ---- timing settings and block sizes (warnings, not verdicts) ---------------------------------


def test_timing_settings_difference_warns_on_one_line_and_names_unrecorded_ones(tmp_path):
    old = speed_payload()  # written before the settle and sample-length settings existed
    new = speed_payload()
    new["settings"].update(warmup=50, settle_pct=0.25, min_sample_ms=3.0)
    result = run_compare(write(tmp_path / "base.json", old), write(tmp_path / "new.json", new))
    assert result.exit_code == 0
    warning = result.stderr.strip().splitlines()
    assert len(warning) == 1 and warning[0].startswith("slcbench: warning: the runs' timing settings differ")
    for difference in ("warmup: 20 vs 50", "settle_pct: not recorded vs 0.25", "min_sample_ms: not recorded vs 3.0"):
        assert difference in warning[0]
    assert "batches:" not in warning[0]  # equal in both files


def test_settings_outside_the_timing_list_are_not_reported(tmp_path):
    new = speed_payload()
    new["settings"]["seed"] = 7  # another noise tensor: not a timing setting
    comparison = compare_results(
        load_results(write(tmp_path / "a.json", speed_payload())), load_results(write(tmp_path / "b.json", new)), 0.1
    )
    assert comparison.settings_differences == ()


def test_rows_timed_in_other_block_sizes_are_compared_but_flagged(tmp_path):
    old = speed_payload()
    for row in old["rows"]:
        del row["calls_per_sample"]  # older files: one batch per sample
    new = speed_payload()
    new["rows"][1]["calls_per_sample"] = 12
    comparison = compare_results(
        load_results(write(tmp_path / "a.json", old)), load_results(write(tmp_path / "b.json", new)), 0.1
    )
    notes = {dict(row.key)["classes"]: (row.verdict, row.note) for row in comparison.rows}
    assert notes[1024] == (Verdict.ok, "batches/sample 1 vs 12: IQRs not like for like")
    assert notes[1] == (Verdict.ok, "") and notes[65536] == (Verdict.ok, "")
