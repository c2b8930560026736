"""The augmentation matches Keras' ImageDataGenerator and is seedable."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from cifar_gui.config import AugmentConfig
from cifar_gui.engine.data.augment import (
    augment_images,
    preview_augmentations,
    random_parameters,
    transform_images,
)

NO_CHANGE = AugmentConfig(0.0, 0.0, 0.0, 0.0, 0.0, False)


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.random.default_rng(0).random((1, 32, 32, 3)).astype(np.float32)


def _params(**values) -> dict:
    full = dict(theta=0.0, shift_x=0.0, shift_y=0.0, shear=0.0, zoom_x=1.0, zoom_y=1.0)
    full.update(values)
    params = {k: tf.constant([v], tf.float32) for k, v in full.items() if k != "flip"}
    params["flip"] = tf.constant([bool(values.get("flip", False))])
    return params


def test_no_transform_is_identity(image):
    out = augment_images(image, NO_CHANGE, tf.constant([1, 2]))
    np.testing.assert_array_equal(out.numpy(), image)


def test_flip_is_a_mirror(image):
    out = transform_images(image, _params(flip=True)).numpy()
    np.testing.assert_allclose(out, image[:, :, ::-1], atol=1e-6)


def test_whole_pixel_shift_moves_columns(image):
    out = transform_images(image, _params(shift_x=3 / 32)).numpy()
    # Output pixel x samples input x + 3 (ImageDataGenerator's convention); edges repeat.
    np.testing.assert_allclose(out[:, :, :-3], image[:, :, 3:], atol=1e-6)
    np.testing.assert_allclose(out[:, :, -1], image[:, :, -1], atol=1e-6)


@pytest.mark.parametrize(
    "theta, tx, ty, shear, zx, zy, flip",
    [
        (30, 3, 3, 10, 1.1, 0.9, False),
        (-20, 0, 0, 0, 1.2, 1.2, True),
        (12, -4, 6, 15, 0.85, 1.15, True),
    ],
)
def test_matches_legacy_image_data_generator(image, theta, tx, ty, shear, zx, zy, flip):
    """Same parameters, same pixels as keras.src.legacy's ImageDataGenerator (scipy)."""
    pytest.importorskip("scipy")
    from keras.src.legacy.preprocessing.image import ImageDataGenerator

    reference = ImageDataGenerator().apply_transform(
        image[0].copy(),
        dict(theta=theta, tx=tx, ty=ty, shear=shear, zx=zx, zy=zy, flip_horizontal=flip),
    )
    # The legacy generator applies its "tx" to columns: our shift_x.
    ours = transform_images(
        image,
        _params(
            theta=theta,
            shift_x=tx / 32,
            shift_y=ty / 32,
            shear=shear,
            zoom_x=zx,
            zoom_y=zy,
            flip=flip,
        ),
    ).numpy()[0]
    np.testing.assert_allclose(ours, reference, atol=1e-4)


def test_parameters_follow_the_seed_ranges():
    params = random_parameters(4000, AugmentConfig(), tf.constant([0, 0]))
    theta = params["theta"].numpy()
    assert -40 <= theta.min() < -38 and 38 < theta.max() <= 40
    assert np.abs(params["shift_x"].numpy()).max() <= 0.2
    assert np.abs(params["shear"].numpy()).max() <= 0.2  # degrees, as ImageDataGenerator
    zoom = params["zoom_x"].numpy()
    assert 0.8 <= zoom.min() < 0.82 and 1.18 < zoom.max() <= 1.2
    assert 0.45 < params["flip"].numpy().mean() < 0.55
    assert not np.allclose(params["zoom_x"].numpy(), params["zoom_y"].numpy())


def test_same_seed_same_images_other_seed_other_images(image):
    batch = np.repeat(image, 4, axis=0)
    a = augment_images(batch, AugmentConfig(), tf.constant([5, 1])).numpy()
    b = augment_images(batch, AugmentConfig(), tf.constant([5, 1])).numpy()
    c = augment_images(batch, AugmentConfig(), tf.constant([5, 2])).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_preview_gives_distinct_uint8_images():
    src = (np.random.default_rng(1).random((32, 32, 3)) * 255).astype(np.uint8)
    grid = preview_augmentations(src, AugmentConfig(), 16, seed=3)
    assert grid.shape == (16, 32, 32, 3) and grid.dtype == np.uint8
    assert all(not np.array_equal(g, src) for g in grid)
    assert len({g.tobytes() for g in grid}) == 16
    np.testing.assert_array_equal(preview_augmentations(src, NO_CHANGE, 2)[0], src)


def test_fill_mode_constant_fills_black(image):
    out = transform_images(image, _params(shift_x=0.5), fill_mode="constant").numpy()
    assert np.all(out[:, :, -10:] == 0)


def test_bad_fill_mode_is_refused():
    with pytest.raises(ValueError, match="fill_mode"):
        AugmentConfig(fill_mode="mirror")
