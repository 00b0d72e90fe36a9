"""Standard output that goes away or fills up: a quiet end with a documented code, never a traceback."""

import os
import subprocess
import sys

from tests.hostile import crafting
from tests.hostile.conftest import ROOT

RUN = "import sys; sys.argv = ['slcbench', *sys.argv[1:]]; from slcbench.__main__ import main; main()"


def _speed_file(folder):
    """A small speed results file (written by the library, so it has the real schema)."""
    from slcbench.results import Head, Measurement, SpeedRow, Timing, speed_document

    rows = []
    for k in range(1, 40):
        row = SpeedRow(
            arch="a",
            classes=k,
            head=Head.full,
            precision="fp32",
            timing=Timing.eager,
            channels_last=False,
            compiled=False,
            batch_size=1,
            device="cpu",
            speedup=1.0,
        )
        row.record(Measurement((1.0, 1.1, 0.9, 1.0, 1.05, 0.95)))
        rows.append(row)
    import json

    path = folder / "run.json"
    path.write_text(json.dumps(speed_document(settings={}, rows=rows, environment={}, created="", command="")))
    return path


def test_a_reader_that_goes_away_ends_the_run_quietly_and_not_with_the_regression_code(tmp_path):
    run = _speed_file(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    # `slcbench compare A A | head -1`: the pipe closes after the first line.
    writer = subprocess.Popen(
        [sys.executable, "-c", RUN, "compare", str(run), str(run)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    first = writer.stdout.readline()
    writer.stdout.close()
    writer.wait(timeout=60)
    stderr = writer.stderr.read().decode()
    assert first and writer.returncode == 141, (writer.returncode, stderr)
    assert stderr == ""


def test_a_closed_standard_output_ends_the_run_before_any_work(tmp_path):
    good = crafting.good_logits(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        f'"{sys.executable}" -c "{RUN}" evaluate {good} --json out.json >&-',
        shell=True,
        cwd=tmp_path,
        env=env,
        capture_output=False,
        stderr=subprocess.PIPE,
        timeout=60,
    )
    assert done.returncode == 141 and done.stderr == b"" and not (tmp_path / "out.json").exists()


def test_a_full_standard_output_is_one_line_with_its_own_code(tmp_path):
    good = crafting.good_logits(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-c", RUN, "evaluate", str(good)],
            cwd=tmp_path,
            env=env,
            stdout=full,
            stderr=subprocess.PIPE,
            timeout=60,
        )
    lines = done.stderr.decode().strip().splitlines()
    assert done.returncode == 74 and lines == [
        "slcbench: error: cannot write to standard output: No space left on device"
    ]
