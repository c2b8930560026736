"""What looking inside a model answers, as plain data (numpy arrays and frozen dataclasses).

Kept apart from :mod:`cifar_gui.engine.models.inspect`, which imports Keras: the window's process
receives these from the model service's child and must never import TensorFlow (unpickling
a class imports its module).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LayerInfo:
    """One inspectable layer: qualified name, output shape without the batch axis, and for a
    2-D convolution its kernel's shape (height, width, input channels, filters)."""

    name: str
    output_shape: tuple[int, ...]
    kernel_shape: tuple[int, ...] = ()  # () for a layer that is no convolution


@dataclass(frozen=True)
class Prediction:
    """Class probabilities for one image, with the input exactly as the model saw it."""

    path: str
    class_names: tuple[str, ...]
    probabilities: tuple[float, ...]
    image: np.ndarray  # (H, W, 3) uint8 after conversion and resizing
    from_logits: bool = False  # the model gave scores; these are their sigmoid/softmax

    @property
    def label(self) -> str:
        return self.class_names[int(np.argmax(self.probabilities))]

    @property
    def confidence(self) -> float:
        return float(max(self.probabilities))


@dataclass(frozen=True)
class Evaluation:
    """Test-set performance of a model on a class subset."""

    loss: float
    accuracy: float
    confusion: np.ndarray  # (k, k): row = true class, column = predicted class
    probabilities: np.ndarray  # (N, k)
    labels: np.ndarray  # (N,) true labels
    from_logits: bool = False  # the model gave scores; the probabilities are their softmax

    @property
    def predicted(self) -> np.ndarray:
        return np.argmax(self.probabilities, axis=1)

    def misclassified(self) -> np.ndarray:
        """Indices of wrong predictions, most confident first."""
        wrong = np.flatnonzero(self.predicted != self.labels)
        return wrong[np.argsort(-self.probabilities[wrong].max(axis=1), kind="stable")]
