"""One ``fit`` for all the epochs of a run (issue #27): the same batches as one fit an
epoch, and a stop between two epochs still ends the run after the first."""

from __future__ import annotations

import threading

import keras
import numpy as np
import pytest

from cifar_gui.config import RunConfig
from cifar_gui.engine.data.dataset import load_dataset, select_classes
from cifar_gui.engine.events import EpochEvent
from cifar_gui.engine.training.checkpoints import read_checkpoint
from cifar_gui.engine.training.pipeline import EpochStream
from cifar_gui.engine.training.run import run_training


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from tests.conftest import write_cifar_batches

    return load_dataset(write_cifar_batches(tmp_path_factory.mktemp("data") / "b"))


def test_the_run_long_stream_gives_each_epoch_its_own_batches(tiny):
    subset = select_classes(tiny, limit=24)
    config = RunConfig(variant="augmented", batch_size=8, seed=5)
    stream = EpochStream(subset.x_train, subset.y_train, config)
    epoch = [0]
    every = stream.epochs(lambda: epoch[0])
    for e in (0, 3):
        epoch[0] = e
        ours = [x.numpy() for x, _ in every]  # a new iterator: epoch e's
        theirs = [x.numpy() for x, _ in stream.epoch(e)]
        assert len(ours) == stream.steps == len(theirs)
        for a, b in zip(ours, theirs, strict=True):
            np.testing.assert_array_equal(a, b)
    epoch[0] = 1
    assert not np.array_equal(next(iter(every))[0], ours[0])  # another epoch, another order


def test_a_run_is_one_fit_and_a_stop_between_epochs_ends_it_after_the_first(
    tiny, tmp_path, monkeypatch
):
    fits = []
    fit = keras.Model.fit

    def counted(self, *args, **kwargs):
        fits.append((kwargs["initial_epoch"], kwargs["epochs"]))
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", counted)
    stop = threading.Event()

    def sink(event):
        if isinstance(event, EpochEvent):
            stop.set()  # after the first epoch, between two batches of none

    config = RunConfig(out_dir=str(tmp_path), epochs=3, batch_size=8, limit=24)
    result = run_training(config, sink, stop, dataset=tiny)
    assert fits == [(0, 3)]
    assert result.stopped and result.record.epochs_completed == 1
    assert len(result.history["loss"]) == 1  # no second epoch was begun
    assert read_checkpoint(tmp_path).epochs_completed == 1
