"""The frozen front: which leading layers run outside the training step, and that running
them there trains the same weights as the whole model every step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import layers

from cifar_gui.config import RunConfig
from cifar_gui.engine.data.dataset import load_dataset, select_classes
from cifar_gui.engine.events import BatchEvent, EpochEvent, only
from cifar_gui.engine.models.build import build_model, unfreeze_from
from cifar_gui.engine.training.checkpoints import read_checkpoint
from cifar_gui.engine.training.frozen_front import split_front
from cifar_gui.engine.training.run import run_training, train

ATOL = 1e-5
# A few steps on a few images, at a rate that moves the weights well beyond the tolerance.
COMMON = dict(
    weights="none", epochs=2, batch_size=4, limit=12, precision="float32", learning_rate=1e-4
)


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    from tests.conftest import write_cifar_batches

    return load_dataset(write_cifar_batches(tmp_path_factory.mktemp("data") / "b"))


@pytest.fixture(scope="module")
def transfer_file(tiny_dataset, tmp_path_factory):
    """A saved transfer model for finetune to continue from."""
    out = tmp_path_factory.mktemp("transfer")
    config = RunConfig(variant="transfer", out_dir=str(out), **{**COMMON, "epochs": 1})
    return str(run_training(config, dataset=tiny_dataset).path)


def names(units: list[keras.layers.Layer]) -> list[str]:
    return [layer.name for layer in units]


def test_transfer_front_is_the_whole_base():
    model = build_model(RunConfig(variant="transfer", weights="none"))
    front, head = split_front(model, RunConfig(variant="transfer"))
    assert names(front)[:2] == ["vgg16_preprocessing", "vgg16"]
    assert len(front) == 3 and len(head) == 2  # Flatten in front; Dense 256 and output


def test_finetune_front_ends_inside_the_nested_base():
    model = build_model(RunConfig(variant="transfer", weights="none"))
    unfreeze_from(model, "block3_conv1")
    front, head = split_front(model, RunConfig(variant="finetune"))
    assert names(front) == [
        "vgg16_preprocessing",
        *("block1_conv1", "block1_conv2", "block1_pool"),
        *("block2_conv1", "block2_conv2", "block2_pool"),
    ]
    assert len(head) == 12 + 3  # blocks 3 to 5, then Flatten, Dense 256, output
    assert head[0].name == "block3_conv1"


def test_no_front_when_nothing_is_frozen_or_the_setting_is_off():
    baseline = build_model(RunConfig())
    assert split_front(baseline, RunConfig()) == ([], baseline.layers)
    transfer = build_model(RunConfig(variant="transfer", weights="none"))
    front, head = split_front(transfer, RunConfig(variant="transfer", feature_cache=False))
    assert front == [] and head == transfer.layers


def small_cnn() -> keras.Sequential:
    return keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            layers.Conv2D(4, 3, name="c1"),
            layers.MaxPooling2D(2, name="p1"),
            layers.Conv2D(4, 3, name="c2"),
        ],
        name="cnn",
    )


def test_any_sequential_with_a_frozen_lead_has_a_front():
    """A small-CNN base, nested or as leading layers, frozen in part or whole."""
    base = small_cnn()
    base.layers[0].trainable = False
    nested = keras.Sequential([keras.Input((32, 32, 3)), base, layers.Flatten(), layers.Dense(1)])
    front, head = split_front(nested, RunConfig())
    assert names(front) == ["c1", "p1"]
    assert names(head)[0] == "c2" and len(head) == 3
    base.trainable = False
    assert names(split_front(nested, RunConfig())[0])[0] == "cnn"
    leading = keras.Sequential(
        [keras.Input((32, 32, 3)), *small_cnn().layers, layers.Flatten(), layers.Dense(1)]
    )
    for layer in leading.layers[:2]:
        layer.trainable = False
    assert len(split_front(leading, RunConfig())[0]) == 2


def test_front_stops_at_layers_that_train_differently():
    """Dropout has no weights but is random in training: it and what follows stay in the
    training step. A partly trainable nested model that is no chain stays whole."""
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            layers.Conv2D(4, 3, trainable=False),
            layers.Dropout(0.5),
            layers.Conv2D(4, 3, trainable=False),
            layers.Flatten(),
            layers.Dense(1),
        ]
    )
    assert len(split_front(model, RunConfig())[0]) == 1
    inputs = keras.Input((32, 32, 3))
    a = layers.Conv2D(4, 3, trainable=False)(inputs)
    b = layers.Conv2D(4, 3)(inputs)
    branched = keras.Model(inputs, layers.Add()([a, b]))
    model = keras.Sequential(
        [keras.Input((32, 32, 3)), branched, layers.Flatten(), layers.Dense(1)]
    )
    assert split_front(model, RunConfig()) == ([], model.layers)


def initial_weights(config: RunConfig, num_classes: int) -> list[np.ndarray]:
    """The weights a run of ``config`` starts from (as ``train`` builds them)."""
    keras.utils.set_random_seed(config.seed)
    model = build_model(config, num_classes)
    if config.variant == "finetune":
        unfreeze_from(model, config.unfreeze_from)
    return model.get_weights()


@pytest.mark.parametrize("variant", ["transfer", "finetune"])
# Without augmentation the front runs once per run, the older feature cache (the pretrain
# tests train transfer behind it too): those two cases run with -m slow.
@pytest.mark.parametrize(
    "augment",
    [True, pytest.param(False, marks=pytest.mark.slow)],
    ids=["augmented", "plain"],
)
def test_front_path_trains_the_same_weights_as_the_full_model(
    tiny_dataset, transfer_file, variant, augment
):
    config = RunConfig(variant=variant, use_augmentation=augment, **COMMON)
    if variant == "finetune":
        config = config.replace(from_model=transfer_file)
    subset = select_classes(tiny_dataset, config.classes, config.limit)
    full = train(config.replace(feature_cache=False), subset)
    split = train(config, subset)
    assert full.record.performance.frozen_front_layers == 0
    assert split.record.performance.frozen_front_layers == (3 if variant == "transfer" else 7)
    # Blocks 4 and 5 see 4x4 and 2x2 maps (in the front for transfer); block 3's 8x8 maps
    # have their kernel gradients as matrix products when it is trained (finetune).
    blocks = (4, 5) if variant == "transfer" else (3, 4, 5)
    small_maps = [f"block{block}_conv{n}" for block in blocks for n in (1, 2, 3)]
    assert split.record.performance.matmul_convolutions == tuple(small_maps)
    # The whole model's step also traces the frozen base's kernel gradients (Keras' tape
    # watches its variables), which TensorFlow prunes as unused: block 3 is listed there.
    assert set(small_maps) <= set(full.record.performance.matmul_convolutions)
    start = initial_weights(config, subset.num_classes)
    moved = max(
        float(np.max(np.abs(a - b))) for a, b in zip(full.model.get_weights(), start, strict=True)
    )
    assert moved > 100 * ATOL  # the comparison below can fail
    for a, b in zip(split.model.get_weights(), full.model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, atol=ATOL)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(split.history[key], full.history[key], rtol=1e-4, atol=ATOL)


class Crash(Exception):
    """Stands for a crash right after an epoch's checkpoint was written."""


def test_resume_behind_a_front_equals_uninterrupted(tiny_dataset, tmp_path):
    """Checkpoints hold the whole model and the optimizer state the head shares."""
    config = RunConfig(variant="transfer", **COMMON)
    straight = run_training(config.replace(out_dir=str(tmp_path / "a")), dataset=tiny_dataset)

    def crash(event) -> None:
        raise Crash

    broken = config.replace(out_dir=str(tmp_path / "b"))
    with pytest.raises(Crash):
        run_training(broken, only(EpochEvent, crash), dataset=tiny_dataset)
    checkpoint = read_checkpoint(tmp_path / "b")
    assert checkpoint.epochs_completed == 1
    resumed = run_training(broken, dataset=tiny_dataset, resume=checkpoint)
    assert resumed.record.performance.frozen_front_layers == 3
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(resumed.history[key], straight.history[key], rtol=1e-5)
    for a, b in zip(resumed.model.get_weights(), straight.model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, atol=ATOL)


def test_stop_and_batch_events_behind_a_front(tiny_dataset):
    """Progress comes from the head's steps; a stop from an event ends the run early."""
    stop, seen = threading.Event(), []

    def on_batch(event) -> None:
        seen.append(event.batch)
        stop.set()

    config = RunConfig(variant="transfer", steps_per_execution=1, **COMMON)
    result = run_training(
        config, only(BatchEvent, on_batch), stop, dataset=tiny_dataset, save=False
    )
    assert result.stopped and seen == [0]
    assert result.record.performance.frozen_front_layers == 3


# Runs in a fresh process: the CPU can be split only before TensorFlow starts.
MIRRORED = """
import json, sys
from cifar_gui.engine.training.distribute import split_cpu
split_cpu(2)
import numpy as np
from cifar_gui.config import RunConfig
from cifar_gui.engine.training.checkpoints import read_checkpoint
from cifar_gui.engine.data.cifar_batches import CIFAR10_CLASSES
from cifar_gui.engine.data.dataset import Dataset
from cifar_gui.engine.training.run import run_training
from tests.conftest import synthetic_images

x_train, y_train = synthetic_images(80, seed=3)
data = Dataset(x_train, y_train, x_train, y_train, CIFAR10_CLASSES, "synthetic")
config = RunConfig(variant="transfer", weights="none", epochs=1, batch_size=8, limit=16,
                   precision="float32", learning_rate=1e-4, checkpoint=False)
one = run_training(config, dataset=data, save=False)
two = run_training(config.replace(strategy="mirrored", batch_size=4), dataset=data, save=False)
print(json.dumps({
    "strategy": two.record.strategy,
    "front": [one.record.performance.frozen_front_layers,
              two.record.performance.frozen_front_layers],
    "loss": [one.history["loss"], two.history["loss"]],
    "difference": max(float(np.max(np.abs(a - b))) for a, b in
                      zip(one.model.get_weights(), two.model.get_weights())),
}))
"""


@pytest.mark.slow  # a fresh TensorFlow process split into two devices
def test_mirrored_strategy_behind_a_front(tmp_path):
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root), "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [sys.executable, "-c", MIRRORED], cwd=root, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["strategy"] == "mirrored over 2 devices"
    assert result["front"] == [3, 3]
    np.testing.assert_allclose(result["loss"][1], result["loss"][0], rtol=1e-4)
    assert result["difference"] < 1e-4
