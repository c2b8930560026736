"""The one augmentation function: training's input pipeline and the preview grid both call it.

It reproduces Keras' legacy ``ImageDataGenerator`` (rotation, width/height shift, shear in
degrees, independent x/y zoom, horizontal flip, fill mode, bilinear sampling) as one affine
matrix per image, applied on the TensorFlow graph and driven by stateless random numbers,
so a seed gives the same images on every run.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from cifar_gui.config import AugmentConfig
from cifar_gui.engine.data.dataset import scale_images


def _matrix(rows: list[list[tf.Tensor]]) -> tf.Tensor:
    """Stack per-image scalars into a batch of 3x3 matrices, shape (B, 3, 3)."""
    return tf.stack([tf.stack(row, axis=-1) for row in rows], axis=-2)


def random_parameters(batch: tf.Tensor, config: AugmentConfig, seed: tf.Tensor) -> dict:
    """Per-image transform parameters drawn as ImageDataGenerator draws them.

    Angles in degrees, shifts as fractions of the size, zooms as factors, flip as bool;
    each a (B,) tensor.
    """
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=7)

    def uniform(i: int, limit: float) -> tf.Tensor:
        return tf.random.stateless_uniform([batch], seeds[i], -limit, limit)

    flip = tf.random.stateless_uniform([batch], seeds[6]) < 0.5
    return {
        "theta": uniform(0, config.rotation_deg),
        "shift_x": uniform(1, config.width_shift),
        "shift_y": uniform(2, config.height_shift),
        "shear": uniform(3, config.shear_deg),
        "zoom_x": 1.0 + uniform(4, config.zoom),
        "zoom_y": 1.0 + uniform(5, config.zoom),
        "flip": tf.logical_and(flip, config.horizontal_flip),
    }


def parameters_to_matrices(params: dict, height: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
    """Output-to-input pixel maps, (B, 3, 3), in (x=column, y=row) coordinates.

    The composition is ImageDataGenerator's: rotation @ shift @ shear @ zoom about the image
    centre, then the left-right flip of the result.
    """
    w = tf.cast(width, tf.float32)
    h = tf.cast(height, tf.float32)
    theta = params["theta"] * (math.pi / 180.0)
    shear = params["shear"] * (math.pi / 180.0)
    tx, ty = params["shift_x"] * w, params["shift_y"] * h  # pixels
    zx, zy = params["zoom_x"], params["zoom_y"]
    one, zero = tf.ones_like(theta), tf.zeros_like(theta)
    cos, sin = tf.cos(theta), tf.sin(theta)

    rotation = _matrix([[cos, -sin, zero], [sin, cos, zero], [zero, zero, one]])
    shift = _matrix([[one, zero, tx], [zero, one, ty], [zero, zero, one]])
    shearing = _matrix(
        [[one, -tf.sin(shear), zero], [zero, tf.cos(shear), zero], [zero, zero, one]]
    )
    zoom = _matrix([[zx, zero, zero], [zero, zy, zero], [zero, zero, one]])
    # Pixel centres sit at integer coordinates, so the centre is (size - 1) / 2.
    cx, cy = (w - 1.0) / 2.0 * one, (h - 1.0) / 2.0 * one
    to_centre = _matrix([[one, zero, cx], [zero, one, cy], [zero, zero, one]])
    from_centre = _matrix([[one, zero, -cx], [zero, one, -cy], [zero, zero, one]])
    sign = tf.where(params["flip"], -1.0, 1.0)
    flip = _matrix(
        [[sign, zero, tf.where(params["flip"], w - 1.0, 0.0)], [zero, one, zero], [zero, zero, one]]
    )
    return to_centre @ rotation @ shift @ shearing @ zoom @ from_centre @ flip


def transform_images(images: tf.Tensor, params: dict, fill_mode: str = "nearest") -> tf.Tensor:
    """Apply given per-image parameters (see :func:`random_parameters`) to (B, H, W, C)."""
    images = tf.convert_to_tensor(images)
    shape = tf.shape(images)
    matrices = parameters_to_matrices(params, shape[1], shape[2])
    # The op takes the first 8 entries of each row-major 3x3 matrix (the last row is 0, 0, 1).
    transforms = tf.reshape(matrices, [-1, 9])[:, :8]
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=tf.cast(images, tf.float32),
        transforms=transforms,
        output_shape=shape[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode=fill_mode.upper(),
    )
    return tf.cast(out, images.dtype)


def augment_images(images: tf.Tensor, config: AugmentConfig, seed: tf.Tensor) -> tf.Tensor:
    """Randomly transform a batch of float images (B, H, W, C); same shape and dtype out.

    ``seed`` is a shape-(2,) integer tensor; the same seed gives the same transforms.
    """
    images = tf.convert_to_tensor(images)
    params = random_parameters(tf.shape(images)[0], config, seed)
    return transform_images(images, params, config.fill_mode)


def preview_augmentations(
    image: np.ndarray, config: AugmentConfig, count: int, seed: int = 0
) -> np.ndarray:
    """``count`` augmented versions of one uint8 image (H, W, 3), as uint8 (count, H, W, 3).

    The pixels go through :func:`scale_images` and :func:`augment_images` exactly as in
    training, then back to uint8 for display.
    """
    batch = np.repeat(scale_images(image)[None], count, axis=0)
    out = augment_images(batch, config, tf.constant([seed, 0], tf.int64)).numpy()
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


def preview_batch(images: np.ndarray, config: AugmentConfig, seed: int) -> np.ndarray:
    """One augmented copy of each uint8 picture of ``images`` (N, H, W, 3), as uint8.

    Copy ``i`` is :func:`preview_augmentations` with seed ``seed * 1000 + i``, so every
    picture gets its own random draw and the same seed gives the same grid.
    """
    out = [
        preview_augmentations(image, config, 1, seed * 1000 + i)[0]
        for i, image in enumerate(images)
    ]
    return np.stack(out) if out else np.zeros((0, *np.shape(images)[1:]), np.uint8)
