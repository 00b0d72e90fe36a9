"""Writing results safely: checked before the work, written atomically, all files of a run or none.

Every file slcbench writes goes through ``write_outputs``: the payloads are encoded first, each file
is written to a temporary file beside its target and then linked (new files) or renamed (with
``overwrite``) into place, and if one target fails the ones already placed are taken back. A crash,
a full disk or Ctrl-C can never leave a half-written results file or destroy an earlier one.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from slcbench.errors import OutputExistsError, SlcbenchError
from slcbench.formats import Output


def output_exists(path: Path) -> OutputExistsError:
    """The error for a results file that is already there: nothing is overwritten without --force."""
    return OutputExistsError(f"{path} already exists; pass --force to overwrite it")


def check_outputs(outputs: dict[str, Path | None], inputs: Sequence[Path], *, overwrite: bool) -> None:
    """Refuse, before any work, outputs that exist (without ``overwrite``), collide, replace an input,
    or lie in a folder that does not exist.

    ``outputs`` maps the option that names a file (``--json``) to its path, or None when not asked for.
    """
    named = {option: path for option, path in outputs.items() if path is not None}
    if len({p.resolve() for p in named.values()}) < len(named):
        raise SlcbenchError(f"{' and '.join(named)} name the same file")
    resolved_inputs = {p.resolve() for p in inputs}
    for option, path in named.items():
        if path.resolve() in resolved_inputs:
            raise SlcbenchError(f"{option} {path} is one of the input files; choose another output name")
        if path.is_dir():
            raise SlcbenchError(f"{option} {path} is a folder; give a file name")
        if not path.parent.is_dir():
            raise SlcbenchError(f"{option} {path}: folder {path.parent} does not exist")
        if path.exists() and not overwrite:
            raise output_exists(path)


def check_output_folder(folder: Path) -> None:
    """Refuse, before any work, a results folder that is a file or cannot be created."""
    if folder.exists() and not folder.is_dir():
        raise SlcbenchError(f"output path {folder} is not a folder")
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise SlcbenchError(f"cannot create output folder {folder}: {existing} is a file")


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_temp_beside(path: Path, data: bytes) -> Path:
    """Write ``data`` to a fresh temporary file in ``path``'s folder (same file system: renames are atomic)."""
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


def write_outputs(outputs: Sequence[Output], *, overwrite: bool = False) -> list[Path]:
    """Write every output, or none of them; return their paths.

    Without ``overwrite`` an existing file is an error (OutputExistsError), checked atomically with a
    hard link so that two concurrent writers cannot both win. With ``overwrite`` old files are
    replaced by rename, and put back if a later file of the set fails.
    """
    for output in outputs:
        if not output.path.parent.is_dir():
            raise SlcbenchError(f"cannot write {output.path}: folder {output.path.parent} does not exist")
        if not overwrite and output.path.exists():
            raise output_exists(output.path)
    encoded = [output.encoded() for output in outputs]  # an encoding error writes nothing
    temps: list[Path] = []
    placed: list[tuple[Path, Path | None]] = []  # (target, backup of the file it replaced)
    current = outputs[0].path if outputs else Path()
    try:
        for output, data in zip(outputs, encoded, strict=False):
            current = output.path
            temps.append(_write_temp_beside(output.path, data))
        for output, temp in zip(outputs, temps, strict=False):
            current = output.path
            placed.append((output.path, _place(temp, output.path, overwrite)))
    except BaseException as exc:
        for target, backup in reversed(placed):
            if backup is None:
                target.unlink(missing_ok=True)
            else:
                os.replace(backup, target)
        placed = []
        if isinstance(exc, FileExistsError):
            raise output_exists(current) from None
        if isinstance(exc, OSError):  # a read-only folder, a full disk, a file system without hard links
            raise SlcbenchError(f"cannot write {current}: {exc.strerror or exc}") from None
        raise
    finally:
        for temp in temps:
            temp.unlink(missing_ok=True)
        for _, backup in placed:
            if backup is not None:
                backup.unlink(missing_ok=True)
    return [output.path for output in outputs]


def _place(temp: Path, target: Path, overwrite: bool) -> Path | None:
    """Put ``temp`` at ``target``; return a hard link to the file it replaced (None for a new file)."""
    if not overwrite:
        os.link(temp, target)
        return None
    backup = None
    if target.exists():
        backup = target.parent / f".slcbench-{secrets.token_hex(8)}.old"
        os.link(target, backup)
    try:
        os.replace(temp, target)
    except BaseException:
        if backup is not None:
            backup.unlink(missing_ok=True)
        raise
    return backup


def write_bytes_atomic(path: Path | str, data: bytes, *, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` all at once (see ``write_outputs``)."""
    return write_outputs([Output(Path(path), "bytes", data)], overwrite=overwrite)[0]


def timestamp() -> str:
    """UTC time stamp for file names: sortable, no characters that shells or Windows dislike."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def write_new_results(folder: Path, prefix: str, outputs: Sequence[tuple[str, str, object]]) -> list[Path]:
    """Write ``outputs`` (suffix, format, payload) under a fresh stem ``folder/prefix-<timestamp>[-N]``.

    Linking the files into place claims the stem atomically, so two runs that finish in the same
    second get different stems instead of one losing its results. The folder is created if missing.
    """
    suffixes = tuple(suffix for suffix, _, _ in outputs)
    for _ in range(100):
        stem = new_results_stem(folder, prefix, suffixes)
        try:
            return write_outputs([Output(stem.with_name(stem.name + s), f, p) for s, f, p in outputs])
        except OutputExistsError:
            continue  # another run took this stem between our check and our write
    raise SlcbenchError(f"could not find a free file name for {prefix} results in {folder}")


def new_results_stem(folder: Path | str, prefix: str, suffixes: tuple[str, ...]) -> Path:
    """A path stem ``folder/prefix-<timestamp>[-N]`` for which no file with any of ``suffixes`` exists yet."""
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


def read_json(path: Path) -> Any:
    """The JSON value in the file at ``path``; SlcbenchError naming the file when it cannot be read as JSON."""
    try:
        text = path.read_text(encoding="utf-8")
    except IsADirectoryError:
        raise SlcbenchError(f"{path} is a folder, not a results file") from None
    except OSError as exc:
        raise SlcbenchError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise SlcbenchError(f"{path} is not a text file (expected JSON)") from None
    if not text.strip():
        raise SlcbenchError(f"{path} is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SlcbenchError(f"{path} is not JSON ({exc.msg} at line {exc.lineno})") from None
    except (ValueError, RecursionError) as exc:  # a 5000-digit number, or arrays nested 100,000 deep
        raise SlcbenchError(f"{path} is not JSON that slcbench can read ({type(exc).__name__})") from None
