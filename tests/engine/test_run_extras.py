"""What a run writes and sends besides its model: the best epoch kept (--keep-best), the
TensorBoard event files, and the live view's snapshots."""

from __future__ import annotations

import numpy as np
import pytest

from cifar_gui.config import RunConfig
from cifar_gui.engine.data.cifar_batches import CIFAR10_CLASSES
from cifar_gui.engine.data.dataset import Dataset
from cifar_gui.engine.events import EpochEvent, LiveRequest, LiveSnapshot, only
from cifar_gui.engine.models.inspect import activations, probabilities
from cifar_gui.engine.models.persistence import load_model
from cifar_gui.engine.training import callbacks
from cifar_gui.engine.training.checkpoints import BEST_WEIGHTS, read_checkpoint
from cifar_gui.engine.training.run import run_training
from tests.conftest import synthetic_images
from tests.engine.test_tensorboard_log import read_events


class Crash(Exception):
    """Stands for a crash right after an epoch's checkpoint was written."""


@pytest.fixture(scope="module")
def tiny() -> Dataset:
    x_train, y_train = synthetic_images(240, seed=3)
    x_test, y_test = synthetic_images(80, seed=4)
    return Dataset(x_train, y_train, x_test, y_test, CIFAR10_CLASSES, "synthetic")


def config_for(out, **changes) -> RunConfig:
    # With this seed the validation accuracy peaks early (epochs 2 and 3 equal: the lower loss
    # decides), so the best epoch is not the last.
    base = RunConfig(epochs=5, batch_size=16, seed=2, learning_rate=0.001, out_dir=str(out))
    return base.replace(**changes)


def weights_equal(a, b) -> None:
    for x, y in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)


def test_keep_best_saves_the_epoch_it_names_and_resumes_to_the_same(tiny, tmp_path, monkeypatch):
    # Which epoch validates best depends on the CPU's round-off (epoch 2 or 3 on an Intel Xeon,
    # the last on an AMD EPYC); what is tested is that the epoch best_epoch names is the one
    # kept. So here the second epoch is the best, whatever the accuracies.
    def second_is_best(history) -> int | None:
        done = len(history.get("val_accuracy", ()))
        return None if done == 0 else min(done - 1, 1)

    monkeypatch.setattr(callbacks, "best_epoch", second_is_best)
    result = run_training(config_for(tmp_path / "best", keep_best=True), dataset=tiny)
    best = second_is_best(result.history)
    assert best == 1
    record = result.record
    assert record.kept_epoch == best + 1
    assert record.test_accuracy == result.history["val_accuracy"][best]
    # The saved model is the model after kept_epoch epochs of the same run.
    shorter = run_training(
        config_for(tmp_path / "short", epochs=best + 1), dataset=tiny, save=False
    )
    saved = load_model(result.path)
    weights_equal(saved.model, shorter.model)
    assert saved.record.kept_epoch == best + 1
    # The checkpoint keeps the last epoch (resumable), the best weights beside it.
    folder = read_checkpoint(tmp_path / "best").directory
    assert (folder / BEST_WEIGHTS).is_file()
    assert read_checkpoint(folder).epochs_completed == 5

    # Killed after epoch 2 and resumed: the same epoch kept, the same weights.
    def crash(event) -> None:
        if event.epoch == 2:
            raise Crash

    with pytest.raises(Crash):
        run_training(config_for(tmp_path / "broken", keep_best=True), only(EpochEvent, crash),
                     dataset=tiny)  # fmt: skip
    checkpoint = read_checkpoint(tmp_path / "broken")
    resumed = run_training(checkpoint.config, dataset=tiny, resume=checkpoint)
    assert resumed.record.kept_epoch == best + 1
    weights_equal(load_model(resumed.path).model, shorter.model)


def test_without_keep_best_the_last_epoch_is_saved(tiny, tmp_path):
    result = run_training(config_for(tmp_path, epochs=2), dataset=tiny)
    assert result.record.kept_epoch is None
    assert result.record.test_accuracy == result.history["val_accuracy"][-1]
    assert not (read_checkpoint(tmp_path).directory / BEST_WEIGHTS).exists()


def test_tensorboard_files_hold_the_runs_epochs(tiny, tmp_path):
    result = run_training(config_for(tmp_path, epochs=2), dataset=tiny)
    logs = read_checkpoint(tmp_path).directory / "tensorboard"
    train, validation = read_events(logs / "train"), read_events(logs / "validation")
    assert [step for step, _ in train["epoch_loss"]] == [1, 2]
    np.testing.assert_allclose([v for _, v in train["epoch_loss"]], result.history["loss"],
                               rtol=1e-6)  # fmt: skip
    np.testing.assert_allclose(
        [v for _, v in validation["epoch_accuracy"]], result.history["val_accuracy"], rtol=1e-6
    )
    assert "config" in train


def test_live_snapshots_come_every_epoch_and_show_the_model_as_it_is(tiny, tmp_path):
    snapshots = []
    pair = np.isin(tiny.y_test, (4, 7))
    x_test, y_test = tiny.x_test[pair], (tiny.y_test[pair] == 7).astype(int)

    def request():  # after the first snapshot: another image and the second convolution
        if len(snapshots) == 1:
            return LiveRequest(0, layer=snapshots[0].health[1].name)
        return None

    result = run_training(
        config_for(tmp_path, epochs=2),
        only(LiveSnapshot, snapshots.append),
        live=request,
        dataset=tiny,
        save=False,
    )
    assert [(s.epoch, s.batch) for s in snapshots] == [(0, 3), (1, 3)]
    first, last, model = snapshots[0], snapshots[-1], result.model
    assert first.layer == model.layers[0].name  # the first convolution by default
    assert first.activation.shape == (32, 32, 32)
    np.testing.assert_array_equal(first.image, x_test[4])  # the seed's test image 5
    assert first.image_caption.endswith("true class " + ("deer", "horse")[y_test[4]])
    assert last.layer == model.layers[2].name  # the request took effect at the next refresh
    expected = activations(model, x_test[0], [last.layer])[last.layer][0]
    np.testing.assert_allclose(last.activation, expected, atol=1e-5)
    np.testing.assert_array_equal(last.filters, model.layers[0].get_weights()[0])
    strip = list(last.strip_indices)
    probs = probabilities(model, x_test[strip], direct=True)
    np.testing.assert_allclose(
        last.strip_true_probability, probs[np.arange(len(strip)), y_test[strip]], atol=1e-5
    )
