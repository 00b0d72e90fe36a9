"""Data, models, the learning-rate search and the ``slcbench train`` command (tiny runs on digits)."""

import json
import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from slcbench.cli import app
from slcbench.errors import SlcbenchError
from slcbench.evaluate.evaluation import evaluate_file
from slcbench.train.config import DatasetName, TrainConfig
from slcbench.train.data import load_dataset
from slcbench.train.losses import LOSSES, losses_to_train, paper_losses
from slcbench.train.networks import mlp, six_conv_net
from slcbench.train.training import train_once, train_with_lr_search

runner = CliRunner()


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


# ---- data -----------------------------------------------------------------------------------


def test_digits_splits_are_stratified_disjoint_and_complete(digits):
    from sklearn.datasets import load_digits

    bunch = load_digits()
    assert len(digits.train) + len(digits.validation) + len(digits.test) == len(bunch.target) == 1797
    assert (len(digits.test), len(digits.validation)) == (450, 136)
    assert digits.image_shape == (1, 8, 8) and digits.num_classes == 10 and digits.pixel_max == 16
    # every class in every split, in proportion (stratified): 45 ± 1 test images per class
    assert set(digits.test.labels.bincount().tolist()) <= {44, 45, 46}
    assert (digits.validation.labels.bincount() >= 12).all()

    # each original image lands in exactly one split (compare images as byte strings, with labels)
    def keys(split):
        return {(img.numpy().tobytes(), int(y)) for img, y in zip(split.images, split.labels, strict=False)}

    everything = {
        (img.astype(np.uint8)[None].tobytes(), int(y)) for img, y in zip(bunch.images, bunch.target, strict=False)
    }
    parts = [keys(digits.train), keys(digits.validation), keys(digits.test)]
    assert parts[0] | parts[1] | parts[2] == everything
    assert not (parts[0] & parts[2]) and not (parts[1] & parts[2]) and not (parts[0] & parts[1])


def test_splits_do_not_depend_on_anything_but_the_data(digits):
    again = load_dataset(DatasetName.digits)
    assert torch.equal(again.test.labels, digits.test.labels)
    assert torch.equal(again.validation.images, digits.validation.images)


@pytest.mark.parametrize(
    "name,expected",
    [
        ("mnist", "MNIST/raw"),
        ("cifar10", "cifar-10-batches-py"),
        ("cifar100", "cifar-100-python"),
        ("svhn", "train_32x32.mat"),
    ],
)
def test_missing_data_set_says_where_to_put_the_files(tmp_path, name, expected):
    with pytest.raises(SlcbenchError, match="never downloads") as info:
        load_dataset(name, tmp_path)
    assert expected in str(info.value) and str(tmp_path) in str(info.value)
    assert list(tmp_path.iterdir()) == []  # nothing was downloaded or created
    with pytest.raises(SlcbenchError, match="--data-dir"):
        load_dataset(name, None)


# ---- models ---------------------------------------------------------------------------------


def test_mlp_is_two_500_unit_layers_with_batch_norm_and_relu():
    model = mlp(64, 10)
    linear = [m for m in model if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(64, 500), (500, 500), (500, 10)]
    assert [type(m).__name__ for m in model][1:7] == ["Linear", "BatchNorm1d", "ReLU"] * 2
    assert model(torch.randn(3, 1, 8, 8)).shape == (3, 10)


def test_six_conv_net_follows_the_paper():
    model = six_conv_net(3, 100)
    convs = [m for m in model if isinstance(m, torch.nn.Conv2d)]
    assert [m.kernel_size[0] for m in convs] == [5, 1, 5, 1, 5, 1]
    assert [m.out_channels for m in convs] == [128, 128, 256, 256, 512, 512]
    pools = [i for i, m in enumerate(model) if isinstance(m, torch.nn.MaxPool2d)]
    assert len(pools) == 3 and all(model[i].kernel_size == 3 and model[i].stride == 2 for i in pools)
    dense = [m for m in model if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in dense] == [1024, 100]
    assert sum(isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)) for m in model) == 7
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 100)


# ---- training -------------------------------------------------------------------------------


def test_training_is_repeatable_for_a_seed_and_changes_with_it(digits):
    config = TrainConfig(loss="batch-ce", steps=15, learning_rates=(0.1,), seed=3)
    a = train_with_lr_search(digits, config, torch.device("cpu"))
    b = train_with_lr_search(digits, config, torch.device("cpu"))
    c = train_with_lr_search(
        digits, TrainConfig(loss="batch-ce", steps=15, learning_rates=(0.1,), seed=4), torch.device("cpu")
    )
    np.testing.assert_array_equal(a.test_logits, b.test_logits)
    assert not np.array_equal(a.test_logits, c.test_logits)
    assert a.test_logits.shape == (450, 10) and a.test_logits.dtype == np.float32


def test_learning_rate_search_keeps_the_best_validation_accuracy_and_skips_divergence(digits):
    config = TrainConfig(loss="cross-entropy", steps=30, learning_rates=(1e30, 0.5, 1e-4))
    result = train_with_lr_search(digits, config, torch.device("cpu"))
    by_rate = {run.learning_rate: run for run in result.search}
    assert by_rate[1e30].diverged and math.isnan(by_rate[1e30].validation_accuracy)
    assert not by_rate[0.5].diverged and not by_rate[1e-4].diverged
    best = max((r for r in result.search if not r.diverged), key=lambda r: r.validation_accuracy)
    assert result.learning_rate == best.learning_rate == 0.5  # 1e-4 barely moves in 30 steps
    assert result.validation_accuracy == best.validation_accuracy > by_rate[1e-4].validation_accuracy
    # the test logits are the chosen model's: its accuracy recomputed from them
    assert result.test_accuracy == pytest.approx(np.mean(result.test_logits.argmax(1) == result.test_labels))


def test_every_rate_diverging_is_an_error(digits):
    with pytest.raises(SlcbenchError, match="diverged at every learning rate"):
        train_with_lr_search(
            digits, TrainConfig(loss="cross-entropy", steps=10, learning_rates=(1e30,)), torch.device("cpu")
        )


def test_training_reduces_the_loss_for_every_registered_loss(digits):
    # 40 steps at a moderate rate: the validation accuracy of every loss, ISBE included, beats chance by far.
    for name in LOSSES:
        _, outcome = train_once(
            digits, TrainConfig(loss=name, steps=40, learning_rates=(0.1,)), 0.1, torch.device("cpu")
        )
        assert outcome.validation_accuracy > 0.5, (name, outcome)


def test_loss_names_expand_and_unknown_ones_list_the_choices():
    assert losses_to_train(["all"]) == list(paper_losses())
    assert losses_to_train(["batch-ce", "all", "isbe-tanh"])[:2] == ["batch-ce", "cross-entropy"]
    with pytest.raises(
        SlcbenchError, match="unknown loss 'softmax'; choose one of: cross-entropy, .*isbe-hardtanh, all"
    ):
        losses_to_train(["softmax"])


# ---- the command ------------------------------------------------------------------------------


def _train(*args):
    return runner.invoke(app, ["train", *args])


def test_train_cli_writes_a_valid_npz_that_evaluate_reads(tmp_path):
    out = tmp_path / "batch-ce.npz"
    result = _train("--loss", "batch-ce", "--dataset", "digits", "--steps", "5", "--lr", "0.1", "--out", str(out))
    assert result.exit_code == 0, result.output
    with np.load(out, allow_pickle=False) as saved:
        assert set(saved.files) == {
            "logits",
            "labels",
            "loss",
            "settings",
            "validation_accuracy",
            "test_accuracy",
            "learning_rate",
        }
        assert saved["logits"].shape == (450, 10) and saved["logits"].dtype == np.float32
        assert saved["labels"].dtype == np.int64
        np.testing.assert_array_equal(saved["labels"], load_dataset("digits").test.labels.numpy())
        assert str(saved["loss"]) == "batch-ce"
        settings = json.loads(str(saved["settings"]))
        assert (settings["steps"], settings["learning_rate"], settings["dataset"]) == (5, 0.1, "digits")
        assert 0 <= float(saved["validation_accuracy"]) <= 1
    evaluated = evaluate_file(out)
    assert evaluated.n_examples == 450 and evaluated.n_classes == 10


def test_train_cli_with_two_losses_prints_and_saves_the_table(tmp_path):
    result = _train("--loss", "cross-entropy,batch-ce", "--steps", "4", "--lr", "0.1", "--out", str(tmp_path / "t"))
    assert result.exit_code == 0, result.output
    assert "mean relative improvement" in result.output
    names = sorted(p.name for p in (tmp_path / "t").iterdir())
    assert names == ["batch-ce.npz", "cross-entropy.npz", "summary.json", "table.csv", "table.txt"]
    text = (tmp_path / "t" / "table.txt").read_text()
    assert text.startswith("$ slcbench train") and "batch CE" in text and "mean relative improvement" in text
    summary = json.loads((tmp_path / "t" / "summary.json").read_text())
    assert summary["evaluation"]["baseline"] == ["CE"]
    assert [t["loss"] for t in summary["training"]] == ["cross-entropy", "batch-ce"]
    assert "torch" in summary["environment"]
    assert summary["environment"]["torch_threads"] == 1  # the default on the CPU
    assert set(summary["reproduces_with"]) <= set(summary["environment"])
    assert {"torch_git", "cpu_capability", "torch_threads"} <= set(summary["reproduces_with"])


def test_train_repeats_bit_for_bit_by_default_and_leaves_the_threads_as_it_found_them(tmp_path):
    torch.set_num_threads(2)
    try:
        for name in ("a.npz", "b.npz"):
            result = _train("--loss", "cross-entropy", "--steps", "30", "--lr", "1", "--out", str(tmp_path / name))
            assert result.exit_code == 0, result.output
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)
    with np.load(tmp_path / "a.npz") as first, np.load(tmp_path / "b.npz") as second:
        assert first["logits"].tobytes() == second["logits"].tobytes()


def _one_line_error(result):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_unknown_loss_is_one_line_listing_the_choices(tmp_path):
    line = _one_line_error(_train("--loss", "hinge", "--out", str(tmp_path / "x.npz")))
    assert "unknown loss 'hinge'" in line and "batch-max-margin" in line and "isbe-softmax" in line
    assert list(tmp_path.iterdir()) == []


def test_missing_data_set_is_one_line(tmp_path):
    line = _one_line_error(
        _train("--dataset", "cifar10", "--data-dir", str(tmp_path), "--loss", "nce", "--out", str(tmp_path / "x.npz"))
    )
    assert "cifar-10-batches-py" in line and "never downloads" in line


def test_existing_output_is_refused_before_training_and_kept(tmp_path):
    out = tmp_path / "ce.npz"
    out.write_bytes(b"earlier result")
    line = _one_line_error(_train("--loss", "cross-entropy", "--steps", "2", "--lr", "0.1", "--out", str(out)))
    assert "already exists" in line and "--force" in line
    assert out.read_bytes() == b"earlier result"
    assert _train("--loss", "cross-entropy", "--steps", "2", "--lr", "0.1", "--out", str(out), "--force").exit_code == 0
    with np.load(out, allow_pickle=False) as saved:
        assert saved["logits"].shape == (450, 10)


def test_one_loss_creates_the_folder_of_its_file(tmp_path):
    out = tmp_path / "runs" / "nested" / "ce.npz"
    result = _train("--loss", "cross-entropy", "--steps", "2", "--lr", "0.1", "--out", str(out))
    assert result.exit_code == 0, result.output
    with np.load(out, allow_pickle=False) as saved:
        assert saved["logits"].shape == (450, 10)


def test_one_loss_under_a_file_is_one_line(tmp_path):
    (tmp_path / "plain").write_text("not a folder")
    line = _one_line_error(
        _train("--loss", "cross-entropy", "--steps", "2", "--out", str(tmp_path / "plain" / "ce.npz"))
    )
    assert "is a file, not a folder" in line


def test_existing_table_in_the_output_folder_is_refused(tmp_path):
    (tmp_path / "table.txt").write_text("keep me")
    line = _one_line_error(_train("--loss", "cross-entropy,nce", "--steps", "2", "--out", str(tmp_path)))
    assert "table.txt already exists" in line
    assert (tmp_path / "table.txt").read_text() == "keep me" and len(list(tmp_path.iterdir())) == 1


@pytest.mark.parametrize(
    "args,message",
    [
        (["--steps", "0"], "--steps must be positive"),
        (["--batch-size", "0"], "--batch-size must be positive"),
        (["--lr", "-1"], "learning rates must be positive"),
        (["--margin", "0", "--loss", "max-margin"], "margin must be positive"),
        (
            ["--nce-exact-max-k", "-1", "--loss", "nce"],
            "NCE exact max k must be non-negative, got -1",
        ),  # 0 = always sample
    ],
)
def test_bad_numbers_are_one_line(tmp_path, args, message):
    line = _one_line_error(_train("--out", str(tmp_path / "x.npz"), "--loss", "cross-entropy", *args))
    assert message in line


# ---- the torchvision data sets, from small files written in their on-disk formats ----------------


def _write_idx(path, array, magic):
    import struct

    path.write_bytes(struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes())


def _fake_mnist(root, n_train=120, n_test=40):
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), 2051)
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", (np.arange(n) % 10).astype(np.uint8), 2049)


def _fake_cifar10(root, n_train=60, n_test=20):
    import pickle

    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)

    def batch(n, offset):
        return {
            "data": rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8),
            "labels": [(offset + i) % 10 for i in range(n)],
        }

    for i in range(1, 6):
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(batch(n_train // 5, i)))
    (folder / "test_batch").write_bytes(pickle.dumps(batch(n_test, 0)))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}))


def _train_from_files(tmp_path, dataset, *args):
    """Train ``dataset`` from ``tmp_path/data`` with ``args``; return the saved (logits, settings)."""
    out = tmp_path / "run.npz"
    result = _train("--dataset", dataset, "--data-dir", str(tmp_path / "data"), *args, "--out", str(out))
    assert result.exit_code == 0, result.output
    with np.load(out, allow_pickle=False) as saved:
        return saved["logits"], json.loads(str(saved["settings"]))


def test_mnist_from_torchvisions_layout_trains_the_mlp_end_to_end(tmp_path):
    _fake_mnist(tmp_path / "data")
    data = load_dataset("mnist", tmp_path / "data")
    assert data.image_shape == (1, 28, 28) and data.num_classes == 10 and data.pixel_max == 255.0
    assert len(data.test) == 40 and len(data.train) + len(data.validation) == 120
    logits, settings = _train_from_files(
        tmp_path, "mnist", "--loss", "cross-entropy", "--steps", "3", "--lr", "0.1", "--batch-size", "16"
    )
    assert logits.shape == (40, 10) and np.isfinite(logits).all()
    assert settings["model"] == "mlp-2x500-bn-relu"


def test_cifar10_from_torchvisions_layout_trains_the_six_convolution_network(tmp_path):
    _fake_cifar10(tmp_path / "data")
    data = load_dataset("cifar10", tmp_path / "data")
    assert data.image_shape == (3, 32, 32) and data.num_classes == 10 and len(data.test) == 20
    logits, settings = _train_from_files(
        tmp_path, "cifar10", "--loss", "batch-ce", "--steps", "2", "--lr", "0.01", "--batch-size", "8"
    )
    assert logits.shape == (20, 10) and np.isfinite(logits).all()
    assert "conv" in settings["model"]


def _fake_svhn(root, n_train=40, n_test=20):
    from scipy.io import savemat  # scipy comes with scikit-learn, a runtime dependency

    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    stored = {}
    for split, n in (("train", n_train), ("test", n_test)):
        # The real files: X is height × width × channel × N, y is N × 1 with digit 0 stored as 10.
        stored[split] = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        savemat(
            root / f"{split}_32x32.mat", {"X": stored[split], "y": (np.arange(n) % 10 + 1).astype(np.uint8)[:, None]}
        )
    return stored


def _fake_cifar100(root, n_train=200, n_test=100):
    import pickle

    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, n in (("train", n_train), ("test", n_test)):
        (folder / name).write_bytes(
            pickle.dumps(
                {
                    "data": rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8),
                    "fine_labels": [i % 100 for i in range(n)],
                    "coarse_labels": [i % 20 for i in range(n)],
                }
            )
        )
    (folder / "meta").write_bytes(pickle.dumps({"fine_label_names": [f"c{i}" for i in range(100)]}))


def test_svhn_from_its_mat_files_maps_label_10_to_digit_0_and_trains(tmp_path):
    stored = _fake_svhn(tmp_path / "data")
    data = load_dataset("svhn", tmp_path / "data")
    assert data.image_shape == (3, 32, 32) and data.num_classes == 10 and data.pixel_max == 255.0
    first = stored["test"][:, :, :, 0].transpose(2, 0, 1)  # channels first, rows still rows
    assert any(np.array_equal(image.numpy(), first) for image in data.test.images)
    assert sorted(data.test.labels.tolist()) == sorted(np.arange(20) % 10)  # 10 became 0, nothing else moved
    logits, _ = _train_from_files(
        tmp_path, "svhn", "--loss", "binary-ce", "--steps", "2", "--lr", "0.01", "--batch-size", "8"
    )
    assert logits.shape == (20, 10) and np.isfinite(logits).all()


def test_cifar100_reads_the_fine_labels_and_trains_100_classes(tmp_path):
    _fake_cifar100(tmp_path / "data")
    data = load_dataset("cifar100", tmp_path / "data")
    assert data.num_classes == 100 and len(data.test) == 100
    assert sorted(data.test.labels.tolist()) == list(range(100))  # fine, not coarse (20) labels
    logits, _ = _train_from_files(
        tmp_path, "cifar100", "--loss", "self-norm", "--steps", "2", "--lr", "0.01", "--batch-size", "8"
    )
    assert logits.shape == (100, 100) and np.isfinite(logits).all()
