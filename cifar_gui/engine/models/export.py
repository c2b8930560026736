"""Export a saved model for use elsewhere, with a model card (``README.md``) beside it.

Three formats, each through Keras' own ``model.export``: a TensorFlow SavedModel (serving:
TensorFlow Serving, ``tf.saved_model.load``), a TensorFlow Lite file (``format="litert"``:
phones and small boards, run by LiteRT) and ONNX (``format="onnx"``, which converts with
tf2onnx: other runtimes, e.g. ONNX Runtime). Every export computes in float32, whatever
precision the model was trained in: the weights are float32 either way, and the runtimes
that read these files compute in float32.

The export is atomic: it is written into a temporary folder beside the target and renamed
to it at the end, so a failed export leaves nothing behind (nor the parent folders it had to
create). The target must not exist, or be an empty folder.

This module imports neither Qt nor TensorFlow on import: the window imports it and runs
:func:`export_model` in a child process (:func:`export_in_child`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import multiprocessing
import os
import secrets
import shutil
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import cifar_gui
from cifar_gui.engine.errors import ModelError, UserError
from cifar_gui.engine.files import check_can_write

if TYPE_CHECKING:  # persistence imports Keras; only export_model needs it
    from cifar_gui.engine.models.persistence import LoadedModel

FORMATS = ("savedmodel", "tflite", "onnx")
FORMAT_NAMES = {"savedmodel": "TensorFlow SavedModel", "tflite": "TensorFlow Lite", "onnx": "ONNX"}
# What each format is for, as the dialog and the card say it.
FORMAT_USES = {
    "savedmodel": "serving: TensorFlow Serving, or tf.saved_model.load in any TensorFlow program",
    "tflite": "phones and small boards: the LiteRT (TensorFlow Lite) interpreter",
    "onnx": "other runtimes: ONNX Runtime, OpenVINO, TensorRT, ...",
}
ARTIFACTS = {"savedmodel": "saved_model", "tflite": "model.tflite", "onnx": "model.onnx"}
CARD_NAME = "README.md"
ONNX_CONVERTER = "tf2onnx"  # the module Keras' ONNX export converts with


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote: the folder, the model in it, its size and the time it took."""

    folder: Path
    format: str
    artifact: Path  # the model file (a folder for a SavedModel)
    bytes: int  # the artifact's size, every file of a folder summed
    seconds: float  # loading the model, converting and writing

    @property
    def card(self) -> Path:
        return self.folder / CARD_NAME


def unavailable_reason(fmt: str) -> str | None:
    """Why ``fmt`` cannot be exported here (one line), or None when it can."""
    if fmt not in FORMATS:
        return f"{fmt}: not an export format (choose {', '.join(FORMATS)})"
    if fmt == "onnx" and importlib.util.find_spec(ONNX_CONVERTER) is None:
        return (
            "ONNX export needs the tf2onnx converter, which is not installed "
            "(pip install 'cifar-gui[onnx]')"
        )
    return None


def check_target(out_dir: str | Path) -> None:
    """Raise :class:`UserError` unless ``out_dir`` can become the export folder: a new
    folder, or an empty one, that can be written. Nothing on disk changes."""
    out_dir = Path(out_dir)
    if out_dir.is_dir() and not out_dir.is_symlink() and any(out_dir.iterdir()):
        raise UserError(f"{out_dir}: folder is not empty (export into a new or an empty folder)")
    if out_dir.is_symlink():
        raise UserError(f"{out_dir}: is a link (export into a new or an empty folder)")
    check_can_write(out_dir, folder=True)


def export_model(
    model_path: str | Path, fmt: str, out_dir: str | Path, *, command: str | None = None
) -> ExportResult:
    """Export the model file ``model_path`` as ``fmt`` (:data:`FORMATS`) into the new folder
    ``out_dir``, with a model card; return what was written.

    ``command``: the command line that asked for it, quoted in the card. Raises
    :class:`UserError` (one line naming the path) for an unknown or unavailable format, a
    target that exists (a file, a folder with files) or cannot be written, a file that is not
    a model, or a model the converter refuses; nothing is left behind then.
    """
    model_path, out_dir = Path(model_path), Path(out_dir)
    reason = unavailable_reason(fmt)
    if reason:
        raise UserError(reason)
    check_target(out_dir)
    start = time.perf_counter()
    from cifar_gui.engine.models.persistence import load_model

    loaded = load_model(model_path)
    with _staged_folder(out_dir) as tmp:
        _convert(loaded, fmt, tmp / ARTIFACTS[fmt])
        (tmp / CARD_NAME).write_text(model_card(loaded, fmt, command), encoding="utf-8")
    artifact = out_dir / ARTIFACTS[fmt]
    return ExportResult(out_dir, fmt, artifact, _size(artifact), time.perf_counter() - start)


@contextlib.contextmanager
def _staged_folder(target: Path):
    """A new temporary folder beside ``target``, renamed to it when the block succeeds and
    removed (with any parent folders made for it) when it fails."""
    made = [p for p in (target.parent, *target.parent.parents) if not p.exists()]
    tmp, emptied = None, False
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".{target.name[:32]}.{secrets.token_hex(4)}.export"
        tmp.mkdir()
        yield tmp
        if target.is_dir():
            target.rmdir()  # empty (checked before); fails if something arrived meanwhile
            emptied = True
        os.rename(tmp, target)
    except OSError as exc:
        raise UserError(f"{target}: cannot be written ({exc.strerror or exc})") from None
    finally:
        if tmp is not None and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if emptied and not target.exists():  # the rename failed: the user's folder comes back
            with contextlib.suppress(OSError):
                target.mkdir()
        if not target.exists():
            for folder in made:  # the deepest first
                with contextlib.suppress(OSError):
                    folder.rmdir()


def _convert(loaded: LoadedModel, fmt: str, path: Path) -> None:
    """Write ``loaded``'s model as ``fmt`` to ``path`` with Keras' exporter, in float32."""
    from cifar_gui.engine.models.build import with_precision

    keras_format = {"savedmodel": "tf_saved_model", "tflite": "litert", "onnx": "onnx"}[fmt]
    try:
        model = with_precision(loaded.model, "float32")
        # The ONNX exporter wants a model that has been called once (a loaded one has not).
        model(np.zeros((1, *model.input_shape[1:]), np.float32), training=False)
        with warnings.catch_warnings():
            # Keras' tf2onnx patch for numpy 2 sets np.object, which numpy warns about.
            warnings.simplefilter("ignore", FutureWarning)
            model.export(str(path), format=keras_format, verbose=False)
    except OSError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        reason = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
        raise ModelError(
            f"{loaded.path}: cannot be converted to {FORMAT_NAMES[fmt]} ({reason})"
        ) from None


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# --------------------------------------------------------------------------------------
# The model card


def output_kind(loaded: LoadedModel) -> tuple[int, bool]:
    """The model's output units, and whether they are scores (logits) rather than
    probabilities, decided as the app does
    (:func:`cifar_gui.engine.models.inspect.outputs_to_probabilities`)."""
    from cifar_gui.engine.models.inspect import outputs_to_probabilities
    from cifar_gui.engine.record import class_count

    model = loaded.model
    units = int(model.output_shape[-1])
    if len(loaded.class_names) != class_count(units):
        raise ModelError(
            f"{loaded.path}: the model has {units} output{'s' * (units != 1)} but its sidecar "
            f"names {len(loaded.class_names)} classes"
        )
    raw = np.asarray(model(np.zeros((1, *model.input_shape[1:]), np.float32), training=False))
    return units, outputs_to_probabilities(model, raw)[1]


def model_card(loaded: LoadedModel, fmt: str, command: str | None = None) -> str:
    """The ``README.md`` of an export of ``loaded`` as ``fmt``."""
    from cifar_gui.engine.models.build import VGG16_PREPROCESS_NAME, flat_layers
    from cifar_gui.engine.training.performance import model_precision

    model = loaded.model
    names = loaded.class_names
    height, width, channels = (int(d) for d in model.input_shape[1:])
    units, logits = output_kind(loaded)
    has_vgg16 = any(layer.name == VGG16_PREPROCESS_NAME for layer in flat_layers(model))
    record = loaded.record
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    how = f" with `{command}`" if command else ""
    lines = [
        f"# {loaded.path.stem}: {FORMAT_NAMES[fmt]}",
        "",
        f"Exported by cifar-gui {cifar_gui.__version__} on {stamp}{how}, from "
        f"`{loaded.path}`. For {FORMAT_USES[fmt]}.",
        "",
        "| | |",
        "| --- | --- |",
        f"| Model | `{ARTIFACTS[fmt]}` |",
        f"| Input | float32, shape (batch, {height}, {width}, {channels}): RGB pixels, rows "
        "top to bottom, scaled to [0, 1] |",
        f"| Output | {_output_text(names, units, logits)} |",
        f"| Variant | {record.variant if record else 'unknown (no sidecar)'} |",
        f"| Computes in | float32 (the app computed in {model_precision(model)}) |",
        "",
        "## Classes, in output order",
        "",
        *(f"{i}. {name}" for i, name in enumerate(names)),
        "",
        "## Preprocessing",
        "",
        f"Outside the model, as the app does: convert the image to RGB, resize it to {width} x "
        f"{height} (the app uses Pillow's Lanczos filter), and divide the 0-255 pixel values "
        "by 255, once, as float32.",
        "",
        (
            "Inside the model: VGG16's own input preprocessing (back to 0-255, RGB to BGR, the "
            "ImageNet channel means subtracted), so do not apply "
            "`keras.applications.vgg16.preprocess_input` yourself."
            if has_vgg16
            else "Inside the model: nothing more."
        ),
        "",
        "## Accuracy",
        "",
        _accuracy_text(loaded),
        "",
        "## Training settings",
        "",
        *_settings_table(loaded),
        "",
        "## Classify one image",
        "",
        f"Save this as `classify.py` in this folder and run `python classify.py IMAGE` there "
        f"({_runtime_text(fmt)}, numpy and Pillow; no cifar-gui):",
        "",
        "```python",
        snippet(fmt, names, (height, width), units, logits),
        "```",
        "",
    ]
    if fmt == "tflite":
        lines += [
            "The file's input has a batch of 1; for more images at once call "
            "`interpreter.resize_tensor_input(index, [n, "
            f"{height}, {width}, {channels}])` before `allocate_tensors()`.",
            "",
        ]
    return "\n".join(lines)


def _output_text(names: tuple[str, ...], units: int, logits: bool) -> str:
    if units == 1:
        if logits:
            return (
                f"one score (a logit): its sigmoid is the probability of {names[1]}, one "
                f"minus that the probability of {names[0]}"
            )
        return f"one number: the probability of {names[1]}; that of {names[0]} is one minus it"
    if logits:
        return f"{units} scores (logits), one per class: their softmax gives the probabilities"
    return f"{units} probabilities (softmax), one per class, in the order below"


def _accuracy_text(loaded: LoadedModel) -> str:
    record = loaded.record
    if record is None or record.test_accuracy is None:
        return "Test accuracy: not measured (the model has no sidecar record of a test)."
    images = f"{record.test_images:,} test images" if record.test_images else "the test images"
    source = f" of `{record.data_source}`" if record.data_source else ""
    which = (
        f"the weights of epoch {record.kept_epoch}, the best validation accuracy"
        if record.kept_epoch
        else f"the weights after epoch {record.epochs_completed}, the last"
    )
    return (
        f"Test accuracy {record.test_accuracy:.4f} on {images} ({', '.join(record.class_names)})"
        f"{source}, measured by the app at the end of training ({which})"
        + (f", computing in {record.precision}" if record.precision else "")
        + ". This export computes in float32, which moves probabilities by round-off only."
    )


def _settings_table(loaded: LoadedModel) -> list[str]:
    record = loaded.record
    if record is None or record.config is None:
        return ["Not known: the model has no sidecar record of its run."]
    rows = []
    for key, value in record.config.to_dict().items():
        if isinstance(value, dict):
            rows += [f"| {key}.{k} | {_cell(v)} |" for k, v in value.items()]
        else:
            rows.append(f"| {key} | {_cell(value)} |")
    where = f"Trained on {record.device}" if record.device else "Trained"
    precision = f" in {record.precision}" if record.precision else ""
    return [
        f"{where}{precision}, {record.epochs_completed} epochs; the run's settings (its "
        "RunConfig, as stored in the sidecar):",
        "",
        "| setting | value |",
        "| --- | --- |",
        *rows,
    ]


def _cell(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "-"
    return "-" if value is None else str(value).replace("|", "\\|")


def _runtime_text(fmt: str) -> str:
    return {
        "savedmodel": "needs TensorFlow",
        "tflite": "needs LiteRT (`pip install ai-edge-litert`) or TensorFlow",
        "onnx": "needs ONNX Runtime (`pip install onnxruntime`)",
    }[fmt]


# Each runtime's imports, and its lines that run the model on ``x`` into ``out``.
_RUNTIME_IMPORTS = {
    "savedmodel": ["import tensorflow as tf"],
    "tflite": [
        "try:",
        "    from ai_edge_litert.interpreter import Interpreter",
        "except ImportError:  # TensorFlow's own copy",
        "    import tensorflow as tf",
        "",
        "    Interpreter = tf.lite.Interpreter",
    ],
    "onnx": ["import onnxruntime as ort"],
}
_RUNTIME_CALLS = {
    "savedmodel": [
        'model = tf.saved_model.load("saved_model")',
        "out = model.serve(tf.constant(x)).numpy()[0]",
    ],
    "tflite": [
        'interpreter = Interpreter(model_path="model.tflite")',
        "interpreter.allocate_tensors()",
        'interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)',
        "interpreter.invoke()",
        'out = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0]',
    ],
    "onnx": [
        'session = ort.InferenceSession("model.onnx", providers=["CPUExecutionProvider"])',
        "out = session.run(None, {session.get_inputs()[0].name: x})[0][0]",
    ],
}


def snippet(
    fmt: str, names: tuple[str, ...], size: tuple[int, int], units: int, logits: bool
) -> str:
    """A script that classifies the image file ``sys.argv[1]`` with ``fmt``'s own runtime:
    it prints each class's probability and the predicted class."""
    height, width = size
    if units == 1:
        to_probabilities = (
            "p = 1 / (1 + np.exp(-float(out[0])))  # the score's sigmoid"
            if logits
            else "p = float(out[0])  # the probability of the second class"
        )
        to_probabilities += "\nprobabilities = [1 - p, p]"
    elif logits:
        to_probabilities = (
            "e = np.exp(out - out.max())  # the scores' softmax\n"
            "probabilities = [float(v) for v in e / e.sum()]"
        )
    else:
        to_probabilities = "probabilities = [float(v) for v in out]"
    return "\n".join(
        [
            "import sys",
            "",
            "import numpy as np",
            "from PIL import Image",
            "",
            *_RUNTIME_IMPORTS[fmt],
            "",
            f"CLASSES = {json.dumps(list(names))}  # in output order",
            f'image = Image.open(sys.argv[1]).convert("RGB").resize(({width}, {height}), '
            "Image.Resampling.LANCZOS)",
            f"x = np.asarray(image, dtype=np.float32)[None] / 255.0  # (1, {height}, {width}, 3)",
            *_RUNTIME_CALLS[fmt],
            to_probabilities,
            "for name, value in zip(CLASSES, probabilities):",
            '    print(f"{name}: {value:.6f}")',
            'print("->", CLASSES[int(np.argmax(probabilities))])',
        ]
    )


# --------------------------------------------------------------------------------------
# In a child process, for the window


def _child_init() -> None:
    # TensorFlow's C++ start-up chatter goes to the terminal the app was started from.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def export_in_child(
    model_path: str | Path, fmt: str, out_dir: str | Path, *, command: str | None = None
) -> ExportResult:
    """:func:`export_model` in a spawned child process (a fresh interpreter: the window's
    process never imports TensorFlow); its :class:`UserError` is raised here as it was."""
    # What can be told without TensorFlow is told at once, without starting a process.
    reason = unavailable_reason(fmt)
    if reason:
        raise UserError(reason)
    if not Path(model_path).is_file():
        raise ModelError(f"{model_path}: no such model file")
    check_target(out_dir)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context, initializer=_child_init) as pool:
        try:
            return pool.submit(export_model, model_path, fmt, out_dir, command=command).result()
        except BrokenProcessPool:
            raise UserError("the export process ended unexpectedly") from None
