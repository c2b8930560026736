"""The Keras-free file helpers and the files other modules write with them."""

from __future__ import annotations

import hashlib
import io
import os
import stat
from typing import ClassVar

import pytest

from cifar_gui.engine import files
from cifar_gui.engine.data import dataset as data
from cifar_gui.engine.data import download
from cifar_gui.engine.data.dataset import load_dataset
from cifar_gui.engine.errors import DataError


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield 0o644
    os.umask(previous)


def test_json_round_trip_and_refusals(tmp_path, monkeypatch):
    files.write_json(tmp_path / "a.json", {"x": [1, 2]})
    assert files.read_json(tmp_path / "a.json") == {"x": [1, 2]}
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="nested too deeply"):
        files.read_json(tmp_path / "deep.json")
    monkeypatch.setattr(files, "MAX_JSON_BYTES", 4)
    with pytest.raises(ValueError, match="allowed"):
        files.read_json(tmp_path / "a.json")


def test_failed_atomic_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "t.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), files.atomic_path(target) as tmp:
        tmp.write_text("new")
        raise RuntimeError
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_image_folder_cache_gets_the_permissions_of_a_plain_write(
    image_folder, tmp_path, umask_022
):
    cache = tmp_path / "cache"
    load_dataset(image_folder, cache_dir=cache)
    [path] = cache.iterdir()
    assert stat.S_IMODE(path.stat().st_mode) == umask_022


class _Response(io.BytesIO):
    headers: ClassVar[dict[str, str]] = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_downloaded_archive_gets_the_permissions_of_a_plain_write(monkeypatch, umask_022):
    content = b"not really CIFAR-10"
    monkeypatch.setattr(download, "CIFAR10_SHA256", hashlib.sha256(content).hexdigest())
    monkeypatch.setattr(download.urllib.request, "urlopen", lambda *a, **k: _Response(content))
    path = download.download_cifar10()
    assert path.read_bytes() == content
    assert stat.S_IMODE(path.stat().st_mode) == umask_022
    assert list(path.parent.iterdir()) == [path]


def test_cancelled_download_leaves_nothing(monkeypatch):
    monkeypatch.setattr(download.urllib.request, "urlopen", lambda *a, **k: _Response(b"x" * 10))
    with pytest.raises(DataError, match="cancelled"):
        download.download_cifar10(should_stop=lambda: True)
    assert list(data.keras_datasets_dir().glob("*")) == []


def test_an_atomic_path_can_end_as_its_writer_insists(tmp_path):
    target = tmp_path / "best.weights.h5"
    with files.atomic_path(target, suffix=".weights.h5") as tmp:
        assert tmp.name.endswith(".weights.h5") and tmp.parent == tmp_path
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["best.weights.h5"]
