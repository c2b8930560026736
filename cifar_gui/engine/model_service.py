"""The loaded Keras models, owned by one child process, answering with plain data.

Why a child: importing TensorFlow and calling Keras hold the interpreter lock for seconds
(loading the first model stalled the window's event loop for 2.7 s). The window's process
keeps only :class:`ModelHandle` values (plain data) and asks a :class:`ModelService` for
activations, predictions and evaluations; the service sends each request through a pipe to
its one child (started with ``spawn``: a fresh interpreter, nothing of Qt copied), which
holds the models and answers with numpy arrays and the dataclasses of
:mod:`cifar_gui.engine.predictions`. Requests are serialised by a lock, so a model is only
ever used by one thread. A child that dies is started again by the next request.

This module imports neither Qt nor TensorFlow; the child (or, with ``in_process=True``, the
calling thread) imports Keras when it first needs it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import threading
import traceback
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cifar_gui.config import RunConfig
from cifar_gui.engine.errors import UserError
from cifar_gui.engine.predictions import Evaluation, LayerInfo, Prediction
from cifar_gui.engine.record import ParameterCounts, RunRecord

if TYPE_CHECKING:
    import keras

MAX_MODELS = 4  # models the child keeps loaded; an older one is read again when asked for
EXIT_WAIT_S = 10.0  # after close(), how long the child may take to exit before it is killed


@dataclass(frozen=True)
class ModelHandle:
    """What the window knows of a loaded model: plain data, safe to keep and to signal."""

    path: Path
    class_names: tuple[str, ...]
    input_size: tuple[int, int]  # (height, width)
    layers: tuple[LayerInfo, ...]  # every inspectable layer, in call order
    default_layers: tuple[str, ...]  # the seed's activation model: the first eight
    parameters: ParameterCounts
    from_logits: bool  # the outputs are scores (shown as probabilities)
    record: RunRecord | None = None  # the sidecar's; None without a valid one


class ModelServiceError(UserError):
    """The model process failed in a way that is not the input's fault (it died, or broke)."""


class _Handler:
    """The requests, run where the models live (the child, or the caller with in_process)."""

    def __init__(self) -> None:
        self._models: OrderedDict[Path, keras.Model] = OrderedDict()

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
        from cifar_gui.engine.persistence import load_model

        loaded = load_model(path)
        self._keep(loaded.path, loaded.model)
        return loaded

    def open(self, path: str | Path) -> ModelHandle:
        from cifar_gui.engine.inspect import class_probabilities, default_layers, list_layers
        from cifar_gui.engine.models import parameter_counts

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
        from cifar_gui.engine.persistence import save_model

        model = self._model(handle)
        saved = save_model(model, path, handle.record)
        self._keep(saved, model)
        return dataclasses.replace(handle, path=saved)

    def activations(
        self, handle: ModelHandle, image: np.ndarray, layers: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        from cifar_gui.engine.inspect import activations

        return activations(self._model(handle), image, layers)

    def grad_cam(
        self,
        handle: ModelHandle,
        image: np.ndarray,
        class_index: int | None = None,
        layer_name: str | None = None,
    ) -> np.ndarray:
        from cifar_gui.engine.inspect import grad_cam

        return grad_cam(self._model(handle), image, class_index, layer_name)

    def kernel(self, handle: ModelHandle, layer_name: str) -> np.ndarray:
        from cifar_gui.engine.inspect import conv_kernel

        return conv_kernel(self._model(handle), layer_name)

    def predict_files(self, handle: ModelHandle, paths: Sequence[str | Path]) -> list[Prediction]:
        from cifar_gui.engine.inspect import predict_files

        return predict_files(self._model(handle), paths, handle.class_names)

    def predict_images(
        self, handle: ModelHandle, images: np.ndarray, direct: bool = False
    ) -> np.ndarray:
        from cifar_gui.engine.inspect import probabilities

        return probabilities(self._model(handle), images, direct)

    def evaluate(
        self,
        handle: ModelHandle,
        images: np.ndarray,
        labels: np.ndarray,
        num_classes: int | None = None,
    ) -> Evaluation:
        from cifar_gui.engine.inspect import evaluate

        return evaluate(self._model(handle), images, labels, num_classes)

    def planned_parameter_counts(self, config: RunConfig, num_classes: int) -> dict[str, int]:
        from cifar_gui.engine.models import planned_parameter_counts

        return planned_parameter_counts(config, num_classes)


def _one_line(exc: BaseException) -> UserError:
    """``exc`` when it is a :class:`UserError`, else one with its type and first line.

    Only errors of this app cross the pipe: unpickling any other exception could import the
    module that defines it (TensorFlow's, in the window's process).
    """
    if isinstance(exc, UserError):
        return exc
    if isinstance(exc, MemoryError):
        return ModelServiceError("out of memory: try fewer images or a smaller model")
    text = str(exc).strip()
    first = text.splitlines()[0][:300] if text else ""
    return ModelServiceError(f"{type(exc).__name__}: {first}" if first else type(exc).__name__)


def _call(handler: _Handler, method: str, args: tuple, kwargs: dict) -> tuple[str, Any]:
    """Run one request: ``("ok", answer)`` or ``("error", UserError)``."""
    try:
        return "ok", getattr(handler, method)(*args, **kwargs)
    except Exception as exc:
        if not isinstance(exc, UserError):
            traceback.print_exc()  # the details stay on the terminal, for a bug report
        return "error", _one_line(exc)


def _child_main(conn: Connection) -> None:
    """The child: answer requests until the pipe closes or ``None`` arrives."""
    handler = _Handler()
    try:
        while True:
            try:
                request = conn.recv()
            except EOFError:  # the window's process is gone
                return
            if request is None:
                return
            conn.send(_call(handler, *request))
    finally:
        conn.close()


class ModelService:
    """Owns the loaded Keras models; every call blocks until the answer is there.

    Call it from worker threads, never from the GUI thread: an answer takes from
    milliseconds (an activation update) to seconds (opening the first model, which starts the
    child and imports TensorFlow). ``in_process=True`` runs the same requests in the calling
    thread (tests, and tools that import TensorFlow anyway).
    """

    def __init__(self, *, in_process: bool = False):
        self._lock = threading.Lock()
        self._handler = _Handler() if in_process else None
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self._closed = False

    @property
    def pid(self) -> int | None:
        """The child's process id, None while none runs (or in process)."""
        return self._process.pid if self._process is not None else None

    def _start(self) -> Connection:
        ctx = multiprocessing.get_context("spawn")
        ours, theirs = ctx.Pipe()
        process = ctx.Process(
            target=_child_main, args=(theirs,), name="cifar-gui-models", daemon=True
        )
        process.start()
        theirs.close()  # the child holds the only other end: its death ends the pipe (EOF)
        self._process, self._conn = process, ours
        return ours

    def _request(self, method: str, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            if self._closed:
                raise ModelServiceError("the model service is closed")
            if self._handler is not None:
                status, value = _call(self._handler, method, args, kwargs)
            else:
                conn = self._conn or self._start()
                try:
                    conn.send((method, args, kwargs))
                    status, value = conn.recv()
                except (EOFError, OSError):
                    raise ModelServiceError(self._died()) from None
        if status == "error":
            raise value
        return value

    def _died(self) -> str:
        """Forget the dead child (the next request starts another); say how it ended."""
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if conn is not None:
            conn.close()
        code = None
        if process is not None:
            process.join(EXIT_WAIT_S)
            code = process.exitcode
        if self._closed:
            return "the model service is closed"
        if code is not None and code < 0:
            hint = " (out of memory?)" if code == -9 else ""
            how = f"was killed by signal {-code}{hint}"
        else:
            how = f"ended unexpectedly (exit code {code})"
        return f"the model process {how}; it starts again with the next request"

    def open(self, path: str | Path) -> ModelHandle:
        """Load a model file (``.keras`` or ``.h5``, with its sidecar when there is one)."""
        return self._request("open", Path(path))

    def save(self, handle: ModelHandle, path: str | Path) -> ModelHandle:
        """Save the handle's model and its sidecar to ``path``, atomically; the new handle."""
        return self._request("save", handle, Path(path))

    def activations(
        self, handle: ModelHandle, image: np.ndarray, layers: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Activations of one uint8 image at each named layer, each (1, ...) float32."""
        return self._request("activations", handle, image, list(layers) if layers else None)

    def grad_cam(
        self,
        handle: ModelHandle,
        image: np.ndarray,
        class_index: int | None = None,
        layer_name: str | None = None,
    ) -> np.ndarray:
        """Grad-CAM map (H, W) in [0, 1]; raises UserError for a model without convolution."""
        return self._request("grad_cam", handle, image, class_index, layer_name)

    def kernel(self, handle: ModelHandle, layer_name: str) -> np.ndarray:
        """The filters of convolution ``layer_name``: float32 (height, width, in, filters)."""
        return self._request("kernel", handle, layer_name)

    def predict_files(self, handle: ModelHandle, paths: Sequence[str | Path]) -> list[Prediction]:
        """Classify image files (ImageError names a file that cannot be read)."""
        return self._request("predict_files", handle, [str(p) for p in paths])

    def predict_images(
        self, handle: ModelHandle, images: np.ndarray, direct: bool = False
    ) -> np.ndarray:
        """Class probabilities (N, classes) of uint8 images (N, H, W, 3); ``direct`` for a few."""
        return self._request("predict_images", handle, images, direct)

    def evaluate(
        self,
        handle: ModelHandle,
        images: np.ndarray,
        labels: np.ndarray,
        num_classes: int | None = None,
    ) -> Evaluation:
        """Loss, accuracy and confusion matrix on uint8 images and 0-based labels."""
        return self._request("evaluate", handle, images, labels, num_classes)

    def planned_parameter_counts(self, config: RunConfig, num_classes: int) -> dict[str, int]:
        """The parameter counts a run of ``config`` will train (see models.planned_...)."""
        return self._request("planned_parameter_counts", config, num_classes)

    def close(self) -> None:
        """End the child; a request waiting for it raises. Later requests raise too."""
        self._closed = True
        process, conn = self._process, self._conn
        if process is None:
            return
        if self._lock.acquire(blocking=False):  # idle: ask it to leave
            try:
                with contextlib.suppress(OSError):
                    conn.send(None)
                process.join(EXIT_WAIT_S)
            finally:
                self._process = self._conn = None
                conn.close()
                self._lock.release()
        if process.is_alive():  # busy or hung: its request is abandoned (writes are atomic)
            process.kill()  # the waiting request gets EOF and raises "closed"
            process.join()
