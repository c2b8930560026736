"""Checkpoints every epoch and resume: a resumed run's history equals an uninterrupted one's."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from cifar_gui.config import RunConfig
from cifar_gui.engine.data.cifar_batches import CIFAR10_CLASSES
from cifar_gui.engine.data.dataset import Dataset
from cifar_gui.engine.errors import ModelError
from cifar_gui.engine.events import BatchEvent, EpochEvent, Sink, only
from cifar_gui.engine.models.checkpoint_model import load_checkpoint_model
from cifar_gui.engine.models.persistence import load_model
from cifar_gui.engine.training.checkpoints import (
    STATE_FILE,
    STATE_VERSION,
    find_checkpoint_dir,
    list_checkpoints,
    read_checkpoint,
)
from cifar_gui.engine.training.run import run_training
from tests.conftest import synthetic_images

METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")


class Crash(Exception):
    """Stands for a crash right after an epoch's checkpoint was written."""


@pytest.fixture(scope="module")
def tiny() -> Dataset:
    """10 classes; deer and horse get 48 training and 16 test images (3 batches of 16)."""
    x_train, y_train = synthetic_images(240, seed=3)
    x_test, y_test = synthetic_images(80, seed=4)
    return Dataset(x_train, y_train, x_test, y_test, CIFAR10_CLASSES, "synthetic")


def config_for(out: Path, **changes) -> RunConfig:
    # augmented: the resumed pipeline must also continue the augmentation's step count.
    base = RunConfig(variant="augmented", epochs=3, batch_size=16, seed=5, out_dir=str(out))
    return base.replace(**changes)


def crash_after(epoch: int) -> Sink:
    def on_epoch(event) -> None:
        if event.epoch == epoch:
            raise Crash

    return only(EpochEvent, on_epoch)


def test_resumed_history_equals_uninterrupted(tiny, tmp_path):
    straight = run_training(config_for(tmp_path / "straight"), dataset=tiny)

    config = config_for(tmp_path / "broken")
    with pytest.raises(Crash):
        run_training(config, crash_after(1), dataset=tiny)
    checkpoint = read_checkpoint(tmp_path / "broken")
    assert checkpoint.epochs_completed == 2
    assert not checkpoint.finished
    assert not (tmp_path / "broken" / "cifar10_4_7_augm.h5").exists()

    epochs_heard = []
    resumed = run_training(
        checkpoint.config,
        only(EpochEvent, lambda e: epochs_heard.append(e.epoch)),
        dataset=tiny,
        resume=checkpoint,
    )
    assert epochs_heard == [2]
    assert resumed.record.resumed_from_epoch == 2
    assert resumed.record.epochs_completed == 3
    for key in METRICS:
        assert len(resumed.history[key]) == 3
        np.testing.assert_allclose(resumed.history[key], straight.history[key], rtol=1e-5)
    assert len(resumed.history["epoch_seconds"]) == 3
    # The final model lands beside the checkpoints, with the whole history in its sidecar.
    final = load_model(tmp_path / "broken" / "cifar10_4_7_augm.h5")
    assert len(final.history["loss"]) == 3
    x = tiny.x_test[:8].astype(np.float32) / 255
    np.testing.assert_allclose(
        final.model.predict(x, verbose=0), straight.model.predict(x, verbose=0), atol=1e-5
    )
    done = read_checkpoint(tmp_path / "broken")
    assert done.finished and done.epochs_completed == 3


@pytest.fixture(scope="module")
def finished(tiny, tmp_path_factory):
    """A finished two-epoch baseline run with its checkpoint (tests only read it)."""
    out = tmp_path_factory.mktemp("finished")
    return out, run_training(config_for(out, variant="baseline", epochs=2), dataset=tiny)


def test_checkpoint_holds_optimizer_state_and_only_the_last_epoch(finished):
    tmp_path, result = finished
    folder = find_checkpoint_dir(tmp_path)
    assert folder == tmp_path / "checkpoints" / "cifar10_4_7"
    # The run's TensorBoard event files live beside it (engine/training/tensorboard_log.py).
    assert sorted(p.name for p in folder.iterdir()) == [
        "epoch-0002.keras",
        STATE_FILE,
        "tensorboard",
    ]
    checkpoint = read_checkpoint(folder)
    model = load_checkpoint_model(checkpoint)
    # 3 steps per epoch, 2 epochs: the optimizer's step count and slots came back.
    assert int(model.optimizer.iterations.numpy()) == (
        checkpoint.epochs_completed * checkpoint.steps_per_epoch
    )
    assert len(model.optimizer.variables) > 1
    for mine, saved in zip(
        result.model.optimizer.variables, model.optimizer.variables, strict=True
    ):
        np.testing.assert_allclose(np.asarray(mine), np.asarray(saved))
    assert checkpoint.history["loss"] == pytest.approx(result.history["loss"])
    assert checkpoint.class_names == ("deer", "horse")
    assert [c.directory for c in list_checkpoints(tmp_path)] == [folder]


def test_stop_mid_epoch_keeps_last_complete_epoch(tiny, tmp_path):
    """A stop inside epoch 2 saves no partial epoch: resuming repeats epoch 2 whole."""
    stop, batches = threading.Event(), []

    def on_batch(event) -> None:
        batches.append(event)
        if event.epoch == 1:
            stop.set()

    # 24 steps per epoch: more than Keras runs per compiled call, so the stop lands inside.
    config = config_for(tmp_path, variant="baseline", batch_size=2)
    result = run_training(config, only(BatchEvent, on_batch), stop, dataset=tiny)
    assert result.stopped
    assert max(e.batch for e in batches if e.epoch == 1) < 23
    assert read_checkpoint(tmp_path).epochs_completed == 1
    resumed = run_training(
        read_checkpoint(tmp_path).config, dataset=tiny, resume=tmp_path, save=False
    )
    assert resumed.record.epochs_completed == 3


def test_new_run_replaces_old_checkpoint(tiny, finished, tmp_path):
    shutil.copytree(finished[0], tmp_path, dirs_exist_ok=True)
    with pytest.raises(Crash):
        run_training(config_for(tmp_path, variant="baseline"), crash_after(0), dataset=tiny)
    checkpoint = read_checkpoint(tmp_path)
    assert checkpoint.epochs_completed == 1 and checkpoint.config.epochs == 3


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"seed": 6}, "differs from the checkpoint's in seed"),
        ({"batch_size": 8}, "differs from the checkpoint's in batch_size"),
        ({"epochs": 2}, "all 2 epochs are done"),
    ],
)
def test_resume_refuses_a_different_run(tiny, finished, change, message):
    config = read_checkpoint(finished[0]).config.replace(**change)
    with pytest.raises(ModelError, match=message):
        run_training(config, dataset=tiny, resume=finished[0])


def test_unreadable_checkpoints_are_one_line_errors(tmp_path):
    with pytest.raises(ModelError, match="no such run folder"):
        read_checkpoint(tmp_path / "missing")
    with pytest.raises(ModelError, match="no checkpoint to resume"):
        read_checkpoint(tmp_path)
    for name in ("a", "b"):
        (tmp_path / "checkpoints" / name).mkdir(parents=True)
        (tmp_path / "checkpoints" / name / STATE_FILE).write_text("{}")
    with pytest.raises(ModelError, match="several runs to resume"):
        read_checkpoint(tmp_path)
    folder = tmp_path / "checkpoints" / "a"
    with pytest.raises(ModelError, match="not a readable checkpoint state"):
        read_checkpoint(folder)
    (folder / STATE_FILE).write_text("not json")
    with pytest.raises(ModelError, match="not a readable checkpoint state"):
        read_checkpoint(folder)
    state = {
        "version": STATE_VERSION,
        "config": RunConfig().to_dict(),
        "checkpoint": "epoch-0001.keras",
        "epochs_completed": 1,
        "steps_per_epoch": 3,
        "batches_seen": 3,
        "history": {"loss": [0.5]},
        "class_names": ["deer", "horse"],
    }
    (folder / STATE_FILE).write_text(json.dumps(state))
    with pytest.raises(ModelError, match=r"epoch-0001\.keras is missing"):
        read_checkpoint(folder)
    (folder / "epoch-0001.keras").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ModelError, match="not a loadable checkpoint"):
        load_checkpoint_model(read_checkpoint(folder))
    state["history"] = {"loss": [0.5, 0.4]}
    (folder / STATE_FILE).write_text(json.dumps(state))
    with pytest.raises(ModelError, match="history does not match"):
        read_checkpoint(folder)
    assert list_checkpoints(tmp_path) == []


# -- state.json of the wrong shape (issue 12, section 3) -------------------------------------


def _set(key, value):
    def change(state: dict) -> None:
        state[key] = value

    return change


def _set_config(key, value):
    def change(state: dict) -> None:
        state["config"][key] = value

    return change


def _deep(state: dict) -> None:
    state["history"] = {"loss": "[" * 100_000}  # replaced by raw text below


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_set("config", [1, 2]), "config must be of type dict"),
        (_set("config", None), "config must be of type dict"),
        (_set_config("epochs", "3"), "epochs must be of type int"),
        (_set_config("epochs", 1e300), "epochs must be of type int"),
        (_set_config("classes", "deer"), "classes must be of type list"),
        (_set_config("classes", [["deer"], "horse"]), "a class must be of type str or int"),
        (_set_config("seed", -1), "seed must be from 0"),
        (_set_config("learning_rate", 0), "learning rate must be above 0"),
        (_set_config("augment", [1]), "augment must be of type dict"),
        (_set_config("augment", {"zoom": "big"}), "zoom must be of type int or float"),
        (_set_config("threads", 2**31), "threads must be from 0"),
        (_set("epochs_completed", 10**400), "epochs_completed must be from 1 to 2"),
        (_set("epochs_completed", "2"), "epochs_completed must be of type int"),
        (_set("epochs_completed", 0), "epochs_completed must be from 1"),
        (_set("epochs_completed", True), "epochs_completed must be of type int"),
        (_set("steps_per_epoch", 0.5), "steps_per_epoch must be of type int"),
        (_set("checkpoint", 5), "checkpoint must be of type str"),
        (_set("checkpoint", "../../elsewhere.keras"), "is not an epoch file name"),
        (_set("history", [1]), "history must be of type dict"),
        (_set("history", {"loss": 3}), "must be a list of numbers"),
        (_set("history", {"loss": ["a", "b"]}), "must be a list of numbers, not str"),
        (_set("history", {"loss": [10**400, 1]}), "too large for a float"),
        (_set("class_names", {"deer": 1}), "class_names must be of type list"),
        (_set("class_names", ["deer", "horse", "cat"]), "3 class names for 2 classes"),
        (_set("version", 1), "version 1, this app writes 2"),
        (_set("version", None), "version None"),
        (_set("version", [2]), "version [2]"),
        (_deep, "nested too deeply"),
    ],
)
def test_state_fields_are_checked_before_use(finished, tmp_path, change, message):
    folder = tmp_path / "checkpoints" / "cifar10_4_7"
    shutil.copytree(find_checkpoint_dir(finished[0]), folder)
    state = json.loads((folder / STATE_FILE).read_text())
    change(state)
    text = json.dumps(state)
    if change is _deep:
        text = text.replace(json.dumps("[" * 100_000), "[" * 100_000 + "]" * 100_000)
    (folder / STATE_FILE).write_text(text)
    with pytest.raises(ModelError, match="not a readable checkpoint state") as info:
        read_checkpoint(tmp_path)
    assert message in str(info.value)
    assert str(folder / STATE_FILE) in str(info.value)
    assert list_checkpoints(tmp_path) == []


def test_a_checkpoint_of_another_class_count_refuses_to_resume(tiny, finished, tmp_path):
    """The state says deer and horse (one output unit); the epoch file holds a 3-class model."""
    import keras

    from cifar_gui.engine.models.build import build_baseline

    shutil.copytree(finished[0], tmp_path, dirs_exist_ok=True)
    checkpoint = read_checkpoint(tmp_path)
    other = build_baseline(num_classes=3)
    other.compile(optimizer=keras.optimizers.RMSprop(), loss="sparse_categorical_crossentropy")
    other.save(checkpoint.model_path)
    with pytest.raises(ModelError, match="does not fit the run's 2 classes; it cannot be resumed"):
        run_training(checkpoint.config.replace(epochs=3), dataset=tiny, resume=checkpoint)
    assert read_checkpoint(tmp_path).epochs_completed == 2


def test_resume_refuses_data_whose_classes_are_others(tiny, finished):
    """--data may change, but the classes (here given as indices) must stay the same ones."""
    checkpoint = read_checkpoint(finished[0])
    renamed = Dataset(
        tiny.x_train, tiny.y_train, tiny.x_test, tiny.y_test,
        tuple(f"x{i}" for i in range(10)), "renamed",
    )  # fmt: skip
    config = checkpoint.config.replace(epochs=3, classes=(4, 7))
    stored = checkpoint.__class__(**{**checkpoint.__dict__, "config": config})
    with pytest.raises(ModelError, match="the run trained deer, horse; the data now gives x4, x7"):
        run_training(config, dataset=renamed, resume=stored, save=False)


def test_best_weights_are_saved_beside_the_checkpoint_and_read_back(tmp_path):
    import keras

    from cifar_gui.engine.errors import ModelError
    from cifar_gui.engine.models.build import build_baseline
    from cifar_gui.engine.models.checkpoint_model import load_best_weights, save_best_weights

    keras.utils.set_random_seed(0)
    model = build_baseline()
    save_best_weights(model, tmp_path)
    other = build_baseline()
    load_best_weights(other, tmp_path)
    for a, b in zip(model.get_weights(), other.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.weights.h5"]
    with pytest.raises(ModelError, match=r"best\.weights\.h5: cannot read"):
        load_best_weights(other, tmp_path / "missing")


def test_a_resumed_run_is_checked_once(batches_dir, tmp_path, monkeypatch):
    """plan_run checks the resume and the output folder; the run does not check them again."""
    import threading

    from cifar_gui.engine.training import run as training
    from cifar_gui.engine.training import runner

    def quiet(_event) -> None:
        pass

    config = RunConfig.tiny(classes=(4, 7), data=str(batches_dir), out_dir=str(tmp_path))
    runner.run(runner.plan_run(config), quiet, threading.Event(), in_process=True)
    calls: list = []

    def counting(module, name: str) -> None:
        real = getattr(module, name)

        def wrapper(*args, **kwargs):
            calls.append((name, kwargs.get("folder", False)))
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapper)

    for module in (runner, training):
        counting(module, "check_resumable")
        counting(module, "check_can_write")
    plan = runner.plan_run(resume=tmp_path, epochs=3)
    finished = runner.run(plan, quiet, threading.Event(), in_process=True)
    assert finished.record.epochs_completed == 3
    assert calls.count(("check_resumable", False)) == 1
    assert calls.count(("check_can_write", True)) == 1  # the output folder
