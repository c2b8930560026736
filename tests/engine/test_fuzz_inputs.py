"""Bad input, tried for real: broken images, data sets and model files through the loaders,
the predictor and the command line.

Every bad case must end in exactly one ``error: ...`` line on stderr and exit code 2 from
``cifar_gui.cli.main``: no traceback, no crash, no hang. Unusual but valid files (other
modes, sizes, extensions that lie) must simply work (exit 0). The number of cases is
printed by ``test_case_count`` and reported in the README.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import pickle
import shutil
import struct
import tarfile
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
from PIL import Image

from cifar_gui.cli import main
from cifar_gui.engine.data.dataset import read_image
from cifar_gui.engine.errors import UserError
from cifar_gui.engine.models.persistence import save_model
from cifar_gui.engine.record import RunRecord
from tests.conftest import synthetic_images, write_cifar_batches

GOOD_PNG = "good.png"
# The CLI silences PIL's bomb warning at import; pytest resets warning filters per test.
pytestmark = pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")


@dataclass(frozen=True)
class Case:
    """One input: the command line that feeds it, what the error must mention (None: must
    work)."""

    name: str
    argv: Callable[[Path], list[str]]
    message: str | None


def png_bytes(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims a size and whose pixels are missing (a bomb costs nothing)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


@contextlib.contextmanager
def fifo(path: Path) -> Iterator[Path]:
    """A FIFO that a helper thread keeps opening for writing (and closing at once).

    A reader that opens it blocking is released with an empty read instead of waiting forever,
    so code that wrongly opens a FIFO fails its test rather than hanging it.
    """
    os.mkfifo(path)
    stop = threading.Event()

    def feed() -> None:
        while not stop.is_set():
            os.close(os.open(path, os.O_WRONLY))  # returns once some reader has opened it

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    try:
        yield path
    finally:
        stop.set()
        while thread.is_alive():  # release a writer waiting in open; it then sees stop
            os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
            thread.join(0.05)


EPS = b"""%!PS-Adobe-3.0 EPSF-3.0
%%BoundingBox: 0 0 32 32
%%EndComments
(forged line in the output) print flush
{ } loop
"""


def tar_of_headers(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    """A gzipped tar of raw headers: a member's data may be left out (its size is a claim)."""
    buffer = io.BytesIO()
    for info, payload in members:
        buffer.write(info.tobuf(format=tarfile.GNU_FORMAT))
        if payload is not None:
            buffer.write(payload + b"\0" * (-len(payload) % 512))
    buffer.write(b"\0" * 1024)
    path.write_bytes(gzip.compress(buffer.getvalue()))
    return path


def tar_member(name: str, size: int = 0, kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.type = size, kind
    return info


def array_bomb(shape: tuple[int, ...], dtype: str) -> object:
    """An object that pickles as numpy's array constructor asked for ``shape`` up front."""
    reconstruct = np.ndarray.__reduce__(np.zeros(1))[0]

    class Bomb:
        def __reduce__(self):
            return (reconstruct, (np.ndarray, shape, np.dtype(dtype)))

    return Bomb()


def bomb_png(width: int, height: int) -> bytes:
    """A real, fully decodable PNG of a huge size that compresses to almost nothing."""
    return png_bytes(Image.new("1", (width, height)), optimize=False)


# --------------------------------------------------------------------------------------
# Files


def write_images(root: Path) -> None:
    root.mkdir(parents=True)
    x, _ = synthetic_images(1, seed=0)
    rgb = Image.fromarray(x[0])
    good = png_bytes(rgb)
    jpeg = png_bytes(rgb, "JPEG")
    files = {
        GOOD_PNG: good,
        "empty.png": b"",
        "truncated.png": good[: len(good) // 2],
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "random.png": np.random.default_rng(1).bytes(3000),
        "random.jpg": b"\xff\xd8\xff" + np.random.default_rng(2).bytes(3000),
        "text.png": b"this is a text file, not a picture\n",
        "bomb.png": png_header_only(40_000, 40_000),
        "bomb_decodable.png": bomb_png(9_000, 9_000),
        "header_only.png": png_header_only(64, 64),
        # Valid files in unusual modes and formats: these must be classified.
        "jpeg_named.png": jpeg,
        "png_named.jpg": good,
        "cmyk.jpg": png_bytes(rgb.convert("CMYK"), "JPEG"),
        "grey16.png": png_bytes(Image.fromarray(x[0, ..., 0].astype(np.uint16) * 257)),
        "grey_alpha.png": png_bytes(rgb.convert("LA")),
        "palette_transparent.png": png_bytes(rgb.convert("P"), transparency=0),
        "one_bit.png": png_bytes(rgb.convert("1")),
        "float.tif": png_bytes(rgb.convert("F"), "TIFF"),
        "large.bmp": png_bytes(rgb.resize((1000, 700)), "BMP"),
        "tiny.gif": png_bytes(rgb.resize((3, 2)), "GIF"),
        "animated.gif": png_bytes(rgb, "GIF", save_all=True, append_images=[rgb.rotate(90)]),
        "rgba.webp": png_bytes(rgb.convert("RGBA"), "WEBP"),
        "eps_named.png": EPS,
        "ppm_named.png": png_bytes(rgb, "PPM"),
        "strip_wide.png": png_header_only(20_000_000, 1),
        "strip_tall.png": png_header_only(1, 20_000_000),
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    (root / "folder.png").mkdir()


def tiny_model(input_shape=(32, 32, 3), units: int = 1, conv_output: bool = False):
    layers = [keras.Input(input_shape), keras.layers.Conv2D(2, 3)]
    if not conv_output:
        layers += [
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(units, activation="sigmoid" if units == 1 else "softmax"),
        ]
    return keras.Sequential(layers)


def write_models(root: Path) -> None:
    root.mkdir(parents=True)
    two = RunRecord(class_names=("deer", "horse"))
    save_model(tiny_model(), root / "good.h5", two)
    save_model(tiny_model((64, 64, 3)), root / "input64.h5", two)
    save_model(tiny_model((32, 32, 1)), root / "grey_input.h5", two)
    save_model(tiny_model(units=10), root / "ten_classes_two_names.h5", two)
    save_model(tiny_model(units=10), root / "ten_classes.keras", None)
    save_model(tiny_model(conv_output=True), root / "conv_output.h5", None)
    linear = tiny_model()
    linear.layers[-1].activation = keras.activations.linear
    save_model(linear, root / "linear_output.h5", two)
    dense = keras.Sequential([keras.Input((10,)), keras.layers.Dense(1)])
    save_model(dense, root / "vector_input.h5", None)
    good = (root / "good.h5").read_bytes()
    (root / "empty.h5").write_bytes(b"")
    (root / "random.h5").write_bytes(np.random.default_rng(3).bytes(5000))
    (root / "truncated.h5").write_bytes(good[: len(good) // 2])
    (root / "text.keras").write_text("not a zip")
    with h5py.File(root / "numbers.h5", "w") as f:
        f["x"] = np.arange(10)
    with zipfile.ZipFile(root / "empty_zip.keras", "w") as z:
        z.writestr("readme.txt", "no model here")
    (root / "folder.h5").mkdir()
    shutil.copy(root / "good.h5", root / "broken_sidecar.h5")
    (root / "broken_sidecar.json").write_text("{not json")


def batch_bytes(n: int, labels=None, data_len: int | None = None) -> bytes:
    x, y = synthetic_images(n, seed=5)
    data = x.transpose(0, 3, 1, 2).reshape(n, -1)
    if data_len is not None:
        data = data.reshape(-1)[:data_len]
    return pickle.dumps({b"data": data, b"labels": list(y) if labels is None else labels})


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def write_data(root: Path) -> None:
    good = write_cifar_batches(root / "good" / "cifar-10-batches-py")

    def variant(name: str, change: Callable[[Path], None]) -> None:
        folder = root / name / "cifar-10-batches-py"
        shutil.copytree(good, folder)
        change(folder)

    variant("missing_batch", lambda f: (f / "data_batch_3").unlink())
    variant("missing_test", lambda f: (f / "test_batch").unlink())
    variant("random_batch", lambda f: (f / "data_batch_2").write_bytes(os.urandom(4000)))
    variant("evil_pickle", lambda f: (f / "data_batch_1").write_bytes(pickle.dumps(Evil())))
    variant("label_count", lambda f: (f / "data_batch_1").write_bytes(batch_bytes(20, [1, 2])))
    variant("label_range", lambda f: (f / "data_batch_4").write_bytes(batch_bytes(20, [12] * 20)))
    variant("data_size", lambda f: (f / "data_batch_5").write_bytes(batch_bytes(20, None, 1000)))
    variant("not_a_dict", lambda f: (f / "test_batch").write_bytes(pickle.dumps([1, 2, 3])))
    variant("broken_meta", lambda f: (f / "batches.meta").write_bytes(b"garbage"))
    variant(
        "label_minus_one", lambda f: (f / "data_batch_2").write_bytes(batch_bytes(20, [-1] * 20))
    )
    variant("label_float", lambda f: (f / "test_batch").write_bytes(batch_bytes(20, [0.5] * 20)))
    bomb = {b"data": array_bomb((50_000, 3072), "u1"), b"labels": array_bomb((50_000,), "i8")}
    variant("array_bomb", lambda f: (f / "data_batch_3").write_bytes(pickle.dumps(bomb, 4)))
    objects = {b"data": np.zeros((2, 3072), object), b"labels": [0, 1]}
    variant("object_array", lambda f: (f / "data_batch_1").write_bytes(pickle.dumps(objects)))
    variant("fifo_batch", lambda f: (f / "data_batch_4").unlink())

    archive = root / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(good, arcname="cifar-10-batches-py")
    raw = archive.read_bytes()
    (root / "truncated.tar.gz").write_bytes(raw[: len(raw) // 2])
    (root / "empty.tar.gz").write_bytes(b"")
    (root / "random.tar.gz").write_bytes(os.urandom(5000))
    partial = root / "partial.tar.gz"
    with tarfile.open(partial, "w:gz") as tar:
        for name in ("data_batch_1", "data_batch_2", "test_batch"):
            tar.add(good / name, arcname=f"cifar-10-batches-py/{name}")
    huge = tar_member("cifar-10-batches-py/data_batch_1", 8 << 30)
    tar_of_headers(root / "huge_member.tar.gz", [(huge, None)])
    many = [(tar_member(f"cifar-10-batches-py/f{i}"), b"") for i in range(100)]
    tar_of_headers(root / "many_members.tar.gz", many)
    link = tar_member("cifar-10-batches-py/data_batch_1", kind=tarfile.SYMTYPE)
    link.linkname = "/etc/passwd"
    tar_of_headers(root / "symlink_member.tar.gz", [(link, None)])
    pax = tar_member("././@PaxHeader", 2 << 30, tarfile.XHDTYPE)
    tar_of_headers(root / "pax_bomb.tar.gz", [(pax, None)])
    (root / "picture.png").write_bytes(png_bytes(Image.new("RGB", (32, 32))))
    (root / "neither").mkdir()

    folders = root / "folders"
    x, _ = synthetic_images(8, seed=6)

    def image_folder(name: str, classes=("deer", "horse"), per_class: int = 4) -> Path:
        top = folders / name
        for split in ("train", "test"):
            for c in classes:
                (top / split / c).mkdir(parents=True)
                for i in range(per_class):
                    Image.fromarray(x[i]).save(top / split / c / f"{i}.png")
        return top

    stray = image_folder("stray_files")
    (stray / "train" / "deer" / ".DS_Store").write_bytes(os.urandom(100))
    (stray / "train" / "horse" / "notes.txt").write_text("hello")
    (stray / "train" / "README").write_text("a stray file beside the class folders")
    (stray / "test" / "Thumbs.db").write_bytes(os.urandom(100))
    empty_class = image_folder("empty_class")
    (empty_class / "train" / "cat").mkdir()
    (empty_class / "test" / "cat").mkdir()
    no_test = image_folder("no_test_images")
    for f in (no_test / "test").rglob("*.png"):
        f.unlink()
    mislabeled = image_folder("text_named_png")
    (mislabeled / "train" / "deer" / "9.png").write_text("not an image")
    truncated = image_folder("truncated_png")
    data = (truncated / "train" / "horse" / "0.png").read_bytes()
    (truncated / "train" / "horse" / "0.png").write_bytes(data[:60])
    bomb = image_folder("bomb_image")
    (bomb / "test" / "deer" / "big.png").write_bytes(png_header_only(40_000, 40_000))
    strip = image_folder("strip_image")
    (strip / "train" / "horse" / "strip.png").write_bytes(png_header_only(1, 20_000_000))
    eps = image_folder("eps_image")
    (eps / "train" / "deer" / "drawing.png").write_bytes(EPS)
    image_folder("fifo_image")
    image_folder("digit_classes", classes=("2", "3", "10"))
    unknown = image_folder("test_class_unknown")
    (unknown / "test" / "unicorn").mkdir()
    (folders / "no_classes" / "train").mkdir(parents=True)
    (folders / "no_classes" / "test").mkdir(parents=True)
    no_images = image_folder("no_images", per_class=0)
    assert no_images.is_dir()


def write_checkpoints(root: Path) -> None:
    folder = root / "garbage_state" / "checkpoints" / "cifar10_4_7"
    folder.mkdir(parents=True)
    (folder / "state.json").write_text("{garbage")
    truncated = root / "truncated_keras" / "checkpoints" / "cifar10_4_7"
    truncated.mkdir(parents=True)
    (truncated / "epoch-0001.keras").write_bytes(b"PK\x03\x04 cut short")
    state = {
        "config": {"epochs": 3, "data": str(root.parent / "data" / "good")},
        "checkpoint": "epoch-0001.keras",
        "epochs_completed": 1,
        "steps_per_epoch": 1,
        "batches_seen": 1,
        "history": {"loss": [0.7]},
        "class_names": ["deer", "horse"],
    }
    (truncated / "state.json").write_text(json.dumps(state))


FIFOS = (
    "images/pipe.png",
    "data/pipe.tar.gz",
    "data/fifo_batch/cifar-10-batches-py/data_batch_4",
    "data/folders/fifo_image/train/deer/pipe.png",
)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Iterator[Path]:
    top = tmp_path_factory.mktemp("fuzz")
    write_images(top / "images")
    write_models(top / "models")
    write_data(top / "data")
    write_checkpoints(top / "runs")
    with contextlib.ExitStack() as stack:
        for name in FIFOS:
            stack.enter_context(fifo(top / name))
        yield top


# --------------------------------------------------------------------------------------
# Cases


def predict(image: str, model: str = "good.h5") -> Callable[[Path], list[str]]:
    return lambda r: ["predict", str(r / "models" / model), str(r / "images" / image)]


def data(source: str) -> Callable[[Path], list[str]]:
    return lambda r: ["data", "--data", str(r / "data" / source)]


def train(source: str, *extra: str) -> Callable[[Path], list[str]]:
    return lambda r: [
        "train",
        "--data",
        str(r / "data" / source),
        "--epochs",
        "1",
        "--out",
        str(r / "out"),
        *extra,
    ]


def evaluate(model: str, *extra: str) -> Callable[[Path], list[str]]:
    return lambda r: [
        "evaluate",
        str(r / "models" / model),
        "--data",
        str(r / "data" / "good"),
        *extra,
    ]


def resume(run: str) -> Callable[[Path], list[str]]:
    return lambda r: ["train", "--resume", str(r / "runs" / run)]


CASES = [
    # Images given to the predictor.
    Case("empty image", predict("empty.png"), "empty.png: not an image file"),
    Case("truncated PNG", predict("truncated.png"), "truncated.png: unreadable image"),
    Case("truncated JPEG", predict("truncated.jpg"), "truncated.jpg: unreadable image"),
    Case("random bytes .png", predict("random.png"), "random.png: not an image file"),
    Case("random bytes after a JPEG marker", predict("random.jpg"), "random.jpg"),
    Case("text file named .png", predict("text.png"), "text.png: not an image file"),
    Case("decompression bomb header", predict("bomb.png"), "bomb.png: image too large"),
    Case("decodable 81-megapixel PNG", predict("bomb_decodable.png"), "image too large"),
    Case("PNG header without pixels", predict("header_only.png"), "header_only.png"),
    Case("missing image", predict("nope.png"), "nope.png: no such file"),
    Case("folder as image", predict("folder.png"), "folder.png: is a folder"),
    Case("JPEG named .png", predict("jpeg_named.png"), None),
    Case("PNG named .jpg", predict("png_named.jpg"), None),
    Case("CMYK JPEG", predict("cmyk.jpg"), None),
    Case("16-bit grey PNG", predict("grey16.png"), None),
    Case("grey + alpha PNG", predict("grey_alpha.png"), None),
    Case("palette PNG with transparency", predict("palette_transparent.png"), None),
    Case("1-bit PNG", predict("one_bit.png"), None),
    Case("32-bit float TIFF", predict("float.tif"), None),
    Case("1000x700 BMP", predict("large.bmp"), None),
    Case("3x2 GIF", predict("tiny.gif"), None),
    Case("animated GIF", predict("animated.gif"), None),
    Case("RGBA WebP", predict("rgba.webp"), None),
    Case("FIFO as image", predict("pipe.png"), "pipe.png: not a regular file"),
    Case("device as image", lambda r: [*predict(GOOD_PNG)(r)[:2], "/dev/zero"], "not a regular"),
    Case("PostScript named .png", predict("eps_named.png"), "eps_named.png: the EPS "),
    Case("PPM named .png (not a listed format)", predict("ppm_named.png"), "the PPM (Pbmplus"),
    Case("1 x 20,000,000 PNG", predict("strip_tall.png"), "strip_tall.png: image too large"),
    Case("20,000,000 x 1 PNG", predict("strip_wide.png"), "strip_wide.png: image too large"),
    Case("linear-output model predicts", predict(GOOD_PNG, "linear_output.h5"), None),
    # Model files given to the predictor and the evaluator.
    Case("empty .h5", predict(GOOD_PNG, "empty.h5"), "empty.h5: not a loadable Keras model"),
    Case("random .h5", predict(GOOD_PNG, "random.h5"), "random.h5: not a loadable Keras model"),
    Case("truncated .h5", predict(GOOD_PNG, "truncated.h5"), "not a loadable Keras model"),
    Case("HDF5 without a model", predict(GOOD_PNG, "numbers.h5"), "not a loadable Keras model"),
    Case("text named .keras", predict(GOOD_PNG, "text.keras"), "not a loadable Keras model"),
    Case("zip without a model", predict(GOOD_PNG, "empty_zip.keras"), "not a loadable"),
    Case("missing model", predict(GOOD_PNG, "nope.h5"), "nope.h5: no such model file"),
    Case("folder as model", predict(GOOD_PNG, "folder.h5"), "folder.h5"),
    Case("model of vectors", predict(GOOD_PNG, "vector_input.h5"), "is not an image"),
    Case("model with a map output", predict(GOOD_PNG, "conv_output.h5"), "not a classifier"),
    Case("grey-input model, colour image", predict(GOOD_PNG, "grey_input.h5"), "1-channel"),
    Case("10 outputs, 2 class names", predict(GOOD_PNG, "ten_classes_two_names.h5"), "10"),
    Case("model of 64x64 images predicts", predict(GOOD_PNG, "input64.h5"), None),
    Case("10-class model, no sidecar", predict(GOOD_PNG, "ten_classes.keras"), None),
    Case("broken sidecar ignored", predict(GOOD_PNG, "broken_sidecar.h5"), None),
    Case("evaluate a 64x64 model on CIFAR", evaluate("input64.h5"), "takes (64, 64, 3) images"),
    Case("evaluate a grey model on CIFAR", evaluate("grey_input.h5"), "takes (32, 32, 1) images"),
    Case(
        "evaluate 10 classes on 2",
        evaluate("ten_classes.keras", "--classes", "deer", "horse"),
        "10 classes",
    ),
    Case("evaluate a map-output model", evaluate("conv_output.h5"), "not a classifier"),
    # Data sets.
    Case("archive missing batches", data("partial.tar.gz"), "batch data_batch_3 is missing"),
    Case("batch folder missing a batch", data("missing_batch"), "batch data_batch_3 is missing"),
    Case("batch folder without test_batch", data("missing_test"), "not a CIFAR-10 archive"),
    Case("random-byte batch", data("random_batch"), "batch data_batch_2 is corrupt"),
    Case("pickle that runs code", data("evil_pickle"), "batch data_batch_1 is corrupt"),
    Case("labels fewer than images", data("label_count"), "20 images but 2 labels"),
    Case("label out of range", data("label_range"), "label 12 but only 10 class names"),
    Case("pixel data of the wrong size", data("data_size"), "batch data_batch_5 is corrupt"),
    Case("batch that is a list", data("not_a_dict"), "batch test_batch is corrupt"),
    Case("broken batches.meta", data("broken_meta"), None),
    Case("label -1", data("label_minus_one"), "data_batch_2 has label -1 but only 10"),
    Case("labels not whole numbers", data("label_float"), "labels are not a list of whole"),
    Case("tiny pickle of a huge array", data("array_bomb"), "larger than the file"),
    Case("pickled array of objects", data("object_array"), "arrays of Python objects"),
    Case("FIFO as a batch", data("fifo_batch"), "data_batch_4: not a regular file"),
    Case("FIFO as archive", data("pipe.tar.gz"), "pipe.tar.gz: not a regular file"),
    Case("archive member of 8 GiB", data("huge_member.tar.gz"), "data_batch_1 too large"),
    Case("archive of 100 members", data("many_members.tar.gz"), "more than 64 members"),
    Case("archive symlink member", data("symlink_member.tar.gz"), "is not a regular file"),
    Case("archive pax header of 2 GiB", data("pax_bomb.tar.gz"), "a tar header of 2,147"),
    Case("truncated archive", data("truncated.tar.gz"), "truncated.tar.gz"),
    Case("empty archive", data("empty.tar.gz"), "empty.tar.gz: not a readable"),
    Case("random-byte archive", data("random.tar.gz"), "random.tar.gz: not a readable"),
    Case("picture as data set", data("picture.png"), "picture.png: not a readable"),
    Case("folder of nothing", data("neither"), "not a CIFAR-10 archive, batches folder"),
    Case("missing data set", data("nope"), "nope: no such file or folder"),
    Case("image folder, stray files", data("folders/stray_files"), None),
    Case("image folder, empty class listed", data("folders/empty_class"), None),
    Case(
        "train on an empty class",
        train("folders/empty_class", "--classes", "cat", "deer"),
        "no training images",
    ),
    Case("image folder, no test images", train("folders/no_test_images", "--limit", "4"), None),
    Case("text named .png in a class", data("folders/text_named_png"), "9.png: not an image file"),
    Case("truncated PNG in a class", data("folders/truncated_png"), "0.png"),
    Case("bomb in a class", data("folders/bomb_image"), "big.png: image too large"),
    Case("1 x 20,000,000 PNG in a class", data("folders/strip_image"), "strip.png: image too"),
    Case("PostScript in a class", data("folders/eps_image"), "drawing.png: the EPS "),
    Case("image folder, FIFO named .png", data("folders/fifo_image"), None),
    Case(
        "class folders named 2, 3, 10",
        train("folders/digit_classes", "--classes", "2", "10", "--limit", "4"),
        None,
    ),
    Case("test class not in train", data("folders/test_class_unknown"), "unicorn"),
    Case("no class folders", data("folders/no_classes"), "no class folders"),
    Case("class folders without images", data("folders/no_images"), "no image files"),
    # Training options that point at bad things.
    Case("unknown class", train("good", "--classes", "deer", "unicorn"), "unknown class 'unicorn'"),
    Case("class twice", train("good", "--classes", "deer", "4"), "chosen twice"),
    Case("superscript digit class", train("good", "--classes", "deer", "²"), "unknown class '²'"),
    Case("class index 12", train("good", "--classes", "deer", "12"), "class index 12 out of"),
    Case("one class", train("good", "--classes", "deer"), "at least two classes"),
    Case("limit 0", train("good", "--limit", "0"), "limit must be at least 1"),
    Case(
        "finetune from a text file",
        lambda r: [
            *train("good", "--variant", "finetune")(r),
            "--from",
            str(r / "models" / "text.keras"),
        ],
        "not a loadable Keras model",
    ),
    Case(
        "transfer base from a random file",
        lambda r: [
            *train("good", "--variant", "transfer")(r),
            "--base",
            str(r / "models" / "random.h5"),
        ],
        "not a loadable Keras model",
    ),
    Case(
        "transfer weights missing",
        train("good", "--variant", "transfer", "--weights", "nope.h5"),
        "nope.h5: no such weights file",
    ),
    Case("resume garbage state", resume("garbage_state"), "not a readable checkpoint state"),
    Case("resume truncated checkpoint", resume("truncated_keras"), "not a loadable checkpoint"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_ends_in_one_clear_line(root, case, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main(case.argv(root))
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert "Traceback" not in captured.err + captured.out
    if case.message is None:
        assert code == 0, captured.err
        return
    assert code == 2, (code, captured.err)
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and errors == lines[-1:], lines
    assert case.message in errors[0], errors[0]


def test_unusual_images_become_rgb_32x32(root):
    """What the tolerated files turn into: the right shape and plausible pixels."""
    for case in CASES:
        argv = case.argv(root)
        if case.message is None and argv[0] == "predict" and argv[1].endswith("good.h5"):
            pixels = read_image(argv[2])
            assert pixels.shape == (32, 32, 3) and pixels.dtype == np.uint8
    grey16 = read_image(root / "images" / "grey16.png")
    x, _ = synthetic_images(1, seed=0)
    # 16-bit grey is scaled to 8 bits, not clipped to white.
    np.testing.assert_allclose(grey16[..., 0], x[0, ..., 0], atol=1)


def test_readers_raise_user_errors_only(root):
    """The engine's readers themselves (the GUI's path) raise UserError, never anything else."""
    for name in ("empty.png", "random.png", "bomb.png", "bomb_decodable.png", "truncated.jpg"):
        with pytest.raises(UserError):
            read_image(root / "images" / name)


def test_case_count():
    bad = sum(c.message is not None for c in CASES)
    print(f"\n{len(CASES)} fuzz cases: {bad} must fail with one line, {len(CASES) - bad} must work")
    assert len(CASES) >= 60
    assert len({c.name for c in CASES}) == len(CASES)
