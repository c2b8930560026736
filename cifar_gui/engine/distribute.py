"""Training on more than one device: the ``tf.distribute`` strategy a run is built under.

``default``       one device (the first GPU, else the CPU), TensorFlow's default strategy.
``mirrored``      ``MirroredStrategy`` over every local GPU; without GPUs, over every logical
                  CPU device (one, unless :func:`split_cpu` made more before TensorFlow started).
``multi-worker``  ``MultiWorkerMirroredStrategy``, one process per machine, configured by the
                  ``TF_CONFIG`` environment variable; it must be created before TensorFlow runs
                  any operation, so use it from the command line.

``RunConfig.batch_size`` is the batch of one replica: the global batch that the data pipeline
produces is ``batch_size * num_replicas_in_sync``. The learning rate is not scaled.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from cifar_gui.config import STRATEGIES
from cifar_gui.engine.errors import UserError

# MultiWorkerMirroredStrategy configures the process's collective ops, which can happen only
# once, so every strategy is made once per process and reused.
_made: dict[str, tf.distribute.Strategy] = {}


def split_cpu(count: int) -> None:
    """Split the CPU into ``count`` logical devices, so ``mirrored`` has replicas without GPUs.

    Must run before TensorFlow initialises its devices (before the first operation).
    """
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
        )
    except RuntimeError:
        raise UserError(
            "the CPU can be split into devices only before TensorFlow starts: "
            "do it first thing in a fresh process"
        ) from None


def _tf_config() -> dict:
    """The parsed ``TF_CONFIG``, checked enough to give one clear line when it is wrong."""
    raw = os.environ.get("TF_CONFIG", "")
    if not raw.strip():
        return {}
    try:
        config = json.loads(raw)
        workers = config["cluster"]["worker"]
        task = config["task"]
        if not isinstance(workers, list) or task["type"] not in ("chief", "worker"):
            raise ValueError("cluster.worker must be a list, task.type chief or worker")
        int(task["index"])
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"TF_CONFIG is not a valid cluster description ({exc})") from None
    return config


def make_strategy(name: str = "default") -> tf.distribute.Strategy:
    """The strategy called ``name`` (see the module docstring); made once per process."""
    if name not in STRATEGIES:
        raise UserError(f"unknown strategy {name!r}: choose {', '.join(STRATEGIES)}")
    if name in _made:
        return _made[name]
    if name == "default":
        strategy = tf.distribute.get_strategy()
    elif name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = gpus or tf.config.list_logical_devices("CPU")
        strategy = tf.distribute.MirroredStrategy([d.name for d in devices])
    else:
        _tf_config()
        try:
            strategy = tf.distribute.MultiWorkerMirroredStrategy()
        except (RuntimeError, ValueError) as exc:
            raise UserError(
                f"cannot start the multi-worker strategy ({str(exc).splitlines()[0]}); it must "
                "be created before TensorFlow runs anything: use the command line"
            ) from None
    _made[name] = strategy
    return strategy


def global_batch_size(batch_size: int, strategy: tf.distribute.Strategy) -> int:
    """Images per step over all replicas: ``batch_size`` per replica."""
    return batch_size * strategy.num_replicas_in_sync


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run's files (always, except on non-chief workers)."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    config = _tf_config()
    task = config.get("task", {"type": "worker", "index": 0})
    if "chief" in config.get("cluster", {}):
        return task["type"] == "chief"
    return int(task["index"]) == 0  # without a chief, worker 0 plays its part


def describe_strategy(strategy: tf.distribute.Strategy) -> str:
    """One line for logs and metadata, e.g. ``mirrored over 2 devices``."""
    replicas = strategy.num_replicas_in_sync
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        workers = len(_tf_config().get("cluster", {}).get("worker", [])) or 1
        return f"multi-worker over {workers} workers, {replicas} replicas"
    if isinstance(strategy, tf.distribute.MirroredStrategy):
        return f"mirrored over {replicas} device{'s' if replicas > 1 else ''}"
    return "default (one device)"
