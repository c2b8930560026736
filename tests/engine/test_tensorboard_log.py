"""TensorBoard event files: epoch scalars in train/ and validation/, the config once."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from cifar_gui.config import RunConfig
from cifar_gui.engine.training.tensorboard_log import TensorBoardLog


def read_events(folder) -> dict[str, list[tuple[int, float]]]:
    """Scalars (tag -> [(step, value)]) and text tags (value nan) of every event file."""
    found: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                number = tf.make_ndarray(value.tensor) if value.HasField("tensor") else None
                scalar = float(number) if number is not None and number.dtype != object else np.nan
                found.setdefault(value.tag, []).append((event.step, scalar))
    return found


def test_epochs_are_written_where_tensorboard_overlays_them_and_resume_appends(tmp_path):
    log = TensorBoardLog(tmp_path, RunConfig.tiny(), fresh=True)
    log.epoch(1, {"loss": 0.7, "accuracy": 0.5, "val_loss": 0.69, "val_accuracy": 0.55})
    log.close()
    resumed = TensorBoardLog(tmp_path, RunConfig.tiny(), fresh=False)
    resumed.epoch(2, {"loss": 0.6, "accuracy": 0.6, "val_loss": 0.65, "val_accuracy": 0.6})
    resumed.close()
    train = read_events(tmp_path / "tensorboard" / "train")
    validation = read_events(tmp_path / "tensorboard" / "validation")
    np.testing.assert_allclose([v for _, v in train["epoch_loss"]], [0.7, 0.6], rtol=1e-6)
    assert [s for s, _ in train["epoch_loss"]] == [1, 2]
    np.testing.assert_allclose([v for _, v in validation["epoch_accuracy"]], [0.55, 0.6])
    assert len(train["config"]) == 1  # once, by the new run


def test_a_new_run_clears_an_older_runs_curves(tmp_path):
    old = TensorBoardLog(tmp_path, RunConfig.tiny(), fresh=True)
    old.epoch(1, {"loss": 9.0})
    old.close()
    new = TensorBoardLog(tmp_path, RunConfig.tiny(), fresh=True)
    new.epoch(1, {"loss": 1.0})
    new.close()
    assert [v for _, v in read_events(tmp_path / "tensorboard" / "train")["epoch_loss"]] == [1.0]
