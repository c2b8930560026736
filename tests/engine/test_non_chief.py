"""A multi-worker run's other workers (not the chief) never delete or overwrite the chief's
files: an earlier run's model, sidecar, checkpoint state and epoch files stay as they were,
byte for byte, on a new run as on a resumed one (issue 27)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cifar_gui.config import RunConfig
from cifar_gui.engine.training import callbacks
from cifar_gui.engine.training import run as training
from cifar_gui.engine.training.checkpoints import read_checkpoint
from cifar_gui.engine.training.run import run_training
from tests.conftest import write_cifar_batches


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def earlier(tmp_path) -> tuple[RunConfig, Path]:
    """A finished 1-epoch run with its checkpoint and best weights, by the chief."""
    data = write_cifar_batches(tmp_path / "data")
    config = RunConfig(
        epochs=1, batch_size=8, limit=16, seed=1, data=str(data), out_dir=str(tmp_path / "out"),
        keep_best=True,
    )  # fmt: skip
    run_training(config)
    return config, tmp_path / "out"


@pytest.mark.parametrize("how", ["new run", "resumed run"])
def test_a_worker_that_is_not_the_chief_leaves_the_chiefs_files(earlier, monkeypatch, how):
    config, out = earlier
    before = snapshot(out)
    assert any(name.endswith("state.json") for name in before)
    monkeypatch.setattr(training, "is_chief", lambda strategy: False)
    if how == "new run":
        result = run_training(config.replace(seed=2))
    else:
        result = run_training(config.replace(epochs=2), resume=read_checkpoint(out))
    assert result.path is None
    assert snapshot(out) == before
    assert sorted(p.name for p in out.rglob(".*")) == []  # no temporary file either


def test_a_worker_that_is_not_the_chief_restores_a_best_epoch_from_before_the_resume(
    earlier, monkeypatch
):
    """Its best epoch came before the resume: it reads the chief's best weights (it had none
    in memory, and crashed on ``set_weights(None)``), writes nothing, and ends with the same
    weights as the chief."""
    import keras
    import numpy as np

    config, out = earlier
    before = snapshot(out)
    [best_file] = out.rglob("best.weights.h5")
    monkeypatch.setattr(callbacks, "best_epoch", lambda history: 0 if history.get("loss") else None)
    monkeypatch.setattr(training, "is_chief", lambda strategy: False)
    result = run_training(config.replace(epochs=2), resume=read_checkpoint(out))
    assert snapshot(out) == before
    chief = keras.models.clone_model(result.model)
    chief.load_weights(best_file)
    for mine, theirs in zip(result.model.get_weights(), chief.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)
