"""CIFAR-10 from the Keras cache, the official archive or an image-folder tree, as uint8 arrays.

Every source ends in the same :class:`Dataset`: ``x`` arrays of shape (N, 32, 32, 3) uint8
and ``y`` arrays of int64 labels. :func:`select_classes` picks and relabels a class subset
(deer vs horse by default), and :func:`scale_images` is the one place where pixels become
floats in [0, 1], for training and for inference alike.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import pickle
import re
import stat
import tarfile
import urllib.request
import warnings
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, ClassVar

import numpy as np
from PIL import Image

from cifar_gui import tutorial
from cifar_gui.config import MAX_CLASSES
from cifar_gui.engine.errors import DataError, ImageError, UserError, first_line
from cifar_gui.engine.files import atomic_path

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
IMAGE_SIZE = (32, 32)  # height, width of every image the engine hands out
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
# The only decoders Pillow may use, whatever a file's name or first bytes say: raster formats
# decoded in-process. (Pillow hands EPS to Ghostscript, an external program running the
# file's PostScript; other plugins are rarely needed and widen what a hostile file can reach.)
IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF")
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
CIFAR10_BYTES = 170_498_071  # its size: a download that runs past it is not the archive
ARCHIVE_NAME = "cifar-10-python.tar.gz"
BATCH_DIR = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
SPLITS = ("train", "test")

# Sizes a file declares are checked against these before anything that size is allocated.
MAX_IMAGE_PIXELS = 64_000_000  # width x height: ~200 MB of RGB to decode
# Either side: a 1 x 20,000,000 strip is under the pixel limit, but resizing it to 32 x 32
# goes through a 20,000,000 x 32 intermediate (1.9 GB).
MAX_IMAGE_SIDE = 32_768
MAX_BATCH_BYTES = 64 << 20  # one pickled batch file (the official ones are 30 MB)
MAX_BATCH_IMAGES = 10_000  # images in one official batch file
IMAGE_BYTES = 3 * IMAGE_SIZE[0] * IMAGE_SIZE[1]  # one image of a batch: 3,072 bytes, R G B
MAX_ARCHIVE_MEMBERS = 64  # the official archive has 9
MAX_ARCHIVE_BYTES = 512 << 20  # all members together (the official archive: 184 MB)
MAX_TAR_HEADER_BYTES = 1 << 20  # a long name or a pax header inside an archive
MAX_FOLDER_IMAGES = 600_000  # an image folder: 1.8 GB of 32 x 32 pixels (CIFAR-10: 60,000)

# Pillow's own guard refuses twice this when a file is opened; read_image refuses the rest.
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
# PIL only warns between that and twice it; read_image refuses those itself, in one line.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


@dataclass(frozen=True)
class Dataset:
    """A whole data set: uint8 images (N, H, W, 3), int64 labels, class names."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    source: str

    def counts(self) -> dict[str, np.ndarray]:
        """Images per class for each split, as the seed's ``table(cifar10$train$y)``."""
        n = len(self.class_names)
        return {
            "train": np.bincount(self.y_train, minlength=n),
            "test": np.bincount(self.y_test, minlength=n),
        }


@dataclass(frozen=True)
class Subset:
    """Some classes of a :class:`Dataset`, relabelled 0..k-1 in the order they were asked for."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]  # names of the chosen classes, new label order
    class_indices: tuple[int, ...]  # their labels in the full data set
    train_index: np.ndarray  # positions of the chosen images in the full data set
    test_index: np.ndarray

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def scale_images(images):
    """uint8 pixels in [0, 255] to float32 in [0, 1]: the one scaling of training and inference.

    Takes numpy arrays (inference, previews) and TensorFlow tensors (the training pipeline,
    which keeps images as uint8 until each batch: a quarter of the memory of floats).
    """
    if isinstance(images, np.ndarray | np.generic | list | tuple):
        return np.asarray(images, dtype=np.float32) / np.float32(255.0)
    import tensorflow as tf  # only the training pipeline passes tensors; the GUI stays light

    return tf.cast(images, tf.float32) / 255.0


# --------------------------------------------------------------------------------------
# Sources


def keras_datasets_dir() -> Path:
    """The folder where Keras caches downloaded data sets (``$KERAS_HOME/datasets``)."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")).expanduser() / "datasets"


def find_keras_cache() -> Path | None:
    """The cached CIFAR-10 (batches folder or archive) in the Keras cache, if any."""
    root = keras_datasets_dir()
    candidates = [
        root / BATCH_DIR,
        *sorted(root.glob(f"*/{BATCH_DIR}")),
        root / ARCHIVE_NAME,
    ]
    for path in candidates:
        if (path / "test_batch").is_file() or (path.is_file() and path.name == ARCHIVE_NAME):
            return path
    return None


def default_cache_dir() -> Path:
    """Where decoded image folders are cached: ``$CIFAR_GUI_CACHE`` or the XDG cache."""
    env = os.environ.get("CIFAR_GUI_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg) / "cifar-gui"


def load_dataset(source: str | os.PathLike | None = None, cache_dir: Path | None = None) -> Dataset:
    """Load CIFAR-10 or an image-folder data set.

    Parameters
    ----------
    source
        ``None`` or ``"keras"``: the Keras cache (raises :class:`DataError` when it is empty;
        see :func:`download_cifar10`). A path: the official ``cifar-10-python.tar.gz``, its
        extracted ``cifar-10-batches-py/`` folder (or a folder holding either), or an image
        folder ``{train,test}/<class>/*.png|jpg``.
    cache_dir
        Where decoded image folders are cached (default :func:`default_cache_dir`).
    """
    if source is None or str(source) == "keras":
        found = find_keras_cache()
        if found is None:
            raise DataError(
                f"CIFAR-10 is not in the Keras cache ({keras_datasets_dir()}): download it "
                "or give the path of an archive or image folder"
            )
        return load_dataset(found, cache_dir)
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if not path.is_dir():  # an archive, or a FIFO or device that it refuses
        return _load_archive(path)
    if (path / "test_batch").is_file():
        return _load_batch_folder(path)
    if (path / BATCH_DIR / "test_batch").is_file():
        return _load_batch_folder(path / BATCH_DIR)
    if (path / ARCHIVE_NAME).is_file():
        return _load_archive(path / ARCHIVE_NAME)
    if (path / "train").is_dir() and (path / "test").is_dir():
        return _load_image_folder(path, cache_dir or default_cache_dir())
    raise DataError(
        f"{path}: not a CIFAR-10 archive, batches folder or image folder "
        "(expected cifar-10-python.tar.gz, data_batch_1..5 + test_batch, or train/ and test/)"
    )


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


def _assemble(read: Callable[[str], bytes | None], where: Path, source: str) -> Dataset:
    """Build a Dataset from the official batch files, given a reader of one member."""
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
    return Dataset(x_train, y_train, x_test, y_test, names, source)


def _load_batch_folder(folder: Path) -> Dataset:
    def read(name: str) -> bytes | None:
        path = folder / name
        return _read_file(path, MAX_BATCH_BYTES, DataError) if os.path.lexists(path) else None

    return _assemble(read, folder, str(folder))


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


def _load_archive(path: Path) -> Dataset:
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
    return _assemble(lambda name: found.pop(name, None), path, str(path))


# --------------------------------------------------------------------------------------
# Image folders


def fit_image(image: Image.Image | np.ndarray, size: tuple[int, int] = IMAGE_SIZE) -> np.ndarray:
    """An image (PIL, or a uint8 array: grey, RGB or RGBA) -> (H, W, 3) uint8 of ``size``:
    RGB, resized with a Lanczos filter when its size differs (what a model is given)."""
    img = (
        Image.fromarray(np.asarray(image, dtype=np.uint8))
        if isinstance(image, np.ndarray)
        else image
    )
    img = img.convert("RGB")
    if img.size != (size[1], size[0]):
        img = img.resize((size[1], size[0]), Image.Resampling.LANCZOS)
    return np.asarray(img, dtype=np.uint8).copy()


def read_image(path: str | os.PathLike, size: tuple[int, int] = IMAGE_SIZE) -> np.ndarray:
    """An image file (PNG, JPEG, BMP, GIF, WebP, TIFF; any mode) -> (H, W, 3) uint8 of ``size``.

    Grey, palette and RGBA images become RGB (transparent pixels over black, as PIL does);
    other sizes are resized with a Lanczos filter. Only regular files are opened, only the
    decoders of :data:`IMAGE_FORMATS` are tried (never an external program), and the size
    the file declares is checked before its pixels are decoded. Raises :class:`ImageError`.
    """
    path = Path(path)
    limits = f"at most {MAX_IMAGE_SIDE:,} pixels a side, {MAX_IMAGE_PIXELS:,} in all"
    with open_regular(path, ImageError) as f:
        try:
            with Image.open(f, formats=IMAGE_FORMATS) as img:
                width, height = img.size
                if max(width, height) > MAX_IMAGE_SIDE or width * height > MAX_IMAGE_PIXELS:
                    raise ImageError(f"{path}: image too large ({width:,} x {height:,}; {limits})")
                if img.mode.startswith("I"):
                    # 16-bit grey: PIL's RGB conversion clips at 255 (a white image); keep the
                    # top 8 bits instead (int32: these modes hold at most 32 bits).
                    img = Image.fromarray(
                        np.clip(np.asarray(img, dtype=np.int32) >> 8, 0, 255).astype(np.uint8)
                    )
                return fit_image(img, size)
        except ImageError:
            raise
        except Image.DecompressionBombError:  # Pillow's own check, at twice the limit
            raise ImageError(f"{path}: image too large ({limits})") from None
        except Image.UnidentifiedImageError:
            raise ImageError(f"{path}: {_unread_format(f)}") from None
        except Exception as exc:  # PIL raises many types for broken files
            raise ImageError(f"{path}: unreadable image ({first_line(exc)})") from None


def _unread_format(f: BinaryIO) -> str:
    """What a file that no decoder of :data:`IMAGE_FORMATS` takes is: the format Pillow knows
    it as (from its header; no pixel is decoded, so no external program runs), or not an
    image file."""
    Image.init()
    others = [name for name in Image.OPEN if name not in IMAGE_FORMATS]
    try:
        f.seek(0)
        with Image.open(f, formats=others) as img:
            kind = f"{img.format} ({img.format_description})"
    except Exception:  # any header Pillow cannot parse either
        return "not an image file"
    listed = f"{', '.join(IMAGE_FORMATS[:-1])} and {IMAGE_FORMATS[-1]}"
    return f"the {kind} format is not one this app reads (it reads {listed})"


def _list_image_folder(
    root: Path, class_names: Sequence[str]
) -> tuple[dict[str, list[str]], dict[str, np.ndarray], str]:
    """The image files and labels of each split, and a key that changes when any file does.

    The key hashes every file's relative path, size, mtime and ctime: a stat each, no reads.
    An image rewritten in place, truncated, added, removed or renamed changes it; the ctime
    also catches a rewrite that put the old mtime back (``cp -p``, ``touch -r``).
    """
    lines: list[str] = []
    files: dict[str, list[str]] = {}
    labels: dict[str, np.ndarray] = {}
    for split in SPLITS:
        found, found_labels = [], []
        for label, name in enumerate(class_names):
            folder = root / split / name
            if not folder.is_dir():
                continue
            for entry in sorted(os.scandir(folder), key=lambda e: e.name):
                if os.path.splitext(entry.name)[1].lower() not in IMAGE_EXTENSIONS:
                    continue
                try:
                    st = entry.stat()  # of a link's target
                except OSError:
                    continue  # a broken link: not an image
                if not stat.S_ISREG(st.st_mode):
                    continue  # a folder, FIFO or device named like an image
                found.append(entry.path)
                found_labels.append(label)
                lines.append(
                    f"{split}/{name}/{entry.name}\0{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"
                )
        files[split] = found
        labels[split] = np.asarray(found_labels, dtype=np.int64)
    if len(lines) > MAX_FOLDER_IMAGES:
        raise DataError(f"{root}: {len(lines):,} images, more than {MAX_FOLDER_IMAGES:,} allowed")
    key = hashlib.sha256("\n".join(lines).encode(errors="surrogateescape")).hexdigest()[:24]
    return files, labels, key


def _decode_all(files: Sequence[str]) -> np.ndarray:
    out = np.empty((len(files), *IMAGE_SIZE, 3), np.uint8)

    def decode(i: int) -> None:
        out[i] = read_image(files[i])

    # JPEG/PNG decoding releases the GIL, so threads use every core.
    pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 2)
    try:
        for _ in pool.map(decode, range(len(files))):
            pass
    finally:
        pool.shutdown(cancel_futures=True)  # after a broken image, decode no more
    return out


def _load_image_folder(root: Path, cache_dir: Path) -> Dataset:
    class_names = tuple(sorted(p.name for p in (root / "train").iterdir() if p.is_dir()))
    if not class_names:
        raise DataError(f"{root / 'train'}: no class folders")
    unknown = sorted(
        p.name for p in (root / "test").iterdir() if p.is_dir() and p.name not in class_names
    )
    if unknown:
        raise DataError(f"{root / 'test'}: classes not in train/: {', '.join(unknown)}")
    files, labels, key = _list_image_folder(root, class_names)
    if not files["train"]:
        raise DataError(f"{root / 'train'}: no image files")
    prefix = "imagefolder-" + hashlib.sha256(os.fsencode(root.resolve())).hexdigest()[:16]
    cache = cache_dir / f"{prefix}-{key}.npz"
    images = _read_cache(cache, {split: len(files[split]) for split in SPLITS})
    if images is None:
        try:
            images = {split: _decode_all(files[split]) for split in SPLITS}
        except ImageError as exc:
            raise DataError(str(exc)) from None
        _write_cache(cache, images)
    return Dataset(
        images["train"], labels["train"], images["test"], labels["test"], class_names, str(root)
    )


def _read_cache(path: Path, counts: dict[str, int]) -> dict[str, np.ndarray] | None:
    """The decoded images of a cache file, or None when it is missing, damaged or does not fit.

    Each array's header is checked against the image counts before its pixels are allocated.
    """
    if not path.is_file():
        return None
    try:
        with open_regular(path, DataError) as f, zipfile.ZipFile(f) as archive:
            images = {}
            for split in SPLITS:
                name = f"x_{split}.npy"
                # Its stored size first: pixels the file cannot hold are never allocated.
                if archive.getinfo(name).file_size < counts[split] * IMAGE_BYTES:
                    return None
                with archive.open(name) as member:
                    images[split] = _read_npy(member, (counts[split], *IMAGE_SIZE, 3))
            return images
    except Exception:
        return None  # a damaged cache is rebuilt


def _read_npy(f: BinaryIO, shape: tuple[int, ...]) -> np.ndarray:
    """A uint8 ``.npy`` array of exactly ``shape`` from a stream; ValueError for anything else."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        found, fortran, dtype = np.lib.format.read_array_header_1_0(f)
    else:
        found, fortran, dtype = np.lib.format.read_array_header_2_0(f)
    if found != shape or fortran or dtype != np.uint8:
        raise ValueError(f"cache holds {found} {dtype}, not {shape} uint8")
    out = np.empty(shape, np.uint8)
    view = memoryview(out.reshape(-1))
    done = 0
    while done < len(view):
        chunk = f.read(min(1 << 22, len(view) - done))
        if not chunk:
            raise ValueError("cache file cut short")
        view[done : done + len(chunk)] = chunk
        done += len(chunk)
    return out


def _write_cache(path: Path, images: dict[str, np.ndarray]) -> None:
    """Best effort, atomic: a cache that cannot be written only costs time on the next load.

    Written under a temporary name and renamed, so no reader sees a partial file and a failed
    write leaves none; older caches of the same folder are then removed.
    """
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **{f"x_{split}": images[split] for split in SPLITS})
        for old in path.parent.glob(path.name.rsplit("-", 1)[0] + "-*.npz"):
            if old != path:
                old.unlink(missing_ok=True)
    except OSError:
        pass


# --------------------------------------------------------------------------------------
# Download


def download_cifar10(
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    url: str = CIFAR10_URL,
) -> Path:
    """Download the official archive into the Keras cache, checking its sha256.

    ``progress(done_bytes, total_bytes)`` is called as data arrives; when ``should_stop()``
    turns true the partial file is removed and :class:`DataError` is raised.
    """
    target = keras_datasets_dir() / ARCHIVE_NAME
    digest = hashlib.sha256()
    try:
        # The partial download never takes the archive's name: a cancel or a failure leaves
        # nothing, and the finished file gets the permissions of a plain write.
        with atomic_path(target) as tmp:
            with open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=30) as response:
                total = int(response.headers.get("Content-Length") or 0)
                if total > CIFAR10_BYTES:
                    raise DataError(f"{url}: {total:,} bytes offered, not the CIFAR-10 archive")
                done = 0
                while chunk := response.read(1 << 20):
                    if should_stop and should_stop():
                        raise DataError("download cancelled")
                    if done + len(chunk) > CIFAR10_BYTES:  # a server that never stops
                        raise DataError(f"{url}: more than {CIFAR10_BYTES:,} bytes, not CIFAR-10")
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, total)
            if digest.hexdigest() != CIFAR10_SHA256:
                raise DataError(f"{url}: downloaded file has the wrong checksum")
        return target
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"could not download CIFAR-10 from {url} ({first_line(exc)})") from None


# --------------------------------------------------------------------------------------
# Class subsets


_INDEX = re.compile(r"[0-9]+")  # ASCII digits: str.isdigit also takes "²" and "٣"


def resolve_classes(classes: Sequence[str | int], class_names: Sequence[str]) -> tuple[int, ...]:
    """Class names or indices -> label indices, order kept.

    A string that is a class name is that class, so image folders named ``2`` or ``10`` are
    chosen by name. Otherwise an ASCII whole number (or an int) is an index 0..n-1. Anything
    else is a :class:`DataError` that lists the classes with their indices.
    """
    names = list(class_names)
    listing = f"{', '.join(names)} (or an index 0 to {len(names) - 1})"
    out: list[int] = []
    for item in classes:
        text = str(item).strip()
        if isinstance(item, int | np.integer) and not isinstance(item, bool):
            index = int(item)
        elif str(item) in names or text in names:
            index = names.index(str(item) if str(item) in names else text)
        elif _INDEX.fullmatch(text):
            index = int(text)
        else:
            raise DataError(f"unknown class {text!r}: choose from {listing}")
        if not 0 <= index < len(names):
            raise DataError(f"class index {index} out of range: choose from {listing}")
        if index in out:
            raise DataError(f"class {names[index]!r} chosen twice")
        out.append(index)
    if len(out) < 2:
        raise DataError("choose at least two classes")
    return tuple(out)


def select_classes(
    dataset: Dataset,
    classes: Sequence[str | int] = tutorial.PAIR,
    limit: int | None = None,
    train_limit: int | None = None,
) -> Subset:
    """The images of ``classes``, relabelled 0, 1, ... in that order (deer=0, horse=1).

    ``limit`` keeps N training and N test images, shared out evenly between the classes and
    taken from the front of each class, so even an image folder sorted by class gives every
    class its share. ``train_limit`` keeps N training images the same way, and leaves the test
    images to ``limit`` (all of them when it is None): a small training set, scored fairly.
    """
    indices = resolve_classes(classes, dataset.class_names)
    remap = np.full(len(dataset.class_names), -1, dtype=np.int64)
    remap[list(indices)] = np.arange(len(indices))

    def pick(
        x: np.ndarray, y: np.ndarray, limit: int | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        new = remap[y]
        if limit is None:
            where = np.flatnonzero(new >= 0)
        else:
            quotas = [
                limit // len(indices) + (c < limit % len(indices)) for c in range(len(indices))
            ]
            where = np.sort(
                np.concatenate([np.flatnonzero(new == c)[:q] for c, q in enumerate(quotas)])
            )
        return x[where], new[where], where

    train_count = limit if train_limit is None else train_limit
    x_train, y_train, train_index = pick(dataset.x_train, dataset.y_train, train_count)
    x_test, y_test, test_index = pick(dataset.x_test, dataset.y_test, limit)
    empty = [dataset.class_names[i] for c, i in enumerate(indices) if not np.any(y_train == c)]
    if empty:
        raise DataError(f"{dataset.source}: no training images of {', '.join(empty)}")
    return Subset(
        x_train,
        y_train,
        x_test,
        y_test,
        tuple(dataset.class_names[i] for i in indices),
        indices,
        train_index,
        test_index,
    )
