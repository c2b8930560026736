"""Hostile files: FIFOs, formats that run programs, decompression bombs, tar tricks, crafted
pickles, wrong labels, class folders named with digits, and an image folder changed under
its cache. Every size is refused before it is allocated; nothing here allocates much."""

from __future__ import annotations

import io
import os
import pickle
import stat
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cifar_gui.engine.data import cifar_batches
from cifar_gui.engine.data import dataset as data
from cifar_gui.engine.data.dataset import load_dataset, read_image, resolve_classes
from cifar_gui.engine.errors import DataError, ImageError
from tests.conftest import synthetic_images, write_cifar_batches
from tests.engine.test_fuzz_inputs import (
    EPS,
    array_bomb,
    fifo,
    png_header_only,
    tar_member,
    tar_of_headers,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="FIFOs, /proc")


# --------------------------------------------------------------------------------------
# FIFOs and other files that are not regular files


def test_fifo_image_is_refused_without_waiting(tmp_path):
    with fifo(tmp_path / "pipe.png") as path, pytest.raises(ImageError) as info:
        read_image(path)
    assert str(info.value) == f"{path}: not a regular file (a FIFO, socket or device)"


def test_device_image_is_refused(tmp_path):
    with pytest.raises(ImageError, match="/dev/zero: not a regular file"):
        read_image("/dev/zero")


def test_fifo_archive_and_batch_are_refused(batches_dir, tmp_path):
    with fifo(tmp_path / "cifar-10-python.tar.gz") as path, pytest.raises(DataError) as info:
        load_dataset(path)
    assert str(info.value).startswith(f"{path}: not a regular file")
    (batches_dir / "data_batch_2").unlink()
    with fifo(batches_dir / "data_batch_2") as path, pytest.raises(DataError) as info:
        load_dataset(batches_dir)
    assert str(info.value).startswith(f"{path}: not a regular file")


def test_file_swapped_for_a_fifo_after_the_check_is_refused(batches_dir, monkeypatch):
    """The type is checked on the open file, not only before: a swap cannot make it wait."""
    (batches_dir / "test_batch").unlink()
    monkeypatch.setattr(Path, "is_file", lambda self: True)  # every earlier check passes
    with fifo(batches_dir / "test_batch") as path, pytest.raises(DataError) as info:
        load_dataset(batches_dir)
    assert str(info.value).startswith(f"{path}: not a regular file")


def test_fifo_named_like_an_image_in_a_class_folder_is_not_opened(image_folder):
    with fifo(image_folder / "train" / "cat" / "pipe.png"):
        ds = load_dataset(image_folder)
    assert ds.counts()["train"][3] == 6  # the FIFO is not an image; the other six are


# --------------------------------------------------------------------------------------
# Formats: only in-process raster decoders, never an external program


def test_postscript_named_png_never_starts_ghostscript(tmp_path, monkeypatch):
    import PIL.EpsImagePlugin

    marker = tmp_path / "ghostscript-ran"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "gs"
    fake.write_text(f"#!/bin/sh\ntouch '{marker}'\nexit 0\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(PIL.EpsImagePlugin, "gs_binary", None)  # look for gs afresh
    path = tmp_path / "drawing.png"
    path.write_bytes(EPS)
    with pytest.raises(ImageError) as info:
        read_image(path)
    assert not marker.exists(), "an external program was started for an image"
    assert str(info.value) == (
        f"{path}: the EPS (Encapsulated Postscript) format is not one this app reads "
        "(it reads PNG, JPEG, BMP, GIF, WEBP and TIFF)"
    )


@pytest.mark.parametrize(
    ("fmt", "mode", "name"),
    [
        ("PPM", "RGB", "PPM (Pbmplus image)"),
        ("PPM", "I;16", "PPM (Pbmplus image)"),  # a 16-bit PGM
        ("XBM", "1", "XBM (X11 Bitmap)"),
        ("ICO", "RGB", "ICO (Windows Icon)"),
        ("TGA", "RGB", "TGA (Targa)"),
        ("PCX", "RGB", "PCX (Paintbrush)"),
        ("SGI", "RGB", "SGI (SGI Image File Format)"),
    ],
)
def test_formats_outside_the_list_are_named_and_refused(tmp_path, fmt, mode, name):
    """A real image of a format Pillow opens and this app does not read: not "not an image
    file", but which format it is and which ones the app reads."""
    path = tmp_path / "picture.png"
    Image.new(mode, (32, 32), 1).save(path, fmt)
    with pytest.raises(ImageError) as info:
        read_image(path)
    assert str(info.value) == (
        f"{path}: the {name} format is not one this app reads "
        "(it reads PNG, JPEG, BMP, GIF, WEBP and TIFF)"
    )


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF"])
def test_listed_formats_are_read_whatever_the_name(tmp_path, fmt):
    path = tmp_path / "picture.dat"
    Image.new("RGB", (40, 30), "red").save(path, fmt)
    pixels = read_image(path)
    assert pixels.shape == (32, 32, 3) and pixels[..., 0].mean() > 200


# --------------------------------------------------------------------------------------
# Decompression bombs: every declared size checked before anything that size exists

# Runs the reader in a child whose address space is capped at 1 GiB: where the old code
# allocated 1.5 to 2 GiB for these files, an allocation now ends in MemoryError instead of
# taking the machine's memory, and the refusal must come before any of it.
# The peak is this process's VmHWM (ru_maxrss would include the parent's, from before exec).
CAPPED = """
import re, resource
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from cifar_gui.engine.data.dataset import load_dataset, read_image
from cifar_gui.engine.errors import UserError
try:
    {call}
except UserError as exc:
    print(exc)
    status = open("/proc/self/status").read()
    print(int(re.search(r"VmHWM:\\s*(\\d+) kB", status).group(1)) // 1024, "MiB")
"""


def run_capped(call: str) -> tuple[str, int]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", CAPPED.format(call=call)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 0 and len(lines) == 2, done.stdout + done.stderr
    return lines[0], int(lines[1].split()[0])


@pytest.mark.parametrize("size", [(20_000_000, 1), (1, 20_000_000), (8_100, 8_100)])
def test_pixel_bomb_is_refused_before_decoding(tmp_path, size):
    """A real, decodable 1 x 20,000,000 PNG is 39 kB; each side and the product are bounded."""
    path = tmp_path / "strip.png"
    Image.new("1", size).save(path)  # 1-bit: 2.5 MB in memory here, ~40 kB on disk
    message, peak_mib = run_capped(f"read_image({str(path)!r})")
    assert message.startswith(f"{path}: image too large ({size[0]:,} x {size[1]:,};")
    assert peak_mib < 200


def test_header_only_strip_is_refused_as_too_large(tmp_path):
    path = tmp_path / "header.png"
    path.write_bytes(png_header_only(1, 20_000_000))
    with pytest.raises(ImageError, match=r"header.png: image too large \(1 x 20,000,000"):
        read_image(path)


def test_tiny_pickle_of_a_huge_array_is_refused(batches_dir):
    bomb = {
        b"data": array_bomb((250_000, 3072), "u1"),
        b"labels": array_bomb((250_000,), "i8"),
    }
    raw = pickle.dumps(bomb, protocol=4)
    assert len(raw) < 300
    (batches_dir / "data_batch_1").write_bytes(raw)
    message, peak_mib = run_capped(f"load_dataset({str(batches_dir)!r})")
    assert message.startswith(f"{batches_dir}: batch data_batch_1 is corrupt (declares a ")
    assert "larger than the file" in message
    assert peak_mib < 200


def constructor_bomb(shape: tuple[int, ...], dtype: str) -> object:
    """An object that pickles as a call of ``numpy.ndarray(shape, dtype)``: an array of any
    size that no byte of the file fills (89 bytes ask for 768 MB)."""

    class Bomb:
        def __reduce__(self):
            return (np.ndarray, (shape, dtype))

    return Bomb()


def nested_list(leaf: object, depth: int, width: int = 64) -> list:
    """``width ** depth`` references to ``leaf`` in a few hundred bytes of pickle."""
    out: object = leaf
    for _ in range(depth):
        out = [out] * width
    return out


@pytest.mark.parametrize("where", ["folder", "archive"])
def test_pickled_array_constructor_is_refused_before_allocating(batches_dir, tmp_path, where):
    """A 150-byte batch declaring a (250000, 3072) array was 250,008 "airplanes" (1.5 GiB)."""
    bomb = {
        b"data": constructor_bomb((250_000, 3072), "u1"),
        b"labels": constructor_bomb((250_000,), "i8"),
    }
    raw = pickle.dumps(bomb, protocol=4)
    assert len(raw) < 200
    (batches_dir / "data_batch_1").write_bytes(raw)
    source = batches_dir
    if where == "archive":
        source = tmp_path / "cifar-10-python.tar.gz"
        with tarfile.open(source, "w:gz") as tar:
            tar.add(batches_dir, arcname="cifar-10-batches-py")
    message, peak_mib = run_capped(f"load_dataset({str(source)!r})")
    assert message == (
        f"{source}: batch data_batch_1 is corrupt "
        "(declares an array whose bytes are not in the file)"
    )
    assert peak_mib < 200


@pytest.mark.parametrize(
    "batch, message",
    [
        ({b"data": nested_list(0, 4), b"labels": [0]}, "data is a list, not an array"),
        ({b"data": np.zeros((2, 3000), np.uint8), b"labels": [0, 0]}, "data of shape (2, 3000)"),
        ({b"data": np.zeros((1, 3072), np.uint8), b"labels": [0] * 10_001}, "10,001 labels"),
        ({b"data": np.zeros((1, 3072), np.uint8)}, "not a dict of data and labels"),
    ],
    ids=["nested-list-data", "not-3072-bytes", "too-many-labels", "no-labels"],
)
def test_batch_arrays_are_checked_before_conversion(batches_dir, batch, message):
    """A list as data would be expanded by np.asarray: 64**4 references, 16 M elements."""
    (batches_dir / "data_batch_3").write_bytes(pickle.dumps(batch, protocol=4))
    with pytest.raises(DataError, match=r"data_batch_3 is corrupt \(") as info:
        load_dataset(batches_dir)
    assert message in str(info.value)


def test_nested_labels_are_refused_without_expanding(batches_dir):
    labels = nested_list(0, 5)  # 20 x 64**4 = 335 M labels (2.7 GB), a few hundred bytes
    write_batch(batches_dir, "data_batch_2", [0] * 20)
    batch = pickle.loads((batches_dir / "data_batch_2").read_bytes())
    (batches_dir / "data_batch_2").write_bytes(pickle.dumps({**batch, b"labels": labels[:20]}))
    message, peak_mib = run_capped(f"load_dataset({str(batches_dir)!r})")
    assert message == f"{batches_dir}: batch data_batch_2: labels are not a list of whole numbers"
    assert peak_mib < 200


def test_meta_names_that_are_not_strings_give_the_cifar_names(batches_dir):
    """str() of a nested list expands every reference: such names are not used."""
    (batches_dir / "batches.meta").write_bytes(
        pickle.dumps({b"label_names": nested_list(b"x", 3)[:10]})
    )
    assert load_dataset(batches_dir).class_names == cifar_batches.CIFAR10_CLASSES


def test_pickled_arrays_of_python_objects_are_refused(batches_dir):
    x, y = synthetic_images(20, seed=0)
    data_obj = x.transpose(0, 3, 1, 2).reshape(20, -1).astype(object)
    raw = pickle.dumps({b"data": data_obj, b"labels": list(y)}, protocol=4)
    (batches_dir / "data_batch_1").write_bytes(raw)
    with pytest.raises(DataError, match=r"data_batch_1 is corrupt.*Python objects"):
        load_dataset(batches_dir)


def test_oversized_batch_file_is_refused_before_reading(batches_dir, monkeypatch):
    monkeypatch.setattr(cifar_batches, "MAX_BATCH_BYTES", 1000)
    with pytest.raises(DataError, match=r"data_batch_1: file too large \(61,"):
        load_dataset(batches_dir)


def test_archive_member_declaring_gigabytes_is_refused(tmp_path):
    path = tar_of_headers(tmp_path / "a.tar.gz", [(tar_member("b/data_batch_1", 8 << 30), None)])
    with pytest.raises(DataError, match=r"a.tar.gz: not a CIFAR-10 archive: member "):
        load_dataset(path)
    with pytest.raises(DataError, match=r"too large \(8,589,934,592 bytes"):
        load_dataset(path)


def test_archive_members_too_large_together_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(cifar_batches, "MAX_ARCHIVE_BYTES", 1500)
    members = [(tar_member(f"b/file{i}", 600), b"x" * 600) for i in range(3)]
    path = tar_of_headers(tmp_path / "a.tar.gz", members)
    with pytest.raises(DataError, match=r"member b/file2 too large .* 1,500 in all"):
        load_dataset(path)


def test_archive_of_too_many_members_is_refused(tmp_path):
    path = tar_of_headers(tmp_path / "a.tar.gz", [(tar_member(f"f{i}"), b"") for i in range(100)])
    with pytest.raises(DataError, match="not a CIFAR-10 archive: more than 64 members"):
        load_dataset(path)


@pytest.mark.parametrize(
    "kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE, tarfile.CHRTYPE]
)
def test_archive_members_must_be_regular_files(tmp_path, kind):
    link = tar_member("cifar-10-batches-py/data_batch_1", kind=kind)
    link.linkname = "/etc/passwd"
    path = tar_of_headers(tmp_path / "a.tar.gz", [(link, None)])
    with pytest.raises(
        DataError, match="member cifar-10-batches-py/data_batch_1 is not a regular file"
    ):
        load_dataset(path)


@pytest.mark.parametrize("kind", [tarfile.XHDTYPE, tarfile.GNUTYPE_LONGNAME])
def test_archive_header_declaring_gigabytes_is_refused(tmp_path, kind):
    """tarfile reads a pax header or long name whole: its size is checked first."""
    path = tar_of_headers(tmp_path / "a.tar.gz", [(tar_member("././@Header", 2 << 30, kind), None)])
    with pytest.raises(DataError, match=r"a tar header of 2,147,483,648 bytes"):
        load_dataset(path)


def test_good_archive_still_loads(archive_path, batches_dir):
    np.testing.assert_array_equal(
        load_dataset(archive_path).x_train, load_dataset(batches_dir).x_train
    )


# --------------------------------------------------------------------------------------
# Labels of a batch


def write_batch(folder: Path, name: str, labels) -> None:
    x, _ = synthetic_images(len(labels), seed=3)
    flat = x.transpose(0, 3, 1, 2).reshape(len(labels), -1)
    (folder / name).write_bytes(pickle.dumps({b"data": flat, b"labels": labels}))


@pytest.mark.parametrize(
    "labels, message",
    [
        ([-1] * 20, "batch data_batch_2 has label -1 but only 10 class names"),
        ([3] * 19 + [10], "batch data_batch_2 has label 10 but only 10 class names"),
        (np.full(20, -1, np.int8), "has label -1"),
        (np.full(20, 2**63, np.uint64), "has label 9223372036854775808"),
        ([0.5] * 20, "data_batch_2: labels are not a list of whole numbers"),
        ([True] * 20, "labels are not a list of whole numbers"),
        ([[1, 2]] * 10, "labels are not a list of whole numbers"),
    ],
    ids=["minus-one", "ten", "int8-minus-one", "uint64-huge", "float", "bool", "2-d"],
)
def test_labels_are_whole_numbers_in_range(batches_dir, labels, message):
    write_batch(batches_dir, "data_batch_2", labels)
    with pytest.raises(DataError, match=message):
        load_dataset(batches_dir)


def test_labels_of_a_shorter_class_list_are_checked_against_it(batches_dir):
    names = [b"cat", b"dog", b"horse"]
    (batches_dir / "batches.meta").write_bytes(pickle.dumps({b"label_names": names}))
    for name in (*cifar_batches.TRAIN_BATCHES, "test_batch"):
        write_batch(batches_dir, name, [0, 1, 2, 1])
    assert load_dataset(batches_dir).class_names == ("cat", "dog", "horse")
    write_batch(batches_dir, "test_batch", [0, 1, 3, 1])
    with pytest.raises(DataError, match="test_batch has label 3 but only 3 class names"):
        load_dataset(batches_dir)


# --------------------------------------------------------------------------------------
# Class names and indices


DIGIT_FOLDERS = ("10", "2", "3")  # sorted as the image-folder loader sorts them


def test_folder_names_that_are_digits_are_names():
    assert resolve_classes(["2", "10"], DIGIT_FOLDERS) == (1, 0)
    assert resolve_classes(["3", "2"], DIGIT_FOLDERS) == (2, 1)
    # Not a name: an ASCII whole number is an index (ints always are).
    assert resolve_classes(["0", 2], DIGIT_FOLDERS) == (0, 2)
    assert resolve_classes(["deer", "7"], cifar_batches.CIFAR10_CLASSES) == (4, 7)
    assert resolve_classes(["04", " horse "], cifar_batches.CIFAR10_CLASSES) == (4, 7)


@pytest.mark.parametrize("bad", ["²", "٣", "-1", "1.0", "+1", "", "deer horse"])
def test_anything_else_is_a_clear_error_listing_the_classes(bad):
    with pytest.raises(DataError) as info:
        resolve_classes(["deer", bad], cifar_batches.CIFAR10_CLASSES)
    assert str(info.value).startswith(f"unknown class {bad.strip()!r}")
    assert str(info.value).endswith(
        ": choose from airplane, automobile, bird, cat, deer, dog, "
        "frog, horse, ship, truck (or an index 0 to 9)"
    )


def test_index_out_of_range_lists_the_classes():
    with pytest.raises(
        DataError, match=r"class index 5 out of range: choose from 10, 2, 3 \(or an index 0 to 2\)"
    ):
        resolve_classes(["2", "5"], DIGIT_FOLDERS)
    with pytest.raises(DataError, match="class index -1 out of range"):
        resolve_classes([0, -1], DIGIT_FOLDERS)


def test_digit_class_folders_train_on_the_named_folders(tmp_path):
    root = tmp_path / "digits"
    for split in ("train", "test"):
        for i, name in enumerate(DIGIT_FOLDERS):
            (root / split / name).mkdir(parents=True)
            Image.new("RGB", (32, 32), (80 * i, 0, 0)).save(root / split / name / "a.png")
    subset = data.select_classes(load_dataset(root), ["2", "10"])
    assert subset.class_names == ("2", "10")
    red = dict(zip(subset.y_train.tolist(), subset.x_train[:, 0, 0, 0].tolist(), strict=True))
    assert red == {0: 80, 1: 0}  # the pixels of folders 2 and 10


# --------------------------------------------------------------------------------------
# The image-folder cache


def rewrite_in_place(path: Path, payload: bytes) -> None:
    """Change a file's bytes without touching its folder (no new directory entry)."""
    with open(path, "r+b") as f:
        f.truncate(0)
        f.write(payload)


def test_cache_sees_an_image_rewritten_in_place(image_folder):
    target = image_folder / "train" / "airplane" / "0000.png"
    before = load_dataset(image_folder)
    assert before.x_train[0, 0, 0, 0] != 255
    folder_mtime = target.parent.stat().st_mtime_ns
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (255, 255, 255)).save(buffer, "PNG")
    rewrite_in_place(target, buffer.getvalue())
    assert target.parent.stat().st_mtime_ns == folder_mtime  # the old key could not see it
    after = load_dataset(image_folder)
    assert after.x_train[0].min() == 255


def test_cache_sees_an_image_cut_short(image_folder):
    target = image_folder / "train" / "airplane" / "0000.png"
    load_dataset(image_folder)
    rewrite_in_place(target, target.read_bytes()[:60])
    with pytest.raises(DataError, match=r"0000\.png: unreadable image"):
        load_dataset(image_folder)


def test_cache_sees_a_rewrite_that_restores_the_mtime(image_folder):
    target = image_folder / "train" / "airplane" / "0000.png"
    load_dataset(image_folder)
    st = target.stat()
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (255, 255, 255)).save(buffer, "PNG")
    # The kernel's file clock ticks every few ms: rewrite until the ctime shows the change.
    while target.stat().st_ctime_ns == st.st_ctime_ns:
        rewrite_in_place(target, buffer.getvalue().ljust(st.st_size, b"\0")[: st.st_size])
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))  # as cp -p or touch -r would
    assert (target.stat().st_size, target.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    after = load_dataset(image_folder)
    assert after.x_train[0].min() == 255


def test_cache_key_stats_only(image_folder, monkeypatch):
    """A cached load reads no image: the key is made of stat results."""
    load_dataset(image_folder)
    opened = []
    real_open = os.open

    def watch(path, *args, **kwargs):
        opened.append(os.fspath(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", watch)
    load_dataset(image_folder)
    assert not [p for p in opened if p.endswith(".png")], opened


def test_cache_write_leaves_no_partial_file(image_folder, tmp_path, monkeypatch):
    cache = tmp_path / "cache"

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", disk_full)
    ds = load_dataset(image_folder, cache_dir=cache)
    assert ds.x_train.shape == (60, 32, 32, 3)
    assert list(cache.iterdir()) == []


def test_cache_keeps_one_file_per_folder(image_folder, tmp_path):
    cache = tmp_path / "cache"
    load_dataset(image_folder, cache_dir=cache)
    Image.new("RGB", (32, 32)).save(image_folder / "train" / "cat" / "new.png")
    load_dataset(image_folder, cache_dir=cache)
    assert len(list(cache.iterdir())) == 1


def test_cache_of_another_shape_is_not_trusted(image_folder, tmp_path):
    """A cache file whose arrays do not fit the folder is rebuilt, not loaded."""
    cache = tmp_path / "cache"
    first = load_dataset(image_folder, cache_dir=cache)
    [path] = cache.iterdir()
    np.savez(path, x_train=np.zeros((5, 32, 32, 3), np.uint8), x_test=first.x_test)
    again = load_dataset(image_folder, cache_dir=cache)
    np.testing.assert_array_equal(again.x_train, first.x_train)


def test_cache_that_cannot_hold_its_pixels_is_not_read(image_folder, tmp_path, monkeypatch):
    """A cache member's stored size is checked before its pixels are allocated."""
    cache = tmp_path / "cache"
    first = load_dataset(image_folder, cache_dir=cache)
    [path] = cache.iterdir()
    with zipfile.ZipFile(path, "w") as archive:  # the headers of the real arrays, no pixels
        for split, x in (("train", first.x_train), ("test", first.x_test)):
            header = io.BytesIO()
            np.lib.format.write_array_header_1_0(
                header, np.lib.format.header_data_from_array_1_0(x)
            )
            archive.writestr(f"x_{split}.npy", header.getvalue())
    allocated = []
    monkeypatch.setattr(data, "_read_npy", lambda *a: allocated.append(a) or None)
    monkeypatch.setattr(data, "_decode_all", lambda files: np.zeros((len(files), 32, 32, 3)))
    load_dataset(image_folder, cache_dir=cache)
    assert allocated == []


def test_batches_written_by_the_fixture_still_load(tmp_path):
    folder = write_cifar_batches(tmp_path / "b")
    assert load_dataset(folder).x_train.shape == (100, 32, 32, 3)
