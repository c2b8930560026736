"""Speed settings: automatic choices, mixed precision that saves and reloads, cached features."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from cifar_gui.config import RunConfig
from cifar_gui.engine.data.dataset import load_dataset
from cifar_gui.engine.models.build import build_baseline, with_precision
from cifar_gui.engine.training import performance
from cifar_gui.engine.training.checkpoints import read_checkpoint
from cifar_gui.engine.training.performance import (
    resolve_matmul_convolutions,
    resolve_precision,
    resolve_steps_per_execution,
)
from cifar_gui.engine.training.run import run_training

TRANSFER_PARAMETERS = 14_846_273  # VGG16 base 14,714,688 + Dense 256 131,328 + output 257


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    from tests.conftest import write_cifar_batches

    return load_dataset(write_cifar_batches(tmp_path_factory.mktemp("data") / "b"))


@pytest.mark.parametrize(
    ("gpu", "flags", "expected"),
    [
        (True, set(), "mixed_float16"),
        (False, {"avx2", "avx512_bf16"}, "mixed_bfloat16"),
        (False, {"amx_bf16"}, "mixed_bfloat16"),
        (False, {"avx2", "avx512f"}, "float32"),
    ],
)
def test_auto_precision_follows_the_hardware(monkeypatch, gpu, flags, expected):
    monkeypatch.setattr(performance, "has_gpu", lambda: gpu)
    monkeypatch.setattr(performance, "cpu_flags", lambda: frozenset(flags))
    assert resolve_precision("auto") == expected
    assert resolve_precision("float32") == "float32"


def test_steps_per_execution_is_the_setting_at_most_an_epoch(monkeypatch):
    monkeypatch.setattr(performance, "has_gpu", lambda: False)
    assert resolve_steps_per_execution("auto", 313) == 8
    assert resolve_steps_per_execution(16, 313) == 16  # an epoch's last call is shorter
    assert resolve_steps_per_execution(50, 3) == 3
    monkeypatch.setattr(performance, "has_gpu", lambda: True)
    assert resolve_steps_per_execution("auto", 313) == 32


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("precision", "half"),
        ("steps_per_execution", 0),
        ("steps_per_execution", "x"),
        ("threads", -1),
        ("matmul_convolutions", True),
        ("fused_optimizer", "yes"),
    ],
)
def test_bad_speed_settings_are_refused(field, value):
    with pytest.raises(ValueError, match=field.split("_")[0]):
        RunConfig(**{field: value})


def test_matmul_convolutions_auto_means_without_a_gpu(monkeypatch):
    monkeypatch.setattr(performance, "has_gpu", lambda: False)
    assert resolve_matmul_convolutions("auto") and resolve_matmul_convolutions("on")
    assert not resolve_matmul_convolutions("off")
    monkeypatch.setattr(performance, "has_gpu", lambda: True)
    assert not resolve_matmul_convolutions("auto") and resolve_matmul_convolutions("on")


def test_speed_settings_round_trip_through_the_sidecar_dict():
    config = RunConfig(
        precision="float32",
        steps_per_execution=4,
        threads=1,
        feature_cache=False,
        matmul_convolutions="off",
        fused_optimizer=False,
    )
    assert RunConfig.from_dict(config.to_dict()) == config


def test_mixed_bfloat16_model_saves_and_reloads_in_plain_keras(tiny_dataset, tmp_path):
    config = RunConfig(
        epochs=1, batch_size=8, limit=16, precision="mixed_bfloat16", out_dir=str(tmp_path)
    )
    result = run_training(config, dataset=tiny_dataset)
    assert result.record.precision == "mixed_bfloat16"
    assert result.model.layers[0].dtype_policy.name == "mixed_bfloat16"
    assert result.model.layers[-1].dtype_policy.name == "float32"
    reloaded = keras.models.load_model(result.path, compile=False)
    assert reloaded.count_params() == result.model.count_params() == 684_097
    assert reloaded.layers[-1].dtype_policy.name == "float32"
    images = np.random.default_rng(0).random((4, 32, 32, 3), dtype=np.float32)
    out = reloaded(images)
    assert out.dtype == "float32"
    np.testing.assert_allclose(out, result.model(images), atol=1e-6)


def test_with_precision_keeps_weights_and_output_in_float32():
    model = build_baseline()
    converted = with_precision(model, "mixed_bfloat16")
    assert with_precision(converted, "mixed_bfloat16") is converted
    assert converted.layers[0].dtype_policy.name == "mixed_bfloat16"
    assert converted.layers[-1].dtype_policy.name == "float32"
    assert converted.count_params() == model.count_params()
    for a, b in zip(model.get_weights(), converted.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_cached_features_train_the_whole_transfer_model_as_the_full_pass(tiny_dataset, tmp_path):
    """Same history as running VGG16 every epoch; the saved model is base + head on images."""
    common = dict(
        variant="transfer",
        weights="none",
        use_augmentation=False,
        epochs=2,
        batch_size=8,
        limit=16,
        precision="float32",
    )
    full = run_training(RunConfig(**common, feature_cache=False), dataset=tiny_dataset, save=False)
    cached = run_training(
        RunConfig(**common, out_dir=str(tmp_path)), dataset=tiny_dataset, save=True
    )
    assert not full.record.performance.feature_cache
    assert cached.record.performance.feature_cache
    assert cached.record.performance.feature_seconds > 0
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(cached.history[key], full.history[key], rtol=1e-4, atol=1e-5)
    saved = keras.models.load_model(cached.path, compile=False)
    assert saved.input_shape == (None, 32, 32, 3)
    assert saved.count_params() == TRANSFER_PARAMETERS
    images = np.random.default_rng(1).random((2, 32, 32, 3), dtype=np.float32)
    np.testing.assert_allclose(saved(images), cached.model(images), atol=1e-6)
    # The checkpoint written while only the head was fitted holds the whole model too.
    checkpoint = read_checkpoint(tmp_path / "checkpoints" / cached.path.stem)
    assert checkpoint.epochs_completed == 2
    resumable = keras.models.load_model(checkpoint.model_path, compile=False)
    assert resumable.count_params() == TRANSFER_PARAMETERS


def test_augmented_transfer_runs_its_base_outside_the_training_step(tiny_dataset):
    config = RunConfig(
        variant="transfer", weights="none", epochs=1, batch_size=8, limit=8, precision="float32"
    )
    assert config.augments  # the seed's transfer variant augments
    result = run_training(config, dataset=tiny_dataset, save=False)
    assert result.record.performance.feature_cache
    assert result.record.performance.frozen_front_layers == 3
    assert result.model.count_params() == TRANSFER_PARAMETERS  # the whole model is returned
