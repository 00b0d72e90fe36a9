"""Data sets for ``slcbench train``: scikit-learn's bundled digits, and MNIST, SVHN, CIFAR-10/100 from
files the user already has in torchvision's layouts. Nothing is ever downloaded.

Every data set comes back as three in-memory splits of (uint8 images, int64 labels) plus the scale
that maps pixels to [0, 1]. The paper uses the built-in train/test splits and does not say how its
validation set was carved out; we hold out a stratified ``validation_fraction`` of the training split
with a fixed seed, so every loss and every run sees the same validation and test examples.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from slcbench.errors import SlcbenchError
from slcbench.train.config import DatasetName

SPLIT_SEED = 0  # fixed: the held-out examples must not change with --seed
DIGITS_TEST_FRACTION = 0.25  # digits has no built-in test split


# What torchvision (download=False) looks for under --data-dir, for the error message.
EXPECTED_FILES = {
    DatasetName.mnist: "MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte",
    DatasetName.svhn: "train_32x32.mat and test_32x32.mat",
    DatasetName.cifar10: "cifar-10-batches-py/ (the extracted python version)",
    DatasetName.cifar100: "cifar-100-python/ (the extracted python version)",
}


@dataclass(frozen=True)
class Split:
    images: Tensor  # uint8, [n, channels, height, width]
    labels: Tensor  # int64, [n]

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True)
class DataSplits:
    name: DatasetName
    train: Split
    validation: Split
    test: Split
    num_classes: int
    pixel_max: float  # images / pixel_max lies in [0, 1]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.images.shape[1:])  # type: ignore[return-value]


def _stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, held_out) with ``fraction`` of every class held out (at least one per class)."""
    rng = np.random.default_rng(seed)
    kept, held = [], []
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        n_held = max(1, int(round(fraction * len(members)))) if fraction > 0 else 0
        held.append(members[:n_held])
        kept.append(members[n_held:])
    return np.sort(np.concatenate(kept)), np.sort(np.concatenate(held))


def _as_split(images: np.ndarray, labels: np.ndarray, index: np.ndarray | slice = slice(None)) -> Split:
    return Split(
        torch.as_tensor(np.ascontiguousarray(images[index]), dtype=torch.uint8),
        torch.as_tensor(np.asarray(labels)[index], dtype=torch.int64),
    )


def _load_digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    try:
        from sklearn.datasets import load_digits
    except ImportError:  # pragma: no cover - scikit-learn is a runtime dependency
        raise SlcbenchError("the digits data set needs scikit-learn: pip install scikit-learn") from None
    bunch = load_digits()
    images = bunch.images.astype(np.uint8)[:, None, :, :]  # 8×8, values 0..16
    labels = bunch.target.astype(np.int64)
    train_idx, test_idx = _stratified_split(labels, DIGITS_TEST_FRACTION, SPLIT_SEED)
    return images[train_idx], labels[train_idx], images[test_idx], labels[test_idx], 16.0


def _load_torchvision(
    name: DatasetName, data_dir: Path
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """(train images, train labels, test images, test labels, pixel max) from torchvision's classes."""
    import torchvision.datasets as tvd

    def nchw(array: np.ndarray) -> np.ndarray:  # CIFAR stores N×H×W×C
        return np.transpose(array, (0, 3, 1, 2))

    loaders = {
        DatasetName.mnist: lambda train: tvd.MNIST(str(data_dir), train=train, download=False),
        DatasetName.svhn: lambda train: tvd.SVHN(str(data_dir), split="train" if train else "test", download=False),
        DatasetName.cifar10: lambda train: tvd.CIFAR10(str(data_dir), train=train, download=False),
        DatasetName.cifar100: lambda train: tvd.CIFAR100(str(data_dir), train=train, download=False),
    }
    arrays = []
    for train in (True, False):
        try:
            ds = loaders[name](train)
        except (RuntimeError, OSError):  # torchvision: "Dataset not found or corrupted"
            raise SlcbenchError(
                f"{name.value} not found in {data_dir}; slcbench never downloads: put "
                f"{EXPECTED_FILES[name]} under {data_dir} (torchvision's layout, e.g. from "
                f"torchvision.datasets with download=True on a machine with network access)"
            ) from None
        except ImportError as exc:  # SVHN's .mat files need scipy
            raise SlcbenchError(f"loading {name.value} needs {exc.name}: pip install {exc.name}") from None
        if name is DatasetName.mnist:
            images, labels = ds.data.numpy()[:, None, :, :], ds.targets.numpy()
        elif name is DatasetName.svhn:
            images, labels = ds.data, ds.labels  # already N×C×H×W
        else:
            images, labels = nchw(ds.data), np.asarray(ds.targets)
        arrays += [images, labels]
    return (*arrays, 255.0)


def load_dataset(
    name: DatasetName | str,
    data_dir: Path | str | None = None,
    *,
    validation_fraction: float = 0.1,
) -> DataSplits:
    """Load ``name`` with its built-in test split (digits: a fixed stratified 25 %) and a stratified
    ``validation_fraction`` of the training split held out for choosing the learning rate.

    ``data_dir`` is required for every data set but digits (which scikit-learn ships); a missing or
    incomplete data set is a SlcbenchError that says which files to put where.
    """
    name = DatasetName(name)
    if not 0 < validation_fraction < 1:
        raise SlcbenchError(f"validation fraction must lie in (0, 1), got {validation_fraction}")
    if name is DatasetName.digits:
        train_x, train_y, test_x, test_y, pixel_max = _load_digits()
    else:
        if data_dir is None:
            raise SlcbenchError(
                f"{name.value} needs --data-dir: a folder holding {EXPECTED_FILES[name]} "
                "(torchvision's layout); slcbench never downloads"
            )
        data_dir = Path(data_dir)
        if not data_dir.is_dir():
            raise SlcbenchError(f"--data-dir {data_dir} is not a folder")
        train_x, train_y, test_x, test_y, pixel_max = _load_torchvision(name, data_dir)
    kept, held = _stratified_split(np.asarray(train_y), validation_fraction, SPLIT_SEED)
    num_classes = int(max(np.max(train_y), np.max(test_y))) + 1
    return DataSplits(
        name=name,
        train=_as_split(train_x, train_y, kept),
        validation=_as_split(train_x, train_y, held),
        test=_as_split(test_x, test_y),
        num_classes=num_classes,
        pixel_max=pixel_max,
    )
