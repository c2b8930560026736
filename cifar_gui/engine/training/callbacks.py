"""The Keras callbacks of a run: :class:`ProgressBridge` (plain events, the cooperative
stop, the run's history), and what it calls after each complete epoch, :class:`EpochSaver`
(the best epoch's weights with :class:`BestKeeper`, the checkpoint, the TensorBoard log)."""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import keras
import numpy as np

from cifar_gui.engine.errors import ModelError
from cifar_gui.engine.events import BatchEvent, EpochEvent, Sink, StopFlag
from cifar_gui.engine.models.checkpoint_model import (
    commit_checkpoint,
    load_best_weights,
    save_best_weights,
    save_epoch_model,
)
from cifar_gui.engine.record import best_epoch, check_history
from cifar_gui.engine.training.checkpoints import BEST_WEIGHTS, Checkpoint, epoch_file
from cifar_gui.engine.training.tensorboard_log import TensorBoardLog


class ProgressBridge(keras.callbacks.Callback):
    """Turns Keras callbacks into plain events, applies the cooperative stop, and keeps the
    run's history: the one the checkpoints and the record get.

    ``history``: that of earlier sessions (empty for a new run); each epoch is appended to it.
    ``save(epochs_completed, history)`` writes a checkpoint after each epoch that was not cut
    short by a stop (resuming repeats a stopped epoch from its start, so the resumed history
    matches an uninterrupted one); the record keeps the stopped epoch's metrics too.
    ``trained(epochs_completed)``: called as such an epoch's validation begins (its weights
    are final), so its checkpoint can be written meanwhile.

    It also times this session's epochs (``epoch_seconds``, validation included), their
    validation (``validation_seconds``) and the saves after them (``save_seconds``).
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
        trained: Callable[[int], None] | None = None,
    ):
        super().__init__()
        self.sink, self.stop = sink, stop
        self.epochs, self.steps, self.batch_size = epochs, steps, batch_size
        self.history = {k: list(v) for k, v in history.items()}
        self.save, self.trained = save, trained
        self.epoch_start = time.perf_counter()
        self.epoch = 0
        self.epochs_run = 0  # in this session, the stopped one included
        self.epochs_complete = 0  # in this session, not cut short by a stop
        self.epoch_seconds = self.validation_seconds = self.save_seconds = 0.0
        self.validation_start = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch
        self.epoch_start = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._report_batch(batch, logs or {})
        # Checked after reporting, so a stop requested from the report itself counts too.
        if self.stop.is_set():
            self.model.stop_training = True

    def on_test_begin(self, logs: dict | None = None) -> None:
        self.validation_start = time.perf_counter()  # fit's validation: its evaluate
        if self.trained is not None and not self.model.stop_training:
            self.trained(self.epoch + 1)

    def on_test_end(self, logs: dict | None = None) -> None:
        self.validation_seconds += time.perf_counter() - self.validation_start

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
        self.epoch_seconds += seconds
        # The cooperative stop sets stop_training at a batch end, so it marks a partial epoch.
        if not self.model.stop_training:
            self.epochs_complete += 1
            if self.save is not None:
                saving = time.perf_counter()
                self.save(epoch + 1, self.history)
                self.save_seconds += time.perf_counter() - saving
        # After the checkpoint, so a sink that hears of an epoch can count on it.
        self.sink(EpochEvent(epoch, self.epochs, metrics, seconds))
        if self.stop.is_set():  # asked for since the last batch: no next epoch
            self.model.stop_training = True


class BestKeeper:
    """With ``keep_best``: the weights of the best epoch so far (:func:`best_epoch`), kept
    beside the checkpoint when there is one, so a resumed run still has them, else in memory.

    ``writes`` False (a multi-worker run's other workers): kept in memory only, never written
    to ``folder``; a best epoch from before a resume is read from the chief's file there, so
    every worker ends with the same weights (their evaluation is one computation).
    """

    def __init__(self, model: keras.Model, folder: Path | None, writes: bool = True):
        self.model, self.folder, self.writes = model, folder, writes
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
        if self.folder is not None and self.writes:
            save_best_weights(self.model, self.folder)  # before the state names the epoch
        else:
            self.weights = [w.copy() for w in self.model.get_weights()]

    def restore(self, history: Mapping[str, Sequence[float]], completed: int) -> int | None:
        """Put the best epoch's weights into the model; its 1-based number, or None when the
        last complete epoch is the best (or none is)."""
        best = best_epoch({k: v[:completed] for k, v in history.items()})
        if best is None or best == completed - 1:
            return None
        if self.weights is not None and not self.writes:
            self.model.set_weights(self.weights)  # the best epoch came after the resume
        elif self.folder is not None:
            load_best_weights(self.model, self.folder)
        else:
            self.model.set_weights(self.weights)
        return best + 1


class EpochSaver:
    """What each complete epoch leaves: its checkpoint's model file (``template``: its
    folder and run, with ``model``'s weights and optimizer state), the best epoch's weights
    (``keeper``, with ``keep_best``), then the checkpoint's state (the epoch's history) and
    the TensorBoard log; the chief's only (``template`` and ``log`` None on other workers).

    The model file is written on a thread of its own while the epoch's validation runs
    (:meth:`trained`), which reads the weights and changes none; the state naming it is
    written once it is complete and the validation's metrics are known.
    """

    def __init__(
        self,
        model: keras.Model,
        keeper: BestKeeper | None,
        template: Checkpoint | None,
        log: TensorBoardLog | None,
    ):
        self.model, self.keeper, self.template, self.log = model, keeper, template, log
        self._writing: tuple[int, threading.Thread, list[Exception]] | None = None

    def trained(self, epochs_completed: int) -> None:
        """Start writing the model file of the epoch whose training just ended."""
        if self.template is None:
            return
        path = self.template.directory / epoch_file(epochs_completed)
        errors: list[Exception] = []

        def write() -> None:
            try:
                save_epoch_model(self.model, path)
            except Exception as exc:  # raised on the training thread by _written
                errors.append(exc)

        thread = threading.Thread(target=write, name="cifar-gui-checkpoint")
        thread.start()
        self._writing = (epochs_completed, thread, errors)

    def _written(self) -> int | None:
        """Wait for the model file being written; raise its error; the epochs it holds."""
        if self._writing is None:
            return None
        epochs, thread, errors = self._writing
        thread.join()
        self._writing = None
        if errors:
            raise errors[0]
        return epochs

    def close(self) -> None:
        """Wait for a model file still being written (a run that failed or ends); its error
        is not the run's: no state names the file."""
        if self._writing is not None:
            self._writing[1].join()
            self._writing = None

    def __call__(self, epochs_completed: int, history: Mapping[str, list[float]]) -> None:
        written = self._written() if self.template is not None else None
        # Best weights before the state: a state whose history names an epoch the best has
        # its weights.
        if self.keeper is not None:
            self.keeper.epoch_done(history)
        if self.template is not None:
            # The whole model, also when only its head is fitted (behind cached features).
            done = dataclasses.replace(
                self.template,
                model_path=self.template.directory / epoch_file(epochs_completed),
                epochs_completed=epochs_completed,
                history=check_history(history),
            )
            if written != epochs_completed:  # no validation ran: nothing written meanwhile
                save_epoch_model(self.model, done.model_path)
            commit_checkpoint(done)
        if self.log is not None:
            self.log.epoch(epochs_completed, {k: v[-1] for k, v in history.items()})
