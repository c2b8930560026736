"""Offline transfer learning: a base pretrained on the other classes, transfer and finetune
from it, and the rule that the base never saw the pair."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from cifar_gui.config import PRETRAIN_EPOCHS, RunConfig
from cifar_gui.engine.data.cifar_batches import CIFAR10_CLASSES
from cifar_gui.engine.data.dataset import load_dataset, select_classes
from cifar_gui.engine.errors import ModelError, UserError
from cifar_gui.engine.models.build import build_model, convolutional_base, planned_parameter_counts
from cifar_gui.engine.record import ParameterCounts
from cifar_gui.engine.training.frozen_front import split_front
from cifar_gui.engine.training.pretrain import base_overlap, complement_classes, pretrain_config
from cifar_gui.engine.training.run import run_training

PAIR = ("deer", "horse")
# The seed's small CNN: its three convolutions, and the transfer head on its 3x3x128 output.
CNN_CONV_PARAMS = (896, 18_496, 73_856)
CNN_HEAD_PARAMS = 1152 * 256 + 256 + 257  # Dense 256 on 1,152 features, one sigmoid unit
BASE_LAYERS = [
    "block1_conv1",
    "block1_pool",
    "block2_conv1",
    "block2_pool",
    "block3_conv1",
    "block3_pool",
]


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    from tests.conftest import write_cifar_batches

    return load_dataset(write_cifar_batches(tmp_path_factory.mktemp("data") / "b"))


@pytest.fixture(scope="module")
def base_run(tiny_dataset, tmp_path_factory):
    """A tiny pretrain on the eight classes that are not deer or horse."""
    out = tmp_path_factory.mktemp("base")
    config = pretrain_config(
        tiny_dataset.class_names, PAIR, epochs=1, batch_size=8, limit=16, out_dir=str(out)
    )
    return run_training(config, dataset=tiny_dataset)


def tiny(**fields) -> RunConfig:
    return RunConfig.tiny(**fields)


def test_pretrain_config_takes_every_class_but_the_pair():
    config = pretrain_config(CIFAR10_CLASSES, ("deer", 7))
    assert config.variant == "pretrain"
    assert config.classes == tuple(c for c in CIFAR10_CLASSES if c not in PAIR)
    assert config.excluded == PAIR
    assert config.epochs == PRETRAIN_EPOCHS["cnn"]
    assert not config.augments  # off unless asked for
    assert pretrain_config(CIFAR10_CLASSES, PAIR, arch="vgg16").epochs == PRETRAIN_EPOCHS["vgg16"]
    assert RunConfig.from_dict(config.to_dict()) == config


def test_a_base_needs_two_other_classes():
    assert complement_classes(("a", "b", "c", "d"), ("a", "c")) == ("b", "d")
    with pytest.raises(UserError, match="at least two other classes"):
        complement_classes(("a", "b", "c"), ("a", "b"))


def test_pretrain_saves_a_base_whose_classes_are_disjoint_from_the_pair(base_run):
    assert base_run.path.name == "cifar10_0_1_2_3_5_6_8_9_pretrainedbase.h5"
    side = json.loads(base_run.path.with_suffix(".json").read_text())
    assert side["config"]["variant"] == "pretrain"
    assert side["config"]["excluded"] == list(PAIR)
    assert len(side["class_names"]) == 8
    assert set(side["class_names"]).isdisjoint(PAIR)
    assert set(side["class_indices"]).isdisjoint({4, 7})
    assert base_run.model.output_shape == (None, 8)
    assert base_overlap(base_run.path, PAIR) == ()


def test_transfer_freezes_exactly_the_base_layers(base_run):
    model = build_model(tiny(variant="transfer", base=str(base_run.path)))
    base = model.layers[0]
    assert base.name == "base"
    assert [layer.name for layer in base.layers] == BASE_LAYERS
    assert not base.trainable_weights
    assert planned_parameter_counts(tiny(variant="transfer", base=str(base_run.path))) == (
        ParameterCounts(sum(CNN_CONV_PARAMS) + CNN_HEAD_PARAMS, CNN_HEAD_PARAMS,
                        sum(CNN_CONV_PARAMS))
    )  # fmt: skip
    # The base's weights are the pretrained ones; its head (Dense 512, softmax) is not taken.
    originals = convolutional_base(base_run.model, base_run.path)
    assert len(originals) == len(BASE_LAYERS)
    for original, copy in zip(originals, base.layers, strict=True):
        for a, b in zip(original.weights, copy.weights, strict=True):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    # Leading and frozen: training runs it (and the Flatten after it) outside the step.
    front, _ = split_front(model, tiny(variant="transfer"))
    assert front[0].name == "base" and len(front) == 2


def test_transfer_trains_saves_and_reloads_in_plain_keras(base_run, tiny_dataset, tmp_path):
    config = tiny(
        variant="transfer", base=str(base_run.path), out_dir=str(tmp_path), use_augmentation=False
    )
    result = run_training(config, dataset=tiny_dataset)
    assert result.path.name == "cifar10_4_7_transferlearning.h5"
    assert result.record.parameters.non_trainable == sum(CNN_CONV_PARAMS)
    assert result.record.performance.feature_cache is True
    plain = keras.models.load_model(result.path, compile=False)
    images = select_classes(tiny_dataset, PAIR, limit=4).x_test / np.float32(255)
    np.testing.assert_allclose(
        plain.predict(images, verbose=0), result.model.predict(images, verbose=0), atol=1e-2
    )
    # Training changed the head only: the base is still the pretrained one.
    trained = result.model.layers[0]
    for original, copy in zip(convolutional_base(base_run.model, "x"), trained.layers, strict=True):
        for a, b in zip(original.weights, copy.weights, strict=True):
            np.testing.assert_array_equal(a.numpy(), b.numpy())

    finetune = tiny(variant="finetune", from_model=str(result.path), out_dir=str(tmp_path))
    counts = planned_parameter_counts(finetune)
    # Exactly the last block (block3_conv1 and its pooling) joins the head.
    assert counts == ParameterCounts(
        sum(CNN_CONV_PARAMS) + CNN_HEAD_PARAMS,
        CNN_CONV_PARAMS[2] + CNN_HEAD_PARAMS,
        CNN_CONV_PARAMS[0] + CNN_CONV_PARAMS[1],
    )
    tuned = run_training(finetune, dataset=tiny_dataset)
    assert tuned.record.parameters == counts
    base = tuned.model.layers[0]
    assert [layer.name for layer in base.layers if layer.trainable] == BASE_LAYERS[4:]
    keras.models.load_model(tuned.path, compile=False)


def test_a_base_that_saw_the_pair_is_refused_unless_allowed(tiny_dataset, tmp_path):
    seen = run_training(tiny(classes=("deer", "cat"), out_dir=str(tmp_path)), dataset=tiny_dataset)
    assert base_overlap(seen.path, PAIR) == ("deer",)
    assert base_overlap(seen.path, (4, 7)) == ("deer",)  # indices match too
    config = tiny(variant="transfer", base=str(seen.path))
    with pytest.raises(ModelError, match=r"trained on deer.*--allow-overlap"):
        build_model(config)
    with pytest.raises(ModelError, match="trained on deer"):
        planned_parameter_counts(config)  # the count before a run says so too
    assert build_model(config.replace(allow_overlap=True)).layers[0].name == "base"


def test_a_base_without_a_sidecar_cannot_be_checked_and_is_taken(base_run, tmp_path):
    bare = tmp_path / "bare.h5"
    base_run.model.save(bare)
    assert base_overlap(bare, PAIR) is None
    assert build_model(tiny(variant="transfer", base=str(bare))).layers[0].name == "base"


def test_a_model_without_convolutions_is_no_base(tmp_path):
    dense = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(1)])  # fmt: skip
    path = tmp_path / "dense.h5"
    dense.save(path)
    with pytest.raises(ModelError, match="no convolutional layers"):
        build_model(tiny(variant="transfer", base=str(path)))


def test_vgg16_pretrain_is_vgg16_under_a_softmax_with_its_own_rate():
    config = pretrain_config(CIFAR10_CLASSES, PAIR, arch="vgg16", weights="none")
    model = build_model(config, num_classes=8)
    assert model.get_layer("vgg16").trainable_weights  # trained whole
    assert model.output_shape == (None, 8)
    assert config.lr == 1e-4
