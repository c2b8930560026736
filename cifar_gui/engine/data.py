"""CIFAR-10 from the Keras cache, the official archive or an image-folder tree, as uint8 arrays.

Every source ends in the same :class:`Dataset`: ``x`` arrays of shape (N, 32, 32, 3) uint8
and ``y`` arrays of int64 labels. :func:`select_classes` picks and relabels a class subset
(deer vs horse by default), and :func:`scale_images` is the one place where pixels become
floats in [0, 1], for training and for inference alike.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
import tempfile
import urllib.request
import warnings
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
from PIL import Image

from cifar_gui.engine.errors import DataError, ImageError

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
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
ARCHIVE_NAME = "cifar-10-python.tar.gz"
BATCH_DIR = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
SPLITS = ("train", "test")

# Refuse images whose pixel count would need gigabytes to decode (decompression bombs).
Image.MAX_IMAGE_PIXELS = 64_000_000
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
    if path.is_file():
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


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and plain containers only, so a crafted file cannot run code."""

    _ALLOWED: ClassVar[frozenset[tuple[str, str]]] = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
        }
    )

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"forbidden object {module}.{name}")


def _read_batch(raw: bytes, name: str, where: Path) -> tuple[np.ndarray, np.ndarray]:
    """One pickled CIFAR batch -> (N, 32, 32, 3) uint8, (N,) int64."""
    try:
        batch = _ArrayUnpickler(io.BytesIO(raw), encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
        images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    except Exception as exc:
        raise DataError(f"{where}: batch {name} is corrupt ({_first_line(exc)})") from None
    if len(images) != len(labels):
        raise DataError(f"{where}: batch {name} has {len(images)} images but {len(labels)} labels")
    return np.ascontiguousarray(images), labels


def _read_meta(raw: bytes | None) -> tuple[str, ...]:
    if raw is None:
        return CIFAR10_CLASSES
    try:
        meta = _ArrayUnpickler(io.BytesIO(raw), encoding="bytes").load()
        return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in meta[b"label_names"])
    except Exception:
        return CIFAR10_CLASSES


def _assemble(read: Callable[[str], bytes | None], where: Path, source: str) -> Dataset:
    """Build a Dataset from the official batch files, given a reader of one member."""
    parts = []
    for name in (*TRAIN_BATCHES, "test_batch"):
        raw = read(name)
        if raw is None:
            raise DataError(f"{where}: batch {name} is missing")
        parts.append(_read_batch(raw, name, where))
    x_train = np.concatenate([p[0] for p in parts[:-1]])
    y_train = np.concatenate([p[1] for p in parts[:-1]])
    x_test, y_test = parts[-1]
    names = _read_meta(read("batches.meta"))
    labels_max = max(int(y_train.max(initial=0)), int(y_test.max(initial=0)))
    if labels_max >= len(names):
        raise DataError(f"{where}: label {labels_max} but only {len(names)} class names")
    return Dataset(x_train, y_train, x_test, y_test, names, source)


def _load_batch_folder(folder: Path) -> Dataset:
    def read(name: str) -> bytes | None:
        path = folder / name
        return path.read_bytes() if path.is_file() else None

    return _assemble(read, folder, str(folder))


def _load_archive(path: Path) -> Dataset:
    try:
        with tarfile.open(path, "r:*") as tar:
            members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}

            def read(name: str) -> bytes | None:
                member = members.get(name)
                if member is None:
                    return None
                handle = tar.extractfile(member)
                return handle.read() if handle else None

            return _assemble(read, path, str(path))
    except DataError:
        raise
    except tarfile.TarError:
        raise DataError(f"{path}: not a readable CIFAR-10 archive (not a tar file)") from None
    except Exception as exc:  # zlib, EOF and OS errors of a damaged file
        raise DataError(f"{path}: not a readable CIFAR-10 archive ({_first_line(exc)})") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


# --------------------------------------------------------------------------------------
# Image folders


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    )


def read_image(path: str | os.PathLike, size: tuple[int, int] = IMAGE_SIZE) -> np.ndarray:
    """Any image file (PNG, JPEG, BMP, GIF, WebP; any mode) -> (H, W, 3) uint8 of ``size``.

    Grey, palette and RGBA images become RGB (transparent pixels over black, as PIL does);
    other sizes are resized with a Lanczos filter. Raises :class:`ImageError`.
    """
    path = Path(path)
    try:
        with Image.open(path) as img:
            if img.width * img.height > Image.MAX_IMAGE_PIXELS:
                raise Image.DecompressionBombError(f"{img.width}x{img.height}")
            if img.mode.startswith("I"):
                # 16-bit grey: PIL's RGB conversion clips at 255 (a white image); keep the
                # top 8 bits instead.
                img = Image.fromarray(
                    np.clip(np.asarray(img, dtype=np.int64) >> 8, 0, 255).astype(np.uint8)
                )
            img = img.convert("RGB")
            if img.size != (size[1], size[0]):
                img = img.resize((size[1], size[0]), Image.Resampling.LANCZOS)
            return np.asarray(img, dtype=np.uint8).copy()
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: is a folder, not an image") from None
    except Image.DecompressionBombError:
        raise ImageError(
            f"{path}: image too large (over {Image.MAX_IMAGE_PIXELS} pixels)"
        ) from None
    except Exception as exc:  # PIL raises many types for broken files
        reason = (
            "not an image file"
            if "identify" in str(exc)
            else f"unreadable image ({_first_line(exc)})"
        )
        raise ImageError(f"{path}: {reason}") from None


def _folder_fingerprint(root: Path, class_names: Sequence[str]) -> str:
    """Changes whenever a file is added, removed or replaced below the split/class folders."""
    parts = [str(root.resolve())]
    for split in SPLITS:
        for name in class_names:
            folder = root / split / name
            if folder.is_dir():
                st = folder.stat()
                parts.append(f"{split}/{name}:{st.st_mtime_ns}:{st.st_ino}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


def _decode_all(files: Iterable[Path]) -> np.ndarray:
    files = list(files)
    if not files:
        return np.zeros((0, *IMAGE_SIZE, 3), np.uint8)
    # JPEG/PNG decoding releases the GIL, so threads use every core.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return np.stack(list(pool.map(read_image, files, chunksize=256)))


def _load_image_folder(root: Path, cache_dir: Path) -> Dataset:
    class_names = tuple(sorted(p.name for p in (root / "train").iterdir() if p.is_dir()))
    if not class_names:
        raise DataError(f"{root / 'train'}: no class folders")
    unknown = sorted(
        p.name for p in (root / "test").iterdir() if p.is_dir() and p.name not in class_names
    )
    if unknown:
        raise DataError(f"{root / 'test'}: classes not in train/: {', '.join(unknown)}")
    cache = cache_dir / f"imagefolder-{_folder_fingerprint(root, class_names)}.npz"
    if cache.is_file():
        try:
            with np.load(cache) as z:
                return Dataset(
                    z["x_train"], z["y_train"], z["x_test"], z["y_test"], class_names, str(root)
                )
        except Exception:
            pass  # a damaged cache is rebuilt below
    arrays = {}
    for split in SPLITS:
        files, labels = [], []
        for label, name in enumerate(class_names):
            folder = root / split / name
            found = _image_files(folder) if folder.is_dir() else []
            files += found
            labels += [label] * len(found)
        try:
            arrays[f"x_{split}"] = _decode_all(files)
        except ImageError as exc:
            raise DataError(str(exc)) from None
        arrays[f"y_{split}"] = np.asarray(labels, dtype=np.int64)
    if len(arrays["y_train"]) == 0:
        raise DataError(f"{root / 'train'}: no image files")
    _write_cache(cache, arrays)
    return Dataset(
        arrays["x_train"],
        arrays["y_train"],
        arrays["x_test"],
        arrays["y_test"],
        class_names,
        str(root),
    )


def _write_cache(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Best effort: a cache that cannot be written only costs time on the next load."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
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
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=30) as response:
            total = int(response.headers.get("Content-Length") or 0)
            done = 0
            while chunk := response.read(1 << 20):
                if should_stop and should_stop():
                    raise DataError("download cancelled")
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
        if digest.hexdigest() != CIFAR10_SHA256:
            raise DataError(f"{url}: downloaded file has the wrong checksum")
        os.replace(tmp, target)
        return target
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"could not download CIFAR-10 from {url} ({_first_line(exc)})") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


# --------------------------------------------------------------------------------------
# Class subsets


def resolve_classes(classes: Sequence[str | int], class_names: Sequence[str]) -> tuple[int, ...]:
    """Class names or indices (as ints or digit strings) -> label indices, order kept."""
    out = []
    for item in classes:
        text = str(item).strip()
        if text.isdigit() and int(text) < len(class_names):
            index = int(text)
        elif text in class_names:
            index = list(class_names).index(text)
        else:
            raise DataError(f"unknown class {text!r}: choose from {', '.join(class_names)}")
        if index in out:
            raise DataError(f"class {class_names[index]!r} chosen twice")
        out.append(index)
    if len(out) < 2:
        raise DataError("choose at least two classes")
    return tuple(out)


def select_classes(
    dataset: Dataset, classes: Sequence[str | int] = ("deer", "horse"), limit: int | None = None
) -> Subset:
    """The images of ``classes``, relabelled 0, 1, ... in that order (deer=0, horse=1).

    ``limit`` keeps N training and N test images, shared out evenly between the classes and
    taken from the front of each class, so even an image folder sorted by class gives every
    class its share.
    """
    indices = resolve_classes(classes, dataset.class_names)
    remap = np.full(len(dataset.class_names), -1, dtype=np.int64)
    remap[list(indices)] = np.arange(len(indices))

    def pick(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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

    x_train, y_train, train_index = pick(dataset.x_train, dataset.y_train)
    x_test, y_test, test_index = pick(dataset.x_test, dataset.y_test)
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
