"""Writing and reading the app's files safely; imports neither Keras nor Qt.

Writes are atomic: a file is written beside its target under a temporary name and renamed
over it, so a failed or interrupted write leaves the previous file intact and no reader ever
sees a partial one. JSON reads are bounded in size and nesting.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from cifar_gui.engine.errors import ModelError, UserError, first_line

MAX_JSON_BYTES = 64 * 2**20  # a sidecar or state.json: a few kB per epoch of history


def _create_beside(target: Path, suffix: str | None = None) -> Path:
    """Create a new empty file with a random name beside ``target`` and return its path.

    Created with mode 0666 like any plain write, so the kernel applies the umask (and a
    default ACL of the folder): ``tempfile.mkstemp`` would make it 0600, a mode the renamed
    file would keep. Reading the umask instead would mean setting it, which races with other
    threads. The stem is shortened so the temporary name is never longer than a target whose
    name fits.
    """
    for _ in range(100):
        end = target.suffix if suffix is None else suffix
        tmp = target.parent / f".{target.stem[:32]}.{secrets.token_hex(4)}{end}"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(target))


@contextlib.contextmanager
def atomic_path(target: Path, suffix: str | None = None) -> Iterator[Path]:
    """A temporary path beside ``target`` that replaces it only when the block succeeds.

    ``suffix``: how the temporary name ends (default: as the target's), for writers that
    insist on one (Keras' ``save_weights`` on ``.weights.h5``).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_beside(target, suffix)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        if exc.filename is not None:
            raise
        # A write's error names no file ("[Errno 28] No space left on device"): the target's.
        raise OSError(exc.errno, exc.strerror or str(exc), str(target)) from None
    finally:
        if os.path.lexists(tmp):
            os.remove(tmp)


# What a failed save raises: OSError, and from h5py also RuntimeError, when HDF5 cannot close
# a file whose write failed ("Can't decrement id ref count (... errno = 27 ...)").
WRITE_ERRORS = (OSError, RuntimeError)
# HDF5 reports a failed write in a message of several lines (a ctime, buffer addresses) that
# holds the system's error number: "..., errno = 28, error message = 'No space left ...'".
_HDF5_ERRNO = re.compile(r"\berrno = (\d+)")


def write_failure(exc: BaseException) -> str:
    """Why a write failed, in a few words for one line: the system's words for its error
    number ("No space left on device"), also where HDF5 buried it in a longer message; else
    the first line of the message."""
    number = getattr(exc, "errno", None)
    if not isinstance(number, int) or not number:
        found = _HDF5_ERRNO.search(str(exc))
        number = int(found.group(1)) if found else None
    return os.strerror(number) if number else first_line(exc)


def write_json(path: str | Path, data: dict[str, Any]) -> None:
    """Write JSON atomically."""
    with atomic_path(Path(path)) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=_json_default))


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in JSON")


def read_json(path: str | Path, max_bytes: int | None = None) -> Any:
    """The JSON content of a file written by this app, bounded in size and nesting.

    Raises OSError when it cannot be read, ValueError (with the reason) when it is too large,
    not UTF-8, not JSON, or nested too deeply for the parser.
    """
    path = Path(path)
    max_bytes = MAX_JSON_BYTES if max_bytes is None else max_bytes
    size = path.stat().st_size
    if size > max_bytes:
        raise ValueError(f"{size:,} bytes, more than the {max_bytes:,} allowed")
    try:
        return json.loads(path.read_bytes())
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None


def check_can_write(path: Path, *, folder: bool = False) -> None:
    """Raise :class:`ModelError` unless ``path`` (a file, or a ``folder``) could be written,
    creating the folders above it if needed; checks only, so nothing changes on disk.

    Catches what is known before a run: a file where a folder must be (or the reverse), a
    folder without write permission, a name longer than the file system allows.
    """
    try:
        _check_can_write(Path(path), folder)
    except OSError as exc:  # a name too long for the file system, when its folder exists
        raise ModelError(f"{path}: cannot be written ({write_failure(exc)})") from None


def _check_can_write(path: Path, folder: bool) -> None:
    kind = "folder" if folder else "file"
    if path.exists() and path.is_dir() != folder:
        raise ModelError(f"{path}: is {'a file' if folder else 'a folder'}, not a {kind}")
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise ModelError(f"{path}: folder is not writable")
        return
    missing = [path]
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        missing.append(ancestor)
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ModelError(f"{ancestor}: is a file, not a folder (needed for {path})")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ModelError(f"{ancestor}: folder is not writable (needed for {path})")
    try:
        longest = os.pathconf(ancestor, "PC_NAME_MAX")
    except (OSError, ValueError):
        longest = 255
    for item in missing:
        if len(os.fsencode(item.name)) > longest:
            raise ModelError(f"{item}: name too long (at most {longest} bytes)")


def open_regular(
    path: str | os.PathLike, error: type[UserError], limit: int | None = None
) -> BinaryIO:
    """Open a regular file for reading; a FIFO, device or folder is refused, never waited on.

    The open itself is non-blocking (opening a FIFO with no writer would wait forever) and the
    type is checked on the open descriptor, so a file swapped for a FIFO after an earlier check
    cannot hang the reader either. ``limit`` refuses files of more bytes. Raises ``error``.
    """
    nonblocking = getattr(os, "O_NONBLOCK", 0)  # POSIX; Windows has no FIFOs to wait on
    flags = os.O_RDONLY | nonblocking | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except IsADirectoryError:
        raise error(f"{path}: is a folder, not a file") from None
    except OSError as exc:
        raise error(f"{path}: cannot open ({exc.strerror or exc})") from None
    try:
        mode, size = (st := os.fstat(fd)).st_mode, st.st_size
        if stat.S_ISDIR(mode):
            raise error(f"{path}: is a folder, not a file")
        if not stat.S_ISREG(mode):
            raise error(f"{path}: not a regular file (a FIFO, socket or device)")
        if limit is not None and size > limit:
            raise error(f"{path}: file too large ({size:,} bytes, at most {limit:,})")
        if nonblocking:
            os.set_blocking(fd, True)  # back to ordinary reads (regular files never block)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
