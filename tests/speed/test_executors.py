"""Where configurations are measured: ``--executor process|ray|slurm``, workers that die, merged files.

The sweeps here measure two small architectures at two class counts, with a third architecture in
the middle whose worker kills itself with SIGKILL while building its model (as the out-of-memory
killer would): its rows must come back failed with the reason, the others measured, in one file.
"""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import fields
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from slcbench.cli import app
from slcbench.compare.files import load_results
from slcbench.extras import install_command
from slcbench.results import SpeedRow
from slcbench.speed import executors
from slcbench.speed.config import ExecutorSettings, SpeedConfig
from slcbench.speed.executors import (
    EXECUTORS,
    Configuration,
    ExecutorKind,
    ProcessExecutor,
    SlurmExecutor,
    exit_reason,
    process_slots,
    slurm_parameters,
)
from slcbench.speed.run import common_environment
from slcbench.speed.worker import WorkerRecord, visible_gpu_index
from tests.conftest import restore_ctrl_c

runner = CliRunner()
MODELS = "python:tests.speed.models"
TINY, WIDE, KILLED = f"{MODELS}:tiny_cnn", f"{MODELS}:tiny_cnn_wide", f"{MODELS}:killed_worker"
QUICK = ["--classes", "1,2^8", "--device", "cpu", "--batch-size", "2", "--batches", "2", "--warmup", "0"]
QUICK += ["--ci-target", "0"]


class Recorded:
    """A Progress that keeps what it is told."""

    def __init__(self) -> None:
        self.labels: list[str] = []
        self.advanced = 0

    def begin(self, header: str, total: int) -> None:
        self.total = total

    def started(self, label: str) -> None:
        self.labels.append(label)

    def advance(self, steps: int = 1) -> None:
        self.advanced += steps

    def note(self, line: str) -> None: ...


def sweep(tmp_path: Path, *options: str, archs: str = f"{TINY},{KILLED},{WIDE}") -> tuple[dict, Path]:
    """Run ``slcbench speed`` with the tiny, killed and wide architectures; the JSON document and its path."""
    out = tmp_path / "out"
    result = runner.invoke(app, ["speed", "--arch", archs, *QUICK, *options, "-o", str(out)])
    assert result.exit_code == 0, result.output
    (path,) = out.glob("speed-*.json")
    return json.loads(path.read_text()), path


def check_merged(document: dict, path: Path, executor: str) -> list[dict]:
    """One file with today's schema: every row of the sweep in its order, the killed worker's rows failed
    with the reason, the others measured by processes other than this one, one process per configuration."""
    rows = document["rows"]
    assert (document["kind"], document["schema_version"]) == ("slcbench.speed", 2)
    assert all(list(row) == [f.name for f in fields(SpeedRow)] for row in rows)
    assert [(r["arch"].split(":")[-1], r["classes"]) for r in rows] == [
        (name, k) for name in ("tiny_cnn", "killed_worker", "tiny_cnn_wide") for k in (1, 256)
    ]
    measured = [r for r in rows if "killed" not in r["arch"]]
    killed = [r for r in rows if "killed" in r["arch"]]
    assert all(r["status"] == "ok" and r["batch_ms"] > 0 and r["speedup"] > 0 for r in measured)
    assert all(len(r["samples_ms"]) >= 2 for r in measured) and measured[1]["blocks"] == 6
    assert all(r["status"] == "failed" and r["batch_ms"] is None for r in killed)
    pids = {r["arch"]: r["worker_pid"] for r in measured}
    assert len(set(pids.values())) == 2 and os.getpid() not in pids.values()
    assert all(r["worker_pid"] == pids[r["arch"]] for r in measured)  # a configuration's rows stay together
    execution = document["execution"]
    assert (execution["executor"], execution["complete"], execution["configurations"]) == (executor, True, 3)
    assert [w["arch"] for w in execution["workers"]] == [r["arch"] for r in rows[::2]]
    assert [w["lost"] is None for w in execution["workers"]] == [True, False, True]
    assert document["environment"]["torch"] == execution["workers"][0]["environment"]["torch"]
    assert all(SpeedRow.from_dict(r).to_dict() == r for r in rows)
    assert len(load_results(path).rows) == 6  # compare reads the merged file
    table = pd.read_csv(path.with_suffix(".csv"))
    assert [None if pd.isna(pid) else int(pid) for pid in table["worker_pid"]] == [r["worker_pid"] for r in rows]
    return killed


def test_process_executor_merges_fresh_workers_and_survives_a_killed_one(tmp_path):
    document, path = sweep(tmp_path, "--executor", "process", "--parallel", "2")
    killed = check_merged(document, path, "process")
    assert all("killed by SIGKILL" in r["error"] and r["worker_pid"] for r in killed)


@pytest.mark.slow
def test_ray_executor_on_a_local_cluster_merges_fresh_workers_and_survives_a_killed_one(tmp_path):
    pytest.importorskip("ray")
    document, path = sweep(tmp_path, "--executor", "ray", "--parallel", "2")
    killed = check_merged(document, path, "ray")
    assert all(r["error"].startswith("Ray task WorkerCrashedError") for r in killed)
    assert len({r["worker_job"] for r in document["rows"]}) == 3  # one Ray task per configuration


@pytest.fixture
def slurm_on_this_machine(monkeypatch):
    """``--executor slurm-here``: the slurm executor's code with submitit's LocalExecutor in place of Slurm."""
    local = pytest.importorskip("submitit.local.local")
    # submitit waits 15 s for the result file of a job that ended without one (a network file system may
    # show it late); on one machine there is nothing to wait for.
    monkeypatch.setattr(local.LocalJob, "_results_timeout_s", 1)

    def make(settings, config):
        return SlurmExecutor(settings.job_folder, slurm_parameters(settings, config), cluster="local", poll_s=0.2)

    EXECUTORS.register("slurm-here", ExecutorKind(make=make, remote=lambda settings: True))
    yield
    EXECUTORS.unregister("slurm-here")


@pytest.mark.slow
def test_slurm_executor_through_submitits_local_executor(tmp_path, slurm_on_this_machine):
    document, path = sweep(tmp_path, "--executor", "slurm-here")
    killed = check_merged(document, path, "slurm (local stand-in)")
    assert all("ended without a result" in r["error"] for r in killed)
    jobs = [w["job"] for w in document["execution"]["workers"]]
    assert all(jobs) and len(set(jobs)) == 3 and (tmp_path / "out" / "slurm-jobs").is_dir()


@pytest.fixture
def sbatch_on_path(tmp_path, monkeypatch):
    """A stand-in ``sbatch`` on the PATH (never run: the settings only look for it)."""
    sbatch = tmp_path / "sbatch"
    sbatch.write_text("#!/bin/sh\nexit 1\n")
    sbatch.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))


def test_slurm_parameters_carry_the_options(sbatch_on_path):
    pytest.importorskip("submitit")
    config = SpeedConfig.from_options(arch=TINY, classes="1", device="cpu")
    settings = ExecutorSettings(name="slurm", parallel=4, partition="gpu", gpus_per_task=2, time_limit_min=30)
    assert slurm_parameters(settings, config) == {
        "name": "slcbench-speed",
        "timeout_min": 30,
        "nodes": 1,
        "tasks_per_node": 1,
        "gpus_per_node": 2,
        "cpus_per_task": 1,
        "slurm_partition": "gpu",
        "slurm_array_parallelism": 4,
    }
    assert slurm_parameters(ExecutorSettings(name="slurm"), config)["gpus_per_node"] == 0  # CPU: no GPU asked


def test_remote_workers_check_cuda_themselves(sbatch_on_path, monkeypatch):
    # A Slurm login node or a Ray client has no GPU: --device cuda is taken as asked, the workers check it.
    pytest.importorskip("submitit")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert not ExecutorSettings(name="slurm").device_here
    assert ExecutorSettings(name="process").device_here and ExecutorSettings(name="inline").device_here
    if importlib.util.find_spec("ray") is not None:
        assert ExecutorSettings(name="ray").device_here  # a local cluster: this machine's devices
        assert not ExecutorSettings(name="ray", ray_address="ray://head:10001").device_here
    config = SpeedConfig.from_options(arch=TINY, classes="1", device="cuda", device_here=False)
    assert config.device == "cuda" and config.settings()["protocol"] == "paper"


def test_process_workers_are_pinned_one_per_gpu_and_run_at_once(tmp_path, monkeypatch):
    # Four configurations on two stand-in GPUs: each worker sees one GPU, a GPU is never shared, both run at once.
    monkeypatch.setenv("SLCBENCH_TEST_MARKERS", str(tmp_path))
    from tests.speed.stand_in_workers import meet_the_other_slot

    config = SpeedConfig.from_options(
        arch=",".join([TINY, WIDE, f"{MODELS}:counted_cnn", KILLED]), classes="1", device="cpu"
    )
    configurations = [Configuration(i, c) for i, c in enumerate(config.configurations())]
    progress = Recorded()
    outcomes = list(ProcessExecutor(["0", "1"], target=meet_the_other_slot).run(configurations, progress))
    assert sorted(o.index for o in outcomes) == [0, 1, 2, 3] and progress.advanced == 4
    assert sorted(label.split(" (")[0].split(":")[-1] for label in progress.labels) == sorted(
        ["tiny_cnn", "tiny_cnn_wide", "counted_cnn", "killed_worker"]
    )
    seen = [o.worker.environment for o in outcomes]
    assert sorted(s["slot"] for s in seen) == ["0", "0", "1", "1"]
    assert len({o.worker.pid for o in outcomes} | {os.getpid()}) == 5  # a fresh process each
    for slot in "01":
        runs = sorted((s["started"], s["ended"]) for s in seen if s["slot"] == slot)
        assert runs[0][1] <= runs[1][0]  # one worker at a time on a GPU
    first = {s["slot"]: s for s in seen if s["started"] == min(t["started"] for t in seen if t["slot"] == s["slot"])}
    assert first["0"]["started"] < first["1"]["ended"] and first["1"]["started"] < first["0"]["ended"]
    assert "CUDA_VISIBLE_DEVICES" not in os.environ or os.environ["CUDA_VISIBLE_DEVICES"] not in "01"


@pytest.mark.parametrize(
    ("device", "parallel", "gpus", "visible", "slots"),
    [
        ("cuda", None, 4, None, ("0", "1", "2", "3")),
        ("cuda", 2, 4, None, ("0", "1")),
        ("cuda", None, 2, "5,7", ("5", "7")),
        ("cuda", None, 1, "GPU-abc,GPU-def", ("GPU-abc",)),
        ("cuda", 8, 2, None, ("0", "1")),
        ("cpu", None, 0, None, (None,)),
        ("cpu", 2, 4, "0,1", (None, None)),
    ],
)
def test_process_slots(device, parallel, gpus, visible, slots):
    assert process_slots(device, parallel, gpu_count=gpus, visible=visible) == slots


def test_exit_reasons_and_gpu_indices_in_words():
    assert exit_reason(-signal.SIGKILL) == "killed by SIGKILL (as the out-of-memory killer does)"
    assert exit_reason(-signal.SIGTERM) == "killed by SIGTERM"
    assert exit_reason(3) == "exited with code 3"
    assert [visible_gpu_index(v) for v in ("3", " 2,1", "GPU-3", "", None)] == [3, 2, None, None, None]


def test_the_environment_of_several_workers_keeps_what_they_share():
    merged = common_environment([{"torch": "2.4", "host": "a", "cpu": "x"}, {"torch": "2.4", "host": "b"}])
    assert merged == {"torch": "2.4", "host": None, "cpu": None}
    assert common_environment([]) == {}


def test_a_worker_record_read_back_from_a_file_drops_values_of_the_wrong_type():
    record = WorkerRecord.from_dict({"host": "n1", "pid": "12", "gpu_index": True, "wall_s": 1.5, "environment": []})
    assert record == WorkerRecord(host="n1", wall_s=1.5) and record.environment is None


def test_inline_rows_record_this_process_and_the_run_its_executor(tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["speed", "--arch", TINY, *QUICK, "-o", str(out)])
    assert result.exit_code == 0, result.output
    document = json.loads(next(out.glob("*.json")).read_text())
    assert {r["worker_pid"] for r in document["rows"]} == {os.getpid()}
    assert document["execution"]["executor"] == "inline" and document["execution"]["complete"] is True
    assert document["environment"] == document["execution"]["workers"][0]["environment"]


def test_without_an_executor_option_the_cpu_runs_inline():
    assert ExecutorSettings.from_options(executor=None, device="cpu", output=Path("r")).name == "inline"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--executor", "bogus"], "unknown executor 'bogus'; choose from: inline, process, ray, slurm"),
        (["--executor", "slurm"], "--executor slurm needs Slurm's sbatch, which is not on PATH"),
        (["--executor", "process", "--partition", "gpu"], "--partition only applies to --executor slurm"),
        (["--ray-address", "auto"], "--ray-address only applies to --executor ray"),
        (["--executor", "process", "--parallel", "0"], "--parallel must be positive, got 0"),
        (["--executor", "slurm", "--time-limit", "0"], "--time-limit must be at least 1 (minute), got 0"),
    ],
)
def test_executor_options_are_checked_before_any_work(tmp_path, monkeypatch, options, message):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch here, whatever this machine has
    monkeypatch.setattr(executors, "is_installed", lambda module: True)  # submitit or not: sbatch is missing
    result = runner.invoke(app, ["speed", "--arch", TINY, "--device", "cpu", *options, "-o", str(tmp_path / "o")])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"slcbench: error: {message}"), result.stderr
    assert result.stdout == ""
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(("executor", "module", "named"), [("ray", "ray", "Ray"), ("slurm", "submitit", "submitit")])
def test_a_cluster_executor_without_its_package_is_refused_in_one_line(tmp_path, monkeypatch, executor, module, named):
    monkeypatch.setitem(__import__("sys").modules, module, None)  # makes it look not installed
    result = runner.invoke(
        app, ["speed", "--arch", TINY, "--device", "cpu", "--executor", executor, "-o", str(tmp_path)]
    )
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"slcbench: error: --executor {executor} needs {named}, which is not installed: {install_command('cluster')}"
    ]


@pytest.mark.slow
def test_ctrl_c_stops_the_workers_and_leaves_a_resumable_file(tmp_path):
    # The driver in its own process group, as a shell runs it; Ctrl-C sends SIGINT to the whole group.
    env = {**os.environ, "SLCBENCH_TEST_MARKERS": str(tmp_path), "PYTHONPATH": str(Path.cwd())}
    archs = f"{TINY},{MODELS}:waits_to_be_interrupted"
    command = [sys.executable, "-m", "slcbench", "speed", "--arch", archs, *QUICK, "--executor", "process"]
    driver = subprocess.Popen(
        [*command, "-o", str(tmp_path / "out")],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=restore_ctrl_c,
    )
    waiting = tmp_path / "waiting"
    deadline = time.monotonic() + 120
    while not (waiting.exists() and waiting.read_text()) and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    os.killpg(driver.pid, signal.SIGINT)
    _, stderr = driver.communicate(timeout=60)
    (partial,) = (tmp_path / "out").glob("speed-*.json")
    assert driver.returncode == 130
    assert stderr.strip().splitlines() == [
        f"slcbench: error: interrupted; the 1 of 2 configuration(s) done are in {partial}: "
        f"continue with --resume {partial}"
    ]  # and no worker's traceback
    document = json.loads(partial.read_text())
    assert document["execution"]["complete"] is False
    assert [(r["arch"], r["status"]) for r in document["rows"]] == [(TINY, "ok"), (TINY, "ok")]
    worker = int(waiting.read_text())
    with pytest.raises(ProcessLookupError):  # the interrupted worker is gone, not left running
        os.kill(worker, 0)
