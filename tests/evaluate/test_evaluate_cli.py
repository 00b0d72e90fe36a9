"""`slcbench evaluate` end to end: results, outputs that are never clobbered, one clear line per bad input."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from slcbench.cli import app
from slcbench.evaluate.evaluation import evaluate_logits, metric_settings

runner = CliRunner()


def make_logits(n=120, k=4, seed=0, boost=2.0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, size=n)
    logits = rng.normal(size=(n, k)).astype(np.float32)
    logits[np.arange(n), labels] += boost
    return logits, labels


@pytest.fixture
def npz(tmp_path):
    logits, labels = make_logits()
    path = tmp_path / "model.npz"
    np.savez_compressed(path, logits=logits, labels=labels)
    return path


def evaluate(*args):
    return runner.invoke(app, ["evaluate", *map(str, args)])


def assert_one_line_error(result, message):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("slcbench: error: ") and message in lines[0], lines[0]
    assert "Traceback" not in result.output


def test_json_and_csv_hold_the_library_results(npz, tmp_path):
    out_json, out_csv = tmp_path / "r.json", tmp_path / "r.csv"
    result = evaluate(npz, "--json", out_json, "--csv", out_csv, "--recall", "0.5", "--recall", "0.9")
    assert result.exit_code == 0, result.output
    assert "1-P@0.5" in result.stdout and "AUPRC = average precision; Precision@r = first reach" in result.stdout

    logits, labels = make_logits()
    expected = evaluate_logits(logits, labels, name=str(npz), settings=metric_settings(recalls=(0.5, 0.9)))
    document = json.loads(out_json.read_text())
    assert document["metric_definitions"]["precision_at_recall"] == "first-reach"
    seconds = document["results"][0].pop("wall_seconds")
    assert document["results"] == [expected.to_dict(wall_seconds=False)]  # JSON keeps floats exactly
    assert list(seconds) == ["load", "check", "slc", "all_logits", "pols", "self_normalization"]
    assert all(isinstance(value, float) and value >= 0 for value in seconds.values())
    assert set(document["results"][0]["slc"]) == {"auprc", "precision_at_0.5", "precision_at_0.9"}
    assert set(document["results"][0]["pols"]) == {"pair_auroc", "pooled_auprc", "margin"}

    table = pd.read_csv(out_csv)
    assert len(table) == 2 * 4  # slc and all_logits rows for 4 classes
    assert list(table.columns[:5]) == ["file", "ranking", "class", "positives", "auprc"]
    assert {"precision_at_0.9", "threshold_at_0.9", "undecided_pairs"} <= set(table.columns)
    slc = table[table.ranking == "slc"]
    assert slc.auprc.mean() == pytest.approx(expected.blocks()["slc"]["auprc"])
    assert slc.positives.tolist() == np.bincount(labels, minlength=4).tolist()


def test_options_change_the_definitions_used(npz, tmp_path):
    out = tmp_path / "r.json"
    assert evaluate(npz, "--auprc", "trapezoid", "--interpolated", "--json", out).exit_code == 0
    document = json.loads(out.read_text())
    assert document["metric_definitions"]["auprc"] == "trapezoid"
    assert document["metric_definitions"]["precision_at_recall"] == "interpolated"
    logits, labels = make_logits()
    expected = evaluate_logits(logits, labels, settings=metric_settings(auprc="trapezoid", interpolated=True))
    assert document["results"][0]["slc"]["auprc"] == pytest.approx(expected.to_dict()["slc"]["auprc"], abs=1e-15)


def test_baseline_rows_come_first_with_a_mean_relative_improvement_row(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # short names: the table does not wrap them
    for name, boost in (("ce.npz", 1.0), ("pols.npz", 3.0)):
        logits, labels = make_logits(boost=boost)
        np.savez(name, logits=logits, labels=labels)
    result = evaluate("pols.npz", "--baseline", "ce.npz", "--json", "r.json")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.index("ce.npz") < out.index("pols.npz") < out.index("mean relative")
    document = json.loads((tmp_path / "r.json").read_text())
    assert document["baseline"] == ["ce.npz"]
    assert [r["file"] for r in document["results"]] == ["ce.npz", "pols.npz"]
    ce, pols = (r["slc"]["auprc"] for r in document["results"])
    improvement = ((1 - ce) - (1 - pols)) / (1 - ce)
    assert f"{100 * improvement:.1f}%" in out


def test_existing_outputs_are_kept_unless_forced(npz, tmp_path):
    out = tmp_path / "r.json"
    out.write_text("earlier results")
    assert_one_line_error(evaluate(npz, "--json", out), "already exists; pass --force")
    assert out.read_text() == "earlier results"
    assert evaluate(npz, "--json", out, "--force").exit_code == 0
    assert json.loads(out.read_text())["results"][0]["n_examples"] == 120


def test_an_output_may_not_replace_an_input(npz):
    assert_one_line_error(evaluate(npz, "--csv", npz, "--force"), "is one of the input files")
    assert np.load(npz)["logits"].shape == (120, 4)


def test_probabilities_are_scored_with_a_one_line_warning(tmp_path):
    logits, labels = make_logits()
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.savez(tmp_path / "p.npz", logits=probabilities, labels=labels)
    result = evaluate(tmp_path / "p.npz")
    assert result.exit_code == 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("slcbench: warning:") and "look like probabilities" in lines[0]
    np.savez(tmp_path / "z.npz", logits=logits, labels=labels)
    assert evaluate(tmp_path / "z.npz").stderr == ""


def test_renamed_keys_and_npy_folders(tmp_path):
    logits, labels = make_logits()
    np.savez(tmp_path / "renamed.npz", z=logits, y=labels)
    assert evaluate(tmp_path / "renamed.npz", "--logits-key", "z", "--labels-key", "y").exit_code == 0
    folder = tmp_path / "run"
    folder.mkdir()
    np.save(folder / "logits.npy", logits)
    np.save(folder / "labels.npy", labels)
    assert evaluate(folder).exit_code == 0
    assert evaluate(folder / "logits.npy").exit_code == 0


def bad_arrays():
    logits, labels = make_logits(n=10, k=3)
    nan = logits.copy()
    nan[2, 1] = np.nan
    inf = logits.copy()
    inf[0, 0], inf[1, 2] = np.inf, -np.inf
    return {
        "no array named 'logits'": dict(scores=logits, labels=labels),
        "no array named 'labels'": dict(logits=logits),
        "logits must be a 2-D array": dict(logits=logits.ravel(), labels=labels),
        "labels must be a 1-D array": dict(logits=logits, labels=labels[:, None]),
        "labels must be integers": dict(logits=logits, labels=labels.astype(float)),
        "logits must be floating point": dict(logits=logits.astype(np.int64), labels=labels),
        "logits have 10 rows but labels have 9 entries": dict(logits=logits, labels=labels[:9]),
        "1 labels lie outside [0, 3) (e.g. 3)": dict(logits=logits, labels=np.r_[labels[:9], 3]),
        "2 labels lie outside [0, 3) (e.g. -1)": dict(logits=logits, labels=np.r_[-1, labels[1:9], -2]),
        "logits contain 1 non-finite values": dict(logits=nan, labels=labels),
        "logits contain 2 non-finite values": dict(logits=inf, labels=labels),
        "no examples (0 rows), so no class has a positive example": dict(
            logits=np.zeros((0, 3), np.float32), labels=np.zeros(0, np.int64)
        ),
        "1 class column; SLC metrics need at least 2 classes": dict(
            logits=logits[:, :1], labels=np.zeros(10, np.int64)
        ),
    }


@pytest.mark.parametrize("message", list(bad_arrays()))
def test_each_bad_array_is_one_clear_line(tmp_path, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **bad_arrays()[message])
    assert_one_line_error(evaluate(path), message)


def test_missing_file_and_non_npz_file(tmp_path):
    assert_one_line_error(evaluate(tmp_path / "nope.npz"), "no such file or folder")
    text = tmp_path / "notes.npz"
    text.write_text("not a zip archive")
    assert_one_line_error(evaluate(text), "not an .npz file")
    folder = tmp_path / "run"
    folder.mkdir()
    np.save(folder / "logits.npy", np.zeros((3, 2), np.float32))
    assert_one_line_error(evaluate(folder), "labels.npy: no such file; name the array file with --labels-key")
    (folder / "labels.npy").write_text("garbage")
    assert_one_line_error(evaluate(folder), "not a readable .npy array")


def test_pickled_object_arrays_are_refused(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, logits=np.array([[1.0, {"a": 1}]], dtype=object), labels=np.array([0]))
    assert_one_line_error(evaluate(path), "cannot read array 'logits.npy'")


@pytest.mark.parametrize("recall", ["0", "1.5", "-0.1"])
def test_recall_outside_zero_one_is_refused(npz, recall):
    assert_one_line_error(evaluate(npz, "--recall", recall), "recall levels must lie in (0, 1]")


def test_bad_auprc_choice_is_a_usage_error(npz):
    result = evaluate(npz, "--auprc", "roc")
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_same_file_twice_and_colliding_outputs(npz, tmp_path):
    assert_one_line_error(evaluate(npz, "--baseline", npz), "the same logits file is given twice")
    out = tmp_path / "r"
    assert_one_line_error(evaluate(npz, "--json", out, "--csv", out), "--json and --csv name the same file")
    assert_one_line_error(evaluate(npz, "--json", tmp_path / "missing" / "r.json"), "does not exist")


def test_a_class_without_positives_is_a_warning_or_with_strict_an_error(tmp_path):
    logits, labels = make_logits()
    labels[labels == 3] = 0  # class 3 keeps its logit column but loses every example
    path = tmp_path / "gap.npz"
    np.savez(path, logits=logits, labels=labels)
    out = tmp_path / "r.json"
    result = evaluate(path, "--json", out)
    assert result.exit_code == 0, result.output
    assert result.stderr.strip().splitlines() == [
        f"slcbench: warning: {path}: 1 of 4 classes have no positive example; they are left out of the means"
    ]
    assert json.loads(out.read_text())["results"][0]["classes_skipped"] == 1
    strict = evaluate(path, "--strict", "--json", tmp_path / "strict.json")
    assert_one_line_error(strict, "1 of 4 classes have no positive example (--strict)")
    assert not (tmp_path / "strict.json").exists()


def test_blocks_choose_what_is_computed_and_timed(npz, tmp_path):
    out = tmp_path / "r.json"
    result = evaluate(npz, "--blocks", "self-norm,slc", "--threads", "1", "--json", out)
    assert result.exit_code == 0, result.output
    (document,) = json.loads(out.read_text())["results"]
    assert [key for key in ("slc", "all_logits", "pols", "self_normalization") if key in document] == [
        "slc",
        "self_normalization",
    ]
    assert list(document["wall_seconds"]) == ["load", "check", "slc", "self_normalization"]
    assert "all logits" not in result.stdout and "|log Z|" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--blocks", "slc,all"], "unknown block 'all' for --blocks; choose from: slc, all-logits, pols, self-norm"),
        (["--blocks", ","], "--blocks is empty"),
        (["--threads", "0"], "--threads must be at least 1, got 0"),
    ],
)
def test_bad_blocks_and_threads_are_one_line(npz, args, message):
    assert_one_line_error(evaluate(npz, *args), message)


def test_device_cuda_without_a_gpu_is_refused_before_any_work(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    out = tmp_path / "r.json"
    result = evaluate(tmp_path / "absent.npz", "--device", "cuda", "--json", out)  # no file read: it does not exist
    assert_one_line_error(result, "--device cuda was requested but no CUDA device is available")
    assert not out.exists()


def test_device_cuda_without_torch_is_refused(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    monkeypatch.delitem(sys.modules, "slcbench.evaluate.torch_backend", raising=False)
    result = evaluate(tmp_path / "absent.npz", "--device", "cuda")
    assert_one_line_error(result, "--device cuda needs torch, which is not installed (pip install torch)")


def test_a_whole_evaluate_run_imports_no_torch(npz):
    code = (
        "import sys; from slcbench.cli import main; sys.argv = ['slcbench', 'evaluate', sys.argv[1]]\n"
        "try:\n    main()\nexcept SystemExit as done:\n    assert done.code in (0, None), done.code\n"
        "print(sorted(m for m in ('torch', 'torchvision', 'timm') if m in sys.modules), file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code, str(npz)], capture_output=True, text=True, check=True)
    assert done.stderr.strip().splitlines()[-1] == "[]"
