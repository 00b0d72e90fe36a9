"""Loading and validating saved logits: every bad input becomes one clear SlcbenchError line.

Accepted inputs (``logits`` float n x k, ``labels`` integer n, values in [0, k)):

- an ``.npz`` archive (``np.savez`` or ``np.savez_compressed``) holding both arrays. Members stored
  without compression are memory-mapped, so matrices larger than RAM can be scored block by block,
  after one pass that checks their CRC as ``np.load`` would; compressed members must be inflated
  into memory (``np.load`` cannot map them).
- a folder holding ``<logits-key>.npy`` and ``<labels-key>.npy``, or the logits ``.npy`` file itself
  with ``<labels-key>.npy`` beside it: both memory-mapped.

Nothing is ever unpickled (``allow_pickle=False``). Every path is checked to be a regular file (or
folder) before it is opened, and an ``.npz`` member's header is read before its data: the shape it
declares must fit in the member and, for a compressed member, in free memory, so a crafted archive
is refused before anything large is allocated or inflated.
"""

from __future__ import annotations

import lzma
import os
import struct
import tokenize
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import numpy as np

from slcbench.errors import SlcbenchError
from slcbench.evaluate.backend import thread_map
from slcbench.io import check_fits_in_memory, check_input

# Rows (and at most logits) checked by the probability heuristic, and logits per chunk of the non-finite scan.
_PROBABILITY_SAMPLE_ROWS = 1000
_PROBABILITY_SAMPLE_ELEMENTS = 1 << 22
_SCAN_ELEMENTS = 1 << 22
# Largest logit magnitude scored: the log-partition statistics square and sum logits, and
# (1e100)^2 summed over any number of rows stays far below float64's 1.8e308.
LOGIT_LIMIT = 1e100
_ZIP_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, ..., file name length, extra field length
_CRC_CHUNK_BYTES = 16 << 20  # read buffer of the CRC check of a mapped member
_CRC_PART_BYTES = 64 << 20  # least bytes per thread of the CRC check
_CRC32_POLYNOMIAL = 0xEDB88320  # zlib's, bit-reversed
_ZIP_ENCRYPTED = 0x1  # general-purpose flag bit 0
# What Python's zipfile can inflate; np.savez writes only the first two.
_ZIP_METHODS = {
    zipfile.ZIP_STORED: "stored",
    zipfile.ZIP_DEFLATED: "deflate",
    zipfile.ZIP_BZIP2: "bzip2",
    zipfile.ZIP_LZMA: "lzma",
}
# Everything a damaged or crafted member can raise while its header or data is read.
_READ_ERRORS = (
    ValueError,
    SyntaxError,
    OSError,
    EOFError,
    zipfile.BadZipFile,
    struct.error,
    zlib.error,
    lzma.LZMAError,
    NotImplementedError,
    RuntimeError,
    tokenize.TokenError,  # numpy's header parser on an unbalanced bracket
)


# An .npy header: its length in bytes, the shape and the dtype it declares.
_Header = tuple[int, tuple[int, ...], np.dtype]


def input_files(path: Path, *, logits_key: str = "logits", labels_key: str = "labels") -> tuple[Path, ...]:
    """The files ``load_logits`` reads for ``path``: a folder and a logits ``.npy`` lead to two."""
    if path.is_dir():
        return path / f"{logits_key}.npy", path / f"{labels_key}.npy"
    if path.suffix == ".npy":
        return path, path.with_name(f"{labels_key}.npy")
    return (path,)


def load_logits(
    path: Path | str, *, logits_key: str = "logits", labels_key: str = "labels", threads: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Read (logits, labels) from an ``.npz`` file, a folder of ``.npy`` files or a logits ``.npy``.

    Only reads: the arrays are returned as stored (possibly memory-mapped, read-only); use
    ``check_logits_and_labels`` to validate them. A mapped ``.npz`` member's CRC is checked on
    ``threads`` threads (default: one per CPU).
    """
    path = Path(path)
    check_input(path, folder_ok=True)
    files = input_files(path, logits_key=logits_key, labels_key=labels_key)
    if len(files) == 2:
        return _load_npy(files[0], "--logits-key"), _load_npy(files[1], "--labels-key")
    if not zipfile.is_zipfile(path):
        raise SlcbenchError(f"{path}: not an .npz file (not a zip archive); expected np.savez output or .npy files")
    try:
        archive = zipfile.ZipFile(path)
    except _READ_ERRORS as exc:  # a truncated file, a damaged directory, a zip version Python cannot read
        raise SlcbenchError(f"{path}: damaged .npz (zip) file ({_first_line(exc)})") from None
    with archive:
        members = {name[: -len(".npy")]: name for name in archive.namelist() if name.endswith(".npy")}
        infos = []
        for key, option in ((logits_key, "--logits-key"), (labels_key, "--labels-key")):
            if key not in members:
                found = ", ".join(sorted(members)) or "none"
                raise SlcbenchError(f"{path}: no array named '{key}' (arrays found: {found}); choose one with {option}")
            infos.append(archive.getinfo(members[key]))
        # Both headers first: a shape that cannot be scored is refused before any data is read.
        headers = [_member_header(path, archive, info) for info in infos]
        check_layout(headers[0][1:], headers[1][1:], name=str(path))
        logits, labels = (
            _read_member_data(path, archive, info, header, threads) for info, header in zip(infos, headers, strict=True)
        )
    return logits, labels


def _load_npy(path: Path, option: str) -> np.ndarray:
    if not path.exists() and not path.is_symlink():
        raise SlcbenchError(f"{path}: no such file; name the array file with {option}")
    check_input(path)
    # Mapped, so a header declaring more than the file holds fails in np.memmap before any allocation.
    try:
        with open(path, "rb") as handle:
            _read_npy_header(handle)  # the checks numpy's own reader lacks
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except _READ_ERRORS as exc:
        raise SlcbenchError(f"{path}: not a readable .npy array ({_first_line(exc)})") from None


def _member_header(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> _Header:
    """The ``.npy`` header of an ``.npz`` member, checked against what the zip entry records.

    Encrypted members and compression methods zipfile cannot inflate are refused by their entry; the
    bytes the header declares must fit in the member's recorded size, and zipfile then inflates at most
    that size, in blocks, so no member can grow past what was checked.
    """
    with _naming_member(path, info):
        if info.flag_bits & _ZIP_ENCRYPTED:
            raise ValueError("the member is encrypted; save the arrays again with np.savez")
        if info.compress_type not in _ZIP_METHODS:
            raise ValueError(
                f"compression method {info.compress_type} is not supported (np.savez writes stored or deflate)"
            )
        if info.header_offset + info.compress_size > path.stat().st_size:
            raise ValueError(f"the member claims {info.compress_size:,} bytes past the end of the file")
        with archive.open(info) as member:
            header = _read_npy_header(member)
        header_bytes, shape, dtype = header
        data_bytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
        if header_bytes + data_bytes > info.file_size:
            raise ValueError(
                f"its header declares shape {shape} of {dtype} ({data_bytes:,} bytes) "
                f"but the member holds {info.file_size:,} bytes"
            )
    return header


def _read_member_data(
    path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, header: _Header, threads: int | None
) -> np.ndarray:
    """Memory-map a stored (uncompressed) member; inflate a compressed one, if it fits in free memory."""
    with _naming_member(path, info):
        if info.compress_type == zipfile.ZIP_STORED:
            mapped = _map_stored_member(path, info, threads)
            if mapped is not None:
                return mapped
        _, shape, dtype = header
        data_bytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
        try:
            check_fits_in_memory(data_bytes, f"{path}: inflating array '{info.filename}'")
        except SlcbenchError as exc:
            raise SlcbenchError(f"{exc}; save it uncompressed (np.savez, or .npy files) to memory-map it") from None
        with archive.open(info) as member:
            return np.lib.format.read_array(member, allow_pickle=False)


@contextmanager
def _naming_member(path: Path, info: zipfile.ZipInfo) -> Iterator[None]:
    """Turn whatever a damaged or crafted member raises into one line naming the file and the member."""
    try:
        yield
    except _READ_ERRORS as exc:
        raise SlcbenchError(f"{path}: cannot read array '{info.filename}' ({_first_line(exc)})") from None


def _read_npy_header(stream: IO[bytes]) -> _Header:
    """(header length in bytes, shape, dtype) of the ``.npy`` data that ``stream`` starts with."""
    version = np.lib.format.read_magic(stream)
    if version not in ((1, 0), (2, 0), (3, 0)):
        raise ValueError(f".npy format version {version} is not supported")
    # 3.0 differs from 2.0 only in UTF-8 field names, which plain arrays do not have.
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _, dtype = read_header(stream)
    if any(isinstance(size, bool) for size in shape):  # numpy takes True as 1, then fails in np.memmap
        raise ValueError(f"malformed .npy header: shape {shape} is not a tuple of sizes")
    if dtype.hasobject:
        raise ValueError("arrays of Python objects are not supported")
    return stream.tell(), shape, dtype


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
        # The caller checked the header against file_size; a map must also read exactly what is stored.
        if info.compress_size != info.file_size:
            raise ValueError(f"a stored member of {info.file_size} bytes occupies {info.compress_size}")
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
    if isinstance(exc, SyntaxError | tokenize.TokenError):  # numpy parsing a header that is no Python literal
        return "malformed .npy header: not a Python dictionary literal"
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
    check_layout((logits.shape, logits.dtype), (labels.shape, labels.dtype), name=name)
    k = logits.shape[1]
    labels = np.asarray(labels, dtype=np.int64)
    outside = (labels < 0) | (labels >= k)
    if outside.any():
        raise SlcbenchError(
            f"{name}: {int(outside.sum())} labels lie outside [0, {k}) (e.g. {int(labels[outside][0])}); "
            "labels must be class indices of the logit columns"
        )
    non_finite, largest = scan_logits(logits, threads=threads)
    if non_finite:
        raise SlcbenchError(f"{name}: logits contain {non_finite} non-finite values (NaN or +-inf)")
    if largest > LOGIT_LIMIT:
        raise SlcbenchError(
            f"{name}: logits reach {largest:.3g}; slcbench scores logits within +-{LOGIT_LIMIT:.0e}, where "
            "float64 holds their differences, squares and sums without overflow"
        )
    return logits, labels


def check_layout(
    logits: tuple[tuple[int, ...], np.dtype], labels: tuple[tuple[int, ...], np.dtype], *, name: str = "logits"
) -> None:
    """The checks of ``check_logits_and_labels`` that shapes and dtypes decide, (shape, dtype) each:
    ``load_logits`` runs them on an archive's headers before it reads any data."""
    (logits_shape, logits_dtype), (labels_shape, labels_dtype) = logits, labels
    if len(logits_shape) != 2:
        raise SlcbenchError(f"{name}: logits must be a 2-D array (examples x classes), got shape {logits_shape}")
    if not np.issubdtype(logits_dtype, np.floating):
        raise SlcbenchError(f"{name}: logits must be floating point, got {logits_dtype}")
    if len(labels_shape) != 1:
        raise SlcbenchError(f"{name}: labels must be a 1-D array of class indices, got shape {labels_shape}")
    if not np.issubdtype(labels_dtype, np.integer):
        raise SlcbenchError(f"{name}: labels must be integers (class indices), got {labels_dtype}")
    n, k = logits_shape
    if labels_shape[0] != n:
        raise SlcbenchError(f"{name}: logits have {n} rows but labels have {labels_shape[0]} entries")
    if n == 0:
        raise SlcbenchError(f"{name}: no examples (0 rows), so no class has a positive example")
    if k < 2:
        raise SlcbenchError(f"{name}: logits have {k} class column; SLC metrics need at least 2 classes")


def scan_logits(logits: np.ndarray, *, threads: int | None = None) -> tuple[int, float]:
    """(number of NaN and +-inf entries, largest magnitude when there are none), scanned in row
    chunks on ``threads`` threads (no n x k temporary for mapped files)."""
    rows = max(1, _SCAN_ELEMENTS // max(logits.shape[1], 1))

    def scan(r0: int) -> tuple[int, float]:
        chunk = logits[r0 : r0 + rows]
        finite = np.isfinite(chunk)
        if not finite.all():
            return int(finite.size - np.count_nonzero(finite)), 0.0
        return 0, max(abs(float(chunk.max())), abs(float(chunk.min())))

    scans = list(thread_map(scan, range(0, logits.shape[0], rows), threads))
    return sum(count for count, _ in scans), max((largest for _, largest in scans), default=0.0)


def looks_like_probabilities(logits: np.ndarray) -> bool:
    """True when the first rows all lie in [0, 1] and sum to 1: softmax outputs saved instead of logits."""
    rows = max(1, min(_PROBABILITY_SAMPLE_ROWS, _PROBABILITY_SAMPLE_ELEMENTS // max(logits.shape[1], 1)))
    sample = np.asarray(logits[:rows], dtype=np.float64)
    if sample.size == 0 or sample.min() < 0 or sample.max() > 1:
        return False
    return bool(np.allclose(sample.sum(axis=1), 1.0, rtol=0, atol=1e-3))
