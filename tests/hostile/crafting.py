"""Makers of hostile inputs: special files, odd names, damaged data sets and crafted archives.

Each maker writes into a folder it is given and returns the path; nothing outside it is touched.
A character device is only made where the tests run as root, with mknod, inside the test folder.
"""

from __future__ import annotations

import io
import os
import socket
import stat
import struct
import zlib
from dataclasses import dataclass
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


# --- crafted .npz archives ------------------------------------------------------------------------

STORED, DEFLATE, DEFLATE64 = 0, 8, 9
_ZIP64_NEEDED = 0xFFFFFFFF


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def npy_header(shape: tuple[int, ...], descr: str = "<f8", *, text: str | None = None) -> bytes:
    """A version 1.0 ``.npy`` header declaring ``shape`` (or holding ``text`` verbatim, padded)."""
    body = text if text is not None else repr({"descr": descr, "fortran_order": False, "shape": shape})
    padding = -(10 + len(body) + 1) % 64
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(body) + padding + 1) + body.encode() + b" " * padding + b"\n"


def deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate, as zip stores it
    return packer.compress(data) + packer.flush()


def zeros_bomb(header: bytes, zero_bytes: int) -> bytes:
    """A raw deflate stream of ``header`` then ``zero_bytes`` zeros, built without inflating them: after a
    full flush the compressor starts afresh, so every MiB of zeros compresses to the same bytes."""
    chunk = 1 << 20
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    parts = [packer.compress(header) + packer.flush(zlib.Z_FULL_FLUSH)]
    block = packer.compress(bytes(chunk)) + packer.flush(zlib.Z_FULL_FLUSH)
    assert packer.compress(bytes(chunk)) + packer.flush(zlib.Z_FULL_FLUSH) == block
    whole, rest = divmod(zero_bytes, chunk)
    parts.append(block * (whole - 1))
    parts.append(packer.compress(bytes(rest)) + packer.flush())
    return b"".join(parts)


@dataclass(frozen=True)
class Member:
    """One zip entry as written, with what its headers claim (``size``: inflated bytes; ``crc``: CRC-32)."""

    name: str
    raw: bytes
    method: int = STORED
    size: int | None = None  # default: len(raw), right for a stored member
    crc: int | None = None  # default: CRC-32 of raw, right for a stored member
    flags: int = 0
    compressed: int | None = None  # bytes the entry claims to occupy; default: len(raw)


def zip_archive(path: Path, members: list[Member]) -> Path:
    """A zip file written byte by byte, so that every field can lie; sizes of 4 GiB and more get
    a zip64 extra field (the file itself stays small, so no other zip64 record is needed)."""
    body, directory = bytearray(), bytearray()
    for member in members:
        name = member.name.encode()
        size = len(member.raw) if member.size is None else member.size
        crc = zlib.crc32(member.raw) if member.crc is None else member.crc
        extra = struct.pack("<HHQ", 1, 8, size) if size >= _ZIP64_NEEDED else b""
        size32 = _ZIP64_NEEDED if extra else size
        occupied = len(member.raw) if member.compressed is None else member.compressed
        common = struct.pack("<HHHHIII", member.flags, member.method, 0, 0x21, crc, occupied, size32)
        offset = len(body)
        body += b"PK\x03\x04" + struct.pack("<H", 45) + common + struct.pack("<HH", len(name), len(extra))
        body += name + extra + member.raw
        directory += b"PK\x01\x02" + struct.pack("<HH", 45, 45) + common
        directory += struct.pack("<HHHHHII", len(name), len(extra), 0, 0, 0, 0, offset) + name + extra
    count = len(members)
    end = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, count, count, len(directory), len(body), 0)
    path.write_bytes(bytes(body + directory + end))
    return path


def labels_member(n: int, k: int = 5) -> Member:
    return Member("labels.npy", npy_bytes(np.arange(n) % k))


def declared_only(name: str, shape: tuple[int, ...], descr: str) -> Member:
    """A deflated member holding only a header, whose zip entry claims all the bytes the header declares."""
    header = npy_header(shape, descr)
    itemsize = np.dtype(descr).itemsize
    # The CRC of the header alone: zipfile checks it when the short stream ends, so that it passes.
    claimed = len(header) + int(np.prod(shape, dtype=object)) * itemsize
    return Member(name, deflate(header), DEFLATE, claimed, zlib.crc32(header))


def zeros_member(name: str, shape: tuple[int, ...], descr: str = "<f8") -> Member:
    """A deflated member that truly inflates to its header and all the zeros it declares (a few MiB per GiB)."""
    header = npy_header(shape, descr)
    data_bytes = int(np.prod(shape, dtype=object)) * np.dtype(descr).itemsize
    return Member(name, zeros_bomb(header, data_bytes), DEFLATE, len(header) + data_bytes, 0)  # CRC never reached


# Rows of a float64 logits matrix of 1,000 columns that fill 4 GiB.
BOMB_ROWS = (1 << 32) // 8000


def crafted_archives(folder: Path) -> dict[str, tuple[Path, str]]:
    """Every crafted ``.npz`` the hostile suite feeds ``evaluate``: name -> (file, words its refusal must hold).

    The last three are the bombs: 4 GiB of zeros whose shape cannot be scored, 8 GiB of zeros
    (refused under a smaller memory limit), and entries that claim a terabyte.
    """
    rng = np.random.default_rng(1)
    logits = npy_bytes(rng.normal(size=(50, 5)))
    deflated = deflate(logits)
    corrupt = bytearray(deflated)
    corrupt[:8] = b"\xff" * 8  # block type 3, which deflate reserves
    labels = labels_member(50)
    tera_rows = (1 << 40) // 8000

    def logits_member(raw: bytes, method: int = STORED, **claims: int) -> Member:
        return Member("logits.npy", raw, method, **claims)

    made = {
        "deflate64": ([logits_member(logits, DEFLATE64), labels], "compression method 9 is not supported"),
        "unknown-method": ([logits_member(logits, 99), labels], "compression method 99 is not supported"),
        "encrypted": ([logits_member(logits, flags=1), labels], "encrypted"),
        "corrupt-deflate": (
            [logits_member(bytes(corrupt), DEFLATE, size=len(logits), crc=zlib.crc32(logits)), labels],
            "cannot read array 'logits.npy' (Error -3 while decompressing data",
        ),
        "unbalanced-brace": (
            [logits_member(npy_header((), text="{'descr': '<f8', 'shape': (50, 5)") + bytes(2000)), labels],
            "cannot read array 'logits.npy' (malformed .npy header",
        ),
        "bad-magic": ([logits_member(b"\x93NUMPX" + logits[6:]), labels], "cannot read array 'logits.npy'"),
        "version-9": ([logits_member(b"\x93NUMPY\x09\x00" + logits[8:]), labels], "version (9, 0)"),
        "object-dtype": ([logits_member(npy_header((50, 5), "|O") + bytes(2000)), labels], "Python objects"),
        "37-gib-header-in-580-bytes": (
            [logits_member(npy_header((1 << 20, 4747)) + bytes(452)), labels],
            "header declares shape (1048576, 4747)",
        ),
        "compressed-size-past-the-end": (
            [labels, logits_member(deflated, DEFLATE, size=len(logits), compressed=len(deflated) + 10**6)],
            "cannot read array 'logits.npy'",
        ),
        "bomb-4-gib-wrong-rows": ([zeros_member("logits.npy", (BOMB_ROWS, 1000)), labels], "labels have 50 entries"),
        "bomb-8-gib": (
            [zeros_member("logits.npy", (2 * BOMB_ROWS, 1000)), labels_member(2 * BOMB_ROWS)],
            "would need about 8.0 GiB",
        ),
        "terabyte-declared": (
            [declared_only("logits.npy", (tera_rows, 1000), "<f8"), declared_only("labels.npy", (tera_rows,), "<i8")],
            "would need about 1024.0 GiB",
        ),
    }
    assert tuple(made) == ARCHIVES
    return {name: (zip_archive(folder / f"{name}.npz", members), needle) for name, (members, needle) in made.items()}


ARCHIVES = (
    "deflate64",
    "unknown-method",
    "encrypted",
    "corrupt-deflate",
    "unbalanced-brace",
    "bad-magic",
    "version-9",
    "object-dtype",
    "37-gib-header-in-580-bytes",
    "compressed-size-past-the-end",
    "bomb-4-gib-wrong-rows",
    "bomb-8-gib",
    "terabyte-declared",
)
