"""An epoch's checkpoint file is written on a thread while its validation runs (issue #27):
what the checkpoint holds, and what a failed write does, are as when it was written after."""

from __future__ import annotations

import threading

import keras
import numpy as np
import pytest

from cifar_gui.config import RunConfig
from cifar_gui.engine.data.dataset import load_dataset
from cifar_gui.engine.errors import ModelError
from cifar_gui.engine.training import callbacks
from cifar_gui.engine.training.checkpoints import read_checkpoint
from cifar_gui.engine.training.run import run_training


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from tests.conftest import write_cifar_batches

    return load_dataset(write_cifar_batches(tmp_path_factory.mktemp("data") / "b"))


def config_for(out, **changes) -> RunConfig:
    return RunConfig(out_dir=str(out), epochs=2, batch_size=8, limit=24, **changes)


def test_the_file_written_during_validation_holds_the_epochs_weights(tiny, tmp_path, monkeypatch):
    writers = []
    write = callbacks.save_epoch_model

    def spy(model, path):
        writers.append((threading.current_thread().name, path.name))
        write(model, path)

    monkeypatch.setattr(callbacks, "save_epoch_model", spy)
    result = run_training(config_for(tmp_path), dataset=tiny)
    assert writers == [
        ("cifar-gui-checkpoint", "epoch-0001.keras"),
        ("cifar-gui-checkpoint", "epoch-0002.keras"),
    ]
    checkpoint = read_checkpoint(tmp_path)
    assert checkpoint.epochs_completed == 2
    saved = keras.saving.load_model(checkpoint.model_path, compile=True)
    for ours, theirs in zip(result.model.get_weights(), saved.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    # The optimizer state came along: RMSprop's averages after two epochs are not zero.
    averages = [v for v in saved.optimizer.variables if "velocit" in v.path or "average" in v.path]
    assert averages and any(np.any(np.asarray(v) != 0) for v in averages)


def test_a_write_that_fails_on_its_thread_ends_the_run_with_its_one_line(
    tiny, tmp_path, monkeypatch
):
    write = callbacks.save_epoch_model

    def second_fails(model, path):
        if path.name == "epoch-0002.keras":
            raise ModelError(f"{path}: cannot write the checkpoint (disk full)")
        write(model, path)

    monkeypatch.setattr(callbacks, "save_epoch_model", second_fails)
    with pytest.raises(ModelError, match=r"epoch-0002\.keras: cannot write the checkpoint"):
        run_training(config_for(tmp_path), dataset=tiny)
    # The last complete checkpoint is the first epoch's, whole.
    assert read_checkpoint(tmp_path).epochs_completed == 1
