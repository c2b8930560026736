"""Run one training configuration: build or load the model, fit it with plain events and a
cooperative stop, checkpoints after each epoch, the record, and the saved model with its
sidecar.

The GUI's training process and the command line both call :func:`run_training`; neither sees
Keras callbacks, only the events of :mod:`cifar_gui.engine.events`, sent to one sink.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import math
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import cifar_gui
from cifar_gui import tutorial
from cifar_gui.config import RunConfig
from cifar_gui.engine.data.dataset import Dataset, Subset, load_dataset, select_classes
from cifar_gui.engine.errors import ModelError, UserError
from cifar_gui.engine.events import (
    LiveRequest,
    RunFinished,
    RunStarted,
    Sink,
    StopFlag,
    ignore,
)
from cifar_gui.engine.files import check_can_write
from cifar_gui.engine.models.build import (
    build_model,
    compile_model,
    parameter_counts,
    with_precision,
)
from cifar_gui.engine.models.checkpoint_model import (
    load_checkpoint_model,
)
from cifar_gui.engine.models.persistence import save_model
from cifar_gui.engine.record import (
    Performance,
    RunRecord,
    check_history,
    model_filename,
    sidecar_path,
)
from cifar_gui.engine.training.callbacks import BestKeeper, EpochSaver, ProgressBridge
from cifar_gui.engine.training.checkpoints import (
    STATE_FILE,
    Checkpoint,
    check_resumable,
    checkpoint_dir,
    epoch_file,
    read_checkpoint,
    remove_stale_files,
)
from cifar_gui.engine.training.distribute import (
    describe_strategy,
    global_batch_size,
    is_chief,
    make_strategy,
    worker_failures,
)
from cifar_gui.engine.training.frozen_front import FitPlan, plan_fit
from cifar_gui.engine.training.fused_rmsprop import fused_rmsprop
from cifar_gui.engine.training.hardware import cpu_name
from cifar_gui.engine.training.live import LiveCallback, LiveProbe
from cifar_gui.engine.training.matmul_conv import matmul_convolutions
from cifar_gui.engine.training.performance import (
    apply_threads,
    model_precision,
    precision_scope,
    resolve_matmul_convolutions,
    resolve_precision,
)
from cifar_gui.engine.training.tensorboard_log import TensorBoardLog


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


class _CurrentEpoch(keras.callbacks.Callback):
    """The epoch ``fit`` is at (0-based), for the input stream's next iterator."""

    def __init__(self, epoch: int):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch

    def get(self) -> int:
        return self.epoch


def _fit_epochs(
    plan: FitPlan,
    config: RunConfig,
    strategy: tf.distribute.Strategy,
    callbacks: list[keras.callbacks.Callback],
    stop: StopFlag,
    initial_epoch: int,
) -> bool:
    """Fit ``plan`` from ``initial_epoch`` to the last epoch or a stop; returns whether
    RMSprop's update was the fused kernel (:mod:`cifar_gui.engine.training.fused_rmsprop`)."""
    options = tf.data.Options()
    # Every worker holds the arrays; each takes its share of every global batch.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    # Only in a run of its own: a distribution strategy's variables are not the kernel's (fit
    # runs outside strategy.scope(), so the module cannot tell).
    fuse = config.fused_optimizer and config.strategy == "default"
    optimizer, variables = plan.model.optimizer, plan.model.trainable_variables
    with fused_rmsprop(optimizer, variables, fuse) as fused:
        if config.strategy == "default":
            # One fit for every epoch: one iterator an epoch of one dataset traced once, and
            # one end of fit (each cost up to seconds an epoch: docs/speed.md).
            current = _CurrentEpoch(initial_epoch)
            plan.model.fit(
                plan.train.epochs(current.get).with_options(options),
                initial_epoch=initial_epoch,
                epochs=config.epochs,
                validation_data=plan.validation,
                callbacks=[current, *callbacks],
                verbose=0,
                shuffle=False,  # the stream is already in the epoch's order
            )
        else:
            _fit_each_epoch(plan, config, strategy, callbacks, stop, initial_epoch, options)
    return fused


def _fit_each_epoch(
    plan: FitPlan,
    config: RunConfig,
    strategy: tf.distribute.Strategy,
    callbacks: list[keras.callbacks.Callback],
    stop: StopFlag,
    initial_epoch: int,
    options: tf.data.Options,
) -> None:
    """One fit per epoch, each on that epoch's own finite data (see EpochStream): under a
    distribution strategy, which shards a dataset's graph, not Python's part of it (the
    epoch :meth:`EpochStream.epochs` reads). The compiled train function and the optimizer
    state carry over between them."""
    for epoch in range(initial_epoch, config.epochs):
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


def train(
    config: RunConfig,
    subset: Subset,
    sink: Sink = ignore,
    stop: StopFlag | None = None,
    *,
    live: Callable[[], LiveRequest | None] | None = None,
    checkpoints: Path | None = None,
    resume: Checkpoint | None = None,
    started: float | None = None,
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
    (:class:`~cifar_gui.engine.training.pipeline.EpochStream`), so the history is the one
    an uninterrupted run would have had.

    ``started``: the ``time.perf_counter()`` the run started at (default: now), for the
    record's ``wall_seconds`` and ``timings`` (:data:`~cifar_gui.engine.record.TIMINGS`).
    """
    started = time.perf_counter() if started is None else started
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
            plan = plan_fit(model, fit_config, subset, batch_size, steps)
        if checkpoints is not None and resume is None and is_chief(strategy):
            # The run is about to start: only now does it replace an older checkpoint of the
            # same name. State first, so a kill in between leaves no state naming a deleted model.
            (checkpoints / STATE_FILE).unlink(missing_ok=True)
            if checkpoints.is_dir():
                remove_stale_files(checkpoints, keep=None)
        chief_folder = checkpoints if is_chief(strategy) else None
        keeper = None
        if config.keep_best:
            keeper = BestKeeper(model, checkpoints, writes=chief_folder is not None)
        if keeper is not None:
            keeper.check(resume)
        template = log = None
        if chief_folder is not None:
            log = TensorBoardLog(chief_folder, config, fresh=resume is None)
            template = Checkpoint(
                chief_folder,
                chief_folder / epoch_file(1),
                config,
                1,
                steps,
                {},
                tuple(subset.class_names),
                tuple(subset.class_indices),
                batch_size,
            )
        epoch_done = EpochSaver(model, keeper, template, log)
        previous = resume.history if resume is not None else {}
        bridge = ProgressBridge(
            sink, stop, config.epochs, steps, batch_size, previous, epoch_done, epoch_done.trained
        )
        callbacks: list[keras.callbacks.Callback] = [bridge]
        if live is not None and len(subset.x_test):
            probe = LiveProbe(
                model,
                subset.x_test,
                subset.y_test,
                live() or LiveRequest(min(tutorial.TEST_IMAGE, len(subset.x_test)) - 1),
                seed=config.seed,
                class_names=tuple(subset.class_names),
            )
            callbacks.append(LiveCallback(probe, sink, live, steps, initial_epoch))
        fitting = time.perf_counter()
        try:
            fused = _fit_epochs(plan, config, strategy, callbacks, stop, initial_epoch)
        finally:
            epoch_done.close()
            if log is not None:
                log.close()
    seconds = time.perf_counter() - fitting
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
        timings={
            "setup": fitting - started,
            "epochs": bridge.epoch_seconds,
            "validation": bridge.validation_seconds,
            "checkpoints": bridge.save_seconds,
            "between_epochs": max(0.0, seconds - bridge.epoch_seconds - bridge.save_seconds),
        },
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
        performance=Performance(
            steps_per_execution=int(plan.model.steps_per_execution),
            intra_op_threads=threads,
            feature_cache=plan.model is not model,
            frozen_front_layers=plan.front_layers,
            feature_seconds=plan.feature_seconds,
            matmul_convolutions=tuple(sorted(matmul_layers)),
            fused_optimizer=fused,
        ),
        versions=versions(),
        finished_at=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        kept_epoch=kept,
    )
    return RunResult(model, record.replace(wall_seconds=time.perf_counter() - started))


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
    ``<out_dir>/checkpoints/<model stem>/`` (see :mod:`cifar_gui.engine.training.checkpoints`).
    ``resume`` continues a run: a run folder (its checkpoint is read and checked here:
    ``config`` must be the checkpoint's run), or a :class:`Checkpoint` already checked where it
    was read (:func:`~cifar_gui.engine.training.runner.plan_run`, the study), not checked again.

    Everything is checked before anything on disk changes (the strategy, the data, the
    classes, the files it writes; the model files in :func:`train`, before the first epoch),
    so a run that fails its checks leaves an earlier run's model and checkpoint as they were.
    Whether its folder can be made is the plan's check (``plan_run``, ``plan_study``).

    The record's ``wall_seconds`` runs from this call to the final model on disk.
    """
    started = time.perf_counter()
    if resume is not None and not isinstance(resume, Checkpoint):
        # A Checkpoint given was checked where it was read (plan_run, the study): once a run.
        resume = read_checkpoint(resume)
        check_resumable(config, resume)
    # First: the multi-worker strategy must exist before TensorFlow runs any operation.
    _, strategy = start_strategy(config)
    chief = is_chief(strategy)
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
    result = train(
        config, subset, sink, stop, live=live, checkpoints=folder, resume=resume, started=started
    )
    result.record = result.record.replace(data_source=dataset.source)
    saving = time.perf_counter()

    def finished() -> RunRecord:
        """The record with the whole run's time, once the model is written (not its sidecar,
        which holds it: milliseconds)."""
        now = time.perf_counter()
        timings = dict(result.record.timings)
        if save and chief:
            timings["final_save"] = now - saving
        result.record = result.record.replace(wall_seconds=now - started, timings=timings)
        return result.record

    if save and chief:
        result.path = save_model(result.model, path, finished)
    else:
        finished()
    sink(result.finished)
    return result
