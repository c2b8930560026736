"""Convolutions on small maps as matrix products: the same values and gradients as
TensorFlow's own convolution, only in the layers and maps they are meant for. That a run
with them trains the same weights as one without: tests/engine/test_frozen_front.py."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from cifar_gui.config import RunConfig
from cifar_gui.engine.models.build import build_transfer, compile_model, unfreeze_from
from cifar_gui.engine.training.matmul_conv import eligible, im2col_conv, matmul_convolutions


@pytest.mark.parametrize(
    ("map_shape", "kernel_shape", "padding"),
    [
        ((4, 4, 5), (3, 3, 5, 6), "same"),
        ((2, 2, 4), (3, 3, 4, 3), "same"),
        ((4, 3, 2), (3, 5, 2, 4), "same"),  # neither square map nor square kernel
        ((4, 4, 3), (1, 1, 3, 2), "same"),
        ((4, 4, 3), (3, 3, 3, 2), "valid"),
        ((5, 4, 2), (2, 3, 2, 3), "valid"),  # an even kernel side is exact without padding
    ],
)
@pytest.mark.parametrize("dtype", [tf.float64, tf.float32])
@pytest.mark.parametrize("whole", [True, False], ids=["whole", "kernel-gradient"])
def test_values_and_gradients_equal_tensorflows(map_shape, kernel_shape, padding, dtype, whole):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(3, *map_shape)), dtype)
    kernel = tf.constant(rng.normal(size=kernel_shape), dtype)

    def outputs_and_gradients(conv):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch([x, kernel])
            y = conv(x, kernel)
            # A weighting of the outputs, so every output's gradient differs.
            loss = tf.reduce_sum(y * tf.constant(rng_y.normal(size=y.shape), dtype))
        return [y, *tape.gradient(loss, [x, kernel])]

    rng_y = np.random.default_rng(1)
    ours = outputs_and_gradients(lambda a, b: im2col_conv(a, b, padding, whole=whole))
    rng_y = np.random.default_rng(1)
    theirs = outputs_and_gradients(lambda a, b: tf.nn.conv2d(a, b, 1, padding.upper()))
    tolerance = 1e-12 if dtype == tf.float64 else 1e-5
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=tolerance, atol=tolerance)


def test_eligible_layers():
    assert eligible(layers.Conv2D(4, 3, padding="same"))
    assert eligible(layers.Conv2D(4, (1, 3), padding="same"))
    assert eligible(layers.Conv2D(4, 2))  # valid
    assert not eligible(layers.Conv2D(4, 2, padding="same"))  # TensorFlow pads unevenly
    assert not eligible(layers.Conv2D(4, 3, strides=2))
    assert not eligible(layers.Conv2D(4, 3, dilation_rate=2))
    assert not eligible(layers.Conv2D(4, 3, groups=2))
    assert not eligible(layers.Conv2D(4, 3, data_format="channels_first"))
    assert not eligible(layers.DepthwiseConv2D(3))
    assert not eligible(layers.Conv2DTranspose(4, 3))
    assert not eligible(layers.Dense(4))


def model_with_maps() -> keras.Model:
    """Convolutions on 8x8, then (nested) 4x4 and 2x2 maps."""
    inner = keras.Sequential(
        [
            keras.Input((4, 4, 3)),
            layers.Conv2D(3, 3, padding="same", name="on_4x4"),
            layers.MaxPooling2D(2),
            layers.Conv2D(2, 3, padding="same", name="on_2x2"),
        ],
        name="inner",
    )
    return keras.Sequential(
        [
            keras.Input((8, 8, 2)),
            layers.Conv2D(3, 3, padding="same", name="on_8x8"),
            layers.MaxPooling2D(2),
            inner,
            layers.Conv2D(2, 3, padding="same", strides=2, name="strided"),
        ]
    )


def traced_ops(model: keras.Model) -> list[str]:
    function = tf.function(lambda x: model(x, training=False))
    spec = tf.TensorSpec((None, *model.input_shape[1:]), tf.float32)
    return [op.type for op in function.get_concrete_function(spec).graph.get_operations()]


def traced_gradient_ops(model: keras.Model) -> list[str]:
    def step(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(model(x, training=True))
        return tape.gradient(loss, model.trainable_variables)

    spec = tf.TensorSpec((None, *model.input_shape[1:]), tf.float32)
    return [op.type for op in tf.function(step).get_concrete_function(spec).graph.get_operations()]


def test_only_small_maps_become_matrix_products_and_only_within_the_block():
    model = model_with_maps()
    images = np.random.default_rng(2).normal(size=(5, 8, 8, 2)).astype(np.float32)
    before = model.predict(images, verbose=0)
    stock_convolutions = traced_ops(model).count("Conv2D")
    stock_gradients = traced_gradient_ops(model)
    with matmul_convolutions(model) as used:
        ops = traced_ops(model)
        within = model(images, training=False).numpy()
        assert used == {"on_4x4", "on_2x2"}
        gradient_ops = traced_gradient_ops(model)
    assert used == {"on_4x4", "on_2x2", "on_8x8"}  # 8x8: its kernel gradient
    assert stock_convolutions == 4
    assert ops.count("Conv2D") == 2  # on 8x8 and the strided one
    assert ops.count("MatMul") == 2
    np.testing.assert_allclose(within, before, rtol=1e-5, atol=1e-6)
    # The strided layer's kernel gradient stays TensorFlow's, the 8x8 one's is a product.
    assert stock_gradients.count("Conv2DBackpropFilter") == 4
    assert gradient_ops.count("Conv2DBackpropFilter") == 1
    assert traced_ops(model).count("Conv2D") == 4  # plain Keras again
    with matmul_convolutions(model, enabled=False) as used:
        assert traced_ops(model).count("Conv2D") == 4
    assert used == set()


def test_layers_are_restored_when_the_block_raises():
    model = model_with_maps()
    with pytest.raises(RuntimeError), matmul_convolutions(model):
        raise RuntimeError("a failed run")
    assert traced_ops(model).count("Conv2D") == 4


def test_finetune_gradients_and_step_equal_tensorflows():
    """VGG16 as finetune trains it (blocks 3 to 5 on 8x8, 4x4 and 2x2 maps), float32: every
    trainable variable's gradient, and the
    weights after one RMSprop step, with and without the matrix products.

    One step, not several: after a few steps a unit whose input sum is within round-off of
    zero sits on the other side of its ReLU in one of the two runs, and RMSprop, which divides
    each gradient by its own running size, turns that unit's different gradient into a
    full-sized step (measured: weights 3e-4 apart after the second step). Round-off decides
    that, so it is no test of the arithmetic; the frozen-front tests compare runs of several
    steps whose convolutions are computed alike."""
    keras.utils.set_random_seed(0)
    config = RunConfig(variant="finetune", weights="none", precision="float32")
    model = build_transfer(config)
    unfreeze_from(model, config.unfreeze_from)
    start = model.get_weights()
    rng = np.random.default_rng(4)
    images = rng.uniform(size=(4, 32, 32, 3)).astype(np.float32)
    labels = np.array([[0.0], [1.0], [1.0], [0.0]], np.float32)

    def gradients_and_step(matmul: bool) -> tuple[list[np.ndarray], list[np.ndarray], set]:
        model.set_weights(start)
        compile_model(model, config.replace(learning_rate=1e-3), 2)  # a new optimizer
        with matmul_convolutions(model, matmul) as used:
            with tf.GradientTape() as tape:
                outputs = model(images, training=True)
                loss = tf.reduce_mean(keras.losses.binary_crossentropy(labels, outputs))
            gradients = tape.gradient(loss, model.trainable_variables)
            model.optimizer.apply(gradients, model.trainable_variables)
        return [g.numpy() for g in gradients], model.get_weights(), used

    ours, ours_after, used = gradients_and_step(True)
    theirs, theirs_after, none_used = gradients_and_step(False)
    assert used == {f"block{block}_conv{n}" for block in (3, 4, 5) for n in (1, 2, 3)}
    assert none_used == set()
    for a, b in zip(ours, theirs, strict=True):
        scale = float(np.max(np.abs(b)))
        assert scale > 0
        # float32 round-off, grown through up to 13 layers on the way in and out: up to
        # 1.2e-5 of the largest gradient measured; a wrong tap or transpose is of order 1.
        np.testing.assert_allclose(a, b, atol=1e-4 * scale)
    moved = max(float(np.max(np.abs(a - b))) for a, b in zip(theirs_after, start, strict=True))
    assert moved > 100 * 1e-5  # the comparison below can fail
    for a, b in zip(ours_after, theirs_after, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
