"""CIFAR-10's official python format: pickled batches in a folder or a ``.tar.gz``.

Every size a file declares is checked before anything that size is allocated, and the
unpickler makes numpy arrays and plain containers only, so a crafted file can neither run
code nor claim gigabytes (see docs/robustness.md). :mod:`cifar_gui.engine.data.dataset` wraps the
arrays into its :class:`~cifar_gui.engine.data.dataset.Dataset`.
"""

from __future__ import annotations

import io
import math
import os
import pickle
import tarfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import ClassVar

import numpy as np

from cifar_gui.config import MAX_CLASSES
from cifar_gui.engine.errors import DataError, UserError, first_line
from cifar_gui.engine.files import open_regular

CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
IMAGE_SIDE = 32
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
MAX_BATCH_BYTES = 64 << 20  # one pickled batch file (the official ones are 30 MB)
MAX_BATCH_IMAGES = 10_000  # images in one official batch file
IMAGE_BYTES = 3 * IMAGE_SIDE * IMAGE_SIDE  # one image of a batch: 3,072 bytes, R G B
MAX_ARCHIVE_MEMBERS = 64  # the official archive has 9
MAX_ARCHIVE_BYTES = 512 << 20  # all members together (the official archive: 184 MB)
MAX_TAR_HEADER_BYTES = 1 << 20  # a long name or a pax header inside an archive
# x_train, y_train, x_test, y_test, class names
BatchArrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]


def _read_file(path: Path, limit: int, error: type[UserError]) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (see :func:`open_regular`)."""
    with open_regular(path, error, limit) as f:
        raw = f.read(limit + 1)
    if len(raw) > limit:  # it grew after the size check
        raise error(f"{path}: file too large (over {limit:,} bytes)")
    return raw


class _ArrayType:
    """What the unpickler hands out for ``numpy.ndarray``: the array type as ``_reconstruct``'s
    argument, never callable, since ``ndarray(shape, dtype)`` allocates an array of any shape
    that no byte of the file fills (a pickle of 89 bytes could ask for 768 MB)."""

    def __new__(cls, *_args: object) -> _ArrayType:
        raise pickle.UnpicklingError("declares an array whose bytes are not in the file")


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and plain containers only, so a crafted file cannot run code, and
    no array larger than the file itself, so a tiny file cannot claim gigabytes."""

    _RECONSTRUCT: ClassVar[frozenset[tuple[str, str]]] = frozenset(
        {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct")}
    )

    def __init__(self, raw: bytes) -> None:
        super().__init__(io.BytesIO(raw), encoding="bytes")
        self._budget = len(raw)

    def find_class(self, module: str, name: str):
        if (module, name) == ("numpy", "dtype"):
            return _plain_dtype
        if (module, name) == ("numpy", "ndarray"):
            return _ArrayType
        if (module, name) not in self._RECONSTRUCT:
            raise pickle.UnpicklingError(f"forbidden object {module}.{name}")
        return self._bounded(super().find_class(module, name))

    def _bounded(self, reconstruct: Callable) -> Callable:
        def checked(subtype, shape, dtype):
            # numpy pickles every array as an empty (0,) one filled from the file's bytes
            # later; a pickle that asks for a bigger one up front allocates it from nothing.
            # The array's bytes then come from the file: numpy's __setstate__ refuses a
            # shape that its data does not fill.
            dims = (shape,) if isinstance(shape, int) else tuple(shape)
            if subtype is not _ArrayType or not all(type(d) is int and d >= 0 for d in dims):
                raise pickle.UnpicklingError("not a plain numpy array")
            nbytes = math.prod(dims) * _plain_dtype(dtype).itemsize
            if nbytes > self._budget:
                raise pickle.UnpicklingError(
                    f"declares a {dims} array of {nbytes:,} bytes, larger than the file"
                )
            return reconstruct(np.ndarray, dims, dtype)

        return checked


def _plain_dtype(*args) -> np.dtype:
    """numpy.dtype for the unpickler, without Python objects (which would unpickle anything)."""
    dtype = np.dtype(*args)
    if dtype.hasobject:
        raise pickle.UnpicklingError("arrays of Python objects are not allowed")
    return dtype


def _read_batch(raw: bytes, name: str, where: Path, num_classes: int) -> tuple[np.ndarray, ...]:
    """One pickled CIFAR batch -> (N, 32, 32, 3) uint8, (N,) int64 labels in 0..num_classes-1.

    ``data`` must be an array of at most :data:`MAX_BATCH_IMAGES` rows of
    :data:`IMAGE_BYTES`, ``labels`` a flat list (or array) of at most as many whole numbers,
    checked before anything of their size is made: a list repeats an element at two bytes a
    reference, so nested lists can expand to billions of elements.
    """
    try:
        batch = _ArrayUnpickler(raw).load()
        if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
            raise ValueError("not a dict of data and labels")
        images = _batch_images(batch[b"data"])
        labels = _label_array(batch[b"labels"])
    except Exception as exc:
        raise DataError(f"{where}: batch {name} is corrupt ({first_line(exc)})") from None
    if labels is None:
        raise DataError(f"{where}: batch {name}: labels are not a list of whole numbers")
    if len(images) != len(labels):
        raise DataError(f"{where}: batch {name} has {len(images)} images but {len(labels)} labels")
    bad = labels[(labels < 0) | (labels >= num_classes)]
    if bad.size:
        raise DataError(
            f"{where}: batch {name} has label {int(bad[0])} but only {num_classes} class names "
            f"(labels 0 to {num_classes - 1})"
        )
    return np.ascontiguousarray(images), labels.astype(np.int64)


def _batch_images(data: object) -> np.ndarray:
    """A batch's data, an (N, 3072) array, as (N, 32, 32, 3) uint8; its shape checked first."""
    if not isinstance(data, np.ndarray):
        raise ValueError(f"data is a {type(data).__name__}, not an array")
    if data.ndim != 2 or data.shape[1] != IMAGE_BYTES or len(data) > MAX_BATCH_IMAGES:
        raise ValueError(
            f"data of shape {data.shape}, not (N, {IMAGE_BYTES}) with N at most "
            f"{MAX_BATCH_IMAGES:,}"
        )
    return data.astype(np.uint8, copy=False).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


def _label_array(labels: object) -> np.ndarray | None:
    """A batch's labels as a 1-D integer array; None when they are not a flat list (or array)
    of whole numbers. Raises ValueError for more than a batch holds."""
    if not isinstance(labels, list | np.ndarray):
        return None
    if len(labels) > MAX_BATCH_IMAGES:
        raise ValueError(f"{len(labels):,} labels, more than {MAX_BATCH_IMAGES:,}")
    if isinstance(labels, list):
        # Only a flat list of ints is converted: np.asarray would expand nested references.
        if not all(type(v) is int for v in labels):
            return None
        labels = np.asarray(labels) if labels else np.zeros(0, np.int64)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        return None
    return labels


def _read_meta(raw: bytes | None) -> tuple[str, ...]:
    """The class names of ``batches.meta``; CIFAR-10's when it is missing or not a list of at
    most :data:`MAX_CLASSES` names (``str`` of anything else could expand a nested list)."""
    if raw is None:
        return CIFAR10_CLASSES
    try:
        names = _ArrayUnpickler(raw).load()[b"label_names"]
    except Exception:
        return CIFAR10_CLASSES
    if not (
        isinstance(names, list)
        and 0 < len(names) <= MAX_CLASSES
        and all(isinstance(n, bytes | str) and len(n) <= 1000 for n in names)
    ):
        return CIFAR10_CLASSES
    try:
        return tuple(n.decode() if isinstance(n, bytes) else n for n in names)
    except UnicodeDecodeError:
        return CIFAR10_CLASSES


def _assemble(read: Callable[[str], bytes | None], where: Path) -> BatchArrays:
    """The arrays of the official batch files, given a reader of one member."""
    names = _read_meta(read("batches.meta"))
    parts = []
    for name in (*TRAIN_BATCHES, "test_batch"):
        raw = read(name)
        if raw is None:
            raise DataError(f"{where}: batch {name} is missing")
        parts.append(_read_batch(raw, name, where, len(names)))
    x_train = np.concatenate([p[0] for p in parts[:-1]])
    y_train = np.concatenate([p[1] for p in parts[:-1]])
    x_test, y_test = parts[-1]
    return x_train, y_train, x_test, y_test, names


def read_batch_folder(folder: Path) -> BatchArrays:
    """The arrays of an extracted ``cifar-10-batches-py`` folder."""

    def read(name: str) -> bytes | None:
        path = folder / name
        return _read_file(path, MAX_BATCH_BYTES, DataError) if os.path.lexists(path) else None

    return _assemble(read, folder)


class _ArchiveRefused(Exception):
    """An archive that declares more than a CIFAR-10 archive may hold."""


# Header blocks whose data tarfile reads into memory whole: long names, pax headers.
_TAR_EXTENSIONS = (
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
)


class _BoundedTarInfo(tarfile.TarInfo):
    """A tar header whose long name or pax data is bounded before tarfile reads it whole."""

    def _proc_member(self, tar):
        if self.type in _TAR_EXTENSIONS and self.size > MAX_TAR_HEADER_BYTES:
            raise _ArchiveRefused(
                f"a tar header of {self.size:,} bytes (at most {MAX_TAR_HEADER_BYTES:,})"
            )
        return super()._proc_member(tar)


_WANTED_MEMBERS = frozenset({*TRAIN_BATCHES, "test_batch", "batches.meta"})


def _read_members(tar: tarfile.TarFile) -> dict[str, bytes]:
    """The batch files of an archive read as a stream, every member checked before it is read."""
    found, total = {}, 0
    for count, member in enumerate(tar, 1):
        if count > MAX_ARCHIVE_MEMBERS:
            raise _ArchiveRefused(f"more than {MAX_ARCHIVE_MEMBERS} members")
        if member.isdir():
            continue
        if not member.isreg() or member.issparse():  # links, devices, FIFOs, sparse files
            raise _ArchiveRefused(f"member {member.name} is not a regular file")
        total += member.size
        if member.size > MAX_BATCH_BYTES or total > MAX_ARCHIVE_BYTES:
            raise _ArchiveRefused(
                f"member {member.name} too large ({member.size:,} bytes; at most "
                f"{MAX_BATCH_BYTES:,} each and {MAX_ARCHIVE_BYTES:,} in all)"
            )
        name = PurePosixPath(member.name).name
        if name in _WANTED_MEMBERS:
            handle = tar.extractfile(member)
            found[name] = handle.read(member.size) if handle else b""
    return found


def read_archive(path: Path) -> BatchArrays:
    """The arrays of the official ``cifar-10-python.tar.gz``, read as a stream."""
    try:
        with (
            open_regular(path, DataError) as f,
            tarfile.open(fileobj=f, mode="r|*", tarinfo=_BoundedTarInfo) as tar,
        ):
            found = _read_members(tar)
    except DataError:
        raise
    except _ArchiveRefused as exc:
        raise DataError(f"{path}: not a CIFAR-10 archive: {exc}") from None
    except Exception as exc:  # tar, zlib, EOF and OS errors of a damaged file
        raise DataError(f"{path}: not a readable CIFAR-10 archive ({first_line(exc)})") from None
    return _assemble(lambda name: found.pop(name, None), path)
