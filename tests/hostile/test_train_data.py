"""Damaged training data: checked formats, counts and label ranges; a mismatch is an error, never a truncation."""

import numpy as np
import pytest

from slcbench.errors import SlcbenchError
from slcbench.train.data import load_dataset
from tests.hostile import crafting

RAW = ("MNIST", "raw")


def _raw(root, name):
    return root.joinpath(*RAW, name)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda root: _raw(root, "train-images-idx3-ubyte").write_bytes(b"garbage, not IDX"), "is not an IDX file"),
        (lambda root: _raw(root, "train-labels-idx1-ubyte").write_bytes(b""), "is not an IDX file"),
        (
            lambda root: crafting.idx_file(
                _raw(root, "train-images-idx3-ubyte"), np.zeros((2, 28, 28)), declared=(2**31, 28, 28)
            ),
            "declares 2147483648 x 28 x 28 values",
        ),
        (
            lambda root: crafting.idx_file(_raw(root, "train-images-idx3-ubyte"), np.zeros((0, 28, 28))),
            "the training split has 0 images but 120 labels",
        ),
    ],
)
def test_damaged_mnist_files_are_named(tmp_path, damage, message):
    root = crafting.mnist(tmp_path / "data")
    damage(root)
    with pytest.raises(SlcbenchError, match=message):
        load_dataset("mnist", root)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(train_images=300, train_labels=50), "300 images but 50 labels"),
        (dict(classes=1), "holds 1 class"),
        (dict(train_images=10, classes=10), "has 1 training image"),
        (dict(test=0), "the test split has no images"),
    ],
)
def test_counts_and_classes_that_cannot_train_are_refused(tmp_path, kwargs, message):
    with pytest.raises(SlcbenchError, match=message):
        load_dataset("mnist", crafting.mnist(tmp_path / "data", **kwargs))


def test_labels_outside_the_data_sets_classes_are_refused(tmp_path):
    root = crafting.mnist(tmp_path / "data")
    crafting.idx_file(_raw(root, "t10k-labels-idx1-ubyte"), np.full(40, 12))
    with pytest.raises(SlcbenchError, match="40 test labels lie outside 0..9"):
        load_dataset("mnist", root)


def test_a_cifar_batch_that_asks_for_code_is_never_run(tmp_path):
    import pickle

    folder = tmp_path / "data" / "cifar-10-batches-py"
    folder.mkdir(parents=True)

    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(pickle.dumps({"data": Payload(), "labels": [0]}))
    with pytest.raises(SlcbenchError, match="asks for builtins.print"):
        load_dataset("cifar10", tmp_path / "data")


def test_the_command_line_says_it_in_one_line_before_training(tmp_path, cli):
    root = crafting.mnist(tmp_path / "data", train_images=300, train_labels=50)
    done = cli("train", "--dataset", "mnist", "--data-dir", root, "--loss", "cross-entropy", "--out", "x.npz")
    done.refused("300 images but 50 labels")
    assert not (tmp_path / "x.npz").exists()
