"""The arithmetic floor of each variant: its least FLOPs at the best rate these cores reached.

``peak_rates`` times large matrix products (bfloat16 and float32) and VGG16's main
convolution; the best of them is the fastest arithmetic measured on this machine. A
variant's FLOPs (``bench/timing.py`` ``floor_flops``: the convolutions and dense layers of
the tutorial's models, forward, weight and input gradients, validation) at that rate is a
time no run can beat (``run.py`` does the counting): everything else a run does (data,
activations, pooling, the optimizer, Python) only adds to it. ``run.py`` runs this once
before and once after the training runs and keeps the best rate, so the floor is as low as
the machine allowed.

    python bench/floor.py --variants baseline transfer    # one JSON line
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import keras
import numpy as np
import tensorflow as tf
from reference import seed_model, seed_vgg16_model

# The convolution that dominates VGG16 at 32x32: 3x3, 64 -> 64 channels on 32x32 maps.
CONV_SHAPE = (32, 32, 64, 64)


def peak_rates(repeats: int = 5) -> dict[str, float]:
    """GFLOP/s of 2048^2 and 4096^2 matrix products (bfloat16, float32) and of VGG16's main
    convolution (batch 256, forward), each the fastest of ``repeats`` calls."""
    rng = np.random.default_rng(0)
    out = {}
    for dtype in (tf.bfloat16, tf.float32):
        for n in (2048, 4096):
            a = tf.cast(rng.random((n, n), dtype=np.float32), dtype)
            out[f"matmul_{dtype.name}_{n}"] = _gflops(2 * n**3, tf.linalg.matmul, a, a, repeats)
        height, width, cin, cout = CONV_SHAPE
        x = tf.cast(rng.random((256, height, width, cin), dtype=np.float32), dtype)
        w = tf.cast(rng.random((3, 3, cin, cout), dtype=np.float32), dtype)
        flops = 2 * 256 * height * width * cin * cout * 9
        out[f"conv_{dtype.name}"] = _gflops(flops, _conv, x, w, repeats)
    return out


def _conv(x: tf.Tensor, w: tf.Tensor) -> tf.Tensor:
    return tf.nn.conv2d(x, w, 1, "SAME")


def _gflops(flops: int, fn, a, b, repeats: int) -> float:
    """``flops`` over the fastest of ``repeats`` calls of ``fn(a, b)``, after one that traces."""
    fn = tf.function(fn)
    fn(a, b).numpy()
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        fn(a, b).numpy()
        best = min(best, time.perf_counter() - started)
    return round(flops / best / 1e9, 1)


def weighted_layers(model: keras.Model) -> list[tuple[int, bool]]:
    """(multiply-adds per image, trainable) of each Conv2D and Dense layer, nested models
    opened, in order."""
    out = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            out += weighted_layers(layer)
        elif isinstance(layer, keras.layers.Conv2D):
            kh, kw, cin, cout = layer.kernel.shape
            _, h, w, _ = layer.output.shape
            out.append((h * w * kh * kw * cin * cout, layer.trainable))
        elif isinstance(layer, keras.layers.Dense):
            cin, cout = layer.kernel.shape
            out.append((cin * cout, layer.trainable))
    return out


def variant_model(variant: str) -> keras.Model:
    """The tutorial's model of ``variant``, as the reference (and ours) trains it."""
    if variant in ("transfer", "finetune"):
        return seed_vgg16_model(finetune=variant == "finetune")
    return seed_model()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=["baseline"])
    args = parser.parse_args(argv)
    layers = {v: weighted_layers(variant_model(v)) for v in args.variants}
    print(json.dumps({"rates_gflops": peak_rates(), "layers": layers}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
