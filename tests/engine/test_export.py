"""Export for use elsewhere: each format predicts as the app does, the model card's snippet
runs with the format's own runtime, and a bad target fails whole, leaving nothing behind.

Tolerances: a float32 model and its float32 export compute the same products in another
order (oneDNN, XNNPACK, ONNX Runtime kernels): their probabilities agree to ~1e-6, checked
at 1e-4. A model trained in mixed_bfloat16 is run by the app in bfloat16 (8 bits of mantissa:
each rounding is off by up to 0.4 %) and exported in float32: measured on 200 CIFAR-10 test
images the probabilities differ by at most 0.015, checked at 0.05.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from cifar_gui import resources
from cifar_gui.config import RunConfig
from cifar_gui.engine.errors import UserError
from cifar_gui.engine.models import export
from cifar_gui.engine.models.build import build_model, with_precision
from cifar_gui.engine.models.export import (
    ARTIFACTS,
    FORMATS,
    export_in_child,
    export_model,
    model_card,
)
from cifar_gui.engine.models.inspect import (
    class_probabilities,
    outputs_to_probabilities,
    predict_files,
)
from cifar_gui.engine.models.persistence import LoadedModel, load_model, save_model
from tests.conftest import synthetic_images

FLOAT32_TOLERANCE = 1e-4
BFLOAT16_TOLERANCE = 0.05
SAMPLE = resources.sample_image_path()  # a drawing of a horse, larger than 32 x 32


def images() -> np.ndarray:
    """A few uint8 test images (N, 32, 32, 3)."""
    return synthetic_images(6, seed=3)[0]


def run_exported(result: export.ExportResult, x: np.ndarray) -> np.ndarray:
    """The exported model's raw outputs for float32 inputs ``x``, by its own runtime."""
    path = str(result.artifact)
    if result.format == "savedmodel":
        import tensorflow as tf

        loaded = tf.saved_model.load(path)  # held: its functions only reference its variables
        return loaded.serve(tf.constant(x)).numpy()
    if result.format == "tflite":
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            import tensorflow as tf

            Interpreter = tf.lite.Interpreter
        interpreter = Interpreter(model_path=path)
        index = interpreter.get_input_details()[0]["index"]
        interpreter.resize_tensor_input(index, list(x.shape))
        interpreter.allocate_tensors()
        interpreter.set_tensor(index, x)
        interpreter.invoke()
        return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    ort = pytest.importorskip("onnxruntime", reason="ONNX Runtime is not installed")
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def needs_converter(fmt: str) -> None:
    reason = export.unavailable_reason(fmt)
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def bundled_exports(tmp_path_factory) -> dict[str, export.ExportResult]:
    """The bundled baseline (float32, with its sidecar) exported in every available format."""
    root = tmp_path_factory.mktemp("exports")
    model = resources.default_model_path()
    return {
        fmt: export_model(model, fmt, root / fmt)
        for fmt in FORMATS
        if export.unavailable_reason(fmt) is None
    }


@pytest.fixture(scope="module")
def bundled() -> LoadedModel:
    return load_model(resources.default_model_path())


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_export_predicts_as_the_app(bundled_exports, bundled, fmt):
    needs_converter(fmt)
    result = bundled_exports[fmt]
    assert sorted(p.name for p in result.folder.iterdir()) == sorted([ARTIFACTS[fmt], "README.md"])
    assert result.bytes > 2_000_000  # 684,097 float32 weights
    app, _ = class_probabilities(bundled.model, images())
    raw = run_exported(result, images().astype(np.float32) / 255.0)
    exported, _ = outputs_to_probabilities(bundled.model, raw)
    assert app.shape == exported.shape == (6, 2)
    np.testing.assert_allclose(exported, app, atol=FLOAT32_TOLERANCE)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_bfloat16_model_exports_in_float32_within_its_round_off(tmp_path, bundled, fmt):
    needs_converter(fmt)
    path = save_model(
        with_precision(bundled.model, "mixed_bfloat16"), tmp_path / "bf16.h5", bundled.record
    )
    loaded = load_model(path)
    assert loaded.model.layers[0].dtype_policy.name == "mixed_bfloat16"
    result = export_model(path, fmt, tmp_path / "out")
    app, _ = class_probabilities(loaded.model, images())
    exported, _ = outputs_to_probabilities(
        loaded.model, run_exported(result, images().astype(np.float32) / 255.0)
    )
    np.testing.assert_allclose(exported, app, atol=BFLOAT16_TOLERANCE)
    # float32 all through: the export matches the float32 model far closer than bfloat16.
    float32, _ = class_probabilities(bundled.model, images())
    np.testing.assert_allclose(exported, float32, atol=FLOAT32_TOLERANCE)
    assert "the app computed in mixed_bfloat16" in result.card.read_text()


def card_snippet(card: Path) -> str:
    blocks = re.findall(r"```python\n(.*?)```", card.read_text(), re.S)
    assert len(blocks) == 1
    return blocks[0]


def run_snippet(folder: Path, image: Path, hide: str | None = None) -> dict[str, float]:
    """Run the card's snippet as classify.py in the export folder (with the module ``hide``
    not importable); the probabilities it prints."""
    code = card_snippet(folder / "README.md")
    assert "cifar_gui" not in code
    (folder / "classify.py").write_text(code)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    hiding = f"sys.modules[{hide!r}] = None; " if hide else ""  # then importing it fails
    run = (
        f"import runpy, sys; {hiding}sys.argv = sys.argv[1:]; "
        "runpy.run_path(sys.argv[0], run_name='__main__')"
    )
    done = subprocess.run(
        [sys.executable, "-c", run, "classify.py", str(image)],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    probabilities = dict(line.rsplit(": ", 1) for line in lines[:-1])
    assert lines[-1] == f"-> {max(probabilities, key=lambda k: float(probabilities[k]))}"
    (folder / "classify.py").unlink()
    return {name: float(value) for name, value in probabilities.items()}


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_cards_snippet_classifies_an_image_as_the_app(bundled_exports, bundled, fmt):
    needs_converter(fmt)
    got = run_snippet(bundled_exports[fmt].folder, SAMPLE)
    [app] = predict_files(bundled.model, [SAMPLE], bundled.class_names)
    assert list(got) == list(app.class_names) == ["deer", "horse"]
    np.testing.assert_allclose(list(got.values()), app.probabilities, atol=FLOAT32_TOLERANCE)


def test_the_tflite_snippet_falls_back_on_tensorflows_interpreter(bundled_exports, bundled):
    """Without LiteRT's package (ai-edge-litert), the snippet runs with tf.lite."""
    got = run_snippet(bundled_exports["tflite"].folder, SAMPLE, hide="ai_edge_litert")
    [app] = predict_files(bundled.model, [SAMPLE], bundled.class_names)
    np.testing.assert_allclose(list(got.values()), app.probabilities, atol=FLOAT32_TOLERANCE)


def test_the_card_says_classes_input_preprocessing_accuracy_and_settings(bundled_exports):
    card = next(iter(bundled_exports.values())).card.read_text()
    assert "0. deer\n1. horse" in card
    assert "shape (batch, 32, 32, 3)" in card and "scaled to [0, 1]" in card
    assert "divide the 0-255 pixel values by 255, once" in card
    assert "Inside the model: nothing more." in card
    assert "the probability of horse; that of deer is one minus it" in card
    assert "Test accuracy 0.8805 on 2,000 test images (deer, horse)" in card
    assert "| variant | baseline |" in card and "| epochs | 30 |" in card


def test_a_model_without_sidecar_is_not_measured(tmp_path, bundled):
    shutil.copy(resources.default_model_path(), tmp_path / "bare.h5")
    card = model_card(load_model(tmp_path / "bare.h5"), "onnx")
    assert "Test accuracy: not measured" in card
    assert "0. class 0\n1. class 1" in card
    assert "Not known: the model has no sidecar record of its run." in card


def test_a_sidecar_whose_classes_do_not_fit_the_outputs_is_refused(tmp_path):
    model = shutil.copy(resources.default_model_path(), tmp_path / "odd.h5")
    sidecar = json.loads(resources.default_model_path().with_suffix(".json").read_text())
    sidecar["class_names"] = ["cat", "deer", "horse"]
    (tmp_path / "odd.json").write_text(json.dumps(sidecar))
    fails(
        Path(model), "onnx", tmp_path / "out", tmp_path,
        f"{model}: the model has 1 output but its sidecar names 3 classes",
    )  # fmt: skip


def test_a_vgg16_card_says_its_preprocessing_is_inside():
    model = build_model(RunConfig(variant="transfer", weights="none"), num_classes=3)
    card = model_card(LoadedModel(model, Path("vgg16.h5")), "tflite")
    assert "Inside the model: VGG16's own input preprocessing" in card
    assert "3 probabilities (softmax), one per class" in card
    assert "probabilities = [float(v) for v in out]" in card


@pytest.mark.parametrize(
    ("classes", "activation", "expected"),
    [(3, "softmax", "3 probabilities"), (3, "linear", "3 scores"), (2, "linear", "one score")],
)
def test_snippets_turn_each_kind_of_output_into_the_apps_probabilities(
    tmp_path, classes, activation, expected
):
    """Softmax probabilities, softmax scores and one sigmoid score: the snippet prints the
    probabilities the app shows."""
    needs_converter("onnx")
    keras.utils.set_random_seed(classes)
    units = 1 if classes == 2 else classes
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(units, activation=activation, kernel_initializer="he_normal"),
        ]
    )
    path = save_model(model, tmp_path / "tiny.keras", None)
    result = export_model(path, "onnx", tmp_path / "out")
    assert expected in result.card.read_text()
    got = run_snippet(result.folder, SAMPLE)
    [app] = predict_files(model, [SAMPLE], [f"class {i}" for i in range(classes)])
    np.testing.assert_allclose(list(got.values()), app.probabilities, atol=FLOAT32_TOLERANCE)


# ---- bad targets and bad models: one line naming the path, nothing left behind


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def fails(model: Path, fmt: str, out: Path, root: Path, message: str) -> None:
    before = listing(root)
    with pytest.raises(UserError) as caught:
        export_model(model, fmt, out)
    text = str(caught.value)
    assert message in text and "\n" not in text
    assert listing(root) == before


def test_an_existing_file_is_refused(tmp_path):
    (tmp_path / "taken").write_text("mine")
    fails(
        resources.default_model_path(), "tflite", tmp_path / "taken", tmp_path,
        f"{tmp_path / 'taken'}: is a file, not a folder",
    )  # fmt: skip
    assert (tmp_path / "taken").read_text() == "mine"


def test_a_folder_with_files_is_refused_and_an_empty_one_taken(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    fails(
        resources.default_model_path(), "tflite", tmp_path / "full", tmp_path,
        f"{tmp_path / 'full'}: folder is not empty",
    )  # fmt: skip
    (tmp_path / "empty").mkdir()
    result = export_model(resources.default_model_path(), "tflite", tmp_path / "empty")
    assert result.artifact == tmp_path / "empty" / "model.tflite" and result.artifact.is_file()


def test_a_folder_that_cannot_be_made_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    fails(
        resources.default_model_path(), "tflite", tmp_path / "file" / "out", tmp_path,
        f"{tmp_path / 'file'}: is a file, not a folder (needed for {tmp_path / 'file' / 'out'})",
    )  # fmt: skip


def test_a_file_that_is_no_model_is_refused(tmp_path):
    fake = tmp_path / "fake.h5"
    fake.write_text("not a model")
    fails(fake, "tflite", tmp_path / "a" / "out", tmp_path, f"{fake}: not a loadable Keras model")
    fails(tmp_path / "none.h5", "tflite", tmp_path / "out", tmp_path, "none.h5: no such model")


def test_a_model_the_converter_refuses_leaves_nothing(tmp_path, monkeypatch):
    """The converter fails after it has written part of its output (as tf2onnx or the
    TensorFlow Lite converter do on an op they lack): the half-written folder goes too, and
    so do the parent folders made for it."""

    def refuse(model, filepath, format, verbose=None):
        Path(filepath).write_bytes(b"half")
        raise ValueError(f"op {format} unsupported\nsecond line of detail")

    monkeypatch.setattr(keras.Model, "export", refuse)
    model = resources.default_model_path()
    fails(
        model, "onnx", tmp_path / "new" / "deeper" / "out", tmp_path,
        f"{model}: cannot be converted to ONNX (ValueError: op onnx unsupported)",
    )  # fmt: skip


def test_a_failed_rename_leaves_nothing(tmp_path, monkeypatch):
    def refuse(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(export.os, "rename", refuse)
    fails(
        resources.default_model_path(), "tflite", tmp_path / "out", tmp_path,
        f"{tmp_path / 'out'}: cannot be written (Permission denied)",
    )  # fmt: skip
    (tmp_path / "empty").mkdir()  # an empty folder given as the target is still there after
    fails(
        resources.default_model_path(), "tflite", tmp_path / "empty", tmp_path,
        f"{tmp_path / 'empty'}: cannot be written (Permission denied)",
    )  # fmt: skip


def test_unknown_and_unavailable_formats_say_why(tmp_path, monkeypatch):
    fails(resources.default_model_path(), "coreml", tmp_path / "out", tmp_path,
          "coreml: not an export format (choose savedmodel, tflite, onnx)")  # fmt: skip
    monkeypatch.setattr(export, "ONNX_CONVERTER", "no_such_converter_module")
    fails(resources.default_model_path(), "onnx", tmp_path / "out", tmp_path,
          "ONNX export needs the tf2onnx converter, which is not installed")  # fmt: skip


def test_the_child_process_sends_the_error_back_as_one_line(tmp_path):
    """The window's way: the same checks run in a spawned process, and its error (here a file
    that only Keras can tell is not a model) comes back as the one-line UserError."""
    fake = tmp_path / "fake.keras"
    fake.write_text("not a model")
    with pytest.raises(UserError, match=r"fake\.keras: not a loadable Keras model"):
        export_in_child(fake, "tflite", tmp_path / "out")
    assert listing(tmp_path) == ["fake.keras"]


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_a_vgg16_transfer_model_exports_and_predicts_as_the_app(tmp_path, fmt):
    """VGG16 (weights=None) under the transfer head, its preprocessing inside (5 to 35 s a
    format on 2 cores, ONNX the longest: 15 million parameters)."""
    needs_converter(fmt)
    model = build_model(RunConfig(variant="transfer", weights="none"))
    path = save_model(model, tmp_path / "vgg16.h5", None)
    result = export_model(path, fmt, tmp_path / "out")
    assert result.bytes > 50_000_000
    app, _ = class_probabilities(model, images())
    exported, _ = outputs_to_probabilities(
        model, run_exported(result, images().astype(np.float32) / 255.0)
    )
    np.testing.assert_allclose(exported, app, atol=FLOAT32_TOLERANCE)
