"""The model variants, built from a :class:`~cifar_gui.config.RunConfig`.

``baseline`` and ``augmented`` share the seed's small CNN (684,097 parameters). ``transfer``
puts a frozen VGG16 base (14,714,688 parameters) under a Dense(256) head; ``finetune``
continues from a transfer model with the base trainable from ``block3_conv1`` on.
``pretrain`` trains a base on other classes (:mod:`cifar_gui.engine.training.pretrain`): the
small CNN or VGG16 under a softmax; ``transfer --base`` takes the convolutional layers of any model
saved by this app, so also a small CNN's, whose layers are renamed by block as VGG16's are
(``block1_conv1``, ``block1_pool``... ``block3_conv1``, ``block3_pool``): fine-tuning from
``block3_conv1`` then trains VGG16's last three blocks, or the small CNN's last convolution.

Every model takes images scaled to [0, 1] (:func:`~cifar_gui.engine.data.dataset.scale_images`).
VGG16 models carry VGG16's own input preprocessing inside, as parameter-free built-in layers
(so a saved ``.h5`` reloads in plain Keras): back to the 0-255 scale, RGB to BGR, ImageNet
mean subtracted.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path

import keras
from keras import layers

from cifar_gui.config import RunConfig
from cifar_gui.engine.errors import ModelError
from cifar_gui.engine.models.persistence import load_model
from cifar_gui.engine.record import ParameterCounts, output_units
from cifar_gui.engine.training.performance import model_precision
from cifar_gui.engine.training.pretrain import check_base_classes

# ImageNet channel means of keras.applications.vgg16.preprocess_input, in BGR order.
IMAGENET_MEAN_BGR = (103.939, 116.779, 123.68)
VGG16_BASE_NAME = "vgg16"
IMAGENET_TIMEOUT_S = 30.0  # seconds without an answer before the weights download gives up
VGG16_PREPROCESS_NAME = "vgg16_preprocessing"
BASE_NAME = "base"  # the frozen sub-model of a transfer model built on a non-VGG16 base
CONV_LAYERS = (layers.Conv2D, layers.SeparableConv2D, layers.DepthwiseConv2D)
POOL_LAYERS = (layers.MaxPooling2D, layers.AveragePooling2D)


def output_head(num_classes: int, name: str | None = None) -> layers.Layer:
    """One sigmoid unit for two classes (as the seed), a softmax over the classes otherwise."""
    if output_units(num_classes) == 1:
        return layers.Dense(1, activation="sigmoid", dtype="float32", name=name)
    return layers.Dense(num_classes, activation="softmax", dtype="float32", name=name)


def loss_for(num_classes: int) -> str:
    """Binary cross-entropy for two classes (labels 0/1), sparse categorical otherwise."""
    return (
        "binary_crossentropy"
        if output_units(num_classes) == 1
        else "sparse_categorical_crossentropy"
    )


def build_baseline(
    num_classes: int = 2,
    input_shape: tuple[int, int, int] = (32, 32, 3),
    name: str = "baseline",
) -> keras.Model:
    """The seed's CNN: three conv/pool blocks, Dense 512, output (684,097 params for 2 classes).

    Its layers have the names Keras gives them in a fresh session, fixed, so every model built
    in one process has the same ones (a layer chosen in the live view during a study's
    baseline is there in its augmented run).
    """
    return keras.Sequential(
        [
            keras.Input(input_shape),
            layers.Conv2D(32, 3, activation="relu", padding="same", name="conv2d"),
            layers.MaxPooling2D(2, name="max_pooling2d"),
            layers.Conv2D(64, 3, activation="relu", padding="same", name="conv2d_1"),
            layers.MaxPooling2D(2, name="max_pooling2d_1"),
            layers.Conv2D(128, 3, activation="relu", name="conv2d_2"),
            layers.MaxPooling2D(2, name="max_pooling2d_2"),
            layers.Flatten(name="flatten"),
            layers.Dense(512, activation="relu", name="dense"),
            output_head(num_classes, name="dense_1"),
        ],
        name=name,
    )


def vgg16_preprocessing(input_shape: tuple[int, int, int]) -> keras.Model:
    """[0, 1] RGB -> what VGG16's ImageNet weights expect: 0-255 BGR minus the ImageNet mean.

    Built only from parameter-free layers that Keras reloads in safe mode (no Lambda): the
    channel reversal is three one-channel crops concatenated in reverse order.
    """
    height, width, _ = input_shape
    inputs = keras.Input(input_shape)
    pixels = layers.Reshape((height * width, 3, 1))(inputs)
    blue = layers.Cropping2D(((0, 0), (2, 0)))(pixels)
    green = layers.Cropping2D(((0, 0), (1, 1)))(pixels)
    red = layers.Cropping2D(((0, 0), (0, 2)))(pixels)
    bgr = layers.Reshape(input_shape)(layers.Concatenate(axis=2)([blue, green, red]))
    outputs = layers.Rescaling(255.0, offset=[-m for m in IMAGENET_MEAN_BGR])(bgr)
    return keras.Model(inputs, outputs, name=VGG16_PREPROCESS_NAME)


@contextlib.contextmanager
def _download_timeout(seconds: float) -> Iterator[None]:
    """Give up on a silent network: Keras' download has no timeout of its own."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _vgg16_base(config: RunConfig, input_shape: tuple[int, int, int]) -> keras.Model:
    """VGG16 without its top, with weights from ImageNet, a file, or nothing."""
    weights = config.weights
    if weights == "none":
        weights = None
    elif weights != "imagenet" and not Path(weights).is_file():
        raise ModelError(f"{weights}: no such weights file (use imagenet, none or a file)")
    try:
        with _download_timeout(IMAGENET_TIMEOUT_S):
            return keras.applications.VGG16(
                weights=weights, include_top=False, input_shape=input_shape
            )
    except Exception as exc:
        if weights == "imagenet":
            raise ModelError(
                f"could not get the ImageNet weights for VGG16 ({exc}); when offline, "
                "use --weights none or a local weights file"
            ) from None
        raise ModelError(f"{weights}: not VGG16 weights ({exc})") from None


def copy_base_weights(model_path: str | Path, source: keras.Model, base: keras.Model) -> None:
    """Copy the VGG16 layers of ``source``, a model saved by this app at ``model_path``,
    into ``base``, by layer name."""
    try:
        source_base = source.get_layer(VGG16_BASE_NAME)
    except ValueError:
        raise ModelError(f"{model_path}: has no VGG16 base to transfer") from None
    if source_base.input_shape[1:] != base.input_shape[1:]:
        raise ModelError(f"{model_path}: base input {source_base.input_shape[1:]} does not fit")
    for layer in base.layers:
        if layer.weights:  # input and pooling layers have none (and differ in name)
            layer.set_weights(source_base.get_layer(layer.name).get_weights())


def flat_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The layers of ``model`` in order, nested models opened (VGG16's preprocessing kept
    whole: it is a graph, not a chain), input layers left out."""
    out: list[keras.layers.Layer] = []
    for layer in model.layers:
        if isinstance(layer, keras.Model) and layer.name != VGG16_PREPROCESS_NAME:
            out.extend(flat_layers(layer))
        elif not isinstance(layer, keras.layers.InputLayer):
            out.append(layer)
    return out


def convolutional_base(source: keras.Model, where: str | Path) -> list[keras.layers.Layer]:
    """The layers of ``source`` up to and including its last convolution or pooling."""
    flat = flat_layers(source)
    ends = [i for i, layer in enumerate(flat) if isinstance(layer, CONV_LAYERS + POOL_LAYERS)]
    if not ends:
        raise ModelError(f"{where}: has no convolutional layers to transfer")
    return flat[: ends[-1] + 1]


def _copied_base(
    model_path: str | Path, source: keras.Model, input_shape: tuple[int, int, int]
) -> keras.Model:
    """A Sequential copy of the convolutional base of ``source``, named :data:`BASE_NAME`,
    its layers renamed by block (``block1_conv1``, ``block1_pool``, ...; a pooling ends a
    block), with the source's weights. Each layer computes in the policy in use now."""
    if tuple(source.input_shape[1:]) != tuple(input_shape):
        raise ModelError(f"{model_path}: base input {source.input_shape[1:]} does not fit")
    originals = convolutional_base(source, model_path)
    copies: list[keras.layers.Layer] = []
    block, conv = 1, 0
    for layer in originals:
        layer_config = layer.get_config()
        layer_config.pop("dtype", None)  # the run's precision, not the one it was saved with
        if isinstance(layer, CONV_LAYERS):
            conv += 1
            layer_config["name"] = f"block{block}_conv{conv}"
        elif isinstance(layer, POOL_LAYERS):
            layer_config["name"] = f"block{block}_pool"
            block, conv = block + 1, 0
        copies.append(layer.__class__.from_config(layer_config))
    base = keras.Sequential([keras.Input(input_shape), *copies], name=BASE_NAME)
    for original, copy in zip(originals, copies, strict=True):
        copy.set_weights(original.get_weights())
    return base


def _classifier(
    trunk: list[keras.layers.Layer],
    num_classes: int,
    input_shape: tuple[int, int, int],
    name: str,
) -> keras.Model:
    """``trunk`` under the seed's transfer head: Flatten, Dense 256, output."""
    return keras.Sequential(
        [
            keras.Input(input_shape),
            *trunk,
            layers.Flatten(),
            layers.Dense(256, activation="relu"),
            output_head(num_classes),
        ],
        name=name,
    )


def build_transfer(
    config: RunConfig, num_classes: int = 2, input_shape: tuple[int, int, int] = (32, 32, 3)
) -> keras.Model:
    """The seed's feature extractor: frozen base, Flatten, Dense 256, output.

    The base is VGG16 (its weights from ``config.weights``, or from the VGG16 of the model
    ``config.base``), or the convolutional layers of any other model ``config.base`` (see
    :func:`_copied_base`); either way one frozen sub-model, the model's leading layers. A base
    trained on a class of the pair is refused (:func:`check_base_classes`).
    """
    check_base_classes(config)
    if config.base:
        source = load_model(config.base).model
        if VGG16_BASE_NAME not in {layer.name for layer in source.layers}:
            base = _copied_base(config.base, source, input_shape)
            base.trainable = False
            return _classifier([base], num_classes, input_shape, "transfer")
        base = keras.applications.VGG16(weights=None, include_top=False, input_shape=input_shape)
        copy_base_weights(config.base, source, base)
    else:
        base = _vgg16_base(config, input_shape)
    base.trainable = False
    return _classifier(
        [vgg16_preprocessing(input_shape), base], num_classes, input_shape, "transfer"
    )


def build_pretrain(
    config: RunConfig, num_classes: int, input_shape: tuple[int, int, int] = (32, 32, 3)
) -> keras.Model:
    """A base to transfer from, trained whole on other classes: the seed's small CNN, or
    VGG16 (weights from ``config.weights``: offline, ``none``) under the transfer head."""
    if config.arch == "cnn":
        return build_baseline(num_classes, input_shape, name="pretrain_cnn")
    base = _vgg16_base(config, input_shape)
    return _classifier(
        [vgg16_preprocessing(input_shape), base], num_classes, input_shape, "pretrain_vgg16"
    )


def unfreeze_from(model: keras.Model, layer_name: str = "block3_conv1") -> None:
    """Make the base trainable from ``layer_name`` on, as the seed's ``unfreeze_weights``: a
    VGG16 base, or the copied base of another model (:func:`_copied_base`), whose last
    block's convolution is ``block3_conv1`` for the seed's small CNN."""
    names = {layer.name for layer in model.layers}
    name = VGG16_BASE_NAME if VGG16_BASE_NAME in names else BASE_NAME
    if name not in names:
        raise ModelError("fine-tuning needs a model with a frozen base (a transfer model)")
    base = model.get_layer(name)
    names = [layer.name for layer in base.layers]
    if layer_name not in names:
        raise ModelError(f"no layer {layer_name!r} in the base: choose from {', '.join(names)}")
    base.trainable = True
    start = names.index(layer_name)
    for i, layer in enumerate(base.layers):
        layer.trainable = i >= start


def build_model(
    config: RunConfig, num_classes: int = 2, input_shape: tuple[int, int, int] = (32, 32, 3)
) -> keras.Model:
    """The uncompiled model of ``config.variant`` (finetune loads ``config.from_model``)."""
    if config.variant in ("baseline", "augmented"):
        return build_baseline(num_classes, input_shape)
    if config.variant == "transfer":
        return build_transfer(config, num_classes, input_shape)
    if config.variant == "pretrain":
        return build_pretrain(config, num_classes, input_shape)
    if not config.from_model:
        raise ModelError("finetune continues from a transfer model: give --from MODEL")
    model = load_model(config.from_model).model
    if model.output_shape[-1] != output_units(num_classes):
        raise ModelError(f"{config.from_model}: output does not fit {num_classes} classes")
    unfreeze_from(model, config.unfreeze_from)
    return model


def compile_model(
    model: keras.Model,
    config: RunConfig,
    num_classes: int,
    optimizer: keras.optimizers.Optimizer | None = None,
) -> None:
    """RMSprop at the config's learning rate, the loss for the class count, accuracy.

    ``optimizer`` reuses an optimizer (and its state), e.g. that of the whole model when only
    its head is fitted. A ``mixed_float16`` model gets Keras' dynamic loss scaling.
    """
    model.compile(
        optimizer=optimizer or keras.optimizers.RMSprop(learning_rate=config.lr),
        loss=loss_for(num_classes),
        metrics=["accuracy"],
    )


def with_precision(model: keras.Model, policy: str) -> keras.Model:
    """``model`` computing in ``policy``: itself when it already does, else a copy with its
    weights and trainable flags. The output layer stays float32 (exact probabilities).

    Needed for models loaded from a file (finetune), whose layers keep their saved policy.
    """
    if model_precision(model) == policy:
        return model
    output = model.layers[-1]

    def convert(layer: keras.layers.Layer) -> keras.layers.Layer:
        layer_config = layer.get_config()
        if layer is not output and "dtype" in layer_config:
            layer_config["dtype"] = policy
        return layer.__class__.from_config(layer_config)

    copy = keras.models.clone_model(model, clone_function=convert, recursive=True)
    copy.set_weights(model.get_weights())
    return copy


def parameter_counts(model: keras.Model) -> ParameterCounts:
    """Total, trainable and non-trainable parameter counts, as ``summary()`` prints them."""
    trainable = sum(int(w.numpy().size) for w in model.trainable_weights)
    total = model.count_params()
    return ParameterCounts(total, trainable, total - trainable)


def planned_parameter_counts(
    config: RunConfig, num_classes: int = 2, input_shape: tuple[int, int, int] = (32, 32, 3)
) -> ParameterCounts:
    """The parameter counts a run of ``config`` will train, without training.

    For ``finetune`` this loads ``config.from_model`` and unfreezes it, so the trainable and
    non-trainable counts can be shown before the run starts. Transfer bases are built with
    random weights: the counts do not depend on the weights, and no download is needed; a
    base taken from a saved model (``config.base``) is read, as its layers decide the counts.
    """
    if config.variant in ("transfer", "pretrain") and not config.base:
        config = config.replace(weights="none")
    return parameter_counts(build_model(config, num_classes, input_shape))
