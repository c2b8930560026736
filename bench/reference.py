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

Nothing here uses the project's engine except the data loader (the same arrays, at the same
cost, as ours), so the numbers measure stock Keras, not our pipeline. Run as a command, it is
one whole run as the seed's script makes it: data, model, every epoch with its validation,
the saved model (the seed has no checkpoints); ``bench/run.py`` times it from outside:

    python bench/reference.py --variant transfer --data ../shared/data/cifar10 --limit 2000 \
        --epochs 3 --out /tmp/ref
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

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


RESULT_PREFIX = "BENCH-RESULT "


class EpochTimer(keras.callbacks.Callback):
    """Wall-clock and process CPU seconds of every epoch (training plus validation); prints
    an ``epoch K/N:`` line at each epoch's end, as ``cifar-gui train`` does, for the bench to
    time from outside."""

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
        print(f"epoch {epoch + 1}/{self.params['epochs']}: ({self.seconds[-1]:.1f} s)", flush=True)


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

    Returns a dict with ``history`` (Keras' lists), ``epoch_seconds``, ``cpu_seconds``,
    ``steps`` (batches per epoch) and the trained ``model``.
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
        "model": model,
    }


def main(argv: list[str] | None = None) -> int:
    """One whole run of the seed's recipe; its figures as one ``BENCH-RESULT`` JSON line."""
    parser = argparse.ArgumentParser(description="one whole run of the seed's recipe")
    parser.add_argument("--variant", choices=("baseline", "augmented", "transfer", "finetune"))
    parser.add_argument("--data", required=True, help="CIFAR-10 source")
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--limit", type=int, help="N training and N test images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="folder for the saved model")
    args = parser.parse_args(argv)
    from cifar_gui import tutorial
    from cifar_gui.engine.data.dataset import load_dataset, select_classes

    subset = select_classes(load_dataset(args.data), tutorial.PAIR, args.limit)
    out = run_reference(
        subset.x_train,
        subset.y_train,
        subset.x_test,
        subset.y_test,
        args.epochs,
        augment=args.variant != "baseline",
        seed=args.seed,
        variant=args.variant,
    )
    Path(args.out).mkdir(parents=True, exist_ok=True)
    out.pop("model").save(Path(args.out) / "model.h5")  # the seed's save_model_hdf5()
    result = {**out, "train_images": len(subset.x_train), "test_images": len(subset.x_test)}
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.exit(main())
