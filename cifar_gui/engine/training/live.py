"""Watch a model learn: what the live view shows, computed where the model is.

The training process owns the model, so it makes each :class:`LiveSnapshot` itself, in one
forward pass over a few dozen images (the probe image, the prediction strip and the next
test images of the running accuracy) plus one Grad-CAM pass, and sends only small arrays:
the chosen layer's activations, the first convolution's kernel, per-layer health numbers and
the strip's probabilities. The window draws them with the widgets of the Activations tab.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from cifar_gui.engine.data.dataset import scale_images
from cifar_gui.engine.errors import ModelError
from cifar_gui.engine.events import LayerHealth, LiveRequest, LiveSnapshot
from cifar_gui.engine.models.inspect import (
    forward_outputs,
    grad_cam,
    layer_chain,
    outputs_to_probabilities,
)

STRIP_SIZE = 8  # test images in the prediction strip: four per class for a pair
RUNNING_WINDOW = 200  # test predictions the running accuracy is taken over
TEST_PER_REFRESH = 50  # new test images predicted at each refresh for the running accuracy


def strip_indices(labels: np.ndarray, seed: int, size: int = STRIP_SIZE) -> tuple[int, ...]:
    """``size`` test images chosen by ``seed``, the classes taken in turn (four per class
    for a pair), so the strip shows both classes whatever the test set's order."""
    labels = np.asarray(labels).astype(np.int64)
    rng = np.random.default_rng([seed, 17])
    pools = [list(rng.permutation(np.flatnonzero(labels == c))) for c in np.unique(labels)]
    chosen: list[int] = []
    while len(chosen) < min(size, len(labels)):
        for pool in pools:
            if pool and len(chosen) < size:
                chosen.append(int(pool.pop(0)))
    return tuple(chosen)


def _kernel(layer: keras.layers.Layer) -> tf.Variable | None:
    return getattr(layer, "kernel", None)


class LiveProbe:
    """Makes the snapshots of one run's model; keeps what the next one compares against
    (the kernels at the previous refresh) and the running window of test predictions."""

    def __init__(
        self,
        model: keras.Model,
        x_test: np.ndarray,
        y_test: np.ndarray,
        request: LiveRequest,
        seed: int = 0,
        class_names: tuple[str, ...] = (),
    ):
        self.model = model
        self.x_test, self.y_test = np.asarray(x_test), np.asarray(y_test).astype(np.int64)
        self.class_names = tuple(class_names)
        if not len(self.x_test):
            raise ModelError("the live view needs test images")
        self.chain = layer_chain(model)
        self.names = [name for name, _ in self.chain]
        self.adopt(request)
        self.strip = strip_indices(self.y_test, seed)
        self._recent: deque[bool] = deque(maxlen=RUNNING_WINDOW)
        self._next_test = 0
        self._previous: dict[str, np.ndarray] = {}
        self._previous_step = 0
        convs = [n for n, layer in self.chain if isinstance(layer, keras.layers.Conv2D)]
        colour = [n for n in convs if self._layer(n).kernel.shape[2] == 3]
        self.filters_layer = colour[0] if colour else None
        self.default_layer = convs[0] if convs else self.names[0]

    def _layer(self, name: str) -> keras.layers.Layer:
        return dict(self.chain)[name]

    def set_request(self, request: LiveRequest) -> None:
        """Change the probe image or layer; the next snapshot shows them."""
        if request.layer is not None and request.layer not in self.names:
            raise ModelError(f"no layer {request.layer!r} in the model")
        if request.image is None and not 0 <= request.test_index < len(self.x_test):
            raise ModelError(
                f"no test image {request.test_index + 1}: the run has {len(self.x_test)}"
            )
        self.request = request

    def adopt(self, request: LiveRequest) -> None:
        """:meth:`set_request` for the window's request, which may name a layer of the previous
        model (between the runs of a study the window still lists its layers): a layer this
        model does not have means its first convolution."""
        if request.layer is not None and request.layer not in self.names:
            request = dataclasses.replace(request, layer=None)
        self.set_request(request)

    def probe_image(self) -> tuple[np.ndarray, str]:
        """The image the request names, and a caption saying which it is."""
        if self.request.image is not None:
            return np.asarray(self.request.image, dtype=np.uint8), "the image chosen"
        index = self.request.test_index
        label = int(self.y_test[index])
        name = self.class_names[label] if label < len(self.class_names) else f"class {label}"
        return self.x_test[index], f"test image {index + 1}, true class {name}"

    def snapshot(self, epoch: int, batch: int, steps: int, step: int) -> LiveSnapshot:
        """The model as it is now. ``step``: training steps done in the run so far (for the
        update ratio per step)."""
        layer = self.request.layer or self.default_layer
        count = min(TEST_PER_REFRESH, len(self.x_test))
        fresh = (self._next_test + np.arange(count)) % len(self.x_test)
        self._next_test = int((self._next_test + count) % len(self.x_test))
        image, caption = self.probe_image()
        images = np.concatenate([image[None], self.x_test[list(self.strip)], self.x_test[fresh]])
        weighted = [n for n, lay in self.chain if _kernel(lay) is not None]
        outputs, raw = forward_outputs(
            self.model, tf.convert_to_tensor(scale_images(images)), {layer, *weighted}
        )
        probs, _ = outputs_to_probabilities(self.model, np.asarray(tf.cast(raw, tf.float32)))
        probe_rows = 1 + len(self.strip)  # health over the probe image and the strip
        health = tuple(
            self._health(name, np.asarray(tf.cast(outputs[name][:probe_rows], tf.float32)), step)
            for name in weighted
        )
        self._previous_step = step
        strip_probs = probs[1:probe_rows]
        strip_true = strip_probs[np.arange(len(self.strip)), self.y_test[list(self.strip)]]
        strip_correct = strip_probs.argmax(axis=1) == self.y_test[list(self.strip)]
        self._recent.extend(
            bool(v) for v in probs[probe_rows:].argmax(axis=1) == self.y_test[fresh]
        )
        try:
            cam = grad_cam(self.model, image)
        except (ValueError, KeyError):  # no convolution: no map
            cam = None
        activation = np.asarray(tf.cast(outputs[layer][0], tf.float32))
        return LiveSnapshot(
            epoch=epoch,
            batch=batch,
            steps=steps,
            image=image,
            image_caption=caption,
            layers=tuple(self.names),
            layer=layer,
            activation=activation if activation.ndim == 3 else activation.reshape(1, 1, -1),
            cam=cam,
            filters_layer=self.filters_layer,
            filters=(
                None
                if self.filters_layer is None
                else np.asarray(self._layer(self.filters_layer).kernel.numpy(), np.float32)
            ),
            probabilities=tuple(float(p) for p in probs[0]),
            health=health,
            strip_indices=self.strip,
            strip_images=self.x_test[list(self.strip)],
            strip_labels=tuple(int(v) for v in self.y_test[list(self.strip)]),
            strip_true_probability=tuple(float(p) for p in strip_true),
            strip_correct=tuple(bool(c) for c in strip_correct),
            running_accuracy=float(np.mean(self._recent)),
            running_count=len(self._recent),
            class_names=self.class_names,
        )

    def _health(self, name: str, values: np.ndarray, step: int) -> LayerHealth:
        layer = self._layer(name)
        kernel = np.asarray(layer.kernel.numpy(), dtype=np.float32)
        norm = float(np.linalg.norm(kernel))
        previous = self._previous.get(name)
        steps = step - self._previous_step
        if not layer.trainable:  # frozen: its weights cannot have moved
            ratio = 0.0
        elif previous is None or steps <= 0 or norm == 0:
            ratio = float("nan")
        else:
            ratio = float(np.linalg.norm(kernel - previous)) / steps / norm
        if layer.trainable:
            self._previous[name] = kernel
        return LayerHealth(
            name=name,
            mean=float(values.mean()),
            zero_fraction=float(np.mean(values == 0)),
            weight_norm=norm,
            update_ratio=ratio,
        )


class LiveCallback(keras.callbacks.Callback):
    """Sends a snapshot at the end of every epoch, and every ``every_batches`` batches when
    the request asks for it. ``request()`` gives the window's latest request (or None: no
    change), polled before each snapshot, so a new image or layer shows at the next one.

    The probe holds the whole model: ``fit`` may be training only its head (behind a frozen
    front), whose layers are the model's own.
    """

    def __init__(
        self,
        probe: LiveProbe,
        send: Callable[[LiveSnapshot], None],
        request: Callable[[], LiveRequest | None],
        steps: int,
        initial_epoch: int = 0,
    ):
        super().__init__()
        self.probe, self.send, self.request = probe, send, request
        self.steps = steps
        self.epoch = initial_epoch
        self.done_before = initial_epoch * steps  # training steps of earlier epochs
        self.last_refresh = 0  # batches of this epoch at the last snapshot

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch, self.last_refresh = epoch, 0
        self.done_before = epoch * self.steps

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        every = self.probe.request.every_batches
        done = min(batch + 1, self.steps)  # a call's last batch; the epoch's last call may be short
        if every and done < self.steps and done // every > self.last_refresh // every:
            self._refresh(done)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._refresh(self.steps)

    def _refresh(self, done: int) -> None:
        latest = self.request()
        if latest is not None:
            self.probe.adopt(latest)
        self.last_refresh = done
        self.send(self.probe.snapshot(self.epoch, done, self.steps, self.done_before + done))
