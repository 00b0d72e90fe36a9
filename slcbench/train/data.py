"""Data sets for ``slcbench train``: scikit-learn's bundled digits, and MNIST, SVHN, CIFAR-10/100 from
files the user already has in torchvision's layouts. Nothing is ever downloaded.

The files are read here, not by torchvision, so that each is checked before it is trusted: a regular
file, a header that agrees with the file's size, pickles that may rebuild arrays and nothing else,
as many labels as images, labels in the data set's range, two classes at least with two images each.

Every data set comes back as three in-memory splits of (uint8 images, int64 labels) plus the scale
that maps pixels to [0, 1]. The paper uses the built-in train/test splits and does not say how its
validation set was carved out; we hold out a stratified ``validation_fraction`` of the training split
with a fixed seed, so every loss and every run sees the same validation and test examples.
"""

from __future__ import annotations

import math
import pickle
import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from slcbench.errors import SlcbenchError
from slcbench.io import check_input
from slcbench.train.config import DatasetName

SPLIT_SEED = 0  # fixed: the held-out examples must not change with --seed
DIGITS_TEST_FRACTION = 0.25  # digits has no built-in test split


# The files each data set is read from, under --data-dir (torchvision's layouts).
DATA_FILES: dict[DatasetName, tuple[str, ...]] = {
    DatasetName.mnist: tuple(
        f"MNIST/raw/{split}-{kind}-ubyte" for split in ("train", "t10k") for kind in ("images-idx3", "labels-idx1")
    ),
    DatasetName.svhn: ("train_32x32.mat", "test_32x32.mat"),
    DatasetName.cifar10: tuple(f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6))
    + ("cifar-10-batches-py/test_batch",),
    DatasetName.cifar100: ("cifar-100-python/train", "cifar-100-python/test"),
}
EXPECTED_FILES = {
    DatasetName.mnist: "MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte",
    DatasetName.svhn: "train_32x32.mat and test_32x32.mat",
    DatasetName.cifar10: "cifar-10-batches-py/ (the extracted python version)",
    DatasetName.cifar100: "cifar-100-python/ (the extracted python version)",
}
CLASSES = {
    DatasetName.digits: 10,
    DatasetName.mnist: 10,
    DatasetName.svhn: 10,
    DatasetName.cifar10: 10,
    DatasetName.cifar100: 100,
}
IMAGE_SHAPES = {
    DatasetName.mnist: (1, 28, 28),
    DatasetName.svhn: (3, 32, 32),
    DatasetName.cifar10: (3, 32, 32),
    DatasetName.cifar100: (3, 32, 32),
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


def _read_idx(path: Path, dims: int) -> np.ndarray:
    """An IDX file of unsigned bytes (MNIST's format) with ``dims`` dimensions, its header checked
    against the file's size before anything is read."""
    size = check_input(path).st_size
    header_bytes = 4 + 4 * dims
    with open(path, "rb") as handle:
        header = handle.read(header_bytes)
    if len(header) < header_bytes or header[:2] != b"\x00\x00" or header[2] != 0x08 or header[3] != dims:
        raise SlcbenchError(f"{path} is not an IDX file of {dims}-dimensional unsigned bytes (MNIST's format)")
    shape = struct.unpack(f">{dims}I", header[4:])
    needed = header_bytes + math.prod(shape)
    if needed != size:
        raise SlcbenchError(
            f"{path}: its header declares {' x '.join(map(str, shape))} values "
            f"({needed} bytes with the header) but the file holds {size} bytes"
        )
    return np.fromfile(path, dtype=np.uint8, offset=header_bytes).reshape(shape)


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """CIFAR's batches are pickles: only the globals that rebuild NumPy arrays may be loaded, so that
    a crafted file cannot run code."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"the file asks for {module}.{name}, which a data batch never needs")
        return super().find_class(module, name)


def _read_cifar_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (N x 3 x 32 x 32) and labels of one CIFAR python batch, checked for shape and count."""
    check_input(path)
    try:
        with open(path, "rb") as handle:
            batch = _ArraysOnlyUnpickler(handle, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, MemoryError) as exc:
        raise SlcbenchError(f"{path} is not a CIFAR python batch ({type(exc).__name__}: {exc})") from None
    if not isinstance(batch, dict):
        raise SlcbenchError(f"{path} is not a CIFAR python batch (a {type(batch).__name__}, not a dict)")
    batch = {key.decode("latin1") if isinstance(key, bytes) else key: value for key, value in batch.items()}
    images, labels = batch.get("data"), batch.get(label_key)
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 2 or images.shape[1] != 3072:
        raise SlcbenchError(f"{path}: 'data' is not an N x 3072 array of bytes")
    try:
        label_array = np.asarray(labels, dtype=np.int64).reshape(-1)
    except (TypeError, ValueError):
        raise SlcbenchError(f"{path}: '{label_key}' is not a list of class numbers") from None
    return images.reshape(-1, 3, 32, 32), label_array


def _read_svhn(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N x 3 x 32 x 32) and labels (digit 0 is stored as 10) of an SVHN ``.mat`` file."""
    check_input(path)
    from scipy.io import loadmat  # scipy comes with scikit-learn, a runtime dependency

    try:
        content = loadmat(path, variable_names=("X", "y"))
    except (ValueError, TypeError, OSError, MemoryError, NotImplementedError, KeyError) as exc:
        raise SlcbenchError(f"{path} is not an SVHN .mat file ({type(exc).__name__}: {exc})") from None
    images, labels = content.get("X"), content.get("y")
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.shape[:3] != (32, 32, 3):
        raise SlcbenchError(f"{path}: 'X' is not a 32 x 32 x 3 x N array of bytes")
    if not isinstance(labels, np.ndarray) or not np.issubdtype(labels.dtype, np.number):
        raise SlcbenchError(f"{path}: 'y' is not an array of labels")
    labels = labels.reshape(-1).astype(np.int64)
    return np.transpose(images, (3, 2, 0, 1)), np.where(labels == 10, 0, labels)


def _read_files(name: DatasetName, data_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train images, train labels, test images, test labels) as stored under ``data_dir``."""
    missing = [file for file in DATA_FILES[name] if not (data_dir / file).exists()]
    if missing:
        raise SlcbenchError(
            f"{name.value} not found in {data_dir} ({missing[0]} is missing); slcbench never downloads: put "
            f"{EXPECTED_FILES[name]} under {data_dir} (torchvision's layout, e.g. from torchvision.datasets with "
            "download=True on a machine with network access)"
        )
    files = [data_dir / file for file in DATA_FILES[name]]
    if name is DatasetName.mnist:
        # MNIST keeps images in rows x columns; the height axis is the rows.
        return (
            _read_idx(files[0], 3)[:, None],
            _read_idx(files[1], 1).astype(np.int64),
            _read_idx(files[2], 3)[:, None],
            _read_idx(files[3], 1).astype(np.int64),
        )
    if name is DatasetName.svhn:
        return (*_read_svhn(files[0]), *_read_svhn(files[1]))
    label_key = "fine_labels" if name is DatasetName.cifar100 else "labels"
    batches = [_read_cifar_batch(file, label_key) for file in files]
    train = batches[:-1]
    return (np.concatenate([b[0] for b in train]), np.concatenate([b[1] for b in train]), *batches[-1])


def _check_split(name: DatasetName, split: str, images: np.ndarray, labels: np.ndarray) -> None:
    if len(images) != len(labels):
        raise SlcbenchError(f"{name.value}: the {split} split has {len(images)} images but {len(labels)} labels")
    if len(images) == 0:
        raise SlcbenchError(f"{name.value}: the {split} split has no images")
    if images.shape[1:] != IMAGE_SHAPES.get(name, images.shape[1:]):
        raise SlcbenchError(f"{name.value}: {split} images are {images.shape[1:]}, not {IMAGE_SHAPES[name]}")
    outside = (labels < 0) | (labels >= CLASSES[name])
    if outside.any():
        raise SlcbenchError(
            f"{name.value}: {int(outside.sum())} {split} labels lie outside 0..{CLASSES[name] - 1} "
            f"(e.g. {int(labels[outside][0])})"
        )


def _check_classes(name: DatasetName, labels: np.ndarray) -> None:
    """Training needs two classes at least, each with two examples (one is held out for validation)."""
    classes, counts = np.unique(labels, return_counts=True)
    if classes.size < 2:
        raise SlcbenchError(f"{name.value}: the training split holds {classes.size} class; SLC needs at least 2")
    if counts.min() < 2:
        scarce = int(classes[np.argmin(counts)])
        raise SlcbenchError(
            f"{name.value}: class {scarce} has {int(counts.min())} training image; every class "
            "needs 2 (one is held out to choose the learning rate)"
        )


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
        if not stat.S_ISDIR(check_input(data_dir, folder_ok=True, what="--data-dir").st_mode):
            raise SlcbenchError(f"--data-dir {data_dir} is not a folder")
        train_x, train_y, test_x, test_y = _read_files(name, data_dir)
        pixel_max = 255.0
    _check_split(name, "training", train_x, train_y)
    _check_split(name, "test", test_x, test_y)
    _check_classes(name, train_y)
    kept, held = _stratified_split(np.asarray(train_y), validation_fraction, SPLIT_SEED)
    num_classes = CLASSES[name]
    return DataSplits(
        name=name,
        train=_as_split(train_x, train_y, kept),
        validation=_as_split(train_x, train_y, held),
        test=_as_split(test_x, test_y),
        num_classes=num_classes,
        pixel_max=pixel_max,
    )
