"""Saving and loading models (``.h5`` or ``.keras``) with a JSON sidecar of the same stem.

Writes are atomic: the file is written beside its target under a temporary name and renamed
over it, so a failed or interrupted save leaves the previous file intact.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras

from cifar_gui.config import FILE_SUFFIXES, RunConfig
from cifar_gui.engine.errors import ModelError
from cifar_gui.engine.models import VGG16_BASE_NAME


@dataclass
class LoadedModel:
    """A model with what is known about it (from its sidecar, or read off the model)."""

    model: keras.Model
    path: Path
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def class_names(self) -> tuple[str, ...]:
        names = self.metadata.get("class_names")
        if names:
            return tuple(names)
        units = self.model.output_shape[-1]
        return tuple(f"class {i}" for i in range(2 if units == 1 else units))

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) of the images the model takes."""
        return tuple(self.model.input_shape[1:3])

    @property
    def config(self) -> RunConfig | None:
        raw = self.metadata.get("config")
        return RunConfig.from_dict(raw) if raw else None

    @property
    def history(self) -> dict[str, list[float]]:
        return self.metadata.get("history", {})


def model_filename(variant: str, class_indices: Sequence[int], extension: str = ".h5") -> str:
    """The seed's file names: ``cifar10_4_7.h5``, ``cifar10_4_7_augm.h5``, ..."""
    joined = "_".join(str(i) for i in class_indices)
    return f"cifar10_{joined}{FILE_SUFFIXES[variant]}{extension}"


def sidecar_path(model_path: str | Path) -> Path:
    """The JSON beside a model: same folder, same stem."""
    return Path(model_path).with_suffix(".json")


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """A temporary path beside ``target`` that replaces it only when the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=target.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json(path: str | Path, data: dict[str, Any]) -> None:
    """Write JSON atomically."""
    with atomic_path(Path(path)) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=_json_default))


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in JSON")


@contextlib.contextmanager
def _quiet_absl() -> Iterator[None]:
    """Silence Keras' "HDF5 is legacy" warning: the seed's .h5 names are asked for on purpose."""
    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def save_model(model: keras.Model, path: str | Path, metadata: dict[str, Any]) -> Path:
    """Save ``model`` (``.h5`` or ``.keras``) and its JSON sidecar, both atomically."""
    path = Path(path)
    try:
        with atomic_path(path) as tmp, _quiet_absl():
            model.save(tmp)
        write_json(sidecar_path(path), metadata)
    except OSError as exc:
        raise ModelError(f"{path}: cannot write ({exc.strerror or exc})") from None
    return path


def load_model(path: str | Path, compile: bool = False) -> LoadedModel:
    """Load a model saved by this app or elsewhere; check that it takes images.

    The sidecar is optional: without it, class names are generic and the input shape and
    class count are read from the model.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such model file")
    try:
        model = keras.models.load_model(path, compile=compile)
    except Exception as exc:
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise ModelError(f"{path}: not a loadable Keras model ({reason})") from None
    shape = getattr(model, "input_shape", None)
    if not (isinstance(shape, tuple) and len(shape) == 4 and shape[-1] in (1, 3)):
        raise ModelError(f"{path}: model input {shape} is not an image (N, H, W, 1 or 3)")
    output = getattr(model, "output_shape", None)
    if not (isinstance(output, tuple) and len(output) == 2 and (output[-1] or 0) >= 1):
        raise ModelError(f"{path}: model output {output} is not a classifier's (N, classes)")
    metadata: dict[str, Any] = {}
    side = sidecar_path(path)
    if side.is_file():
        try:
            metadata = json.loads(side.read_text())
        except (OSError, ValueError):
            metadata = {}  # a broken sidecar must not make a good model unusable
    return LoadedModel(model, path, metadata)


def has_vgg16_base(model: keras.Model) -> bool:
    """Whether the model nests a VGG16 base (a transfer or finetune model)."""
    return any(layer.name == VGG16_BASE_NAME for layer in model.layers)
