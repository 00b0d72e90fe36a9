"""Writing results safely: atomically, and never over an existing file unless asked.

Every command that writes a file goes through these functions, so a crash, a full disk or Ctrl-C
mid-write can never leave a half-written results file or destroy an earlier one.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from slcbench.errors import OutputExistsError, SlcbenchError


def output_exists(path: Path) -> OutputExistsError:
    """The error for a results file that is already there: nothing is overwritten without --force."""
    return OutputExistsError(f"{path} already exists; pass --force to overwrite it")


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_temp_beside(path: Path, data: bytes) -> Path:
    """Write ``data`` to a fresh temporary file in ``path``'s folder (same file system, so renames are atomic)."""
    # A short fixed prefix: a name built from path.name could exceed the 255-byte limit where path's doesn't.
    fd, tmp_name = tempfile.mkstemp(prefix=".slcbench-", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file private (0600); results are ordinary files, so honour the umask.
        os.fchmod(fd, 0o666 & ~_current_umask())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return Path(tmp_name)


def write_bytes_atomic(path: Path | str, data: bytes, *, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` all at once.

    Without ``overwrite`` an existing file is an error (SlcbenchError), checked atomically with a hard
    link so that two concurrent writers cannot both win. With ``overwrite`` the old file is replaced
    in one rename.
    """
    path = Path(path)
    if not path.parent.exists():
        raise SlcbenchError(f"cannot write {path}: folder {path.parent} does not exist")
    if not overwrite and path.exists():
        raise output_exists(path)
    try:
        tmp = _write_temp_beside(path, data)
        try:
            if overwrite:
                os.replace(tmp, path)
            else:
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    except FileExistsError:
        raise output_exists(path) from None
    except OSError as exc:  # a read-only folder, a full disk, a file system without hard links
        raise SlcbenchError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def write_text_atomic(path: Path | str, text: str, *, overwrite: bool = False) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"), overwrite=overwrite)


def json_bytes(payload: Any) -> bytes:
    """The JSON text every results file uses: indented, keys in the order given, UTF-8."""
    return (json.dumps(payload, indent=2, sort_keys=False, default=_json_default, allow_nan=True) + "\n").encode("utf-8")


def write_json_atomic(path: Path | str, payload: Any, *, overwrite: bool = False) -> Path:
    return write_bytes_atomic(path, json_bytes(payload), overwrite=overwrite)


def _json_default(value: Any) -> Any:
    # numpy scalars and paths appear in result dicts; everything else is a bug worth surfacing.
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")


def timestamp() -> str:
    """UTC time stamp for file names: sortable, no characters that shells or Windows dislike."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def write_new_results(folder: Path | str, prefix: str, suffixes: tuple[str, ...], first: bytes) -> Path:
    """Write ``first`` as ``<stem><suffixes[0]>`` under a fresh stem (see ``new_results_stem``) and return
    the stem, for the caller's other files. Writing that file claims the stem atomically, so two runs
    that finish in the same second get different stems instead of one losing its results."""
    for _ in range(100):
        stem = new_results_stem(folder, prefix, suffixes)
        try:
            write_bytes_atomic(stem.with_name(stem.name + suffixes[0]), first)
            return stem
        except OutputExistsError:
            continue  # another run took this stem between our check and our write
    raise SlcbenchError(f"could not find a free file name for {prefix} results in {folder}")


def new_results_stem(folder: Path | str, prefix: str, suffixes: tuple[str, ...]) -> Path:
    """A path stem ``folder/prefix-<timestamp>[-N]`` for which no file with any of ``suffixes`` exists yet.

    The folder is created if missing. Used for the timestamped files of sweeps, which never overwrite.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SlcbenchError(f"cannot create output folder {folder}: {exc.strerror}") from None
    if not folder.is_dir():
        raise SlcbenchError(f"output path {folder} is not a folder")
    base = f"{prefix}-{timestamp()}"
    for attempt in range(1000):
        stem = folder / (base if attempt == 0 else f"{base}-{attempt}")
        if not any(stem.with_name(stem.name + s).exists() for s in suffixes):
            return stem
    raise SlcbenchError(f"could not find a free file name for {base} in {folder}")
