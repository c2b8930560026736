"""Training runs: events, cooperative stop, determinism, saved files."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from cifar_gui.config import RunConfig
from cifar_gui.engine.data.dataset import load_dataset, select_classes
from cifar_gui.engine.events import BatchEvent, EpochEvent, RunFinished, RunStarted
from cifar_gui.engine.models.persistence import load_model
from cifar_gui.engine.training.pipeline import EpochStream
from cifar_gui.engine.training.run import run_training, train

TINY = dict(epochs=2, batch_size=8, limit=24)


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    from tests.conftest import write_cifar_batches

    return load_dataset(write_cifar_batches(tmp_path_factory.mktemp("data") / "b"))


def test_run_reports_events_and_saves_model_and_sidecar(tiny_dataset, tmp_path):
    heard = []
    config = RunConfig(out_dir=str(tmp_path), steps_per_execution=1, **TINY)
    result = run_training(config, heard.append, dataset=tiny_dataset)
    assert result.path == tmp_path / "cifar10_4_7.h5"
    batches = [e for e in heard if isinstance(e, BatchEvent)]
    epochs = [e for e in heard if isinstance(e, EpochEvent)]
    assert len(epochs) == 2 and len(batches) == 2 * 3
    # The run's first and last word: its start, and what it saved (after its every epoch).
    assert heard[0] == RunStarted("baseline", 2) and heard[-1] == result.finished
    assert isinstance(heard[-1], RunFinished) and heard[-1].path == result.path
    assert batches[-1].steps == 3 and batches[-1].eta_seconds == pytest.approx(0.0, abs=1e-9)
    assert set(epochs[0].metrics) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    side = json.loads((tmp_path / "cifar10_4_7.json").read_text())
    assert side["config"]["variant"] == "baseline"
    assert side["class_names"] == ["deer", "horse"]
    assert len(side["history"]["val_accuracy"]) == 2
    assert side["parameters"]["total"] == 684_097
    assert side["device"].startswith(("CPU", "GPU"))
    assert {"tensorflow", "keras", "cifar_gui"} <= set(side["versions"])
    assert side["test_accuracy"] == side["history"]["val_accuracy"][-1]
    assert RunConfig.from_dict(side["config"]) == config
    assert load_model(result.path).class_names == ("deer", "horse")


def test_same_seed_same_history(tiny_dataset):
    subset = select_classes(tiny_dataset, limit=24)
    config = RunConfig(variant="augmented", epochs=2, batch_size=8, seed=3)
    first = train(config, subset).history
    second = train(config, subset).history
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(first[key], second[key], rtol=1e-6)


@pytest.mark.parametrize("per_call", [1, 2])
def test_stop_ends_the_run_within_one_call(tiny_dataset, per_call):
    subset = select_classes(tiny_dataset, limit=24)  # 20 training images: batches of 8, 8 and 4
    seen, stop = [], threading.Event()

    def stop_after_two(event):
        if isinstance(event, BatchEvent):
            seen.append(event)
            if len(seen) == 2:
                stop.set()

    config = RunConfig(epochs=5, batch_size=8, steps_per_execution=per_call)
    result = train(config, subset, stop_after_two, stop)
    assert len(seen) == 2
    assert result.stopped and result.record.stopped
    # One batch per call: stopped after batch 2 of epoch 1. Two per call: the first epoch
    # is one call of 2 batches and a short one of 1, so the stop came at its end.
    assert [(e.epoch, e.batch) for e in seen] == (
        [(0, 0), (0, 1)] if per_call == 1 else [(0, 1), (0, 2)]
    )
    assert result.record.epochs_completed == 1
    assert int(result.model.optimizer.iterations.numpy()) == (2 if per_call == 1 else 3)


def test_epochs_are_a_function_of_seed_and_epoch(tiny_dataset):
    subset = select_classes(tiny_dataset, limit=24)
    config = RunConfig(variant="augmented", batch_size=8, seed=7)

    def batches(stream, epoch):
        return [x.numpy() for x, _ in stream.epoch(epoch)]

    first = EpochStream(subset.x_train, subset.y_train, config)
    again = EpochStream(subset.x_train, subset.y_train, config)
    assert len(batches(first, 0)) == first.steps == 3
    # Asked for out of order, in another stream: the same epoch 2.
    for mine, theirs in zip(batches(first, 2), batches(again, 2), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    assert not np.array_equal(first.order(0), first.order(1))
    assert sorted(first.order(1)) == list(range(len(subset.x_train)))
    other_seed = EpochStream(subset.x_train, subset.y_train, config.replace(seed=8))
    assert not np.array_equal(first.order(1), other_seed.order(1))


def test_three_classes_train_a_softmax(tiny_dataset):
    subset = select_classes(tiny_dataset, ["cat", "dog", "ship"], limit=18)
    result = train(RunConfig(classes=("cat", "dog", "ship"), epochs=1, batch_size=6), subset)
    assert result.model.output_shape == (None, 3)
    assert result.record.class_names == ("cat", "dog", "ship")


def test_augmented_stream_changes_images_baseline_stream_does_not(tiny_dataset):
    subset = select_classes(tiny_dataset, limit=8)
    scaled = subset.x_train.astype(np.float32) / 255

    def first_batch(variant):
        stream = EpochStream(
            subset.x_train, subset.y_train, RunConfig(variant=variant, batch_size=8)
        )
        x, _ = next(iter(stream.epoch(0)))
        return np.sort(x.numpy().reshape(8, -1), axis=0)

    np.testing.assert_allclose(first_batch("baseline"), np.sort(scaled.reshape(8, -1), axis=0))
    assert not np.allclose(first_batch("augmented"), np.sort(scaled.reshape(8, -1), axis=0))


@pytest.mark.slow
def test_transfer_then_finetune(tiny_dataset, tmp_path):
    base = dict(out_dir=str(tmp_path), epochs=1, batch_size=8, limit=16, weights="none")
    transfer = run_training(RunConfig(variant="transfer", **base), dataset=tiny_dataset)
    assert transfer.record.parameters.trainable == 131_585
    finetune = run_training(
        RunConfig(variant="finetune", from_model=str(transfer.path), **base), dataset=tiny_dataset
    )
    assert finetune.path.name == "cifar10_4_7_finetuningtransferlearning.h5"
    assert finetune.record.parameters.trainable == 14_586_113
    assert finetune.record.parameters.non_trainable == 260_160


def test_base_from_a_saved_model_is_copied(tiny_dataset, tmp_path):
    """Offline transfer learning: a VGG16 base trained by the app feeds a new transfer model."""
    source = run_training(
        RunConfig(
            variant="transfer",
            classes=("cat", "dog"),
            weights="none",
            epochs=1,
            batch_size=8,
            limit=8,
            out_dir=str(tmp_path / "src"),
        ),
        dataset=tiny_dataset,
    )
    result = train(
        RunConfig(variant="transfer", base=str(source.path), epochs=1, batch_size=8),
        select_classes(tiny_dataset, limit=8),
    )
    for a, b in zip(
        source.model.get_layer("vgg16").weights,
        result.model.get_layer("vgg16").weights,
        strict=True,
    ):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
