"""The input pipeline of a run: the training batches of each epoch (:class:`EpochStream`)
and the test batches (:func:`eval_dataset`), on the graph, in parallel with training."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from cifar_gui.config import RunConfig
from cifar_gui.engine.data.augment import augment_images
from cifar_gui.engine.data.dataset import scale_images

EVAL_BATCH_SIZE = 256  # validation batch: larger is faster and does not change the result
# Training batches gathered, scaled and augmented together: the augmentation is many small
# operations, whose fixed cost per call would otherwise be paid for every batch of 32.
CHUNK_BATCHES = 8


class EpochStream:
    """The training batches of a run, as one finite dataset per epoch (:meth:`epoch`), or one
    dataset for the whole run whose every iterator gives one epoch (:meth:`epochs`).

    Epoch ``e`` is a function of ``(config.seed, e)`` alone: its order is a permutation drawn
    from that pair, and it is prepared in chunks of :data:`CHUNK_BATCHES` batches, chunk ``c``
    augmented with the stateless seed ``(config.seed, e * chunks_per_epoch + c)``, so every
    image of every epoch gets its own transform. A resumed run starts at its next epoch with
    nothing to replay, and because an epoch's data ends with the epoch, Keras may run several
    batches per compiled call and a short last one (:mod:`cifar_gui.engine.training.performance`).

    The arrays stay in memory as they are (uint8 images: a quarter of float32's bytes); each
    chunk is gathered, scaled and, if configured, augmented on the graph, in parallel with
    training, then split into batches and prefetched. ``features``: ``images`` are a frozen
    front's outputs, used as they are (no scaling, no augmentation). ``front``: a frozen front
    (:class:`~cifar_gui.engine.training.frozen_front.FrozenFront`) run on every prepared
    chunk, so the batches are its outputs.
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        config: RunConfig,
        *,
        features: bool = False,
        front: Callable[[tf.Tensor], tf.Tensor] | None = None,
    ):
        self.config = config
        self.features = features
        self.front = front
        self.count = len(images)
        self.steps = math.ceil(self.count / config.batch_size)
        self.images = tf.convert_to_tensor(images)
        self.labels = tf.convert_to_tensor(labels.astype(np.float32))

    def order(self, epoch: int) -> np.ndarray:
        """The image indices of ``epoch`` in training order."""
        return np.random.default_rng([self.config.seed, epoch]).permutation(self.count)

    def epoch(self, epoch: int) -> tf.data.Dataset:
        """The batches of ``epoch`` (0-based): ``steps`` of them, the last one maybe short."""
        return self._batches(tf.data.Dataset.from_tensors(self._source(epoch)))

    def epochs(self, current: Callable[[], int]) -> tf.data.Dataset:
        """One dataset for a whole run: each iterator made of it gives the batches of epoch
        ``current()`` (asked as the iterator starts), as :meth:`epoch` does. One ``fit`` of all
        the epochs makes one iterator an epoch, so the pipeline is traced once per run."""
        spec = (tf.TensorSpec((), tf.int64), tf.TensorSpec((self.count,), tf.int64))
        source = tf.data.Dataset.from_generator(
            lambda: iter([self._source(current())]), output_signature=spec
        )
        return self._batches(source)

    def _source(self, epoch: int) -> tuple[np.int64, np.ndarray]:
        return np.int64(epoch), self.order(epoch).astype(np.int64)

    def _batches(self, source: tf.data.Dataset) -> tf.data.Dataset:
        """The batches of the epoch that ``source``'s one element ``(epoch, order)`` names."""
        size = self.config.batch_size
        chunk_size = size * CHUNK_BATCHES
        chunks_per_epoch = math.ceil(self.count / chunk_size)
        config = self.config

        def chunks(epoch: tf.Tensor, order: tf.Tensor) -> tf.data.Dataset:
            indices = tf.data.Dataset.from_tensor_slices(order).batch(chunk_size).enumerate()
            return indices.map(lambda chunk, index: (epoch * chunks_per_epoch + chunk, index))

        def load(chunk: tf.Tensor, index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            pixels = tf.gather(self.images, index)
            labels = tf.gather(self.labels, index)
            if self.features:
                return pixels, labels
            pixels = scale_images(pixels)
            if config.augments:
                seed = tf.stack([tf.constant(config.seed, tf.int64), chunk])
                pixels = augment_images(pixels, config.augment, seed)
            return pixels, labels

        batches = source.flat_map(chunks).map(load, num_parallel_calls=tf.data.AUTOTUNE)
        if self.front is not None:
            front = self.front
            # One chunk at a time: the front's convolutions use every core already.
            batches = batches.map(lambda x, y: (front(x), y)).prefetch(1)
        batches = batches.rebatch(size)
        return batches.apply(tf.data.experimental.assert_cardinality(self.steps)).prefetch(
            tf.data.AUTOTUNE
        )


def eval_dataset(
    images: np.ndarray, labels: np.ndarray, *, features: bool = False
) -> tf.data.Dataset:
    """Scaled test images (or, with ``features``, a frozen front's outputs) in fixed order."""
    ds = tf.data.Dataset.from_tensor_slices((images, labels.astype(np.float32)))
    ds = ds.batch(EVAL_BATCH_SIZE)
    return ds if features else ds.map(lambda x, y: (scale_images(x), y))
