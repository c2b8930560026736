"""The frozen front of a model and its feature cache: the leading layers training cannot
change run outside the training step (:func:`split_front`, :class:`FrozenFront`), and
:func:`plan_fit` says what ``fit`` then trains: the whole model on images, or its head on the
front's outputs (:mod:`cifar_gui.engine.training.performance`, ``feature_cache``)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from cifar_gui.config import RunConfig
from cifar_gui.engine.data.dataset import Subset, scale_images
from cifar_gui.engine.models.build import compile_model
from cifar_gui.engine.models.keras_internals import (
    every_call_inputs,
    has_training_argument,
    made_by,
)
from cifar_gui.engine.training.performance import resolve_steps_per_execution
from cifar_gui.engine.training.pipeline import EVAL_BATCH_SIZE, EpochStream, eval_dataset


def _chain(model: keras.Model) -> list[keras.layers.Layer] | None:
    """The layers of a nested model in call order when it is a plain chain (each layer fed by
    the one before: any Sequential, most Functional bases such as VGG16), else None."""
    if isinstance(model, keras.Sequential):
        return list(model.layers)
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    if len(model.inputs) != 1 or len(model.outputs) != 1 or not layers:
        return None
    previous = made_by(model.inputs[0])
    for layer in layers:
        fed_by = [[made_by(t) for t in inputs] for inputs in every_call_inputs(layer)]
        if [previous] not in fed_by:
            return None
        previous = layer
    return layers if made_by(model.outputs[0]) is previous else None


def _same_in_inference(layer: keras.layers.Layer) -> bool:
    """Whether ``layer`` computes the same in inference mode as in training (no dropout, no
    noise, no batch statistics), so running it in inference mode changes nothing."""
    if isinstance(layer, keras.Model):
        return all(_same_in_inference(inner) for inner in layer.layers)
    if isinstance(layer, keras.layers.BatchNormalization):
        return not layer.trainable  # a frozen one normalises with its moving statistics
    return not has_training_argument(layer)


def _units(layers: Sequence[keras.layers.Layer]) -> list[keras.layers.Layer]:
    """``layers`` with every nested model that is partly trainable opened up into its own
    layers (recursively), so a front can end inside it; a frozen or fully trainable nested
    model stays one unit, as does one that is not a chain."""
    out: list[keras.layers.Layer] = []
    for layer in layers:
        inner = _chain(layer) if isinstance(layer, keras.Model) else None
        partly = inner is not None and layer.trainable_weights and layer.non_trainable_weights
        out.extend(_units(inner) if partly else [layer])
    return out


def split_front(
    model: keras.Model, config: RunConfig
) -> tuple[list[keras.layers.Layer], list[keras.layers.Layer]]:
    """The frozen front of ``model`` and the rest (its head), as lists of its own layers.

    The front: the leading layers of a Sequential model, nested models opened up
    (:func:`_units`), that training cannot change (no trainable weights) and that compute the
    same in inference mode, when they hold weights worth skipping (a frozen base). Running
    them outside the training step gives the head the same inputs, so the same arithmetic.
    No front (``[]`` and all the layers) when there is none or ``config.feature_cache`` is off.
    """
    if not config.feature_cache or not isinstance(model, keras.Sequential):
        return [], list(model.layers)
    units = _units(model.layers)
    count = 0
    for layer in units[:-1]:
        if layer.trainable_weights or not _same_in_inference(layer):
            break
        count += 1
    if not any(layer.weights for layer in units[:count]):
        return [], list(model.layers)
    return units[:count], units[count:]


class FrozenFront:
    """Layers run in inference mode, compiled once: ``front(x)`` is their output for ``x``."""

    def __init__(self, layers: Sequence[keras.layers.Layer]):
        self.layers = list(layers)

    @tf.function(reduce_retracing=True)
    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        for layer in self.layers:
            x = layer(x, training=False)
        return x

    def features(self, images: np.ndarray) -> np.ndarray:
        """The outputs for uint8 images, scaled as training scales them, in order."""
        batches = tf.data.Dataset.from_tensor_slices(images).batch(EVAL_BATCH_SIZE)
        return np.concatenate([self(batch).numpy() for batch in batches.map(scale_images)])


@dataclass
class FitPlan:
    """What ``fit`` trains on: the whole model on images, or its head on front outputs."""

    model: keras.Model
    train: EpochStream
    validation: tf.data.Dataset | None
    front_layers: int = 0  # layers run outside the training step (nested ones counted)
    feature_seconds: float | None = None  # time to compute the features computed once


def plan_fit(
    model: keras.Model, config: RunConfig, subset: Subset, batch_size: int, steps: int
) -> FitPlan:
    """Fit the whole model, or, behind a frozen front (:func:`split_front`), only its head;
    ``steps`` batches an epoch, run ``config.steps_per_execution`` at a time.

    The front runs in inference mode outside the training step: on the test images once, and
    on the training images once as well when they are not augmented; else on every prepared
    chunk of augmented images in the input pipeline. The head is made of the model's own
    layers, so training it trains the model that is returned and saved, base included; it
    shares the model's optimizer and its state.
    """
    batched = config.replace(batch_size=batch_size)
    front_layers, head_layers = split_front(model, config)
    # Read when fit makes its train function, so it may change after compile.
    model.steps_per_execution = resolve_steps_per_execution(config.steps_per_execution, steps)
    if not front_layers:
        validation = eval_dataset(subset.x_test, subset.y_test) if len(subset.x_test) else None
        return FitPlan(model, EpochStream(subset.x_train, subset.y_train, batched), validation)
    started = time.perf_counter()
    front = FrozenFront(front_layers)
    if config.augments:
        train = EpochStream(subset.x_train, subset.y_train, batched, front=front)
        sample = front(scale_images(tf.convert_to_tensor(subset.x_train[:1])))
    else:
        features = front.features(subset.x_train)
        train = EpochStream(features, subset.y_train, batched, features=True)
        sample = features[:1]
    validation = None
    if len(subset.x_test):
        validation = eval_dataset(front.features(subset.x_test), subset.y_test, features=True)
    head = keras.Sequential(
        [keras.Input(sample.shape[1:], dtype=sample.dtype.name), *head_layers],
        name=f"{model.name}_head",
    )
    compile_model(head, config, subset.num_classes, optimizer=model.optimizer)
    head.steps_per_execution = model.steps_per_execution
    return FitPlan(head, train, validation, len(front_layers), time.perf_counter() - started)
