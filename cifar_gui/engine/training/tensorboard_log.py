"""TensorBoard event files for every run, written by TensorFlow's own summary writer.

Beside the run's checkpoint (``<out_dir>/checkpoints/<model stem>/tensorboard/``), in the two
folders Keras' own TensorBoard callback uses, so ``tensorboard --logdir runs`` overlays the
training and validation curves of every run under ``runs``: ``train/`` gets ``epoch_loss``
and ``epoch_accuracy`` per epoch (step = epochs completed), ``validation/`` the same of the
test images, and ``train/`` also the run's config as text once. A resumed run appends to
them.

TensorBoard is not a dependency: ``tf.summary.scalar`` and ``text`` live in its package, so
the summaries are written with TensorFlow's core ``tf.summary.write`` and the metadata that
names TensorBoard's plugin for each (``scalars``, ``text``), which is what those two write.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from cifar_gui.config import RunConfig
from cifar_gui.engine.errors import ModelError

TENSORBOARD_DIR = "tensorboard"


# Metric name in the history -> (writer, TensorBoard tag), as Keras' callback names them.
def _plugin(name: str) -> summary_pb2.SummaryMetadata:
    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=name)
    )


_SCALAR, _TEXT = _plugin("scalars"), _plugin("text")
_TAGS = {
    "loss": ("train", "epoch_loss"),
    "accuracy": ("train", "epoch_accuracy"),
    "val_loss": ("validation", "epoch_loss"),
    "val_accuracy": ("validation", "epoch_accuracy"),
    "epoch_seconds": ("train", "epoch_seconds"),
}


class TensorBoardLog:
    """The event files of one run in ``checkpoints``; ``fresh``: a new run, whose first epoch
    clears an older run's files. Nothing is written before the first epoch, so a run that
    fails before one completes leaves the folder as it was."""

    def __init__(self, checkpoints: Path, config: RunConfig, *, fresh: bool):
        self.directory = checkpoints / TENSORBOARD_DIR
        self.config, self.fresh = config, fresh
        self.writers: dict[str, tf.summary.SummaryWriter] = {}

    def _open(self) -> None:
        if self.fresh and self.directory.is_dir():
            shutil.rmtree(self.directory, ignore_errors=True)  # a new run: no old curves
        self.writers = {
            # Bytes: TensorFlow takes no str holding the surrogates of a non-UTF-8 name.
            name: tf.summary.create_file_writer(os.fsencode(self.directory / name))
            for name in ("train", "validation")
        }
        if self.fresh:
            with self.writers["train"].as_default():
                text = json.dumps(self.config.to_dict(), indent=2)
                tensor = tf.constant(f"```\n{text}\n```")  # shown as code
                tf.summary.write("config", tensor, step=0, metadata=_TEXT)

    def epoch(self, epochs_completed: int, metrics: Mapping[str, float]) -> None:
        """Write one epoch's metrics, at step ``epochs_completed``; ModelError if it cannot."""
        try:
            if not self.writers:
                self._open()
            for key, value in metrics.items():
                if key in _TAGS:
                    writer, tag = _TAGS[key]
                    with self.writers[writer].as_default():
                        tensor = tf.constant(float(value), tf.float32)
                        tf.summary.write(tag, tensor, step=epochs_completed, metadata=_SCALAR)
            for writer in self.writers.values():
                writer.flush()
        except (OSError, tf.errors.OpError) as exc:
            reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise ModelError(
                f"{self.directory}: cannot write the TensorBoard files ({reason})"
            ) from None

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()
