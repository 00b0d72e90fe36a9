"""Writing results safely: checked before the work, written atomically, all files of a run or none.

Every file slcbench writes goes through ``write_outputs``: the payloads are encoded first, each file
is written to a temporary file beside its target and then linked (new files) or renamed (with
``overwrite``) into place, and if one target fails the ones already placed are taken back. A crash,
a full disk or Ctrl-C can never leave a half-written results file or destroy an earlier one.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import secrets
import signal
import stat
import tempfile
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from slcbench.errors import OutputExistsError, SlcbenchError
from slcbench.formats import Output

_HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def output_exists(path: Path) -> OutputExistsError:
    """The error for a results file that is already there: nothing is overwritten without --force."""
    return OutputExistsError(f"{path} already exists; pass --force to overwrite it")


# What each kind of file that is not a regular file is called in messages.
_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISLNK, "a symbolic link"),
)
NAME_MAX_BYTES = 255  # one name in a path (every common Linux and macOS file system)
PATH_MAX_BYTES = 4095
# Python objects from JSON take several times the text's size (floats in lists, dicts per row).
JSON_MEMORY_FACTOR = 8


def kind_of(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _check_name(path: Path, what: str) -> None:
    """Refuse names the file system cannot hold before any work, with the option that gave them."""
    if "\x00" in str(path):
        raise SlcbenchError(f"{what} {path!r} contains a NUL character")
    if len(os.fsencode(path)) > PATH_MAX_BYTES:
        raise SlcbenchError(f"{what} is longer than {PATH_MAX_BYTES} bytes")
    if any(len(os.fsencode(part)) > NAME_MAX_BYTES for part in path.parts):
        raise SlcbenchError(f"{what} {path} has a name longer than {NAME_MAX_BYTES} bytes")


def check_input(path: Path, *, folder_ok: bool = False, what: str = "") -> os.stat_result:
    """A path slcbench will read: it must exist and be a regular file (or a folder where ``folder_ok``).

    Devices, FIFOs and sockets are refused by name before anything opens them: reading ``/dev/zero``
    would never end and a FIFO would block forever. A link to a regular file is read as that file.
    """
    label = f"{what} {path}" if what else str(path)
    _check_name(path, what or "the path")
    try:
        status = path.stat()
    except FileNotFoundError:
        raise SlcbenchError(f"{label}: no such file or folder") from None
    except OSError as exc:
        raise SlcbenchError(f"cannot read {label}: {exc.strerror or exc}") from None
    if stat.S_ISREG(status.st_mode) or (folder_ok and stat.S_ISDIR(status.st_mode)):
        return status
    expected = "a file or folder" if folder_ok else "a file"
    raise SlcbenchError(f"{label} is {kind_of(status.st_mode)}, not {expected}: slcbench reads regular files only")


def _proc_kib(path: str, field: str) -> int | None:
    try:
        with open(path, encoding="ascii") as handle:
            for line in handle:
                if line.startswith(field):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def available_memory_bytes() -> int | None:
    """Memory this process may still take: what the system can give without swapping (Linux's
    MemAvailable), and no more than its address-space limit (``ulimit -v``) leaves; None where unknown."""
    limits = [_proc_kib("/proc/meminfo", "MemAvailable:")]
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    used = _proc_kib("/proc/self/status", "VmSize:")
    if soft != resource.RLIM_INFINITY and used is not None:
        limits.append(max(0, soft - used))
    known = [limit for limit in limits if limit is not None]
    return min(known) if known else None


def check_fits_in_memory(nbytes: int, what: str) -> None:
    """Refuse, before allocating, work that needs more memory than the system has available."""
    available = available_memory_bytes()
    if available is not None and nbytes > available:
        raise SlcbenchError(
            f"{what} would need about {nbytes / 2**30:.1f} GiB of memory; {available / 2**30:.1f} GiB are available"
        )


def _check_writable(folder: Path, label: str) -> None:
    """Create and remove a file in ``folder``: permission bits do not tell (root may not write to /proc)."""
    try:
        fd, name = tempfile.mkstemp(prefix=".slcbench-", suffix=".probe", dir=folder)
    except OSError as exc:
        raise SlcbenchError(f"{label}: cannot write in {folder} ({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(name)


def identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of an existing file, following links; None where there is none."""
    try:
        status = path.stat()
    except (OSError, ValueError):
        return None
    return status.st_dev, status.st_ino


def check_output_file(path: Path, *, what: str, inputs: Sequence[Path] = (), overwrite: bool = False) -> None:
    """Refuse, before any work, a file slcbench may not write.

    Its folder must exist and be writable; an existing file is replaced only with ``overwrite``, only
    when it is a regular file (never a device, FIFO, socket, folder or a link, whose target would be
    replaced), and never when it is one of ``inputs`` (compared as files, by device and inode).
    """
    _check_name(path, what)
    parent = path.parent
    if not parent.is_dir():
        raise SlcbenchError(f"{what} {path}: folder {parent} does not exist")
    _check_writable(parent, f"{what} {path}")
    try:
        status = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise SlcbenchError(f"{what} {path}: {exc.strerror or exc}") from None
    if stat.S_ISLNK(status.st_mode):
        raise SlcbenchError(f"{what} {path} is a symbolic link; slcbench never writes through one (name its target)")
    if not stat.S_ISREG(status.st_mode):
        raise SlcbenchError(f"{what} {path} is {kind_of(status.st_mode)}; only a regular file can be replaced")
    if (status.st_dev, status.st_ino) in {identity(p) for p in inputs}:
        raise SlcbenchError(f"{what} {path} is one of the input files; choose another output name")
    if not overwrite:
        raise output_exists(path)


def check_outputs(outputs: dict[str, Path | None], inputs: Sequence[Path], *, overwrite: bool) -> None:
    """``check_output_file`` for each output asked for (option -> path, None when not asked), and no two the same.

    ``inputs`` are the files the command reads (folders resolved to the files they lead to).
    """
    named = {option: path for option, path in outputs.items() if path is not None}
    if len({p.absolute() for p in named.values()}) < len(named):
        raise SlcbenchError(f"{' and '.join(named)} name the same file")
    for option, path in named.items():
        _check_name(path, option)
        if path.is_dir() and not path.is_symlink():
            raise SlcbenchError(f"{option} {path} is a folder; give a file name")
        check_output_file(path, what=option, inputs=inputs, overwrite=overwrite)


def check_output_folder(folder: Path, *, what: str = "--output") -> None:
    """Refuse, before any work, a results folder that is not a folder or cannot be created or written."""
    _check_name(folder, what)
    existing = next((p for p in (folder, *folder.absolute().parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        problem = "is not a folder" if existing == folder else f"cannot be created: {existing} is not a folder"
        raise SlcbenchError(f"output path {folder} {problem}")
    if existing is not None:
        _check_writable(existing, f"{what} {folder}")


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


@contextlib.contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the block ends, then act on them as before: an interrupt finds
    the outputs all written or none, never a temporary file. Python runs signal handlers in the main
    thread only, so from another thread nothing is held."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {number: signal.signal(number, lambda got, _: caught.append(got)) for number in _HELD_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        for got in caught[:1]:
            handler = previous[signal.Signals(got)]
            if callable(handler):
                handler(got, None)  # Ctrl-C's default handler raises KeyboardInterrupt here
            elif handler != signal.SIG_IGN:
                signal.raise_signal(got)  # the default action, e.g. SIGTERM ends the process


def write_outputs(outputs: Sequence[Output], *, overwrite: bool = False) -> list[Path]:
    """Write every output, or none of them; return their paths.

    Without ``overwrite`` an existing file is an error (OutputExistsError), checked atomically with a
    hard link so that two concurrent writers cannot both win. With ``overwrite`` old files are
    replaced by rename, and put back if a later file of the set fails. Ctrl-C during the writing is
    held until it ends.
    """
    with _interrupts_deferred():
        return _write_outputs(outputs, overwrite=overwrite)


def _write_outputs(outputs: Sequence[Output], *, overwrite: bool) -> list[Path]:
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
    if os.path.lexists(target):
        mode = os.lstat(target).st_mode
        if not stat.S_ISREG(mode):  # checked before the work too; this closes the gap since
            raise SlcbenchError(f"{target} is {kind_of(mode)}; only a regular file can be replaced")
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
    """The JSON value in the regular file at ``path``, checked to fit in memory before it is read;
    SlcbenchError naming the file when it cannot be read as JSON."""
    size = check_input(path).st_size
    check_fits_in_memory(size * JSON_MEMORY_FACTOR, f"{path} ({size / 2**20:.0f} MiB of JSON)")
    try:
        text = path.read_text(encoding="utf-8")
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
