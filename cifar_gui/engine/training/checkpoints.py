"""Resumable checkpoints: after every complete epoch, the model with its optimizer state and the
history so far, written so that a kill at any moment leaves the last complete one loadable.

Layout, beside the final models of the run::

    <out_dir>/cifar10_4_7.h5                   final model (the seed's name) + .json sidecar
    <out_dir>/checkpoints/cifar10_4_7/
        epoch-0003.keras                       model + optimizer state after 3 epochs
        state.json                             config, history, epochs done, which .keras

Each epoch writes ``epoch-NNNN.keras`` (atomically), then ``state.json`` (atomically) naming
it, and only then deletes the older ``.keras``. So ``state.json`` always names a complete file,
whatever moment the process dies at. ``.h5`` cannot carry the optimizer state of a Sequential
model in Keras 3, hence ``.keras`` here.

This module reads and writes the state only and imports neither Keras nor Qt, so a run can be
planned and the Resume dialog filled without TensorFlow; saving and loading the epoch's model
is :mod:`cifar_gui.engine.models.checkpoint_model`'s.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cifar_gui.config import MAX_CLASSES, RunConfig, run_differences
from cifar_gui.engine.errors import ModelError
from cifar_gui.engine.files import read_json, write_json
from cifar_gui.engine.record import check_history, model_filename
from cifar_gui.engine.study.layout import STUDY_FILE
from cifar_gui.settings import check_int, check_type

CHECKPOINTS = "checkpoints"  # sub-folder of out_dir
STATE_FILE = "state.json"
BEST_WEIGHTS = "best.weights.h5"  # with keep_best: the weights of the best epoch so far
STATE_VERSION = 2  # 2: epochs drawn by (seed, epoch); no batch count to skip
EPOCH_FILE = re.compile(r"epoch-\d{4,}\.keras")


@dataclass(frozen=True)
class Checkpoint:
    """The last complete epoch of a run, as read from its ``state.json``."""

    directory: Path
    model_path: Path  # the epoch's .keras
    config: RunConfig  # out_dir points at the folder holding ``checkpoints/``
    epochs_completed: int
    steps_per_epoch: int
    history: Mapping[str, tuple[float, ...]]
    class_names: tuple[str, ...]
    class_indices: tuple[int, ...] = ()
    global_batch_size: int | None = None

    @property
    def finished(self) -> bool:
        """Whether every epoch of the config is done (nothing left to resume)."""
        return self.epochs_completed >= self.config.epochs

    @classmethod
    def from_state(cls, state: Any, directory: Path) -> Checkpoint:
        """The checkpoint a ``state.json``'s content describes, every field checked for type
        and range (raises ValueError naming the field). The config's ``out_dir`` is set to
        the folder that holds ``checkpoints/``, so a resumed run saves its final model beside
        the checkpoints even after the run folder was moved."""
        check_type("state", state, dict)
        for key in ("config", "checkpoint", "epochs_completed", "steps_per_epoch"):
            if key not in state:
                raise ValueError(f"no {key}")
        # Without a version: hand-written states (and the test suite's) count as current.
        if state.get("version", STATE_VERSION) != STATE_VERSION:
            raise ValueError(f"version {state['version']!r}, this app writes {STATE_VERSION}")
        config = RunConfig.from_dict(state["config"])
        name = state["checkpoint"]
        check_type("checkpoint", name, str)
        if not EPOCH_FILE.fullmatch(name):
            raise ValueError(f"checkpoint {name!r} is not an epoch file name")
        done = check_int("epochs_completed", state["epochs_completed"], 1, config.epochs)
        steps = check_int("steps_per_epoch", state["steps_per_epoch"], 1, 2**31 - 1)
        history = check_history(state.get("history", {}))
        if any(len(values) != done for values in history.values()):
            raise ValueError(f"history does not match {done} completed epochs")
        names = state.get("class_names")
        check_type("class_names", names, list)
        for item in names:
            check_type("a class name", item, str)
        if len(names) != len(config.classes):
            raise ValueError(f"{len(names)} class names for {len(config.classes)} classes")
        indices = state.get("class_indices") or []
        check_type("class_indices", indices, list)
        for item in indices:
            check_int("a class index", item, 0, MAX_CLASSES - 1)
        batch = state.get("global_batch_size")
        return cls(
            directory,
            directory / name,
            config.replace(out_dir=str(directory.parent.parent)),
            done,
            steps,
            history,
            tuple(names),
            tuple(indices),
            None if batch is None else check_int("global_batch_size", batch, 1, 2**31 - 1),
        )


def epoch_file(epochs_completed: int) -> str:
    """The name of the checkpoint after ``epochs_completed`` epochs: ``epoch-0003.keras``."""
    return f"epoch-{epochs_completed:04d}.keras"


def checkpoint_dir(out_dir: str | Path, variant: str, class_indices: tuple[int, ...]) -> Path:
    """``<out_dir>/checkpoints/<stem of the final model's name>``."""
    return Path(out_dir) / CHECKPOINTS / Path(model_filename(variant, class_indices)).stem


def find_checkpoint_dir(run_dir: str | Path) -> Path:
    """The checkpoint folder meant by ``run_dir``: itself, or the one run under its ``checkpoints``.

    Raises :class:`ModelError` when there is none, or several to choose from.
    """
    run_dir = Path(run_dir).expanduser()
    if (run_dir / STATE_FILE).is_file():
        return run_dir
    if not run_dir.is_dir():
        raise ModelError(f"{run_dir}: no such run folder")
    found = sorted(p.parent for p in (run_dir / CHECKPOINTS).glob(f"*/{STATE_FILE}"))
    if not found:
        raise ModelError(f"{run_dir}: no checkpoint to resume (no {CHECKPOINTS}/*/{STATE_FILE})")
    if len(found) > 1:
        names = ", ".join(str(p) for p in found)
        raise ModelError(f"{run_dir}: several runs to resume, name one of: {names}")
    return found[0]


def read_checkpoint(run_dir: str | Path) -> Checkpoint:
    """The last complete checkpoint of the run in ``run_dir`` (see :func:`find_checkpoint_dir`).

    The config's ``out_dir`` is set to the folder that holds ``checkpoints/``, so a resumed run
    saves its final model beside the checkpoints even after the run folder was moved.
    """
    directory = find_checkpoint_dir(run_dir)
    state_path = directory / STATE_FILE
    try:
        checkpoint = Checkpoint.from_state(read_json(state_path), directory)
    except (OSError, ValueError) as exc:
        raise ModelError(f"{state_path}: not a readable checkpoint state ({exc})") from None
    if not checkpoint.model_path.is_file():
        raise ModelError(f"{state_path}: its model {checkpoint.model_path.name} is missing")
    return checkpoint


def check_resumable(config: RunConfig, checkpoint: Checkpoint) -> None:
    """Raise :class:`ModelError` unless ``config`` continues the checkpoint's run.

    The fields that define the run must be the checkpoint's (:func:`run_differences`); the
    others may differ: ``epochs`` (a new total, above the epochs done), ``strategy`` and
    ``data`` (where the data set is now), and where the run's files are.
    """
    changed = run_differences(config, checkpoint.config)
    if changed:
        raise ModelError(
            f"{checkpoint.directory}: the config differs from the checkpoint's in "
            f"{', '.join(changed)}"
        )
    if checkpoint.epochs_completed >= config.epochs:
        raise ModelError(
            f"{checkpoint.directory}: all {checkpoint.epochs_completed} epochs are done; "
            "ask for more epochs to continue"
        )


def list_checkpoints(out_dir: str | Path) -> list[Checkpoint]:
    """Every readable checkpoint under ``<out_dir>/checkpoints`` and, ``out_dir`` being a
    runs root, under its run folders' ``checkpoints`` (a study's runs resume with the study);
    unfinished ones first."""
    found = []
    pattern = f"{CHECKPOINTS}/*/{STATE_FILE}"
    nested = [
        p for p in Path(out_dir).glob(f"*/{pattern}") if not (p.parents[2] / STUDY_FILE).exists()
    ]
    for state in sorted([*Path(out_dir).glob(pattern), *nested]):
        with contextlib.suppress(ModelError):
            found.append(read_checkpoint(state.parent))
    return sorted(found, key=lambda c: c.finished)


def remove_stale_files(directory: Path, keep: str | None) -> None:
    """Delete epoch files other than ``keep`` and temporary files a killed save left behind;
    with ``keep`` None (a new run replaces an old one) the old best weights too."""
    for path in directory.glob("*.keras"):
        if path.name != keep:
            path.unlink(missing_ok=True)
    if keep is None:
        (directory / BEST_WEIGHTS).unlink(missing_ok=True)
    for stem in (Path(STATE_FILE).stem, Path(BEST_WEIGHTS).stem):
        for path in directory.glob(f".{stem}.*"):
            path.unlink(missing_ok=True)


def write_state(checkpoint: Checkpoint) -> None:
    """Write ``checkpoint``'s ``state.json`` (atomically), naming its model file, which must
    be complete already."""
    write_json(
        checkpoint.directory / STATE_FILE,
        {
            "version": STATE_VERSION,
            "config": checkpoint.config.to_dict(),
            "class_names": list(checkpoint.class_names),
            "class_indices": list(checkpoint.class_indices),
            "steps_per_epoch": checkpoint.steps_per_epoch,
            "global_batch_size": checkpoint.global_batch_size,
            "checkpoint": checkpoint.model_path.name,
            "epochs_completed": checkpoint.epochs_completed,
            "history": {k: list(v) for k, v in checkpoint.history.items()},
        },
    )
