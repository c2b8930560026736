"""The four variants have the seed's layers and parameter counts."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from cifar_gui.config import RunConfig
from cifar_gui.engine.errors import ModelError
from cifar_gui.engine.models.build import (
    build_baseline,
    build_model,
    compile_model,
    parameter_counts,
    unfreeze_from,
    vgg16_preprocessing,
)
from cifar_gui.engine.record import ParameterCounts


@pytest.fixture(scope="module")
def transfer_model():
    return build_model(RunConfig(variant="transfer", weights="none"))


def test_baseline_matches_the_seed_summary():
    model = build_baseline()
    shapes = [tuple(layer.output.shape[1:]) for layer in model.layers]
    assert shapes == [
        (32, 32, 32),
        (16, 16, 32),
        (16, 16, 64),
        (8, 8, 64),
        (6, 6, 128),
        (3, 3, 128),
        (1152,),
        (512,),
        (1,),
    ]
    assert [layer.count_params() for layer in model.layers] == [
        896,
        0,
        18496,
        0,
        73856,
        0,
        0,
        590336,
        513,
    ]
    assert parameter_counts(model) == ParameterCounts(684_097, 684_097, 0)


def test_more_than_two_classes_gives_softmax():
    model = build_baseline(num_classes=3)
    assert model.output_shape == (None, 3)
    assert model.layers[-1].activation.__name__ == "softmax"


def test_transfer_counts_match_the_seed(transfer_model):
    base = transfer_model.get_layer("vgg16")
    assert base.count_params() == 14_714_688
    assert base.output_shape == (None, 1, 1, 512)
    assert parameter_counts(transfer_model) == ParameterCounts(14_846_273, 131_585, 14_714_688)


def test_finetune_unfreezes_from_block3_conv1(transfer_model):
    unfreeze_from(transfer_model, "block3_conv1")
    try:
        assert parameter_counts(transfer_model) == ParameterCounts(14_846_273, 14_586_113, 260_160)
    finally:
        transfer_model.get_layer("vgg16").trainable = False


def test_unfreeze_from_unknown_layer_lists_names(transfer_model):
    with pytest.raises(ModelError, match=r"no layer 'block9_conv1'.*block1_conv1"):
        unfreeze_from(transfer_model, "block9_conv1")
    with pytest.raises(ModelError, match="needs a model with a frozen base"):
        unfreeze_from(build_baseline(), "block3_conv1")


def test_vgg16_preprocessing_equals_keras_preprocess_input():
    """Inside the model, [0, 1] RGB becomes exactly what VGG16's own preprocessing gives."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(2, 32, 32, 3)).astype(np.float32)
    ours = vgg16_preprocessing((32, 32, 3))(pixels / 255.0).numpy()
    expected = keras.applications.vgg16.preprocess_input(pixels.copy())
    np.testing.assert_allclose(ours, expected, atol=1e-3)
    assert vgg16_preprocessing((32, 32, 3)).count_params() == 0


def test_missing_weights_file_is_named(tmp_path):
    path = tmp_path / "nope.h5"
    with pytest.raises(ModelError, match=r"nope.h5: no such weights file"):
        build_model(RunConfig(variant="transfer", weights=str(path)))


def test_offline_imagenet_download_gives_a_clear_message(monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("URL fetch failure: network unreachable")

    monkeypatch.setattr("keras.src.applications.vgg16.file_utils.get_file", offline)
    with pytest.raises(ModelError, match=r"ImageNet weights.*--weights none"):
        build_model(RunConfig(variant="transfer", weights="imagenet"))


def test_finetune_needs_a_transfer_model():
    with pytest.raises(ModelError, match="--from MODEL"):
        build_model(RunConfig(variant="finetune"))


def test_default_learning_rates_are_the_seeds():
    assert RunConfig(variant="baseline").lr == 1e-4
    assert RunConfig(variant="augmented").lr == 1e-4
    assert RunConfig(variant="transfer").lr == 2e-5
    assert RunConfig(variant="finetune").lr == 2e-5
    assert RunConfig(variant="baseline", learning_rate=0.01).lr == 0.01
    assert not RunConfig(variant="baseline").augments
    assert RunConfig(variant="augmented").augments


@pytest.mark.parametrize("rate", [0, 0.0, -1e-4, float("nan"), float("inf"), 2.0, "0.1", True])
def test_a_learning_rate_is_a_finite_number_above_0(rate):
    """0 was taken for "the seed's rate" (``or``) while the sidecar recorded 0."""
    with pytest.raises(ValueError, match="learning rate must"):
        RunConfig(learning_rate=rate)


def test_the_compiled_rate_is_the_explicit_one():
    model = build_baseline()
    compile_model(model, RunConfig(learning_rate=1e-6), 2)
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(1e-6)


def test_imagenet_download_has_a_timeout(monkeypatch):
    """Keras' own download waits forever on a silent network; ours gives up."""
    import socket

    from cifar_gui.engine.models import build as models

    seen = []

    def silent_network(*args, **kwargs):
        seen.append(socket.getdefaulttimeout())
        raise TimeoutError("timed out")

    monkeypatch.setattr("keras.src.applications.vgg16.file_utils.get_file", silent_network)
    with pytest.raises(ModelError, match="timed out"):
        build_model(RunConfig(variant="transfer", weights="imagenet"))
    assert seen == [models.IMAGENET_TIMEOUT_S]
    assert socket.getdefaulttimeout() is None
