"""The seed's recipe in stock Keras 3, the yardstick of the benchmark.

Exactly what the tutorial does, translated from R: the small CNN, batch 32, RMSprop at
1e-4, binary cross-entropy, ``model.fit`` on float32 arrays scaled to [0, 1], validation on
the test arrays after every epoch. The VGG16 recipes: VGG16 without its top (random weights
here: nothing is downloaded, and the time does not depend on them), Flatten, Dense 256,
output, RMSprop at 2e-5; ``transfer`` freezes the whole base, ``finetune`` trains it from
``block3_conv1`` on (the seed's ``unfreeze_weights``); both augmented, the full model run
every step and every validation, all in float32. The augmented recipe feeds the legacy
``ImageDataGenerator`` (``keras.src.legacy``, needs scipy) with the seed's settings and
``steps_per_epoch = len(x_train) // 32`` (10000 // 32 = 312 on deer vs horse).

Nothing here uses the project's engine except the data arrays, so the numbers measure stock
Keras, not our pipeline.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import keras
import numpy as np
from keras import layers

BATCH_SIZE = 32
LEARNING_RATE = 1e-4
VGG16_LEARNING_RATE = 2e-5
UNFREEZE_FROM = "block3_conv1"
# The seed's image_data_generator(...) arguments.
SEED_AUGMENTATION = {
    "rotation_range": 40,
    "width_shift_range": 0.2,
    "height_shift_range": 0.2,
    "shear_range": 0.2,
    "zoom_range": 0.2,
    "horizontal_flip": True,
    "fill_mode": "nearest",
}


class EpochTimer(keras.callbacks.Callback):
    """Wall-clock and process CPU seconds of every epoch (training plus validation)."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []
        self.cpu_seconds: list[float] = []
        self._start = self._cpu_start = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start, self._cpu_start = time.perf_counter(), time.process_time()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.seconds.append(time.perf_counter() - self._start)
        self.cpu_seconds.append(time.process_time() - self._cpu_start)


def seed_model(input_shape: tuple[int, int, int] = (32, 32, 3)) -> keras.Model:
    """The tutorial's CNN in plain Keras (684,097 parameters), compiled as the seed does."""
    model = keras.Sequential(
        [
            keras.Input(input_shape),
            layers.Conv2D(32, 3, activation="relu", padding="same"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, activation="relu", padding="same"),
            layers.MaxPooling2D(2),
            layers.Conv2D(128, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(512, activation="relu"),
            layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.RMSprop(learning_rate=LEARNING_RATE),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    return model


def seed_vgg16_model(
    input_shape: tuple[int, int, int] = (32, 32, 3), finetune: bool = False
) -> keras.Model:
    """The tutorial's VGG16 feature extractor (or, ``finetune``, its fine-tuned form) in plain
    Keras, compiled as the seed does."""
    base = keras.applications.VGG16(weights=None, include_top=False, input_shape=input_shape)
    base.trainable = False
    if finetune:
        base.trainable = True
        start = [layer.name for layer in base.layers].index(UNFREEZE_FROM)
        for i, layer in enumerate(base.layers):
            layer.trainable = i >= start
    model = keras.Sequential(
        [
            keras.Input(input_shape),
            base,
            layers.Flatten(),
            layers.Dense(256, activation="relu"),
            layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.RMSprop(learning_rate=VGG16_LEARNING_RATE),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    return model


def _endless(flow: Iterator) -> Iterator:
    """The generator as R's Keras (and Keras 2) consumed it: endless, continuing across epochs.

    Given the iterator itself, Keras 3 treats it as a finite data set of ceil(n / 32) batches
    and cuts every other epoch short after one batch (312 steps asked, 313 batches there).
    """
    while True:
        yield next(flow)


def run_reference(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    epochs: int,
    augment: bool,
    seed: int = 0,
    variant: str = "baseline",
) -> dict:
    """Train the seed's recipe of ``variant`` on uint8 images and 0/1 labels; history and
    epoch times. ``baseline`` and ``augmented`` train the small CNN, ``transfer`` and
    ``finetune`` the VGG16 models.

    Returns a dict with ``history`` (Keras' lists), ``epoch_seconds``, ``cpu_seconds`` and
    ``steps`` (batches per epoch).
    """
    keras.utils.set_random_seed(seed)
    x_train = x_train.astype("float32") / 255.0
    x_test = x_test.astype("float32") / 255.0
    y_train = y_train.astype("float32")
    y_test = y_test.astype("float32")
    shape = tuple(x_train.shape[1:])
    if variant in ("transfer", "finetune"):
        model = seed_vgg16_model(shape, finetune=variant == "finetune")
    else:
        model = seed_model(shape)
    timer = EpochTimer()
    if augment:
        from keras.src.legacy.preprocessing.image import ImageDataGenerator

        datagen = ImageDataGenerator(**SEED_AUGMENTATION)
        datagen.fit(x_train)  # the seed's fit_image_data_generator(); a no-op for these settings
        flow = datagen.flow(x_train, y_train, batch_size=BATCH_SIZE, seed=seed)
        steps = max(1, len(x_train) // BATCH_SIZE)
        history = model.fit(
            _endless(flow),
            steps_per_epoch=steps,
            epochs=epochs,
            validation_data=(x_test, y_test),
            callbacks=[timer],
            verbose=0,
        )
    else:
        steps = -(-len(x_train) // BATCH_SIZE)
        history = model.fit(
            x_train,
            y_train,
            batch_size=BATCH_SIZE,
            epochs=epochs,
            validation_data=(x_test, y_test),
            callbacks=[timer],
            verbose=0,
        )
    return {
        "history": {k: [float(v) for v in vals] for k, vals in history.history.items()},
        "epoch_seconds": timer.seconds,
        "cpu_seconds": timer.cpu_seconds,
        "steps": steps,
    }
