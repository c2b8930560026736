"""CIFAR-10 from the Keras cache, the official archive or an image-folder tree, as uint8 arrays.

Every source ends in the same :class:`Dataset`: ``x`` arrays of shape (N, 32, 32, 3) uint8
and ``y`` arrays of int64 labels. :func:`select_classes` picks and relabels a class subset
(deer vs horse by default), and :func:`scale_images` is the one place where pixels become
floats in [0, 1], for training and for inference alike.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import warnings
import zipfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

from cifar_gui import tutorial
from cifar_gui.engine.data.cifar_batches import (
    IMAGE_BYTES,
    read_archive,
    read_batch_folder,
)
from cifar_gui.engine.errors import DataError, ImageError, first_line
from cifar_gui.engine.files import atomic_path, open_regular

IMAGE_SIZE = (32, 32)  # height, width of every image the engine hands out
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
# The only decoders Pillow may use, whatever a file's name or first bytes say: raster formats
# decoded in-process. (Pillow hands EPS to Ghostscript, an external program running the
# file's PostScript; other plugins are rarely needed and widen what a hostile file can reach.)
IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF")
ARCHIVE_NAME = "cifar-10-python.tar.gz"
BATCH_DIR = "cifar-10-batches-py"
SPLITS = ("train", "test")

# Sizes a file declares are checked against these before anything that size is allocated.
MAX_IMAGE_PIXELS = 64_000_000  # width x height: ~200 MB of RGB to decode
# Either side: a 1 x 20,000,000 strip is under the pixel limit, but resizing it to 32 x 32
# goes through a 20,000,000 x 32 intermediate (1.9 GB).
MAX_IMAGE_SIDE = 32_768
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
        see :func:`~cifar_gui.engine.data.download.download_cifar10`). A path: the official
        ``cifar-10-python.tar.gz``, its extracted ``cifar-10-batches-py/`` folder (or a
        folder holding either), or an image folder ``{train,test}/<class>/*.png|jpg``.
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


def _load_batch_folder(folder: Path) -> Dataset:
    return Dataset(*read_batch_folder(folder), str(folder))


def _load_archive(path: Path) -> Dataset:
    return Dataset(*read_archive(path), str(path))


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
