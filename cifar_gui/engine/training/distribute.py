"""Training on more than one device: the ``tf.distribute`` strategy a run is built under.

``default``       one device (the first GPU, else the CPU), TensorFlow's default strategy.
``mirrored``      ``MirroredStrategy`` over every local GPU; without GPUs, over every logical
                  CPU device (one, unless :func:`split_cpu` made more before TensorFlow started).
``multi-worker``  ``MultiWorkerMirroredStrategy``, one process per machine, configured by the
                  ``TF_CONFIG`` environment variable; it must be created before TensorFlow runs
                  any operation, so use it from the command line. When a worker stops, the
                  others end with one line (:func:`worker_failures`) once TensorFlow's
                  coordination service notices (its heartbeat timeout, about ten seconds).

``RunConfig.batch_size`` is the batch of one replica: the global batch that the data pipeline
produces is ``batch_size * num_replicas_in_sync``. The learning rate is not scaled.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator

import tensorflow as tf

from cifar_gui.config import STRATEGIES
from cifar_gui.engine.errors import UserError

# MultiWorkerMirroredStrategy configures the process's collective ops, which can happen only
# once, so every strategy is made once per process and reused.
_made: dict[str, tf.distribute.Strategy] = {}


class _MultiWorker(tf.distribute.MultiWorkerMirroredStrategy):
    """``MultiWorkerMirroredStrategy`` whose ``reduce`` takes what Keras 3 gives it.

    TensorFlow 2.21's reduces one value across workers, and over ``axis`` even for a scalar;
    Keras 3.15's ``fit`` reduces a whole ``(images, labels)`` batch (to learn its shapes) and
    every step's scalar metrics with ``axis=0``, so without this ``fit`` fails with "Attempt
    to convert a value (PerReplica...)" or "Invalid reduction dimension 0 for input with 0
    dimensions" (tensorflow/tensorflow#72388). A scalar is reduced across replicas only, as
    ``MirroredStrategy`` does.
    """

    def reduce(self, reduce_op, value, axis):
        """As the base class's, for each value of a nest (see the class docstring)."""

        def one(v):
            local = v.values[0] if isinstance(v, tf.distribute.DistributedValues) else v
            scalar = tf.TensorShape(getattr(local, "shape", ())).rank == 0
            return super(_MultiWorker, self).reduce(reduce_op, v, None if scalar else axis)

        return tf.nest.map_structure(one, value)


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
    """The parsed ``TF_CONFIG`` (``{}`` when unset), checked so that a wrong one is one clear
    line rather than a TensorFlow traceback or a worker waiting for a cluster that cannot be."""
    raw = os.environ.get("TF_CONFIG", "")
    if not raw.strip():
        return {}
    try:
        config = json.loads(raw)
    except ValueError as exc:
        raise UserError(f"TF_CONFIG is not a valid cluster description (not JSON: {exc})") from None
    problem = _cluster_problem(config)
    if problem:
        raise UserError(f"TF_CONFIG is not a valid cluster description ({problem})")
    return config


def _cluster_problem(config: object) -> str | None:
    """What is wrong with a parsed ``TF_CONFIG`` (None when nothing is)."""
    if not isinstance(config, dict):
        return "not a JSON object"
    cluster, task = config.get("cluster"), config.get("task")
    if not isinstance(cluster, dict):
        return "no cluster object"
    for job, addresses in cluster.items():
        if job not in ("chief", "worker"):
            return f"cluster.{job}: only chief and worker are supported"
        if not (
            isinstance(addresses, list)
            and addresses
            and all(isinstance(a, str) and a.rpartition(":")[2].isdecimal() for a in addresses)
        ):
            return f"cluster.{job} must be a list of host:port addresses"
    if "worker" not in cluster:
        return "cluster.worker must be a list of host:port addresses"
    if len(cluster.get("chief", [])) > 1:
        return "cluster.chief must have one address"
    if not isinstance(task, dict):
        return "no task object"
    kind, index = task.get("type"), task.get("index")
    if kind not in cluster:
        return f"task.type must be one of {', '.join(cluster)}, not {kind!r}"
    if type(index) is not int or not 0 <= index < len(cluster[kind]):
        return f"task.index must be 0 to {len(cluster[kind]) - 1}, not {index!r}"
    return None


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
            strategy = _MultiWorker()
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
    return task["index"] == 0  # without a chief, worker 0 plays its part


# What TensorFlow raises in a worker whose collective operations lost another worker: it
# stopped sending heartbeats, or its address refuses connections.
_PEER_ERRORS = (
    tf.errors.UnavailableError,
    tf.errors.AbortedError,
    tf.errors.DeadlineExceededError,
    tf.errors.CancelledError,
)


@contextlib.contextmanager
def worker_failures(strategy: tf.distribute.Strategy) -> Iterator[None]:
    """Under the multi-worker strategy, turn the error of a lost worker into one line.

    TensorFlow's coordination service notices a worker that stopped (its heartbeats end) and
    aborts the collective operations of the others, which then fail instead of waiting.
    """
    try:
        yield
    except _PEER_ERRORS as exc:
        if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            raise
        config = _tf_config()
        task = config.get("task", {"type": "worker", "index": 0})
        lost = [
            f"{job} {index} ({config['cluster'][job][int(index)]}, {name})"
            if int(index) < len(config.get("cluster", {}).get(job, []))
            else name
            for name, job, index in sorted(
                set(re.findall(r"(/job:(\w+)/replica:\d+/task:(\d+))", str(exc)))
            )
            if (job, int(index)) != (task["type"], task["index"])
        ]
        raise UserError(
            f"multi-worker training stopped: {', '.join(lost) or 'another worker'} stopped "
            "responding; start every worker again (--resume continues from the chief's last "
            "checkpoint)"
        ) from None


def describe_strategy(strategy: tf.distribute.Strategy) -> str:
    """One line for logs and metadata, e.g. ``mirrored over 2 devices``."""
    replicas = strategy.num_replicas_in_sync
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        workers = len(_tf_config().get("cluster", {}).get("worker", [])) or 1
        return f"multi-worker over {workers} workers, {replicas} replicas"
    if isinstance(strategy, tf.distribute.MirroredStrategy):
        return f"mirrored over {replicas} device{'s' if replicas > 1 else ''}"
    return "default (one device)"
