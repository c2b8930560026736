"""Training under tf.distribute strategies: two logical CPU devices stand in for two GPUs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cifar_gui.config import RunConfig
from cifar_gui.engine.errors import UserError
from cifar_gui.engine.training.distribute import global_batch_size, is_chief, make_strategy

ROOT = Path(__file__).resolve().parents[2]

# Runs in a fresh process: the CPU can be split only before TensorFlow starts.
SCRIPT = """
import json, sys
from pathlib import Path
from cifar_gui.engine.training.distribute import split_cpu
split_cpu(2)
import numpy as np
from cifar_gui.config import RunConfig
from cifar_gui.engine.data.cifar_batches import CIFAR10_CLASSES
from cifar_gui.engine.data.dataset import Dataset
from cifar_gui.engine.models.persistence import load_model
from cifar_gui.engine.training.run import run_training
from tests.conftest import synthetic_images

out = Path(sys.argv[1])
x_train, y_train = synthetic_images(80, seed=3)
x_test, y_test = synthetic_images(80, seed=4)
data = Dataset(x_train, y_train, x_test, y_test, CIFAR10_CLASSES, "synthetic")
# 16 deer and horse images, one global batch of 16 per step: every step sees all of them, so
# the data order cannot matter, only how the replicas split and sum the work.
config = RunConfig(epochs=3, batch_size=16, seed=1, checkpoint=False)
if "precision" in RunConfig.__dataclass_fields__:
    config = config.replace(precision="float32")
plain = run_training(config.replace(out_dir=str(out / "default")), dataset=data)
mirrored = run_training(
    config.replace(out_dir=str(out / "mirrored"), strategy="mirrored", batch_size=8),
    dataset=data,
)
augmented = run_training(
    config.replace(out_dir=str(out / "augm"), strategy="mirrored", variant="augmented",
                   batch_size=4, epochs=2, checkpoint=True),
    dataset=data,
)
x = x_test.astype(np.float32) / 255
a, b = load_model(plain.path).model, load_model(mirrored.path).model
print(json.dumps({
    "strategy": mirrored.record.strategy,
    "global_batch": mirrored.record.global_batch_size,
    "loss": [plain.history["loss"], mirrored.history["loss"]],
    "default_predictions": a.predict(x, verbose=0).ravel().tolist(),
    "mirrored_predictions": b.predict(x, verbose=0).ravel().tolist(),
    "augmented_strategy": augmented.record.strategy,
    "augmented_epochs": len(augmented.history["loss"]),
    "augmented_path": str(augmented.path),
}))
"""


@pytest.mark.slow
def test_mirrored_on_two_cpu_devices_trains_like_one_device(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["strategy"] == "mirrored over 2 devices"
    assert result["global_batch"] == 16  # 8 per replica
    np.testing.assert_allclose(result["loss"][1], result["loss"][0], rtol=1e-4)
    np.testing.assert_allclose(
        result["mirrored_predictions"], result["default_predictions"], atol=1e-4
    )
    assert result["augmented_strategy"] == "mirrored over 2 devices"
    assert result["augmented_epochs"] == 2
    # The mirrored model and its checkpoint load in this (undivided) process too.
    from cifar_gui.engine.models.checkpoint_model import load_checkpoint_model
    from cifar_gui.engine.models.persistence import load_model
    from cifar_gui.engine.training.checkpoints import read_checkpoint

    assert load_model(result["augmented_path"]).model.output_shape == (None, 1)
    checkpoint = read_checkpoint(tmp_path / "augm")
    assert checkpoint.epochs_completed == 2
    assert checkpoint.config.strategy == "mirrored"
    load_checkpoint_model(checkpoint)


def test_default_strategy_is_one_replica_and_chief():
    strategy = make_strategy("default")
    assert strategy.num_replicas_in_sync == 1
    assert global_batch_size(32, strategy) == 32
    assert is_chief(strategy)
    assert make_strategy("default") is strategy


def test_unknown_strategy_and_bad_tf_config_are_one_line_errors(monkeypatch):
    with pytest.raises(UserError, match="unknown strategy 'sideways'"):
        make_strategy("sideways")
    with pytest.raises(ValueError, match="unknown strategy"):
        RunConfig(strategy="sideways")
    from cifar_gui.engine.training import distribute

    monkeypatch.setattr(distribute, "_made", {})
    for bad in ("not json", '{"cluster": {}}', '{"cluster": {"worker": []}, "task": {}}'):
        monkeypatch.setenv("TF_CONFIG", bad)
        with pytest.raises(UserError, match="TF_CONFIG is not a valid cluster description"):
            make_strategy("multi-worker")


@pytest.mark.parametrize(
    ("tf_config", "chief"),
    [
        ({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 0}}, True),
        ({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}}, False),
        (
            {
                "cluster": {"chief": ["c:1"], "worker": ["a:1"]},
                "task": {"type": "worker", "index": 0},
            },
            False,
        ),
        (
            {
                "cluster": {"chief": ["c:1"], "worker": ["a:1"]},
                "task": {"type": "chief", "index": 0},
            },
            True,
        ),
    ],
)
def test_only_the_chief_writes_files(monkeypatch, tf_config, chief):
    import tensorflow as tf

    monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
    # is_chief only asks the strategy's type; a stand-in avoids starting collective ops.
    fake = object.__new__(tf.distribute.MultiWorkerMirroredStrategy)
    assert is_chief(fake) is chief
