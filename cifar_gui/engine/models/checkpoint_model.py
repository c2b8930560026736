"""The Keras side of checkpoints (:mod:`cifar_gui.engine.training.checkpoints`): saving an epoch's
model with its optimizer state beside its ``state.json``, and loading it to resume."""

from __future__ import annotations

import contextlib
from pathlib import Path

import keras

from cifar_gui.engine.errors import ModelError, first_line
from cifar_gui.engine.files import WRITE_ERRORS, atomic_path, write_failure
from cifar_gui.engine.models.persistence import check_model_file, check_model_shapes
from cifar_gui.engine.record import output_units
from cifar_gui.engine.training.checkpoints import (
    BEST_WEIGHTS,
    STATE_FILE,
    Checkpoint,
    remove_stale_files,
    write_state,
)


def save_epoch_model(model: keras.Model, path: Path) -> None:
    """Write ``model`` with its optimizer state as a checkpoint's epoch file (atomically),
    before :func:`commit_checkpoint` names it (it may run on a thread of its own while the
    model's weights do not change). A write that fails raises :class:`ModelError` naming the
    file, and leaves the previous checkpoint as it was."""
    try:
        with atomic_path(path) as tmp:
            model.save(tmp)
    except WRITE_ERRORS as exc:
        raise ModelError(
            f"{path}: cannot write the checkpoint ({write_failure(exc)}); the last "
            "complete checkpoint is kept"
        ) from None


def commit_checkpoint(checkpoint: Checkpoint) -> None:
    """Write the state naming the checkpoint's epoch file (complete already, see
    :func:`save_epoch_model`), then drop the previous epoch file.

    A state that cannot be written raises :class:`ModelError` and leaves the previous
    checkpoint as it was (its state still names its own model).
    """
    state_path = checkpoint.directory / STATE_FILE
    try:
        write_state(checkpoint)
    except WRITE_ERRORS as exc:
        # No state names the new model; the previous state and model stay.
        with contextlib.suppress(OSError):
            checkpoint.model_path.unlink()
        raise ModelError(
            f"{state_path}: cannot write the checkpoint ({write_failure(exc)}); the last "
            "complete checkpoint is kept"
        ) from None
    remove_stale_files(checkpoint.directory, keep=checkpoint.model_path.name)


def load_checkpoint_model(checkpoint: Checkpoint) -> keras.Model:
    """The checkpoint's compiled model, with the optimizer state it had (call in the strategy
    scope the run trains under); refused when its output does not fit the run's classes."""
    path = checkpoint.model_path
    check_model_file(path, what="checkpoint")
    try:
        model = keras.saving.load_model(path, compile=True)
    except Exception as exc:
        reason = first_line(exc)
        raise ModelError(f"{path}: not a loadable checkpoint ({reason})") from None
    check_model_shapes(path, model)
    units = output_units(len(checkpoint.class_names))
    output = model.output_shape
    if output[-1] != units:
        raise ModelError(
            f"{path}: model output {output} does not fit the run's "
            f"{len(checkpoint.class_names)} classes; it cannot be resumed"
        )
    return model


def save_best_weights(model: keras.Model, directory: Path) -> None:
    """Save ``model``'s weights as the run's best so far (:data:`BEST_WEIGHTS`, atomically).

    Called before the epoch's state is written, so a state whose history names an epoch as
    the best always finds that epoch's weights here.
    """
    path = directory / BEST_WEIGHTS
    try:
        with atomic_path(path, suffix=".weights.h5") as tmp:
            model.save_weights(tmp)
    except WRITE_ERRORS as exc:
        raise ModelError(
            f"{path}: cannot write the best epoch's weights ({write_failure(exc)})"
        ) from None


def load_best_weights(model: keras.Model, directory: Path) -> None:
    """Put the run's best weights (see :func:`save_best_weights`) into ``model``."""
    path = directory / BEST_WEIGHTS
    try:
        model.load_weights(path)
    except Exception as exc:
        reason = first_line(exc)
        raise ModelError(f"{path}: cannot read the best epoch's weights ({reason})") from None
