"""The bundled default model, resource lookup, and Grad-CAM through plain and nested models."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from cifar_gui import resources
from cifar_gui.config import RunConfig
from cifar_gui.engine.models.build import build_baseline, build_transfer
from cifar_gui.engine.models.inspect import grad_cam, last_conv_layer, predict_files
from cifar_gui.engine.models.persistence import load_model


@pytest.fixture(scope="module")
def default_model():
    return load_model(resources.default_model_path())


def test_default_model_is_the_seed_baseline_with_its_training_record(default_model):
    assert resources.default_model_path().name == "cifar10_4_7.h5"
    assert default_model.class_names == ("deer", "horse")
    assert default_model.input_size == (32, 32)
    assert default_model.model.count_params() == 684_097  # the seed's summary
    meta = json.loads(resources.default_model_path().with_suffix(".json").read_text())
    assert meta["trained_with"].startswith(".venv/bin/cifar-gui train --variant baseline")
    assert meta["test_accuracy"] > 0.8
    # The file is committed: keep it small.
    assert resources.default_model_path().stat().st_size < 10_000_000


def test_sample_image_is_bundled_and_classifiable(default_model):
    path = resources.sample_image_path()
    [prediction] = predict_files(default_model.model, [path], default_model.class_names)
    assert prediction.image.shape == (32, 32, 3)
    assert sum(prediction.probabilities) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("relative", "expected"),
    # Images the model gets right with a wide margin (0.97 and 0.995 at training time).
    [("test/horse/0001.jpg", "horse"), ("test/deer/0005.jpg", "deer")],
)
def test_default_model_classifies_shared_test_images(
    default_model, shared_cifar, relative, expected
):
    [prediction] = predict_files(
        default_model.model, [shared_cifar / relative], default_model.class_names
    )
    assert prediction.label == expected
    assert prediction.confidence > 0.8


def test_resources_found_inside_a_pyinstaller_bundle(tmp_path, monkeypatch):
    bundled = tmp_path / "resources" / "models" / resources.DEFAULT_MODEL_NAME
    bundled.parent.mkdir(parents=True)
    bundled.write_bytes(b"")
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert resources.default_model_path() == bundled
    # Not in the bundle: falls back to the checkout's copy.
    assert resources.sample_image_path() == Path(
        resources.CHECKOUT_RESOURCES, "samples", resources.SAMPLE_IMAGE_NAME
    )


def _textured_image(seed: int = 0) -> np.ndarray:
    """A smooth random picture: Grad-CAM of pure noise is noisy but still varies."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(8, 8, 3)).astype(np.uint8)
    return np.repeat(np.repeat(coarse, 4, axis=0), 4, axis=1)


def _check_cam(cam: np.ndarray, image: np.ndarray) -> None:
    assert cam.shape == image.shape[:2]
    assert np.isfinite(cam).all()
    assert cam.min() >= 0.0
    assert cam.max() == pytest.approx(1.0)
    assert cam.std() > 0.01  # not constant


def test_grad_cam_of_the_baseline(default_model):
    image = _textured_image()
    cam = grad_cam(default_model.model, image)
    _check_cam(cam, image)
    # Both classes of the single sigmoid unit give a map.
    other = grad_cam(default_model.model, image, class_index=1)
    assert other.shape == image.shape[:2]


def test_grad_cam_through_a_nested_vgg16_base():
    keras.utils.set_random_seed(3)
    model = build_transfer(RunConfig(variant="transfer", weights="none"))
    assert last_conv_layer(model) == "vgg16/block5_conv3"
    image = _textured_image(1)
    _check_cam(grad_cam(model, image), image)
    # An earlier layer inside the base works too, and has more spatial detail.
    _check_cam(grad_cam(model, image, layer_name="vgg16/block3_conv3"), image)


def test_grad_cam_of_an_untrained_baseline_has_the_input_size():
    keras.utils.set_random_seed(0)
    image = _textured_image(2)
    cam = grad_cam(build_baseline(), image)
    assert cam.shape == (32, 32)
    assert 0.0 <= cam.min() <= cam.max() <= 1.0
