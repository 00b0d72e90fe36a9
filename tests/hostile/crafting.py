"""Makers of hostile inputs: special files, odd names, damaged data sets and crafted archives.

Each maker writes into a folder it is given and returns the path; nothing outside it is touched.
A character device is only made where the tests run as root, with mknod, inside the test folder.
"""

from __future__ import annotations

import os
import socket
import stat
import struct
from pathlib import Path

import numpy as np


def fifo(folder: Path, name: str = "fifo") -> Path:
    path = folder / name
    os.mkfifo(path)
    return path


def unix_socket(folder: Path, name: str = "sock") -> tuple[Path, socket.socket]:
    """A listening Unix socket (keep the returned socket open while the file should exist)."""
    path = folder / name
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    return path, server


def char_device(folder: Path, name: str = "null-device") -> Path | None:
    """A character device like /dev/null (major 1, minor 3) inside ``folder``; None without root."""
    if os.geteuid() != 0:
        return None
    path = folder / name
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    return path


def good_logits(folder: Path, name: str = "good.npz", n: int = 200, k: int = 5) -> Path:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)).astype(np.float32)
    logits[np.arange(n), labels] += 2
    path = folder / name
    np.savez(path, logits=logits, labels=labels)
    return path


def idx_file(path: Path, array: np.ndarray, *, declared: tuple[int, ...] | None = None) -> Path:
    """An IDX file (MNIST's format) of ``array`` whose header declares ``declared`` dimensions."""
    shape = declared if declared is not None else array.shape
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        b"\x00\x00\x08"
        + bytes([len(shape)])
        + struct.pack(f">{len(shape)}I", *shape)
        + array.astype(np.uint8).tobytes()
    )
    return path


def mnist(
    root: Path, *, train_images: int = 120, train_labels: int | None = None, test: int = 40, classes: int = 10
) -> Path:
    """MNIST in torchvision's layout, with as many training labels as asked (default: one per image)."""
    raw = root / "MNIST" / "raw"
    rng = np.random.default_rng(0)
    for prefix, n_images, n_labels in (("train", train_images, train_labels), ("t10k", test, None)):
        n_labels = n_images if n_labels is None else n_labels
        idx_file(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n_images, 28, 28)))
        idx_file(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n_labels) % classes)
    return root


def tree_hashes(folder: Path) -> dict[str, tuple[int, bytes]]:
    """Every entry below ``folder``: its mode, and the bytes of regular files (to prove nothing changed)."""
    entries = {}
    for path in sorted(folder.rglob("*")):
        status = path.lstat()
        content = path.read_bytes() if stat.S_ISREG(status.st_mode) else b""
        entries[str(path.relative_to(folder))] = (stat.S_IFMT(status.st_mode), content)
    return entries
