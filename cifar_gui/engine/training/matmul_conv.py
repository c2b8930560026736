"""Convolutions on small maps as matrix products (im2col), with gradients of the same kind.

At CIFAR's 32x32, VGG16's last blocks convolve 4x4 and 2x2 maps of 512 channels. oneDNN's
convolution kernels do that badly on a CPU: profiled on 2 cores of an Intel Xeon with AMX
(finetune's step, bfloat16, batch 32), the weight gradients of those layers ran at 19 and
52 GFLOP/s, and block 3's (8x8 maps) at 104-134, where one bfloat16 matrix product of the
same arithmetic runs at 300-500. So a convolution whose input map is at most
:data:`SMALL_MAP_SIDE` on a side is computed here as the product of its input's patches
(im2col) and its kernel, and its two gradients are matrix products too: the kernel's, the
patches transposed times the output's gradient; the input's, the output's gradient times
the kernel transposed, its patches summed back in place. On maps up to
:data:`KERNEL_GRADIENT_SIDE`, only the kernel's gradient is (oneDNN's forward and input
gradient are as fast as a matrix product there). The arithmetic is the convolution's (the
same products and sums, in another order), which tests/engine/test_matmul_conv.py checks
against TensorFlow's own gradients.

:func:`matmul_convolutions` puts it in the eligible layers of a model for as long as a run
trains (the run's ``matmul_convolutions`` setting); measured in bench/results and the README.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import keras
import tensorflow as tf

from cifar_gui.engine.models.build import flat_layers
from cifar_gui.engine.models.keras_internals import replaced

# Measured on the Xeon with AMX: finetune's step took 256 ms stock, 143 ms with 4x4 and 2x2
# maps as matrix products and 148 ms with 8x8 too; VGG16's inference 1.76, 1.11 and 1.39 ms
# an image. With 8x8 maps' kernel gradients as matrix products besides, the step's median
# over five alternations in one process was 142 ms against 152.
SMALL_MAP_SIDE = 4  # the largest input map side computed wholly as matrix products
KERNEL_GRADIENT_SIDE = 8  # the largest whose kernel gradient is one


def _patch_offsets(kernel: tf.Tensor) -> list[tuple[int, int]]:
    """The kernel's taps in the order of its rows when reshaped to a matrix (row, column)."""
    rows, columns = int(kernel.shape[0]), int(kernel.shape[1])
    return [(i, j) for i in range(rows) for j in range(columns)]


def _padding(kernel: tf.Tensor, padding: str) -> tuple[int, int]:
    """Rows and columns of zeros on each side: "same" for odd kernels, or "valid"."""
    if padding == "valid":
        return 0, 0
    return (int(kernel.shape[0]) - 1) // 2, (int(kernel.shape[1]) - 1) // 2


def im2col_conv(
    x: tf.Tensor,
    kernel: tf.Tensor,
    padding: str = "same",
    *,
    whole: bool = True,
    on_gradient: Callable[[], None] | None = None,
) -> tf.Tensor:
    """``conv2d(x, kernel)`` (stride 1, channels last) with its kernel gradient as one matrix
    product, and with ``whole`` its value and input gradient too (else TensorFlow's).
    ``padding``: "same" (odd kernel sides only) or "valid". ``on_gradient`` is called when
    the gradient is built."""
    # Tensors, not variables: the gradient is taken with respect to these two inputs.
    x, kernel = tf.convert_to_tensor(x), tf.convert_to_tensor(kernel)
    pad_rows, pad_columns = _padding(kernel, padding)
    height, width = int(x.shape[1]), int(x.shape[2])
    channels, filters = int(kernel.shape[2]), int(kernel.shape[3])
    out_height = height + 2 * pad_rows - int(kernel.shape[0]) + 1
    out_width = width + 2 * pad_columns - int(kernel.shape[1]) + 1
    offsets = _patch_offsets(kernel)
    depth = len(offsets) * channels

    def patches_of(x: tf.Tensor) -> tf.Tensor:
        padded = tf.pad(x, [[0, 0], [pad_rows, pad_rows], [pad_columns, pad_columns], [0, 0]])
        patches = tf.concat(
            [padded[:, i : i + out_height, j : j + out_width, :] for i, j in offsets], axis=-1
        )
        return tf.reshape(patches, [-1, depth])

    @tf.custom_gradient
    def conv(x: tf.Tensor, kernel: tf.Tensor) -> tuple[tf.Tensor, Callable]:
        matrix = tf.reshape(kernel, [depth, filters])
        if whole:
            patches = patches_of(x)
            y = tf.reshape(tf.matmul(patches, matrix), [-1, out_height, out_width, filters])
        else:
            y = tf.nn.conv2d(x, kernel, 1, padding.upper())

        def grad(dy: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            if on_gradient is not None:
                on_gradient()
            rows = tf.reshape(dy, [-1, filters])
            # Patches made here, not kept from the forward pass, when it made none.
            used_patches = patches if whole else patches_of(x)
            d_kernel = tf.reshape(tf.matmul(used_patches, rows, transpose_a=True), tf.shape(kernel))
            if not whole:
                d_x = tf.raw_ops.Conv2DBackpropInput(
                    input_sizes=tf.shape(x),
                    filter=kernel,
                    out_backprop=dy,
                    strides=[1, 1, 1, 1],
                    padding=padding.upper(),
                )
                return d_x, d_kernel
            d_patches = tf.reshape(
                tf.matmul(rows, matrix, transpose_b=True), [-1, out_height, out_width, depth]
            )
            # Each tap's share goes back where it was read from: shifted by the tap, summed.
            padded_height, padded_width = height + 2 * pad_rows, width + 2 * pad_columns
            d_padded = tf.add_n(
                [
                    tf.pad(
                        d_patches[..., n * channels : (n + 1) * channels],
                        [
                            [0, 0],
                            [i, padded_height - out_height - i],
                            [j, padded_width - out_width - j],
                            [0, 0],
                        ],
                    )
                    for n, (i, j) in enumerate(offsets)
                ]
            )
            d_x = d_padded[:, pad_rows : pad_rows + height, pad_columns : pad_columns + width, :]
            return d_x, d_kernel

        return y, grad

    return conv(x, kernel)


def eligible(layer: keras.layers.Layer) -> bool:
    """Whether ``layer`` is a 2-D convolution :func:`im2col_conv` computes exactly: stride 1,
    no dilation or groups, channels last, "valid" padding or "same" with odd kernel sides."""
    if type(layer) is not keras.layers.Conv2D:
        return False
    odd = all(side % 2 == 1 for side in layer.kernel_size)
    return (
        tuple(layer.strides) == (1, 1)
        and tuple(layer.dilation_rate) == (1, 1)
        and layer.groups == 1
        and layer.data_format == "channels_last"
        and (layer.padding == "valid" or (layer.padding == "same" and odd))
    )


def _small_map_op(
    layer: keras.layers.Conv2D, used: set[str]
) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    """``layer``'s convolution, as matrix products when its input map is small (its name
    then joins ``used``, when the matrix products are traced)."""
    stock = layer.convolution_op

    def convolution_op(inputs: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
        height, width = inputs.shape[1], inputs.shape[2]
        # The map's size is known when the step is traced (the models' inputs are fixed).
        side = max(height, width) if height is not None and width is not None else None
        if side is None or side > KERNEL_GRADIENT_SIDE:
            return stock(inputs, kernel)
        whole = side <= SMALL_MAP_SIDE
        if whole:
            used.add(layer.name)
            return im2col_conv(inputs, kernel, layer.padding)
        # Only its kernel gradient is a matrix product: counted when that is traced.
        return im2col_conv(
            inputs, kernel, layer.padding, whole=False, on_gradient=lambda: used.add(layer.name)
        )

    return convolution_op


@contextlib.contextmanager
def matmul_convolutions(model: keras.Model, enabled: bool = True) -> Iterator[set[str]]:
    """Within the block, ``model``'s eligible convolutions on small maps run as matrix
    products (:func:`im2col_conv`). Yields the set of the names of the layers that did, filled
    as functions are traced.

    Functions traced inside the block keep what they traced; the layers are as before after
    it, so the model saved, loaded or inspected later is plain Keras."""
    used: set[str] = set()
    with contextlib.ExitStack() as stack:
        for layer in flat_layers(model):
            if enabled and eligible(layer):
                stack.enter_context(replaced(layer, "convolution_op", _small_map_op(layer, used)))
        yield used
