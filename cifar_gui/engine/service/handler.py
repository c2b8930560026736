"""The engine service's requests, run where TensorFlow lives: the service's child process (or,
in process, the caller's thread). Each answers with plain data; :func:`serve` is the child's
loop. Keras and TensorFlow are imported by the first request that needs them, so a child
that only detects the device never reads a model.
"""

from __future__ import annotations

import dataclasses
import traceback
from collections import OrderedDict
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cifar_gui.config import AugmentConfig, RunConfig
from cifar_gui.engine.errors import UserError
from cifar_gui.engine.models.predictions import Evaluation, Prediction
from cifar_gui.engine.service.replies import DeviceInfo, ModelHandle, ServiceError

if TYPE_CHECKING:
    import keras

MAX_MODELS = 4  # models the child keeps loaded; an older one is read again when asked for


class Handler:
    """The requests (see :class:`~cifar_gui.engine.service.client.EngineService` for each)."""

    def __init__(self) -> None:
        self._models: OrderedDict[Path, keras.Model] = OrderedDict()

    # -- models --------------------------------------------------------------------------

    def _keep(self, path: Path, model: keras.Model) -> None:
        self._models[path] = model
        self._models.move_to_end(path)
        while len(self._models) > MAX_MODELS:
            self._models.popitem(last=False)

    def _model(self, handle: ModelHandle) -> keras.Model:
        """The handle's model; read from its file again when not (or no longer) loaded."""
        model = self._models.get(handle.path)
        if model is None:
            return self._load(handle.path).model
        self._models.move_to_end(handle.path)
        return model

    def _load(self, path: Path):
        from cifar_gui.engine.models.persistence import load_model

        loaded = load_model(path)
        self._keep(loaded.path, loaded.model)
        return loaded

    def open(self, path: str | Path) -> ModelHandle:
        from cifar_gui.engine.models.build import parameter_counts
        from cifar_gui.engine.models.inspect import class_probabilities, default_layers, list_layers

        loaded = self._load(Path(path))
        model = loaded.model
        height, width = loaded.input_size
        blank = np.zeros((1, height, width, model.input_shape[-1]), dtype=np.uint8)
        _, from_logits = class_probabilities(model, blank, direct=True)
        return ModelHandle(
            path=loaded.path,
            class_names=loaded.class_names,
            input_size=(int(height), int(width)),
            layers=tuple(list_layers(model)),
            default_layers=tuple(default_layers(model)),
            parameters=parameter_counts(model),
            from_logits=from_logits,
            record=loaded.record,
        )

    def save(self, handle: ModelHandle, path: str | Path) -> ModelHandle:
        from cifar_gui.engine.models.persistence import save_model

        model = self._model(handle)
        saved = save_model(model, path, handle.record)
        self._keep(saved, model)
        return dataclasses.replace(handle, path=saved)

    def activations(
        self, handle: ModelHandle, image: np.ndarray, layers: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        from cifar_gui.engine.models.inspect import activations

        return activations(self._model(handle), image, layers)

    def grad_cam(
        self,
        handle: ModelHandle,
        image: np.ndarray,
        class_index: int | None = None,
        layer_name: str | None = None,
    ) -> np.ndarray:
        from cifar_gui.engine.models.inspect import grad_cam

        return grad_cam(self._model(handle), image, class_index, layer_name)

    def kernel(self, handle: ModelHandle, layer_name: str) -> np.ndarray:
        from cifar_gui.engine.models.inspect import conv_kernel

        return conv_kernel(self._model(handle), layer_name)

    def predict_files(self, handle: ModelHandle, paths: Sequence[str | Path]) -> list[Prediction]:
        from cifar_gui.engine.models.inspect import predict_files

        return predict_files(self._model(handle), paths, handle.class_names)

    def predict_images(
        self, handle: ModelHandle, images: np.ndarray, direct: bool = False
    ) -> np.ndarray:
        from cifar_gui.engine.models.inspect import probabilities

        return probabilities(self._model(handle), images, direct)

    def evaluate(
        self,
        handle: ModelHandle,
        images: np.ndarray,
        labels: np.ndarray,
        num_classes: int | None = None,
    ) -> Evaluation:
        from cifar_gui.engine.models.inspect import evaluate

        return evaluate(self._model(handle), images, labels, num_classes)

    def planned_parameter_counts(self, config: RunConfig, num_classes: int) -> dict[str, int]:
        from cifar_gui.engine.models.build import planned_parameter_counts

        return planned_parameter_counts(config, num_classes)

    def study_estimate(
        self, plan: Any, class_names: Sequence[str], counts: dict, image_shape: tuple
    ) -> Any:
        from cifar_gui.engine.study.estimate import preflight

        return preflight(plan, class_names, counts, image_shape)

    # -- augmentation previews and the device ----------------------------------------------

    def augment_copies(
        self, image: np.ndarray, config: AugmentConfig, count: int, seed: int
    ) -> np.ndarray:
        from cifar_gui.engine.data.augment import preview_augmentations

        return preview_augmentations(image, config, count, seed)

    def augment_batch(self, images: np.ndarray, config: AugmentConfig, seed: int) -> np.ndarray:
        from cifar_gui.engine.data.augment import preview_batch

        return preview_batch(images, config, seed)

    def detect_device(self) -> DeviceInfo:
        from cifar_gui.engine.training.run import describe_device, versions

        return DeviceInfo(describe_device(), versions())


def one_line(exc: BaseException) -> UserError:
    """``exc`` when it is a :class:`UserError`, else one with its type and first line.

    Only errors of this app cross the pipe: unpickling any other exception could import the
    module that defines it (TensorFlow's, in the window's process).
    """
    if isinstance(exc, UserError):
        return exc
    if isinstance(exc, MemoryError):
        return ServiceError("out of memory: try fewer images or a smaller model")
    text = str(exc).strip()
    first = text.splitlines()[0][:300] if text else ""
    return ServiceError(f"{type(exc).__name__}: {first}" if first else type(exc).__name__)


def call(handler: Handler, method: str, args: tuple, kwargs: dict) -> tuple[str, Any]:
    """Run one request: ``("ok", answer)`` or ``("error", UserError)``."""
    try:
        return "ok", getattr(handler, method)(*args, **kwargs)
    except Exception as exc:
        if not isinstance(exc, UserError):
            traceback.print_exc()  # the details stay on the terminal, for a bug report
        return "error", one_line(exc)


def serve(conn: Connection) -> None:
    """The child: answer requests until the pipe closes or ``None`` arrives."""
    handler = Handler()
    try:
        while True:
            try:
                request = conn.recv()
            except EOFError:  # the window's process is gone
                return
            if request is None:
                return
            conn.send(call(handler, *request))
    finally:
        conn.close()
