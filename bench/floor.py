"""The arithmetic floor of a baseline epoch: what the training steps alone cost; and the
measured speed of the convolution that bounds the VGG16 variants (:func:`conv_gflops`).

One compiled TensorFlow loop over an epoch's batches, already in memory, with the model,
loss, optimizer and precision that ``ours`` uses, and nothing else: no input pipeline, no
Keras ``fit``, no metrics, no validation. No training setup can make an epoch faster than
this on the same machine, so ``reference / floor`` is the largest speed-up within reach.
"""

from __future__ import annotations

import math
import time

import keras
import numpy as np
import tensorflow as tf

from cifar_gui.config import RunConfig
from cifar_gui.engine.models.build import build_baseline
from cifar_gui.engine.training.performance import precision_scope, resolve_precision


def run_floor(x_train: np.ndarray, y_train: np.ndarray, epochs: int) -> dict:
    """Wall and CPU seconds of each epoch of bare training steps (batch 32, RMSprop at the
    seed's rate, the automatic precision)."""
    config = RunConfig()
    policy = resolve_precision(config.precision)
    keras.utils.set_random_seed(config.seed)
    with precision_scope(policy):
        model = build_baseline(2, tuple(x_train.shape[1:]))
    optimizer = keras.optimizers.RMSprop(config.lr)
    optimizer.build(model.trainable_variables)
    loss_fn = keras.losses.BinaryCrossentropy()
    images = tf.constant(x_train)
    labels = tf.constant(y_train.astype(np.float32)[:, None])
    size, steps = config.batch_size, math.ceil(len(x_train) / config.batch_size)

    @tf.function
    def epoch() -> tf.Tensor:
        def step(i: tf.Tensor, total: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            x = tf.cast(images[i * size : (i + 1) * size], tf.float32) / 255.0
            with tf.GradientTape() as tape:
                loss = loss_fn(labels[i * size : (i + 1) * size], model(x, training=True))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply(grads, model.trainable_variables)
            return i + 1, total + loss

        return tf.while_loop(lambda i, _: i < steps, step, (0, 0.0))[1] / steps

    seconds, cpu_seconds = [], []
    for _ in range(epochs):
        started, cpu_started = time.perf_counter(), time.process_time()
        epoch().numpy()
        seconds.append(time.perf_counter() - started)
        cpu_seconds.append(time.process_time() - cpu_started)
    return {
        "epoch_seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "precision": policy,
        "steps": steps,
    }


# The convolution that dominates VGG16 at 32x32: 3x3, 64 -> 64 channels on 32x32 maps
# (block1_conv2; block2_conv2 to block4_conv3 have the same multiply-adds at other sizes).
CONV_SHAPE = (32, 32, 64, 64)


def conv_gflops(batch: int = 256, repeats: int = 5) -> dict:
    """Measured GFLOP/s of VGG16's main convolution, forward, in float32 and bfloat16, and
    of a large bfloat16 matrix product (what these cores reach at best): the bound of the
    VGG16 variants' epochs."""
    height, width, cin, cout = CONV_SHAPE
    rng = np.random.default_rng(0)
    out = {}
    for dtype in (tf.float32, tf.bfloat16):
        x = tf.cast(rng.random((batch, height, width, cin), dtype=np.float32), dtype)
        w = tf.cast(rng.random((3, 3, cin, cout), dtype=np.float32), dtype)
        conv = tf.function(lambda x, w: tf.nn.conv2d(x, w, 1, "SAME"))
        flops = 2 * batch * height * width * cin * cout * 9
        out[f"conv_{dtype.name}"] = round(
            flops / _best_seconds(conv, x, w, repeats=repeats) / 1e9, 1
        )
    a = tf.cast(rng.random((2048, 2048), dtype=np.float32), tf.bfloat16)
    matmul = tf.function(tf.linalg.matmul)
    out["matmul_bfloat16"] = round(
        2 * 2048**3 / _best_seconds(matmul, a, a, repeats=repeats) / 1e9, 1
    )
    return out


def _best_seconds(fn, *args, repeats: int) -> float:
    """The fastest of ``repeats`` calls, after one that traces."""
    fn(*args).numpy()
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        fn(*args).numpy()
        best = min(best, time.perf_counter() - started)
    return best
