"""``slcbench speed --resume FILE``: Ctrl-C leaves a resumable file, and a resumed sweep measures only
the configurations the file lacks or holds as failed."""

import json

import pytest
from typer.testing import CliRunner

from slcbench.cli import app

runner = CliRunner()
MODELS = "python:tests.speed.models"
ARCHS = f"{MODELS}:counted_cnn,{MODELS}:fails_once,{MODELS}:interrupted_once"
QUICK = ["--classes", "1,2^8", "--device", "cpu", "--batch-size", "2", "--batches", "2", "--warmup", "0"]
QUICK += ["--ci-target", "0"]


@pytest.fixture
def builds(tmp_path, monkeypatch):
    """The file that lists every model the test's runs build (the models in tests/speed/models.py write it)."""
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setenv("SLCBENCH_TEST_MARKERS", str(markers))
    log = tmp_path / "builds.txt"
    monkeypatch.setenv("SLCBENCH_TEST_BUILDS", str(log))
    return log


def speed(*options: str):
    return runner.invoke(app, ["speed", "--arch", ARCHS, *QUICK, *options])


def test_ctrl_c_leaves_a_partial_file_that_resume_completes_measuring_only_what_is_missing(tmp_path, builds):
    out = tmp_path / "out"
    first = speed("-o", str(out))
    (partial,) = out.glob("speed-*.json")
    assert first.exit_code == 130 and "wrote" not in first.stdout and "speedup" not in first.stdout  # no table
    assert first.stderr.strip().splitlines() == [
        f"slcbench: error: interrupted; the 2 of 3 configuration(s) done are in {partial}: "
        f"continue with --resume {partial}"
    ]
    document = json.loads(partial.read_text())
    assert document["execution"]["complete"] is False and partial.with_suffix(".csv").exists()
    assert [(r["arch"].split(":")[-1], r["status"]) for r in document["rows"]] == [
        ("counted_cnn", "ok"),
        ("counted_cnn", "ok"),
        ("fails_once", "failed"),
        ("fails_once", "failed"),
    ]
    assert builds.read_text().split() == ["counted_cnn", "fails_once", "interrupted_once"]

    second = speed("--resume", str(partial), "-o", str(out))
    assert second.exit_code == 0, second.output
    (resumed,) = set(out.glob("speed-*.json")) - {partial}
    merged = json.loads(resumed.read_text())
    # Only the failed and the missing configurations were built again; the finished one is the file's own.
    assert builds.read_text().split()[3:] == ["fails_once", "interrupted_once"]
    assert [r["status"] for r in merged["rows"]] == ["ok"] * 6
    assert merged["rows"][:2] == document["rows"][:2]
    assert merged["execution"]["resumed_from"] == str(partial) and merged["execution"]["complete"] is True
    assert [w["arch"].split(":")[-1] for w in merged["execution"]["workers"]] == [
        "counted_cnn",
        "fails_once",
        "interrupted_once",
    ]


def test_resuming_a_complete_file_measures_nothing(tmp_path, builds):
    out = tmp_path / "out"
    args = ["speed", "--arch", f"{MODELS}:counted_cnn", *QUICK]
    assert runner.invoke(app, [*args, "-o", str(out)]).exit_code == 0
    (done,) = out.glob("speed-*.json")
    again = runner.invoke(app, [*args, "--resume", str(done), "-o", str(out)])
    assert again.exit_code == 0, again.output
    assert builds.read_text().split() == ["counted_cnn"]
    (resumed,) = set(out.glob("speed-*.json")) - {done}
    assert json.loads(resumed.read_text())["rows"] == json.loads(done.read_text())["rows"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--batches", "3"], "was measured with other settings (batches: 2 there, 3 here): repeat its options"),
        (
            ["--classes", "1"],
            "was measured with other settings (classes: [1, 256] there, [1] here): repeat its options",
        ),
    ],
)
def test_a_resume_of_other_settings_is_refused_in_one_line_before_any_work(tmp_path, builds, options, message):
    out = tmp_path / "out"
    args = ["speed", "--arch", f"{MODELS}:counted_cnn", *QUICK]
    assert runner.invoke(app, [*args, "-o", str(out)]).exit_code == 0
    (done,) = out.glob("speed-*.json")
    refused = runner.invoke(app, [*args, *options, "--resume", str(done), "-o", str(out)])
    assert refused.exit_code == 2 and refused.stdout == ""
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith(f"slcbench: error: --resume {done} {message}; its command was: slcbench")
    assert builds.read_text().split() == ["counted_cnn"] and len(list(out.glob("speed-*.json"))) == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "is empty"),
        ("[1, 2]", "is not an slcbench speed results file"),
        ('{"kind": "slcbench.speed", "schema_version": 1, "rows": []}', "has speed schema_version 1"),
        ('{"kind": "slcbench.speed", "schema_version": 2, "rows": [], "settings": []}', 'lacks its "rows" list'),
        ('{"kind": "slcbench.speed", "schema_version": 2, "rows": [3], "settings": {}}', "row 0 is not an object"),
    ],
)
def test_a_resume_file_that_cannot_be_used_is_refused_in_one_line(tmp_path, content, message):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    result = runner.invoke(app, ["speed", "--arch", f"{MODELS}:tiny_cnn", *QUICK, "--resume", str(bad)])
    assert result.exit_code == 2 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("slcbench: error: ") and message in line
