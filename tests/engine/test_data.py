"""Data sources, class subsets and scaling."""

from __future__ import annotations

import pickle
import shutil

import numpy as np
import pytest

from cifar_gui.engine.data import dataset as data
from cifar_gui.engine.data import download
from cifar_gui.engine.data.dataset import (
    load_dataset,
    resolve_classes,
    scale_images,
    select_classes,
)
from cifar_gui.engine.errors import DataError
from tests.conftest import TINY_CLASSES, synthetic_images


def test_batches_folder_and_archive_give_the_same_arrays(batches_dir, archive_path):
    folder = load_dataset(batches_dir)
    archive = load_dataset(archive_path)
    assert folder.x_train.shape == (100, 32, 32, 3) and folder.x_train.dtype == np.uint8
    assert folder.x_test.shape == (40, 32, 32, 3)
    assert folder.class_names == TINY_CLASSES
    np.testing.assert_array_equal(folder.x_train, archive.x_train)
    np.testing.assert_array_equal(folder.y_test, archive.y_test)
    # Pixels survive the CHW layout of the official format.
    x, y = synthetic_images(20, seed=0)
    np.testing.assert_array_equal(folder.x_train[:20], x)
    np.testing.assert_array_equal(folder.y_train[:20], y)


def test_parent_folder_of_batches_is_accepted(batches_dir):
    assert load_dataset(batches_dir.parent).x_train.shape[0] == 100


def test_keras_cache_is_the_default(batches_dir, monkeypatch, tmp_path):
    datasets = tmp_path / "keras_home" / "datasets" / "cifar-10-batches-py-target"
    shutil.copytree(batches_dir, datasets / "cifar-10-batches-py")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    assert load_dataset(None).x_test.shape[0] == 40


def test_empty_keras_cache_says_so():
    with pytest.raises(DataError, match="not in the Keras cache"):
        load_dataset(None)


def test_image_folder_loads_and_is_cached(image_folder, monkeypatch):
    first = load_dataset(image_folder)
    assert first.class_names == TINY_CLASSES
    assert first.x_train.shape == (60, 32, 32, 3)
    assert first.counts()["train"].tolist() == [6] * 10
    assert first.counts()["test"].tolist() == [2] * 10

    def no_decoding(*args, **kwargs):
        raise AssertionError("the cached folder was decoded again")

    monkeypatch.setattr(data, "read_image", no_decoding)
    second = load_dataset(image_folder)
    np.testing.assert_array_equal(first.x_train, second.x_train)
    np.testing.assert_array_equal(first.y_test, second.y_test)


def test_image_folder_cache_notices_a_new_file(image_folder):
    from PIL import Image

    before = load_dataset(image_folder)
    Image.new("RGB", (32, 32), "red").save(image_folder / "train" / "cat" / "new.png")
    after = load_dataset(image_folder)
    assert after.counts()["train"][3] == before.counts()["train"][3] + 1


def test_image_folder_skips_stray_files_and_resizes(image_folder):
    from PIL import Image

    (image_folder / "train" / "cat" / "notes.txt").write_text("not an image")
    Image.new("L", (64, 48), 128).save(image_folder / "train" / "cat" / "big_grey.png")
    ds = load_dataset(image_folder)
    assert ds.counts()["train"][3] == 7
    assert ds.x_train.shape[1:] == (32, 32, 3)


def test_shared_copy_slice_decodes_like_pil(shared_cifar, tmp_path):
    from PIL import Image

    root = tmp_path / "slice"
    for split in ("train", "test"):
        for name in ("deer", "horse"):
            (root / split / name).mkdir(parents=True)
            for src in sorted((shared_cifar / split / name).iterdir())[:5]:
                (root / split / name / src.name).symlink_to(src)
    ds = load_dataset(root)
    assert ds.class_names == ("deer", "horse")
    first = sorted((shared_cifar / "train" / "deer").iterdir())[0]
    np.testing.assert_array_equal(ds.x_train[0], np.asarray(Image.open(first).convert("RGB")))


@pytest.mark.slow
def test_shared_copy_deer_vs_horse_matches_the_seed(shared_cifar):
    subset = select_classes(load_dataset(shared_cifar))
    assert subset.x_train.shape == (10_000, 32, 32, 3)
    assert subset.x_test.shape == (2_000, 32, 32, 3)
    assert np.bincount(subset.y_train).tolist() == [5000, 5000]
    assert np.bincount(subset.y_test).tolist() == [1000, 1000]


def test_select_classes_relabels_in_the_given_order(batches_dir):
    ds = load_dataset(batches_dir)
    subset = select_classes(ds, ["horse", 4])
    assert subset.class_names == ("horse", "deer")
    assert subset.class_indices == (7, 4)
    assert set(subset.y_train.tolist()) == {0, 1}
    np.testing.assert_array_equal(ds.y_train[subset.train_index[subset.y_train == 0]], 7)
    np.testing.assert_array_equal(ds.x_train[subset.train_index], subset.x_train)


def test_default_pair_is_deer_zero_horse_one(batches_dir):
    subset = select_classes(load_dataset(batches_dir))
    assert subset.class_names == ("deer", "horse")
    assert subset.class_indices == (4, 7)


def test_limit_shares_images_between_classes(image_folder):
    subset = select_classes(load_dataset(image_folder), ["deer", "horse", "cat"], limit=5)
    assert len(subset.y_train) == 5
    assert np.bincount(subset.y_train).tolist() == [2, 2, 1]
    assert len(subset.y_test) == 5


def test_unknown_class_lists_the_valid_ones(batches_dir):
    with pytest.raises(DataError, match=r"unknown class 'zebra'.*airplane.*truck"):
        resolve_classes(["deer", "zebra"], TINY_CLASSES)
    with pytest.raises(DataError, match="chosen twice"):
        resolve_classes(["deer", 4], TINY_CLASSES)


def test_scale_images_is_the_only_scaling():
    x = np.array([[0, 51, 255]], dtype=np.uint8)
    scaled = scale_images(x)
    assert scaled.dtype == np.float32
    np.testing.assert_allclose(scaled, [[0.0, 0.2, 1.0]])


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p, "no such file or folder"),
        (lambda p: (p.mkdir(), p)[1], "not a CIFAR-10 archive, batches folder or image folder"),
        (lambda p: (p.write_bytes(b"\x1f\x8b garbage"), p)[1], "not a readable CIFAR-10 archive"),
    ],
    ids=["missing", "empty-folder", "corrupt-archive"],
)
def test_bad_data_paths_name_the_problem(tmp_path, make, message):
    path = make(tmp_path / "cifar-10-python.tar.gz")
    with pytest.raises(DataError, match=message) as info:
        load_dataset(path)
    assert str(path) in str(info.value)


def test_missing_batch_is_named(batches_dir):
    (batches_dir / "data_batch_3").unlink()
    with pytest.raises(DataError, match="data_batch_3 is missing"):
        load_dataset(batches_dir)


def test_crafted_pickle_cannot_run_code(batches_dir, tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (batches_dir / "data_batch_1").write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}))
    with pytest.raises(DataError, match="data_batch_1 is corrupt"):
        load_dataset(batches_dir)
    assert not marker.exists()


def test_download_failure_is_a_clear_error(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(download.urllib.request, "urlopen", refuse)
    with pytest.raises(DataError, match=r"could not download CIFAR-10.*network unreachable"):
        download.download_cifar10()
    assert list(data.keras_datasets_dir().glob("*")) == []


class EndlessResponse:
    """A server answer that runs far past the archive's size (or claims to, up front)."""

    def __init__(self, length: str | None, stop_after: int):
        self.headers = {"Content-Length": length} if length else {}
        self.sent, self.stop_after = 0, stop_after

    def read(self, n: int) -> bytes:
        n = min(n, self.stop_after - self.sent)  # ends at last, so old code fails, not hangs
        self.sent += n
        return b"\0" * n

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("length", [None, "99999999999"], ids=["endless", "huge-length"])
def test_download_stops_at_the_archive_size(monkeypatch, length):
    monkeypatch.setattr(download, "CIFAR10_BYTES", 3 << 20)  # the real one is 170 MB
    response = EndlessResponse(length, stop_after=20 << 20)
    monkeypatch.setattr(download.urllib.request, "urlopen", lambda *a, **k: response)
    with pytest.raises(DataError, match=r"not (the )?CIFAR-10"):
        download.download_cifar10()
    assert response.sent <= (4 << 20)
    assert list(data.keras_datasets_dir().glob("*")) == []
