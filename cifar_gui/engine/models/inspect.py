"""Look inside a model: layer activations, predictions for image files, Grad-CAM maps.

Models are walked layer by layer, and the VGG16 base nested inside the transfer models is
opened up, so its layers (``vgg16/block1_conv1`` ...) can be inspected like the others. A
sub-model cut at an inner layer of a nested base is what popular recipes get wrong; calling
the layers in order avoids it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from cifar_gui.engine.data.dataset import read_image, scale_images
from cifar_gui.engine.errors import ModelError
from cifar_gui.engine.models.build import VGG16_BASE_NAME
from cifar_gui.engine.models.keras_internals import call_inputs, producer
from cifar_gui.engine.models.predictions import Evaluation, LayerInfo, Prediction
from cifar_gui.engine.record import class_count

SEED_ACTIVATION_LAYERS = 8  # the seed's activation model: the first eight layers


def layer_chain(model: keras.Model) -> list[tuple[str, keras.layers.Layer]]:
    """The model as a chain of (qualified name, layer), with a nested VGG16 base opened up."""
    steps = []
    for layer in model.layers:
        if layer.name == VGG16_BASE_NAME and isinstance(layer, keras.Model):
            steps += [
                (f"{layer.name}/{inner.name}", inner)
                for inner in layer.layers
                if not isinstance(inner, keras.layers.InputLayer)
            ]
        else:
            steps.append((layer.name, layer))
    return steps


def list_layers(model: keras.Model) -> list[LayerInfo]:
    """Every inspectable layer in call order, with its output shape (and kernel shape)."""
    out = []
    for name, layer in layer_chain(model):
        shape = layer.output.shape if hasattr(layer, "output") else ()
        kernel = tuple(layer.kernel.shape) if isinstance(layer, keras.layers.Conv2D) else ()
        out.append(LayerInfo(name, tuple(int(d) for d in shape[1:] if d is not None), kernel))
    return out


def conv_kernel(model: keras.Model, layer_name: str) -> np.ndarray:
    """The kernel of the 2-D convolution ``layer_name`` (a qualified name), as float32
    (height, width, input channels, filters): the weights as they are now."""
    for name, layer in layer_chain(model):
        if name == layer_name:
            if not isinstance(layer, keras.layers.Conv2D):
                raise ModelError(f"layer {layer_name!r} is no convolution: it has no filters")
            return np.asarray(layer.kernel.numpy(), dtype=np.float32)
    raise ModelError(f"no layer {layer_name!r} in the model")


def default_layers(model: keras.Model) -> list[str]:
    """The seed's choice: the first eight layers."""
    return [info.name for info in list_layers(model)[:SEED_ACTIVATION_LAYERS]]


def forward_outputs(
    model: keras.Model, batch: tf.Tensor, wanted: set[str]
) -> tuple[dict, tf.Tensor]:
    """Run the chain; return the outputs of ``wanted`` layers and the model output."""
    outputs = {}
    x = batch
    for name, layer in layer_chain(model):
        x = layer(x, training=False)
        if name in wanted:
            outputs[name] = x
    return outputs, x


def activations(
    model: keras.Model, image: np.ndarray, layer_names: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """Activations of one uint8 image (H, W, 3) at each named layer, each (1, ...) float32.

    Defaults to the first eight layers, as the seed's activation model. The image goes
    through :func:`scale_images` once (the seed divides by 255 twice here).
    """
    names = list(layer_names) if layer_names is not None else default_layers(model)
    known = {info.name for info in list_layers(model)}
    missing = [n for n in names if n not in known]
    if missing:
        raise KeyError(f"no layer {missing[0]!r} in the model")
    batch = tf.convert_to_tensor(scale_images(image)[None])
    outputs, _ = forward_outputs(model, batch, set(names))
    return {n: np.asarray(outputs[n], dtype=np.float32) for n in names}


# Output activations that already give probabilities (per unit, or summing to 1).
_PROBABILITY_ACTIVATIONS = frozenset({"sigmoid", "softmax", "hard_sigmoid"})
# Layers and operations that pass their input's values on unchanged at inference.
_PASS_THROUGH = frozenset(
    {
        "Dropout",
        "SpatialDropout1D",
        "SpatialDropout2D",
        "SpatialDropout3D",
        "GaussianDropout",
        "GaussianNoise",
        "AlphaDropout",
        "ActivityRegularization",
        "Identity",
        "Flatten",
        "Reshape",
    }
)


def output_activation(model: keras.Model) -> str | None:
    """The activation that makes the model's output: ``"sigmoid"``, ``"softmax"``, ``"linear"``
    ..., or None when the model's structure does not say (a Lambda or custom layer).

    Follows the output back through nested models, ``Activation`` and ``Softmax`` layers,
    ``keras.ops`` activations and layers that only pass values on (dropout, reshapes).
    """
    try:
        tensor = model.outputs[0]
    except (AttributeError, IndexError, TypeError, ValueError):  # not a built Keras model
        return None
    for _ in range(1000):  # a chain, not a loop; bounded all the same
        made = producer(tensor)
        if made is None:
            return None
        op, call = made
        kind = type(op).__name__
        if isinstance(op, keras.Model):
            tensor = op.outputs[0] if op.outputs else None
            continue
        if kind in ("Softmax", "Sigmoid", "LogSoftmax"):  # layers and keras.ops
            return {"Softmax": "softmax", "Sigmoid": "sigmoid"}.get(kind, "log_softmax")
        name = getattr(getattr(op, "activation", None), "__name__", None)
        if kind == "Activation" and name == "linear":
            pass  # look further back
        elif name is not None or kind not in _PASS_THROUGH:
            return name
        inputs = call_inputs(op, call)
        tensor = inputs[0] if len(inputs) == 1 else None
    return None


def _are_logits(model: keras.Model, raw: np.ndarray) -> bool:
    """Whether raw outputs are scores to pass through sigmoid/softmax rather than probabilities.

    The model's output activation decides; only where its structure does not say are the
    values looked at: anything outside [0, 1], or several outputs not summing to 1, are scores.
    """
    activation = output_activation(model)
    if activation is not None:
        return activation not in _PROBABILITY_ACTIVATIONS
    if raw.size == 0:
        return False
    if not np.all((raw >= 0.0) & (raw <= 1.0)):
        return True
    return raw.shape[-1] > 1 and not np.allclose(raw.sum(axis=-1), 1.0, atol=1e-3)


def _scores_to_probabilities(raw: np.ndarray) -> np.ndarray:
    """Sigmoid of one score, softmax of several (both without overflow)."""
    if raw.shape[-1] == 1:
        return 0.5 * (1.0 + np.tanh(0.5 * raw))
    shifted = np.exp(raw - raw.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def class_probabilities(
    model: keras.Model, images: np.ndarray, direct: bool = False
) -> tuple[np.ndarray, bool]:
    """Class probabilities (N, classes) for uint8 images (N, H, W, 3), and whether the model
    gave scores (logits) that were turned into probabilities here.

    A model whose last layer has no sigmoid or softmax (a linear ``Dense``) outputs scores, not
    probabilities: they go through a sigmoid (one unit) or a softmax (several), which is what
    training such a model ``from_logits`` means, so what is shown is a probability either way.
    ``direct`` calls the model once on the whole batch instead of ``predict``: for a few
    images that takes ~2 ms, where ``predict`` spends ~200 ms setting up its data pipeline.
    """
    scaled = scale_images(images)
    if direct:
        raw = np.asarray(model(scaled, training=False), dtype=np.float64)
    else:
        raw = np.asarray(model.predict(scaled, verbose=0), dtype=np.float64)
    return outputs_to_probabilities(model, raw)


def outputs_to_probabilities(model: keras.Model, raw: np.ndarray) -> tuple[np.ndarray, bool]:
    """The model's raw outputs (N, units) as class probabilities (N, classes), and whether
    they were scores (see :func:`class_probabilities`)."""
    raw = np.asarray(raw, dtype=np.float64)
    from_logits = _are_logits(model, raw)
    probs = _scores_to_probabilities(raw) if from_logits else raw
    if probs.shape[-1] == 1:  # one sigmoid unit: probability of class 1
        probs = np.concatenate([1.0 - probs, probs], axis=-1)
    return probs, from_logits


def probabilities(model: keras.Model, images: np.ndarray, direct: bool = False) -> np.ndarray:
    """Class probabilities (N, classes) for uint8 images: :func:`class_probabilities` without
    the flag."""
    return class_probabilities(model, images, direct)[0]


def predict_files(
    model: keras.Model, paths: Sequence[str | os.PathLike], class_names: Sequence[str]
) -> list[Prediction]:
    """Classify image files (any format PIL reads, any size or mode); raises ImageError, or
    ModelError for a model that cannot take colour images or whose class names do not fit."""
    from cifar_gui.engine.errors import ModelError

    channels = model.input_shape[-1]
    if channels != 3:
        raise ModelError(f"the model takes {channels}-channel images; images are read as RGB")
    outputs = model.output_shape[-1]
    if len(class_names) != class_count(outputs):
        raise ModelError(
            f"the model has {outputs} output{'s' if outputs > 1 else ''} but "
            f"{len(class_names)} class names"
        )
    size = tuple(model.input_shape[1:3])
    images = np.stack([read_image(p, size) for p in paths])
    probs, from_logits = class_probabilities(model, images)
    return [
        Prediction(str(p), tuple(class_names), tuple(float(v) for v in row), img, from_logits)
        for p, row, img in zip(paths, probs, images, strict=True)
    ]


def last_conv_layer(model: keras.Model) -> str:
    """Qualified name of the last convolution (Grad-CAM's usual choice)."""
    convs = [name for name, layer in layer_chain(model) if isinstance(layer, keras.layers.Conv2D)]
    if not convs:
        raise ValueError("the model has no convolutional layer")
    return convs[-1]


def grad_cam(
    model: keras.Model,
    image: np.ndarray,
    class_index: int | None = None,
    layer_name: str | None = None,
) -> np.ndarray:
    """Grad-CAM heat map in [0, 1] of the image's size (H, W) for ``class_index``.

    ``class_index`` defaults to the predicted class. Works through a nested VGG16 base.
    """
    layer_name = layer_name or last_conv_layer(model)
    batch = tf.convert_to_tensor(scale_images(image)[None])
    with tf.GradientTape() as tape:
        x = batch
        feature = None
        for name, layer in layer_chain(model):
            x = layer(x, training=False)
            if name == layer_name:
                feature = x
                tape.watch(feature)
        if feature is None:
            raise KeyError(f"no layer {layer_name!r} in the model")
        out = tf.cast(x, tf.float32)[0]
        if out.shape[-1] == 1:  # sigmoid: class 1 is p, class 0 is 1 - p
            # A score (logit) says class 1 from 0 up, a probability from 0.5 up.
            threshold = 0.0 if _are_logits(model, out.numpy()[None]) else 0.5
            predicted = int(out[0] >= threshold)
            index = predicted if class_index is None else class_index
            score = out[0] if index == 1 else 1.0 - out[0]
        else:
            index = int(tf.argmax(out)) if class_index is None else class_index
            score = out[index]
    grads = tape.gradient(score, feature)
    # float32 whatever the model's compute precision (mixed bfloat16 models give bf16 grads).
    weights = tf.reduce_mean(tf.cast(grads, tf.float32), axis=(0, 1, 2))
    cam = tf.nn.relu(tf.reduce_sum(tf.cast(feature[0], tf.float32) * weights, axis=-1))
    cam = tf.image.resize(cam[..., None], image.shape[:2], method="bilinear")[..., 0].numpy()
    top = float(cam.max())
    return cam / top if top > 0 else cam


def evaluate(
    model: keras.Model, images: np.ndarray, labels: np.ndarray, num_classes: int | None = None
) -> Evaluation:
    """Cross-entropy, accuracy and confusion matrix on uint8 images and 0-based labels.

    ``num_classes``: the classes of the data, when known; a model with another count is
    refused (its confusion matrix would not match the class names).
    """
    from cifar_gui.engine.errors import ModelError

    if num_classes is not None:
        outputs = model.output_shape[-1]
        model_classes = class_count(outputs)
        if model_classes != num_classes:
            raise ModelError(f"the model has {model_classes} classes, the data {num_classes}")

    if tuple(model.input_shape[1:]) != tuple(images.shape[1:]):
        raise ModelError(
            f"the model takes {tuple(model.input_shape[1:])} images, the data has "
            f"{tuple(images.shape[1:])}"
        )
    probs, from_logits = class_probabilities(model, images)
    k = probs.shape[1]
    if labels.size and int(labels.max()) >= k:
        raise ModelError(f"the model has {k} classes, the data {int(labels.max()) + 1}")
    picked = np.clip(probs[np.arange(len(labels)), labels], 1e-7, 1.0)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (labels, probs.argmax(axis=1)), 1)
    return Evaluation(
        loss=float(-np.log(picked).mean()) if len(labels) else float("nan"),
        accuracy=float(np.trace(confusion) / max(len(labels), 1)),
        confusion=confusion,
        probabilities=probs,
        labels=labels,
        from_logits=from_logits,
    )
