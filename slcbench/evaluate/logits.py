"""Loading and validating saved logits: every bad input becomes one clear SlcbenchError line.

Accepted inputs (``logits`` float n x k, ``labels`` integer n, values in [0, k)):

- an ``.npz`` archive (``np.savez`` or ``np.savez_compressed``) holding both arrays. Members stored
  without compression are memory-mapped, so matrices larger than RAM can be scored block by block,
  after one pass that checks their CRC as ``np.load`` would; compressed members must be inflated
  into memory (``np.load`` cannot map them).
- a folder holding ``<logits-key>.npy`` and ``<labels-key>.npy``, or the logits ``.npy`` file itself
  with ``<labels-key>.npy`` beside it: both memory-mapped.

Nothing is ever unpickled (``allow_pickle=False``).
"""

from __future__ import annotations

import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from slcbench.errors import SlcbenchError
from slcbench.evaluate.backend import thread_map

# Rows (and at most logits) checked by the probability heuristic, and logits per chunk of the non-finite scan.
_PROBABILITY_SAMPLE_ROWS = 1000
_PROBABILITY_SAMPLE_ELEMENTS = 1 << 22
_SCAN_ELEMENTS = 1 << 22
_ZIP_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, ..., file name length, extra field length
_CRC_CHUNK_BYTES = 16 << 20  # read buffer of the CRC check of a mapped member
_CRC_PART_BYTES = 64 << 20  # least bytes per thread of the CRC check
_CRC32_POLYNOMIAL = 0xEDB88320  # zlib's, bit-reversed


def load_logits(
    path: Path | str, *, logits_key: str = "logits", labels_key: str = "labels", threads: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Read (logits, labels) from an ``.npz`` file, a folder of ``.npy`` files or a logits ``.npy``.

    Only reads: the arrays are returned as stored (possibly memory-mapped, read-only); use
    ``check_logits_and_labels`` to validate them. A mapped ``.npz`` member's CRC is checked on
    ``threads`` threads (default: one per CPU).
    """
    path = Path(path)
    if not path.exists():
        raise SlcbenchError(f"{path}: no such file or folder")
    if path.is_dir():
        return _load_npy(path / f"{logits_key}.npy", "--logits-key"), _load_npy(
            path / f"{labels_key}.npy", "--labels-key"
        )
    if path.suffix == ".npy":
        return _load_npy(path, "--logits-key"), _load_npy(path.with_name(f"{labels_key}.npy"), "--labels-key")
    if not zipfile.is_zipfile(path):
        raise SlcbenchError(f"{path}: not an .npz file (not a zip archive); expected np.savez output or .npy files")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:  # e.g. a truncated file or a damaged directory
        raise SlcbenchError(f"{path}: damaged .npz (zip) file ({_first_line(exc)})") from None
    with archive:
        members = {name[: -len(".npy")]: name for name in archive.namelist() if name.endswith(".npy")}
        arrays = []
        for key, option in ((logits_key, "--logits-key"), (labels_key, "--labels-key")):
            if key not in members:
                found = ", ".join(sorted(members)) or "none"
                raise SlcbenchError(f"{path}: no array named '{key}' (arrays found: {found}); choose one with {option}")
            arrays.append(_read_npz_member(path, archive, archive.getinfo(members[key]), threads))
    return arrays[0], arrays[1]


def _load_npy(path: Path, option: str) -> np.ndarray:
    if not path.is_file():
        raise SlcbenchError(f"{path}: no such file; name the array file with {option}")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise SlcbenchError(f"{path}: not a readable .npy array ({_first_line(exc)})") from None


def _read_npz_member(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, threads: int | None) -> np.ndarray:
    """Memory-map a stored (uncompressed) member; read a compressed one into memory."""
    try:
        if info.compress_type == zipfile.ZIP_STORED:
            mapped = _map_stored_member(path, info, threads)
            if mapped is not None:
                return mapped
        with archive.open(info) as member:
            return np.lib.format.read_array(member, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, struct.error) as exc:
        raise SlcbenchError(f"{path}: cannot read array '{info.filename}' ({_first_line(exc)})") from None


def _map_stored_member(path: Path, info: zipfile.ZipInfo, threads: int | None) -> np.ndarray | None:
    """np.memmap over an uncompressed ``.npy`` member, or None for header versions numpy reads only whole."""
    with open(path, "rb") as handle:
        handle.seek(info.header_offset)
        signature, name_length, extra_length = _ZIP_LOCAL_HEADER.unpack(handle.read(_ZIP_LOCAL_HEADER.size))
        if signature != b"PK\x03\x04":
            raise ValueError("damaged zip entry")
        member_start = info.header_offset + _ZIP_LOCAL_HEADER.size + name_length + extra_length
        handle.seek(member_start)
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(handle)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(handle)
        else:
            return None
        offset = handle.tell()
        if dtype.hasobject:
            raise ValueError("arrays of Python objects are not supported")
        # The member must hold all the bytes its header promises, or the map would read the next entry.
        needed = (offset - member_start) + int(np.prod(shape, dtype=object)) * dtype.itemsize
        if info.compress_size != info.file_size or needed > info.file_size:
            raise ValueError(f"member holds {info.file_size} bytes but its header needs {needed}")
        # np.load checks the CRC of what it inflates; a map must do it itself, or a damaged byte
        # would be scored as a logit. Last: it reads the whole member.
        if file_crc32(path, member_start, info.file_size, threads=threads) != info.CRC:
            raise ValueError("CRC check failed: the stored bytes are damaged")
    if int(np.prod(shape)) == 0:  # np.memmap cannot map zero bytes
        return np.empty(shape, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran_order else "C")


def file_crc32(
    path: Path, start: int, size: int, *, threads: int | None = None, part_bytes: int = _CRC_PART_BYTES
) -> int:
    """zlib CRC-32 of ``size`` bytes of ``path`` from ``start``: parts of at least ``part_bytes`` on
    ``threads`` threads (zlib releases the GIL), joined with ``crc32_combine``; each part is read
    through one reusable buffer (no copy of the member in memory: it may be larger than RAM)."""
    parts = max(1, min(threads or os.cpu_count() or 1, size // part_bytes))
    bounds = [start + size * i // parts for i in range(parts + 1)]
    crcs = list(thread_map(lambda i: _part_crc32(path, bounds[i], bounds[i + 1] - bounds[i]), range(parts), parts))
    crc = crcs[0]
    for i in range(1, parts):
        crc = crc32_combine(crc, crcs[i], bounds[i + 1] - bounds[i])
    return crc


def _part_crc32(path: Path, start: int, size: int) -> int:
    buffer = memoryview(bytearray(min(max(size, 1), _CRC_CHUNK_BYTES)))
    crc, left = 0, size
    with open(path, "rb") as handle:
        handle.seek(start)
        while left:
            read = handle.readinto(buffer[: min(left, len(buffer))])
            if not read:
                raise ValueError("the file ends inside the member")
            crc, left = zlib.crc32(buffer[:read], crc), left - read
    return crc


def _gf2_times(matrix: list[int], vector: int) -> int:
    total, row = 0, 0
    while vector:
        if vector & 1:
            total ^= matrix[row]
        vector >>= 1
        row += 1
    return total


def _gf2_square(matrix: list[int]) -> list[int]:
    return [_gf2_times(matrix, matrix[row]) for row in range(32)]


def crc32_combine(crc1: int, crc2: int, length2: int) -> int:
    """CRC-32 of A + B from crc1 = CRC(A), crc2 = CRC(B) and len(B): zlib's crc32_combine, which
    Python's zlib does not offer (it appends len(B) zero bits to crc1 by squaring GF(2) matrices)."""
    if length2 <= 0:
        return crc1
    odd = [_CRC32_POLYNOMIAL] + [1 << row for row in range(31)]  # the operator for one zero bit
    even = _gf2_square(odd)  # two zero bits
    odd = _gf2_square(even)  # four zero bits
    while True:
        even = _gf2_square(odd)  # the first square gives one zero byte
        if length2 & 1:
            crc1 = _gf2_times(even, crc1)
        length2 >>= 1
        if not length2:
            break
        odd = _gf2_square(even)
        if length2 & 1:
            crc1 = _gf2_times(odd, crc1)
        length2 >>= 1
        if not length2:
            break
    return crc1 ^ crc2


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def check_logits_and_labels(
    logits: np.ndarray, labels: np.ndarray, *, name: str = "logits", threads: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Validate a (logits, labels) pair for the SLC metrics; return logits as is and labels as int64.

    Raises SlcbenchError, prefixed with ``name``, when: logits are not a 2-D floating-point array,
    labels are not a 1-D integer array, their lengths differ, there are no examples, k = 1 (SLC needs
    true and false logits), a label lies outside [0, k), or logits hold NaN or +-inf (``np.sort``
    puts NaN last, which would corrupt every count silently).
    """
    logits = np.asanyarray(logits)
    labels = np.asanyarray(labels)
    if logits.ndim != 2:
        raise SlcbenchError(f"{name}: logits must be a 2-D array (examples x classes), got shape {logits.shape}")
    if not np.issubdtype(logits.dtype, np.floating):
        raise SlcbenchError(f"{name}: logits must be floating point, got {logits.dtype}")
    if labels.ndim != 1:
        raise SlcbenchError(f"{name}: labels must be a 1-D array of class indices, got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise SlcbenchError(f"{name}: labels must be integers (class indices), got {labels.dtype}")
    n, k = logits.shape
    if labels.shape[0] != n:
        raise SlcbenchError(f"{name}: logits have {n} rows but labels have {labels.shape[0]} entries")
    if n == 0:
        raise SlcbenchError(f"{name}: no examples (0 rows), so no class has a positive example")
    if k < 2:
        raise SlcbenchError(f"{name}: logits have {k} class column; SLC metrics need at least 2 classes")
    labels = np.asarray(labels, dtype=np.int64)
    outside = (labels < 0) | (labels >= k)
    if outside.any():
        raise SlcbenchError(
            f"{name}: {int(outside.sum())} labels lie outside [0, {k}) (e.g. {int(labels[outside][0])}); "
            "labels must be class indices of the logit columns"
        )
    non_finite = count_non_finite(logits, threads=threads)
    if non_finite:
        raise SlcbenchError(f"{name}: logits contain {non_finite} non-finite values (NaN or +-inf)")
    return logits, labels


def count_non_finite(logits: np.ndarray, *, threads: int | None = None) -> int:
    """Number of NaN and +-inf entries, scanned in row chunks on ``threads`` threads (no n x k
    temporary for mapped files)."""
    rows = max(1, _SCAN_ELEMENTS // max(logits.shape[1], 1))

    def count(r0: int) -> int:
        finite = np.isfinite(logits[r0 : r0 + rows])
        return 0 if finite.all() else int(finite.size - np.count_nonzero(finite))

    return sum(thread_map(count, range(0, logits.shape[0], rows), threads))


def looks_like_probabilities(logits: np.ndarray) -> bool:
    """True when the first rows all lie in [0, 1] and sum to 1: softmax outputs saved instead of logits."""
    rows = max(1, min(_PROBABILITY_SAMPLE_ROWS, _PROBABILITY_SAMPLE_ELEMENTS // max(logits.shape[1], 1)))
    sample = np.asarray(logits[:rows], dtype=np.float64)
    if sample.size == 0 or sample.min() < 0 or sample.max() > 1:
        return False
    return bool(np.allclose(sample.sum(axis=1), 1.0, rtol=0, atol=1e-3))
