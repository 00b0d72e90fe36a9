"""``slcbench isbe`` end to end on a tiny run, and its one-line errors for bad input."""

import json

import pandas as pd
import pytest

from tests.test_cli_entry import run_main


def test_a_tiny_run_prints_the_papers_tables_and_writes_json_csv_text_and_curves(monkeypatch, capsys, tmp_path):
    args = ["isbe", "--tiny", "--networks", "net1", "--activations", "softmax,tanh", "--isbe-reductions", "none,sum"]
    args += ["--threads", "1"]  # tiny networks: one thread is fastest, and immune to a busy machine
    code, out, err = run_main(monkeypatch, capsys, *args, "--output", str(tmp_path))
    assert code == 0, err
    for title in ("Table 1 · net1", "Table 2 ·", "Table 3 ·", "Table 4 ·", "Blurred targets ·", "CPU timing"):
        assert title in out
    files = sorted(p.name for p in tmp_path.iterdir())
    stem = next(name for name in files if name.endswith(".json")).removesuffix(".json")
    suffixes = (".csv", "-comparisons.csv", ".json", ".txt", "-net1.png")
    assert files == sorted(f"{stem}{suffix}" for suffix in suffixes)
    document = json.loads((tmp_path / f"{stem}.json").read_text())
    assert document["kind"] == "slcbench.isbe" and document["command"].startswith("slcbench isbe --tiny")
    assert document["settings"]["seeds"] == [0, 1] and document["settings"]["epochs"] == 2
    options = [
        "ce-none",
        "ce-mean",
        "ce-sum",
        "isbe-softmax-none",
        "isbe-tanh-none",
        "isbe-softmax-sum",
        "isbe-tanh-sum",
    ]
    assert document["settings"]["options"] == [*options, "isbe-softmax-none-blurred", "isbe-tanh-none-blurred"]
    assert len(document["groups"]) == 2 * 2  # net1 with and without relocation, two seeds
    group = document["groups"][0]
    assert len(group["options"]) == 9 and len(group["options"][0]["forward_ms"]) == 2 * 3
    savings = document["tables"]["savings"]
    assert len(savings) == 2 * 4 * 3  # per variant: four ISBE options with hard targets against three CE options
    assert {row["baseline"] for row in savings} == {"ce-none", "ce-mean", "ce-sum"}
    options_csv = pd.read_csv(tmp_path / f"{stem}.csv")
    assert len(options_csv) == 2 * 9 and {"backprop_share_pct_low", "test_accuracy_pct_high"} <= set(options_csv)
    comparisons = pd.read_csv(tmp_path / f"{stem}-comparisons.csv")
    assert comparisons["table"].value_counts().to_dict() == {"accuracy": 2 * 6 * 3, "time": 2 * 4 * 3, "blur": 2 * 2}
    assert set(comparisons["verdict"]) <= {"+", "-", "=", "?"}
    assert (tmp_path / f"{stem}-net1.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seeds", "zero"], "slcbench: error: --seeds zero: give non-negative integers"),
        (["--seeds", "0-99999999999"], "slcbench: error: --seeds 0-99999999999: at most 1000 seeds"),
        (["--seeds", str(2**63)], "slcbench: error: --seeds must lie between 0 and 2^63 - 1"),
        (["--lr", "1e300"], "slcbench: error: --lr must be positive and at most 1e+30"),
        (["--activations", "relu"], "slcbench: error: --activations 'relu'"),
        (["--blur", "0.95"], "slcbench: error: --blur must lie in [0, 0.9)"),
        (["--dataset", "digits", "--data-dir", "."], "slcbench: error: --data-dir is read for MNIST only"),
        (["--dataset", "mnist"], "slcbench: error: mnist needs --data-dir"),
        (["--dataset", "cifar10"], "slcbench: error: Invalid value for '--dataset'"),
        (["--epochs", "1", "--steps-per-epoch", "2", "--warmup-steps", "2"], "slcbench: error: 1 epoch(s) of 2 steps"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(monkeypatch, capsys, tmp_path, args, message):
    code, out, err = run_main(monkeypatch, capsys, "isbe", "--no-plot", "--output", str(tmp_path), *args)
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(message), err
    assert not any(tmp_path.iterdir())
