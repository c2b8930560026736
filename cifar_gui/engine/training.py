"""Run one training configuration: data pipeline, fit with plain-Python progress events,
cooperative stop, evaluation, and the saved model with its sidecar.

The GUI's training process and the command line both call :func:`run_training`; neither sees
Keras callbacks, only the events of :mod:`cifar_gui.engine.events`, sent to one sink.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import math
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import cifar_gui
from cifar_gui.config import RunConfig
from cifar_gui.engine.augment import augment_images
from cifar_gui.engine.checkpoint_model import (
    load_best_weights,
    load_checkpoint_model,
    save_best_weights,
    save_checkpoint,
)
from cifar_gui.engine.checkpoints import (
    BEST_WEIGHTS,
    STATE_FILE,
    Checkpoint,
    check_resumable,
    checkpoint_dir,
    epoch_file,
    read_checkpoint,
    remove_stale_files,
)
from cifar_gui.engine.data import Dataset, Subset, load_dataset, scale_images, select_classes
from cifar_gui.engine.distribute import (
    describe_strategy,
    global_batch_size,
    is_chief,
    make_strategy,
    worker_failures,
)
from cifar_gui.engine.errors import ModelError, UserError
from cifar_gui.engine.events import (
    BatchEvent,
    EpochEvent,
    LiveRequest,
    RunFinished,
    RunStarted,
    Sink,
    StopFlag,
    ignore,
)
from cifar_gui.engine.files import check_can_write
from cifar_gui.engine.fused_rmsprop import fused_rmsprop
from cifar_gui.engine.hardware import cpu_name
from cifar_gui.engine.live import LiveCallback, LiveProbe
from cifar_gui.engine.matmul_conv import matmul_convolutions
from cifar_gui.engine.models import build_model, compile_model, parameter_counts, with_precision
from cifar_gui.engine.performance import (
    apply_threads,
    model_precision,
    precision_scope,
    resolve_matmul_convolutions,
    resolve_precision,
    resolve_steps_per_execution,
)
from cifar_gui.engine.persistence import save_model
from cifar_gui.engine.record import (
    RunRecord,
    best_epoch,
    check_history,
    model_filename,
    sidecar_path,
)
from cifar_gui.engine.tensorboard_log import TensorBoardLog

EVAL_BATCH_SIZE = 256  # validation batch: larger is faster and does not change the result
# Training batches gathered, scaled and augmented together: the augmentation is many small
# operations, whose fixed cost per call would otherwise be paid for every batch of 32.
CHUNK_BATCHES = 8
SEED_TEST_IMAGE = 5  # the live view's probe by default: the seed's p <- 5 (1-based)


@dataclass
class RunResult:
    """What a run produced; ``path`` is None when it was not saved."""

    model: keras.Model
    record: RunRecord
    path: Path | None = None

    @property
    def history(self) -> Mapping[str, tuple[float, ...]]:
        return self.record.history

    @property
    def stopped(self) -> bool:
        return self.record.stopped

    @property
    def finished(self) -> RunFinished:
        """The run's last event."""
        return RunFinished(self.path, self.record, self.stopped)


def describe_device() -> str:
    """The device training runs on: the first GPU's name, or the CPU model."""
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        # Fails once the GPU is initialised; growth was then set by an earlier call.
        with contextlib.suppress(RuntimeError):
            tf.config.experimental.set_memory_growth(gpu, True)
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"GPU: {details.get('device_name', gpus[0].name)}"
    return f"CPU: {cpu_name()}"


def versions() -> dict[str, str]:
    """Versions recorded with every run."""
    return {
        "cifar_gui": cifar_gui.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
    }


class EpochStream:
    """The training batches of a run, as one finite dataset per epoch.

    Epoch ``e`` is a function of ``(config.seed, e)`` alone: its order is a permutation drawn
    from that pair, and it is prepared in chunks of :data:`CHUNK_BATCHES` batches, chunk ``c``
    augmented with the stateless seed ``(config.seed, e * chunks_per_epoch + c)``, so every
    image of every epoch gets its own transform. A resumed run starts at its next epoch with
    nothing to replay, and because an epoch's data ends with the epoch, Keras may run several
    batches per compiled call and a short last one (:mod:`cifar_gui.engine.performance`).

    The arrays stay in memory as they are (uint8 images: a quarter of float32's bytes); each
    chunk is gathered, scaled and, if configured, augmented on the graph, in parallel with
    training, then split into batches and prefetched. ``features``: ``images`` are a frozen
    front's outputs, used as they are (no scaling, no augmentation). ``front``: a frozen front
    (:class:`FrozenFront`) run on every prepared chunk, so the batches are its outputs.
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        config: RunConfig,
        *,
        features: bool = False,
        front: FrozenFront | None = None,
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
        size = self.config.batch_size
        chunk_size = size * CHUNK_BATCHES
        chunks = tf.data.Dataset.from_tensor_slices(self.order(epoch)).batch(chunk_size)
        config = self.config
        first_chunk = epoch * math.ceil(self.count / chunk_size)

        def load(chunk: tf.Tensor, index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            pixels = tf.gather(self.images, index)
            labels = tf.gather(self.labels, index)
            if self.features:
                return pixels, labels
            pixels = scale_images(pixels)
            if config.augments:
                seed = tf.stack([tf.constant(config.seed, tf.int64), first_chunk + chunk])
                pixels = augment_images(pixels, config.augment, seed)
            return pixels, labels

        batches = chunks.enumerate().map(load, num_parallel_calls=tf.data.AUTOTUNE)
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


def _chain(model: keras.Model) -> list[keras.layers.Layer] | None:
    """The layers of a nested model in call order when it is a plain chain (each layer fed by
    the one before: any Sequential, most Functional bases such as VGG16), else None."""
    if isinstance(model, keras.Sequential):
        return list(model.layers)
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    if len(model.inputs) != 1 or len(model.outputs) != 1 or not layers:
        return None
    previous = model.inputs[0]._keras_history.operation
    for layer in layers:
        fed_by = [
            [t._keras_history.operation for t in node.input_tensors]
            for node in layer._inbound_nodes
        ]
        if [previous] not in fed_by:
            return None
        previous = layer
    return layers if model.outputs[0]._keras_history.operation is previous else None


def _same_in_inference(layer: keras.layers.Layer) -> bool:
    """Whether ``layer`` computes the same in inference mode as in training (no dropout, no
    noise, no batch statistics), so running it in inference mode changes nothing."""
    if isinstance(layer, keras.Model):
        return all(_same_in_inference(inner) for inner in layer.layers)
    if isinstance(layer, keras.layers.BatchNormalization):
        return not layer.trainable  # a frozen one normalises with its moving statistics
    return not layer._call_has_training_arg


def _units(layers: Sequence[keras.layers.Layer]) -> list[keras.layers.Layer]:
    """``layers`` with every nested model that is partly trainable opened up into its own
    layers (recursively), so a front can end inside it; a frozen or fully trainable nested
    model stays one unit, as does one that is not a chain."""
    out: list[keras.layers.Layer] = []
    for layer in layers:
        inner = _chain(layer) if isinstance(layer, keras.Model) else None
        partly = inner is not None and layer.trainable_weights and layer.non_trainable_weights
        out.extend(_units(inner) if partly else [layer])
    return out


def split_front(
    model: keras.Model, config: RunConfig
) -> tuple[list[keras.layers.Layer], list[keras.layers.Layer]]:
    """The frozen front of ``model`` and the rest (its head), as lists of its own layers.

    The front: the leading layers of a Sequential model, nested models opened up
    (:func:`_units`), that training cannot change (no trainable weights) and that compute the
    same in inference mode, when they hold weights worth skipping (a frozen base). Running
    them outside the training step gives the head the same inputs, so the same arithmetic.
    No front (``[]`` and all the layers) when there is none or ``config.feature_cache`` is off.
    """
    if not config.feature_cache or not isinstance(model, keras.Sequential):
        return [], list(model.layers)
    units = _units(model.layers)
    count = 0
    for layer in units[:-1]:
        if layer.trainable_weights or not _same_in_inference(layer):
            break
        count += 1
    if not any(layer.weights for layer in units[:count]):
        return [], list(model.layers)
    return units[:count], units[count:]


class FrozenFront:
    """Layers run in inference mode, compiled once: ``front(x)`` is their output for ``x``."""

    def __init__(self, layers: Sequence[keras.layers.Layer]):
        self.layers = list(layers)

    @tf.function(reduce_retracing=True)
    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        for layer in self.layers:
            x = layer(x, training=False)
        return x

    def features(self, images: np.ndarray) -> np.ndarray:
        """The outputs for uint8 images, scaled as training scales them, in order."""
        batches = tf.data.Dataset.from_tensor_slices(images).batch(EVAL_BATCH_SIZE)
        return np.concatenate([self(batch).numpy() for batch in batches.map(scale_images)])


@dataclass
class _FitPlan:
    """What ``fit`` trains on: the whole model on images, or its head on front outputs."""

    model: keras.Model
    train: EpochStream
    validation: tf.data.Dataset | None
    front_layers: int = 0  # layers run outside the training step (nested ones counted)
    feature_seconds: float | None = None  # time to compute the features computed once


def _plan_fit(
    model: keras.Model, config: RunConfig, subset: Subset, batch_size: int, steps: int
) -> _FitPlan:
    """Fit the whole model, or, behind a frozen front (:func:`split_front`), only its head;
    ``steps`` batches an epoch, run ``config.steps_per_execution`` at a time.

    The front runs in inference mode outside the training step: on the test images once, and
    on the training images once as well when they are not augmented; else on every prepared
    chunk of augmented images in the input pipeline. The head is made of the model's own
    layers, so training it trains the model that is returned and saved, base included; it
    shares the model's optimizer and its state.
    """
    batched = config.replace(batch_size=batch_size)
    front_layers, head_layers = split_front(model, config)
    # Read when fit makes its train function, so it may change after compile.
    model.steps_per_execution = resolve_steps_per_execution(config.steps_per_execution, steps)
    if not front_layers:
        validation = eval_dataset(subset.x_test, subset.y_test) if len(subset.x_test) else None
        return _FitPlan(model, EpochStream(subset.x_train, subset.y_train, batched), validation)
    started = time.perf_counter()
    front = FrozenFront(front_layers)
    if config.augments:
        train = EpochStream(subset.x_train, subset.y_train, batched, front=front)
        sample = front(scale_images(tf.convert_to_tensor(subset.x_train[:1])))
    else:
        features = front.features(subset.x_train)
        train = EpochStream(features, subset.y_train, batched, features=True)
        sample = features[:1]
    validation = None
    if len(subset.x_test):
        validation = eval_dataset(front.features(subset.x_test), subset.y_test, features=True)
    head = keras.Sequential(
        [keras.Input(sample.shape[1:], dtype=sample.dtype.name), *head_layers],
        name=f"{model.name}_head",
    )
    compile_model(head, config, subset.num_classes, optimizer=model.optimizer)
    head.steps_per_execution = model.steps_per_execution
    return _FitPlan(head, train, validation, len(front_layers), time.perf_counter() - started)


class _ProgressBridge(keras.callbacks.Callback):
    """Turns Keras callbacks into plain events, applies the cooperative stop, and keeps the
    run's history: the one the checkpoints and the record get.

    ``history``: that of earlier sessions (empty for a new run); each epoch is appended to it.
    ``save(epochs_completed, history)`` writes a checkpoint after each epoch that was not cut
    short by a stop (resuming repeats a stopped epoch from its start, so the resumed history
    matches an uninterrupted one); the record keeps the stopped epoch's metrics too.
    """

    def __init__(
        self,
        sink: Sink,
        stop: StopFlag,
        epochs: int,
        steps: int,
        batch_size: int,
        history: Mapping[str, Sequence[float]],
        save: Callable[[int, Mapping[str, list[float]]], None] | None,
    ):
        super().__init__()
        self.sink, self.stop = sink, stop
        self.epochs, self.steps, self.batch_size = epochs, steps, batch_size
        self.history = {k: list(v) for k, v in history.items()}
        self.save = save
        self.epoch_start = time.perf_counter()
        self.epoch = 0
        self.epochs_run = 0  # in this session, the stopped one included
        self.epochs_complete = 0  # in this session, not cut short by a stop

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch
        self.epoch_start = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._report_batch(batch, logs or {})
        # Checked after reporting, so a stop requested from the report itself counts too.
        if self.stop.is_set():
            self.model.stop_training = True

    def _report_batch(self, batch: int, logs: dict) -> None:
        now = time.perf_counter()
        # Keras names a call's last batch as if the call were whole; an epoch's last call
        # may be short.
        done = min(batch + 1, self.steps)
        per_step = (now - self.epoch_start) / done
        remaining = (self.steps - done) + (self.epochs - self.epoch - 1) * self.steps
        self.sink(
            BatchEvent(
                epoch=self.epoch,
                epochs=self.epochs,
                batch=done - 1,
                steps=self.steps,
                loss=float(logs.get("loss", math.nan)),
                accuracy=float(logs.get("accuracy", math.nan)),
                images_per_second=self.batch_size / per_step if per_step > 0 else 0.0,
                eta_seconds=remaining * per_step,
            )
        )

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        seconds = time.perf_counter() - self.epoch_start
        metrics = {k: float(v) for k, v in (logs or {}).items()}
        for key, value in {**metrics, "epoch_seconds": seconds}.items():
            self.history.setdefault(key, []).append(value)
        self.epochs_run += 1
        # The cooperative stop sets stop_training at a batch end, so it marks a partial epoch.
        if not self.model.stop_training:
            self.epochs_complete += 1
            if self.save is not None:
                self.save(epoch + 1, self.history)
        # After the checkpoint, so a sink that hears of an epoch can count on it.
        self.sink(EpochEvent(epoch, self.epochs, metrics, seconds))


class _BestKeeper:
    """With ``keep_best``: the weights of the best epoch so far (:func:`best_epoch`), kept
    beside the checkpoint when there is one, so a resumed run still has them, else in memory."""

    def __init__(self, model: keras.Model, folder: Path | None):
        self.model, self.folder = model, folder
        self.weights: list[np.ndarray] | None = None

    def check(self, resume: Checkpoint | None) -> None:
        """Refuse to resume a run whose best epoch's weights are gone (before training)."""
        if resume is None or best_epoch(resume.history) is None:
            return
        if not (resume.directory / BEST_WEIGHTS).is_file():
            raise ModelError(
                f"{resume.directory}: the best epoch's weights ({BEST_WEIGHTS}) are missing; "
                "resume without keep-best in a new run, or start again"
            )

    def epoch_done(self, history: Mapping[str, Sequence[float]]) -> None:
        """Keep the weights of the epoch just completed when it is the best so far."""
        if best_epoch(history) != len(history.get("loss", ())) - 1:
            return
        if self.folder is not None:
            save_best_weights(self.model, self.folder)  # before the state names the epoch
        else:
            self.weights = [w.copy() for w in self.model.get_weights()]

    def restore(self, history: Mapping[str, Sequence[float]], completed: int) -> int | None:
        """Put the best epoch's weights into the model; its 1-based number, or None when the
        last complete epoch is the best (or none is)."""
        best = best_epoch({k: v[:completed] for k, v in history.items()})
        if best is None or best == completed - 1:
            return None
        if self.folder is not None:
            load_best_weights(self.model, self.folder)
        else:
            self.model.set_weights(self.weights)
        return best + 1


def _fit_epochs(
    plan: _FitPlan,
    config: RunConfig,
    strategy: tf.distribute.Strategy,
    callbacks: list[keras.callbacks.Callback],
    stop: StopFlag,
    initial_epoch: int,
) -> bool:
    """Fit ``plan`` from ``initial_epoch`` to the last epoch or a stop; returns whether
    RMSprop's update was the fused kernel (:mod:`cifar_gui.engine.fused_rmsprop`)."""
    options = tf.data.Options()
    # Every worker holds the arrays; each takes its share of every global batch.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    # Only in a run of its own: a distribution strategy's variables are not the kernel's (fit
    # runs outside strategy.scope(), so the module cannot tell).
    fuse = config.fused_optimizer and config.strategy == "default"
    optimizer, variables = plan.model.optimizer, plan.model.trainable_variables
    with fused_rmsprop(optimizer, variables, fuse) as fused:
        for epoch in range(initial_epoch, config.epochs):
            # One fit per epoch, each on that epoch's own finite data (see EpochStream); the
            # compiled train function and the optimizer state carry over between them.
            with worker_failures(strategy):
                plan.model.fit(
                    plan.train.epoch(epoch).with_options(options),
                    initial_epoch=epoch,
                    epochs=epoch + 1,
                    validation_data=plan.validation,
                    callbacks=callbacks,
                    verbose=0,
                    shuffle=False,  # the stream is already in the epoch's order
                )
            if stop.is_set():
                break
    return fused


def train(
    config: RunConfig,
    subset: Subset,
    sink: Sink = ignore,
    stop: StopFlag | None = None,
    *,
    live: Callable[[], LiveRequest | None] | None = None,
    checkpoints: Path | None = None,
    resume: Checkpoint | None = None,
) -> RunResult:
    """Build, compile and fit the model of ``config`` on ``subset``; return it with its history.

    Batch and epoch events go to ``sink``; ``stop`` set from any thread ends the run at the
    end of the compiled call in progress (within ``steps_per_execution`` batches). ``live``:
    the live view's latest request, or None when it has not changed (asked before each
    snapshot; None at the start: the seed's test image 5 and the first convolution); with it,
    :class:`~cifar_gui.engine.events.LiveSnapshot` events go to ``sink`` too.

    Deterministic for a given seed on the CPU. Call it on the thread that will use the model
    (Keras state is per thread). The model is built under ``config.strategy``, with a global
    batch of ``config.batch_size`` per replica.

    ``checkpoints``: folder that gets a resumable checkpoint after every complete epoch; a new
    run replaces the checkpoint in it once its model is built, just before the first epoch.
    ``resume``: continue that checkpoint's run at its next epoch, with its optimizer state; the
    epochs' data order and augmentation depend on the seed and the epoch alone
    (:class:`EpochStream`), so the history is the one an uninterrupted run would have had.
    """
    stop = stop if stop is not None else threading.Event()
    threads, strategy = start_strategy(config)
    # Keras 3.15 fails to trace several steps per call under a distribution strategy, so a
    # distributed run takes one batch per call.
    fit_config = config
    if config.strategy != "default":
        fit_config = config.replace(steps_per_execution=1)
    keras.utils.set_random_seed(config.seed)
    device = describe_device()
    input_shape = tuple(int(d) for d in subset.x_train.shape[1:])
    with strategy.scope():
        if resume is None:
            policy = resolve_precision(config.precision)
            with precision_scope(policy):
                model = build_model(config, subset.num_classes, input_shape)
            # A finetune model comes from a file with the policy it was saved with.
            model = with_precision(model, policy)
            compile_model(model, fit_config, subset.num_classes)
        else:
            model = load_checkpoint_model(resume)
            # Compiled as a new run would be (batches per call...), keeping the optimizer state.
            compile_model(model, fit_config, subset.num_classes, optimizer=model.optimizer)
    batch_size = global_batch_size(config.batch_size, strategy)
    steps = math.ceil(len(subset.x_train) / batch_size)
    initial_epoch = resume.epochs_completed if resume is not None else 0
    if resume is not None and resume.steps_per_epoch != steps:
        raise ModelError(
            f"{resume.directory}: made with {resume.steps_per_epoch} steps per epoch, now "
            f"{steps}: resume with the same data, batch size and number of devices"
        )
    # Until the last epoch: the layers are plain Keras again for whoever uses the model next.
    with matmul_convolutions(
        model, resolve_matmul_convolutions(config.matmul_convolutions)
    ) as matmul_layers:
        with strategy.scope():
            plan = _plan_fit(model, fit_config, subset, batch_size, steps)
        if checkpoints is not None and resume is None and is_chief(strategy):
            # The run is about to start: only now does it replace an older checkpoint of the
            # same name. State first, so a kill in between leaves no state naming a deleted model.
            (checkpoints / STATE_FILE).unlink(missing_ok=True)
            if checkpoints.is_dir():
                remove_stale_files(checkpoints, keep=None)
        chief_folder = checkpoints if is_chief(strategy) else None
        keeper = _BestKeeper(model, chief_folder) if config.keep_best else None
        if keeper is not None:
            keeper.check(resume)
        log = None
        if chief_folder is not None:
            log = TensorBoardLog(chief_folder, config, fresh=resume is None)
        save_checkpoint_of = None
        if chief_folder is not None:
            template = Checkpoint(
                checkpoints,
                checkpoints / epoch_file(1),
                config,
                1,
                steps,
                {},
                tuple(subset.class_names),
                tuple(subset.class_indices),
                batch_size,
            )

            def save_checkpoint_of(
                epochs_completed: int, history: Mapping[str, list[float]]
            ) -> None:
                # The whole model, also when only its head is fitted (behind cached features).
                done = dataclasses.replace(
                    template,
                    model_path=checkpoints / epoch_file(epochs_completed),
                    epochs_completed=epochs_completed,
                    history=check_history(history),
                )
                save_checkpoint(model, done)

        def epoch_done(epochs_completed: int, history: Mapping[str, list[float]]) -> None:
            # Best weights first: a state whose history names an epoch the best has its weights.
            if keeper is not None:
                keeper.epoch_done(history)
            if save_checkpoint_of is not None:
                save_checkpoint_of(epochs_completed, history)
            if log is not None:
                log.epoch(epochs_completed, {k: v[-1] for k, v in history.items()})

        previous = resume.history if resume is not None else {}
        bridge = _ProgressBridge(sink, stop, config.epochs, steps, batch_size, previous, epoch_done)
        callbacks: list[keras.callbacks.Callback] = [bridge]
        if live is not None and len(subset.x_test):
            probe = LiveProbe(
                model,
                subset.x_test,
                subset.y_test,
                live() or LiveRequest(min(SEED_TEST_IMAGE, len(subset.x_test)) - 1),
                seed=config.seed,
                class_names=tuple(subset.class_names),
            )
            callbacks.append(LiveCallback(probe, sink, live, steps, initial_epoch))
        started = time.perf_counter()
        try:
            fused = _fit_epochs(plan, config, strategy, callbacks, stop, initial_epoch)
        finally:
            if log is not None:
                log.close()
    seconds = time.perf_counter() - started
    history = bridge.history
    val = history.get("val_accuracy", [])
    completed = initial_epoch + bridge.epochs_complete
    kept = keeper.restore(history, completed) if keeper is not None else None
    shown = -1 if kept is None else kept - 1  # the epoch whose weights are saved
    record = RunRecord(
        config=config,
        class_names=tuple(subset.class_names),
        class_indices=tuple(subset.class_indices),
        input_shape=input_shape,
        history=check_history(history),
        epochs_completed=initial_epoch + bridge.epochs_run,
        resumed_from_epoch=initial_epoch if resume is not None else None,
        stopped=stop.is_set(),
        seconds=seconds,
        test_loss=history.get("val_loss", [None])[shown] if val else None,
        test_accuracy=val[shown] if val else None,
        best_test_accuracy=max(val) if val else None,
        train_images=len(subset.x_train),
        test_images=len(subset.x_test),
        parameters=parameter_counts(model),
        device=device,
        strategy=describe_strategy(strategy),
        global_batch_size=batch_size,
        precision=model_precision(model),
        performance={
            "steps_per_execution": int(plan.model.steps_per_execution),
            "intra_op_threads": threads,  # 0: TensorFlow's default (every core)
            "feature_cache": plan.model is not model,
            "frozen_front_layers": plan.front_layers,
            "feature_seconds": plan.feature_seconds,
            "matmul_convolutions": sorted(matmul_layers),  # layers run as matrix products
            "fused_optimizer": fused,
        },
        versions=versions(),
        finished_at=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        kept_epoch=kept,
    )
    return RunResult(model, record)


def start_strategy(config: RunConfig) -> tuple[int, tf.distribute.Strategy]:
    """Apply the thread setting and make the run's strategy, before TensorFlow's first
    operation; return the threads in use and the strategy. Whatever the strategy's creation
    raises (a bad ``TF_CONFIG``, a port in use) becomes one :class:`UserError` line."""
    threads = apply_threads(config.threads)  # thread pools are fixed at TF's first operation
    try:
        return threads, make_strategy(config.strategy)
    except UserError:
        raise
    except Exception as exc:
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise UserError(f"cannot start the {config.strategy} strategy ({reason})") from None


def run_training(
    config: RunConfig,
    sink: Sink = ignore,
    stop: StopFlag | None = None,
    *,
    live: Callable[[], LiveRequest | None] | None = None,
    dataset: Dataset | None = None,
    save: bool = True,
    resume: str | Path | Checkpoint | None = None,
) -> RunResult:
    """Load the data (unless given), train, and save the model and sidecar in ``config.out_dir``.

    Every event goes to ``sink`` (``stop`` and ``live`` as for :func:`train`): a
    :class:`RunStarted` once the checks have passed, the run's batch, epoch and live events,
    and its :class:`RunFinished` once it is saved.

    With ``save`` and ``config.checkpoint``, a resumable checkpoint is kept in
    ``<out_dir>/checkpoints/<model stem>/`` (see :mod:`cifar_gui.engine.checkpoints`).
    ``resume`` (a run folder or a :class:`Checkpoint`) continues a run; ``config`` must be the
    checkpoint's, except ``epochs``, ``strategy`` and ``data`` (where it is now), which may change.

    Everything is checked before anything on disk changes (the strategy, the data, the
    classes, where the files go; the model files in :func:`train`, before the first epoch),
    so a run that fails its checks leaves an earlier run's model and checkpoint as they were.
    """
    if resume is not None and not isinstance(resume, Checkpoint):
        resume = read_checkpoint(resume)
    if resume is not None:
        check_resumable(config, resume)
    # First: the multi-worker strategy must exist before TensorFlow runs any operation.
    _, strategy = start_strategy(config)
    chief = is_chief(strategy)
    if save and chief:
        check_can_write(Path(config.out_dir), folder=True)
    dataset = dataset if dataset is not None else load_dataset(config.data)
    subset = select_classes(dataset, config.classes, config.limit, train_limit=config.train_limit)
    if resume is not None and subset.class_names != resume.class_names:
        raise ModelError(
            f"{resume.directory}: the run trained {', '.join(resume.class_names)}; the data "
            f"now gives {', '.join(subset.class_names)}"
        )
    path = Path(config.out_dir) / model_filename(config.variant, subset.class_indices)
    folder = None
    if resume is not None:
        folder = resume.directory
    elif save and config.checkpoint:
        folder = checkpoint_dir(config.out_dir, config.variant, subset.class_indices)
    if chief:
        if save:
            check_can_write(path)
            check_can_write(sidecar_path(path))
        if folder is not None:
            check_can_write(folder / STATE_FILE)
            check_can_write(folder / epoch_file(config.epochs))
    sink(
        RunStarted(
            config.variant,
            config.epochs,
            None if resume is None else resume.epochs_completed,
            None if resume is None else resume.history,
        )
    )
    result = train(config, subset, sink, stop, live=live, checkpoints=folder, resume=resume)
    result.record = result.record.replace(data_source=dataset.source)
    if save and chief:
        result.path = save_model(result.model, path, result.record)
    sink(result.finished)
    return result
