"""The window's side of the engine service: :class:`EngineService` sends each request to the
service's child process and waits for its answer.

Why a child: importing TensorFlow and calling Keras hold the interpreter lock for seconds
(loading the first model stalled the window's event loop for 2.7 s; the first augmentation
previews, computed in the window's process, stalled it for about half a second). The window's
process keeps only plain data (:class:`ModelHandle`, :class:`DeviceInfo`, numpy arrays, the
dataclasses of :mod:`cifar_gui.engine.models.predictions`) and asks an :class:`EngineService` for
everything that needs TensorFlow: models, activations, predictions, evaluations, augmentation
previews and the device. The service sends each request through a pipe to its one child
(started with ``spawn``: a fresh interpreter, nothing of Qt copied), which runs
:mod:`cifar_gui.engine.service.handler`. Requests are serialised by a lock, so a model is only
ever used by one thread. A child that dies is started again by the next request.

This module imports neither Qt nor TensorFlow; the child (or, with ``in_process=True``, the
calling thread) imports them when it first needs them.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cifar_gui.config import AugmentConfig, RunConfig
from cifar_gui.engine.models.predictions import Evaluation, Prediction
from cifar_gui.engine.service.replies import DeviceInfo, ModelHandle, ServiceError

if TYPE_CHECKING:
    from cifar_gui.engine.service.handler import Handler
    from cifar_gui.engine.study.estimate import StudyEstimate
    from cifar_gui.engine.study.plan import StudyPlan

EXIT_WAIT_S = 10.0  # after close(), how long the child may take to exit before it is killed


def _child_main(conn: Connection) -> None:
    """The child's entry point; the handler (and with it TensorFlow) is imported only here."""
    from cifar_gui.engine.service.handler import serve

    serve(conn)


class EngineService:
    """Answers every request the window makes of TensorFlow; each call blocks until the
    answer is there.

    Call it from worker threads, never from the GUI thread: an answer takes from
    milliseconds (an activation update) to seconds (the first request, which starts the
    child and imports TensorFlow). ``in_process=True`` runs the same requests in the calling
    thread (tests, and tools that import TensorFlow anyway).
    """

    def __init__(self, *, in_process: bool = False):
        self._lock = threading.Lock()
        self._handler: Handler | None = None
        if in_process:
            from cifar_gui.engine.service.handler import Handler

            self._handler = Handler()
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self._closed = False
        self._leaving: multiprocessing.process.BaseProcess | None = None  # closed, not joined

    @property
    def pid(self) -> int | None:
        """The child's process id, None while none runs (or in process)."""
        return self._process.pid if self._process is not None else None

    def _start(self) -> Connection:
        ctx = multiprocessing.get_context("spawn")
        ours, theirs = ctx.Pipe()
        process = ctx.Process(
            target=_child_main, args=(theirs,), name="cifar-gui-engine", daemon=True
        )
        process.start()
        theirs.close()  # the child holds the only other end: its death ends the pipe (EOF)
        self._process, self._conn = process, ours
        return ours

    def _request(self, method: str, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            if self._closed:
                raise ServiceError("the engine service is closed")
            if self._handler is not None:
                from cifar_gui.engine.service.handler import call

                status, value = call(self._handler, method, args, kwargs)
            else:
                conn = self._conn or self._start()
                try:
                    conn.send((method, args, kwargs))
                    status, value = conn.recv()
                except (EOFError, OSError):
                    raise ServiceError(self._died()) from None
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
            return "the engine service is closed"
        if code is not None and code < 0:
            hint = " (out of memory?)" if code == -9 else ""
            how = f"was killed by signal {-code}{hint}"
        else:
            how = f"ended unexpectedly (exit code {code})"
        return f"the engine process {how}; it starts again with the next request"

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

    def study_estimate(
        self,
        plan: StudyPlan,
        class_names: Sequence[str],
        counts: dict[str, Sequence[int]],
        image_shape: tuple[int, int, int],
    ) -> StudyEstimate:
        """What ``plan`` will run and each step's estimated seconds here, calibrated in the
        child (see :func:`cifar_gui.engine.study.estimate.preflight`)."""
        return self._request("study_estimate", plan, class_names, counts, image_shape)

    def augment_copies(
        self, image: np.ndarray, config: AugmentConfig, count: int, seed: int
    ) -> np.ndarray:
        """``count`` augmented copies of one uint8 picture (H, W, 3): (count, H, W, 3) uint8,
        made by training's own transform (:func:`~cifar_gui.engine.data.augment.augment_images`)."""
        return self._request("augment_copies", image, config, count, seed)

    def augment_batch(self, images: np.ndarray, config: AugmentConfig, seed: int) -> np.ndarray:
        """One augmented copy of each uint8 picture of ``images`` (N, H, W, 3), each its own
        draw (see :func:`~cifar_gui.engine.data.augment.preview_batch`)."""
        return self._request("augment_batch", images, config, seed)

    def detect_device(self) -> DeviceInfo:
        """The device training runs on and the versions of TensorFlow, Keras and this app."""
        return self._request("detect_device")

    def close(self, wait: bool = True) -> None:
        """End the child; a request waiting for it raises. Later requests raise too.

        ``wait=False`` (the window, as it closes): ask the child to leave and return at once,
        so the event loop goes on while it exits; :meth:`wait_closed` waits for it later. (Not
        a thread that waits: even starting one held a loaded GUI thread for 75 ms.)
        """
        self._closed = True
        process, conn = self._process, self._conn
        if process is None:
            return
        if self._lock.acquire(blocking=False):  # idle: ask it to leave
            try:
                with contextlib.suppress(OSError):
                    conn.send(None)
            finally:
                self._process = self._conn = None
                conn.close()  # after the request to leave: the child reads it before the EOF
                self._lock.release()
        else:  # busy or hung: its request is abandoned (writes are atomic)
            process.kill()  # the waiting request gets EOF and raises "closed"
        self._leaving = process
        if wait:
            self.wait_closed()

    def wait_closed(self, timeout: float | None = None) -> bool:
        """Wait for the child :meth:`close` ended; whether it has.

        ``None``: up to :data:`EXIT_WAIT_S`, then it is killed (hung: nothing of it is kept,
        files are written atomically); a number of seconds: that long, and no kill.
        """
        process = self._leaving
        if process is None:
            return True
        process.join(EXIT_WAIT_S if timeout is None else timeout)
        if process.is_alive() and timeout is None:
            process.kill()
            process.join()
        if process.is_alive():
            return False
        self._leaving = None
        return True
