"""Shared fixtures: offscreen Qt, tiny synthetic data sets, and a guard against stray threads."""

from __future__ import annotations

import os
import pickle
import tarfile
import threading
from pathlib import Path

# Before any Qt or TensorFlow import: no screen, no TensorFlow chatter, no network caches.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

from cifar_gui.engine.data.cifar_batches import CIFAR10_CLASSES as TINY_CLASSES

SHARED_CIFAR = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "cifar10"


def synthetic_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n random uint8 images with labels cycling 0..9; class c is tinted so it is learnable."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    images = rng.integers(0, 120, size=(n, 32, 32, 3), dtype=np.uint8)
    images[..., 0] += (labels * 13).astype(np.uint8)[:, None, None]
    return images, labels


def write_cifar_batches(folder: Path, per_batch: int = 20, test: int = 40) -> Path:
    """The official python format (data_batch_1..5, test_batch, batches.meta), tiny."""
    folder.mkdir(parents=True, exist_ok=True)
    names = [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]
    for i, name in enumerate(names):
        x, y = synthetic_images(test if name == "test_batch" else per_batch, seed=i)
        data = x.transpose(0, 3, 1, 2).reshape(len(x), -1)
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": [int(v) for v in y]}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [n.encode() for n in TINY_CLASSES]}, f)
    return folder


@pytest.fixture
def batches_dir(tmp_path: Path) -> Path:
    return write_cifar_batches(tmp_path / "cifar-10-batches-py")


@pytest.fixture
def archive_path(tmp_path: Path) -> Path:
    folder = write_cifar_batches(tmp_path / "src" / "cifar-10-batches-py")
    path = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    return path


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """{train,test}/<class>/*.png with 6 training and 2 test images per class."""
    from PIL import Image

    root = tmp_path / "images"
    for split, n in (("train", 60), ("test", 20)):
        x, y = synthetic_images(n, seed=1 if split == "train" else 2)
        for i, (img, label) in enumerate(zip(x, y, strict=True)):
            folder = root / split / TINY_CLASSES[label]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(folder / f"{i:04d}.png")
    return root


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path_factory, monkeypatch):
    """Keep each test away from the user's caches and the network."""
    monkeypatch.setenv("CIFAR_GUI_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path_factory.mktemp("keras_home")))


@pytest.fixture
def shared_cifar() -> Path:
    """The shared JPEG copy of CIFAR-10; skips when this checkout has no ../shared."""
    if not (SHARED_CIFAR / "train").is_dir():
        pytest.skip(f"shared CIFAR-10 copy not found at {SHARED_CIFAR}")
    return SHARED_CIFAR.resolve()


@pytest.fixture(autouse=True)
def _no_dangling_threads():
    """Fail a test that leaves a Python or Qt thread running."""
    before = set(threading.enumerate())
    yield
    leftover = [
        t for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon
    ]
    assert not leftover, f"threads left running: {[t.name for t in leftover]}"
