"""Multi-worker training for real: two ``cifar-gui train --strategy multi-worker`` processes
on 127.0.0.1, each with its own ``TF_CONFIG``, train one tiny run together.

Each worker is a fresh process (the strategy must exist before TensorFlow runs anything),
so a test costs two TensorFlow starts; nothing here waits on time, only on the workers' own
output and exit, with a generous guard against a hang.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from cifar_gui.config import RunConfig
from cifar_gui.engine.data.dataset import load_dataset, select_classes
from cifar_gui.engine.errors import UserError
from cifar_gui.engine.training import distribute
from tests.conftest import write_cifar_batches

ROOT = Path(__file__).resolve().parents[2]
HANG_GUARD_S = 300  # only against a hang: a loaded machine may take minutes, a hang forever
# Per worker; the two workers' global batch is 8, the one-process run's batch.
TRAIN = ["--epochs", "3", "--batch-size", "4", "--seed", "1", "--precision", "float32"]


def free_ports(count: int) -> list[int]:
    """Ports the system has just handed out (all held at once, so they differ)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def start_workers(
    tmp_path: Path, data: Path, options: list[str], watch: int | None = None
) -> list[subprocess.Popen]:
    """Worker 0 (the chief: it saves) and worker 1, each writing into ``out<index>``.

    Their output goes to files (a full pipe would stop a worker, and with it the other),
    except the standard error, where the epoch lines are, of worker ``watch``: a pipe.
    """
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CONFIG": json.dumps(tf_config)}
        command = [sys.executable, "-m", "cifar_gui", "train", "--strategy", "multi-worker"]
        command += ["--data", str(data), "--out", str(tmp_path / f"out{index}"), *options]
        with (
            open(tmp_path / f"worker{index}.out", "w") as out,
            open(tmp_path / f"worker{index}.err", "w") as err,
        ):
            process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.PIPE if index == watch else err,
                text=True,  # universal newlines: the progress line's \r ends a line too
            )
        process.index = index
        processes.append(process)
    return processes


@pytest.fixture
def cluster():
    """Starts workers (:func:`start_workers`); kills those still running when the test ends,
    so a failed test leaves no worker waiting for its peer."""
    started: list[subprocess.Popen] = []

    def start(*args, **kwargs) -> list[subprocess.Popen]:
        started.extend(start_workers(*args, **kwargs))
        return started[-2:]

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate()


def finish(process: subprocess.Popen, tmp_path: Path) -> tuple[str, str]:
    """Wait (with the hang guard) for a worker; its standard output and the rest of its
    standard error."""
    try:
        _out, err = process.communicate(timeout=HANG_GUARD_S)
    except subprocess.TimeoutExpired:
        process.kill()
        _out, err = process.communicate()
        hung = True
    else:
        hung = False
    out = (tmp_path / f"worker{process.index}.out").read_text()
    err = err if err is not None else (tmp_path / f"worker{process.index}.err").read_text()
    if hung:
        pytest.fail(f"worker hung for {HANG_GUARD_S} s:\n{out[-2000:]}\n{err[-2000:]}")
    return out, err


@pytest.mark.slow
def test_two_workers_train_like_one_process(cluster, tmp_path):
    data = write_cifar_batches(tmp_path / "data")
    chief, other = cluster(tmp_path, data, TRAIN)
    outputs = [finish(chief, tmp_path), finish(other, tmp_path)]
    for process, (_out, err) in zip((chief, other), outputs, strict=True):
        assert process.returncode == 0, err[-3000:]
    assert "the chief worker saves the model" in outputs[1][0]
    from cifar_gui.engine.models.persistence import load_model
    from cifar_gui.engine.training.run import run_training

    saved = load_model(tmp_path / "out0" / "cifar10_4_7.h5")
    assert saved.record.strategy == "multi-worker over 2 workers, 2 replicas"
    assert saved.record.global_batch_size == 8
    written = [p for p in (tmp_path / "out1").rglob("*") if p.is_file()]
    assert written == [], "a worker that is not the chief wrote files"

    # The same run in this process, on one device: batch 8 is the workers' global batch.
    config = RunConfig(
        epochs=3, batch_size=8, seed=1, precision="float32", data=str(data), checkpoint=False
    )
    alone = run_training(config.replace(out_dir=str(tmp_path / "alone")))
    subset = select_classes(load_dataset(data), config.classes, config.limit)
    x = subset.x_test.astype(np.float32) / 255
    # The workers sum two gradients of 4 images where one process sums 8 at once: the same
    # arithmetic in another order, float32 round-off (~1e-7) over 9 steps, far below 1e-4;
    # a wrong split of the batches or a missing all-reduce changes results by ~1e-2.
    np.testing.assert_allclose(saved.record.history["loss"], alone.history["loss"], 1e-4)
    np.testing.assert_allclose(
        saved.model.predict(x, verbose=0), alone.model.predict(x, verbose=0), atol=1e-4
    )


def kill_one_and_check_the_other(cluster, tmp_path: Path, killed: int) -> None:
    """Start a long run, kill worker ``killed`` once the other has trained an epoch with it;
    the other must end with one ``error:`` line naming the lost worker, not wait forever."""
    data = write_cifar_batches(tmp_path / "data")
    survivor_index = 1 - killed
    processes = cluster(tmp_path, data, [*TRAIN[2:], "--epochs", "1000"], survivor_index)
    survivor = processes[survivor_index]
    guard = threading.Timer(HANG_GUARD_S, survivor.kill)  # ends the read below if it hangs
    guard.daemon = True
    guard.start()
    try:
        trained = any(line.startswith("epoch 1/") and ": loss" in line for line in survivor.stderr)
    finally:
        guard.cancel()
    # Reading stopped at the first epoch line (any() stops there), or at the end of output.
    assert trained, (
        f"the workers never trained an epoch together: {finish(survivor, tmp_path)[1][-3000:]}"
    )
    processes[killed].send_signal(signal.SIGKILL)
    processes[killed].wait()
    _out, err = finish(survivor, tmp_path)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert survivor.returncode == 2, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    assert len(errors) == 1, err[-3000:]
    assert "multi-worker training stopped" in errors[0]
    assert f"/job:worker/replica:0/task:{killed}" in errors[0]


@pytest.mark.slow
def test_killing_a_worker_ends_the_chief_with_one_line(cluster, tmp_path):
    kill_one_and_check_the_other(cluster, tmp_path, killed=1)


@pytest.mark.slow
def test_killing_the_chief_ends_the_worker_with_one_line(cluster, tmp_path):
    kill_one_and_check_the_other(cluster, tmp_path, killed=0)


GOOD = {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}


@pytest.mark.parametrize(
    ("tf_config", "problem"),
    [
        ("{bad", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"task": {"type": "worker", "index": 0}}', "no cluster object"),
        ({**GOOD, "cluster": {"worker": "a:1"}}, "cluster.worker must be a list"),
        ({**GOOD, "cluster": {"worker": []}}, "cluster.worker must be a list"),
        ({**GOOD, "cluster": {"worker": ["a"]}}, "host:port"),
        ({**GOOD, "cluster": {"worker": ["a:1"], "ps": ["p:1"]}}, "cluster.ps"),
        ({**GOOD, "cluster": {"chief": ["c:1", "d:1"], "worker": ["a:1"]}}, "one address"),
        ({"cluster": GOOD["cluster"]}, "no task object"),
        ({**GOOD, "task": {"type": "chief", "index": 0}}, "task.type must be one of worker"),
        ({**GOOD, "task": {"type": "worker", "index": 2}}, "task.index must be 0 to 1, not 2"),
        ({**GOOD, "task": {"type": "worker", "index": -1}}, "not -1"),
        ({**GOOD, "task": {"type": "worker", "index": "1"}}, "not '1'"),
        ({**GOOD, "task": {"type": "worker", "index": True}}, "not True"),
        ({**GOOD, "task": {"type": "worker"}}, "not None"),
    ],
)
def test_a_wrong_tf_config_is_one_line(monkeypatch, tf_config, problem):
    raw = tf_config if isinstance(tf_config, str) else json.dumps(tf_config)
    monkeypatch.setenv("TF_CONFIG", raw)
    monkeypatch.setattr(distribute, "_made", {})  # so make_strategy reads TF_CONFIG again
    with pytest.raises(UserError, match="TF_CONFIG is not a valid cluster description") as info:
        distribute.make_strategy("multi-worker")
    assert problem in str(info.value) and "\n" not in str(info.value)


def test_a_good_tf_config_is_read_as_it_is(monkeypatch):
    with_chief = {"cluster": {**GOOD["cluster"], "chief": ["c:3"]}, "task": GOOD["task"]}
    for tf_config in (GOOD, with_chief):
        monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
        assert distribute._tf_config() == tf_config
    monkeypatch.setenv("TF_CONFIG", " ")
    assert distribute._tf_config() == {}


def test_a_lost_worker_is_named_with_its_address(monkeypatch):
    import tensorflow as tf

    monkeypatch.setenv("TF_CONFIG", json.dumps({**GOOD, "task": {"type": "worker", "index": 0}}))
    # worker_failures only asks the strategy's type; a stand-in avoids starting collective ops.
    fake = object.__new__(tf.distribute.MultiWorkerMirroredStrategy)
    text = (
        "{{function_node __wrapped__CollectiveReduceV2_device_/job:worker/replica:0/task:0/"
        "device:CPU:0}} Collective ops is aborted by: The following tasks are unhealthy "
        "(stopped sending heartbeats):\n/job:worker/replica:0/task:1\nThe tasks have crashed."
    )
    with pytest.raises(UserError) as info, distribute.worker_failures(fake):
        raise tf.errors.UnavailableError(None, None, text)
    message = str(info.value)
    assert message.startswith("multi-worker training stopped: worker 1 (b:2, /job:worker/")
    assert "task:0" not in message and "\n" not in message
    # Under other strategies the error is TensorFlow's own.
    default = tf.distribute.get_strategy()
    with pytest.raises(tf.errors.UnavailableError), distribute.worker_failures(default):
        raise tf.errors.UnavailableError(None, None, text)
