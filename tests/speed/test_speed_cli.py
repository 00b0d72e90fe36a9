"""``slcbench speed`` from the command line: the files it writes and its one-line errors."""

import json
import sys

import pytest
import torch
from typer.testing import CliRunner

from slcbench.cli import app
from slcbench.extras import install_command

runner = CliRunner()


def test_cli_speed_writes_csv_and_json_and_never_overwrites(tmp_path):
    tiny = "python:tests.speed.models:tiny_cnn"  # milliseconds a row: six rows, twice, in about a second
    options = f"--arch {tiny} --classes 1,2^8 --device cpu --batch-size 2 --batches 2 --warmup 0 --ci-target 0"
    args = ["speed", *options.split(), "--query", "--pad-head", "7", "-o", str(tmp_path / "out")]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    second = runner.invoke(app, args)
    assert second.exit_code == 0, second.output
    jsons = sorted((tmp_path / "out").glob("speed-*.json"))
    assert len(jsons) == 2 and len(list((tmp_path / "out").glob("speed-*.csv"))) == 2
    payload = json.loads(jsons[0].read_text())
    assert (payload["kind"], payload["schema_version"]) == ("slcbench.speed", 2)
    assert payload["settings"]["ci_target_pct"] is None and payload["settings"]["blocks"] == 6
    assert all(len(r["speedup_ci"]) == 2 for r in payload["rows"]) and payload["rows"][1]["blocks"] == 6
    header = next((tmp_path / "out").glob("speed-*.csv")).read_text().splitlines()[0].split(",")
    assert "speedup_ci_low" in header and "samples_ms" not in header and "ratio_samples" not in header
    assert payload["settings"]["batch_size"] == 2 and payload["settings"]["protocol"] == "cpu-quick+custom"
    assert payload["settings"]["settle_pct"] is None and payload["settings"]["min_sample_ms"] == 0.0
    assert all(r["calls_per_sample"] == 1 and r["warmup_calls"] == 0 for r in payload["rows"])
    assert payload["environment"]["torch"] == torch.__version__
    assert [(r["classes"], r["head"], r["padded_to"]) for r in payload["rows"]] == [
        (1, "full", None),
        (256, "full", None),
        (256, "padded", 259),
        (256, "query", None),
        (256, "full-gather", None),
        (256, "adaptive-softmax", None),
    ]
    # A CPU run: no NVML, said once in the header; every GPU field null in the files.
    assert payload["gpu_state"] == {"nvml": False, "unavailable": "a CPU run"}
    assert first.output.count("no NVML (a CPU run)") == 1
    gpu_fields = ("sm_clock_mhz", "throttle_reasons", "flagged", "energy_mj_per_batch", "avg_power_w", "energy_ratio")
    assert all(r[name] is None for r in payload["rows"] for name in gpu_fields)
    assert "throttle_reasons" in header and "energy_mj_per_batch" in header
    assert payload["settings"]["pad_head"] == 7 and payload["settings"]["energy_window_s"] == 0.0


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
        (["--pad-head", "1"], "--pad-head must be between 2 and 1024, got 1"),
    ],
)
def test_cli_speed_errors_are_one_line(args, message, tmp_path):
    if "--device" in args and torch.cuda.is_available():
        pytest.skip("CUDA present")
    result = runner.invoke(
        app,
        ["speed", "--device", "cpu", "-o", str(tmp_path), *args]
        if "--device" not in args
        else ["speed", "-o", str(tmp_path), *args],
    )
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.output and result.stdout == ""  # refused before the run header
    assert not list(tmp_path.glob("speed-*"))


def test_plot_without_matplotlib_is_refused_before_the_sweep(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes ``import matplotlib`` raise ImportError
    result = runner.invoke(app, ["speed", "--device", "cpu", "--arch", "resnet18", "--plot", "-o", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"slcbench: error: --plot needs matplotlib, which is not installed: {install_command('plot')}"
    ]
    assert result.stdout == "" and not list(tmp_path.iterdir())


def test_an_output_path_that_is_a_file_is_refused_before_the_sweep(tmp_path):
    (tmp_path / "file").write_text("x")
    result = runner.invoke(app, ["speed", "--device", "cpu", "--arch", "resnet18", "-o", str(tmp_path / "file")])
    assert result.exit_code == 2 and "is not a folder" in result.stderr and result.stdout == ""
