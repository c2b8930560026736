"""The plain events a training run reports (no Keras, no Qt): they cross the pipe from the
training process and reach the CLI's progress bar and the window alike. The live view's
request and snapshots (:mod:`cifar_gui.engine.live`) are plain data too."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cifar_gui import tutorial


@dataclass(frozen=True)
class BatchEvent:
    """After each compiled call of ``steps_per_execution`` training batches (one, unless set
    otherwise). Loss and accuracy are running means over the epoch."""

    epoch: int  # 0-based
    epochs: int
    batch: int  # 0-based, within the epoch: the call's last batch
    steps: int  # batches per epoch
    loss: float
    accuracy: float
    images_per_second: float
    eta_seconds: float  # to the end of the run


@dataclass(frozen=True)
class EpochEvent:
    """After each epoch, with its training and validation metrics."""

    epoch: int  # 0-based
    epochs: int
    metrics: dict[str, float]  # loss, accuracy, val_loss, val_accuracy
    seconds: float


@dataclass(frozen=True)
class LiveRequest:
    """What the live view asks the training process to show: a probe image, either test
    image ``test_index`` (0-based, of the run's test images; default the seed's image 5) or
    ``image`` (uint8, the model's input size); one layer by qualified name (None: the first
    convolution); refreshed at every epoch's end, and every ``every_batches`` batches when
    set."""

    test_index: int = tutorial.TEST_INDEX
    image: np.ndarray | None = None
    layer: str | None = None
    every_batches: int | None = None


@dataclass(frozen=True)
class LayerHealth:
    """One layer at one refresh. ``mean`` and ``zero_fraction``: of its outputs over the
    probe images (zero_fraction of a ReLU layer: its dead or silent units); ``weight_norm``:
    the L2 norm of its kernel; ``update_ratio``: the norm of the kernel's change since the
    previous refresh, per training step, over the kernel's norm (NaN at the first refresh)."""

    name: str
    mean: float
    zero_fraction: float
    weight_norm: float
    update_ratio: float


@dataclass(frozen=True)
class LiveSnapshot:
    """The model as it is now, for the live view: small arrays only (a few hundred kB)."""

    epoch: int  # 0-based
    batch: int  # batches done in the epoch (``steps`` at its end)
    steps: int
    image: np.ndarray  # the probe image (uint8)
    image_caption: str  # which image it is
    layers: tuple[str, ...]  # every layer that can be asked for
    layer: str
    activation: np.ndarray  # (H, W, C) float32: the probe image at ``layer``
    cam: np.ndarray | None  # (H, W) in [0, 1]: Grad-CAM of the predicted class, if any
    filters_layer: str | None
    filters: np.ndarray | None  # (h, w, 3, N) float32: the first convolution's kernel
    probabilities: tuple[float, ...]  # of the probe image, per class
    health: tuple[LayerHealth, ...]
    strip_indices: tuple[int, ...]  # test images of the prediction strip (0-based)
    strip_images: np.ndarray  # (8, H, W, 3) uint8: those images
    strip_labels: tuple[int, ...]  # their true classes
    strip_true_probability: tuple[float, ...]  # each one's probability of its true class
    strip_correct: tuple[bool, ...]
    running_accuracy: float  # over the last RUNNING_WINDOW test predictions
    running_count: int  # how many predictions that is (fewer at first)
    class_names: tuple[str, ...] = ()
