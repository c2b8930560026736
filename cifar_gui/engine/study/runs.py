"""Previous training runs, found again from the JSON sidecars saved beside their models.

Every run saved by :func:`cifar_gui.engine.training.run.run_training` leaves ``<stem>.json``
(a :class:`~cifar_gui.engine.record.RunRecord`) beside ``<stem>.h5`` or ``<stem>.keras``.
This module reads those sidecars only: it imports neither Keras nor Qt, so the GUI can list
runs before TensorFlow has loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cifar_gui.engine.files import read_json
from cifar_gui.engine.record import RunRecord, sidecar_path
from cifar_gui.engine.run_folder import MODEL_EXTENSIONS
from cifar_gui.engine.study.layout import REPORT_DIR
from cifar_gui.engine.training.checkpoints import CHECKPOINTS

# Folders under a runs root that hold no runs of their own: a run's checkpoints (whose
# state.json has a history too) and a study's report.
NOT_RUNS = (CHECKPOINTS, REPORT_DIR)
SHORT_CLASS_LIST = 3  # more classes are counted, not named, where runs are listed


@dataclass(frozen=True)
class SavedRun:
    """One saved run: its sidecar, the model beside it, and its record (whose fields keep
    their names everywhere: ``run.record.test_accuracy``); the properties are what the run
    table and the report make of them."""

    sidecar: Path
    model_path: Path | None  # None when the model file beside the sidecar is gone
    record: RunRecord

    @classmethod
    def of_model(cls, model_path: str | Path, record: RunRecord) -> SavedRun:
        """The run whose model was just saved at ``model_path`` with ``record``."""
        return cls(sidecar_path(model_path), Path(model_path), record)

    @property
    def classes_text(self) -> str:
        """``deer vs horse``; ``8 classes, not deer or horse`` for a base of many classes,
        whose names would not fit where runs are listed (:attr:`all_classes_text` has them)."""
        names = self._class_names()
        if len(names) <= SHORT_CLASS_LIST:
            return " vs ".join(names)
        excluded = self.record.config.excluded if self.record.config is not None else ()
        return f"{len(names)} classes" + (f", not {' or '.join(excluded)}" if excluded else "")

    @property
    def all_classes_text(self) -> str:
        """Every class of the run: ``airplane vs automobile vs ...``."""
        return " vs ".join(self._class_names())

    def _class_names(self) -> tuple[str, ...]:
        names = self.record.class_names
        if not names and self.record.config is not None:
            names = tuple(str(c) for c in self.record.config.classes)
        return tuple(names)

    @property
    def label(self) -> str:
        """A short legend entry: the file stem, which names the classes and the variant."""
        return self.sidecar.stem


def _model_beside(sidecar: Path) -> Path | None:
    for ext in MODEL_EXTENSIONS:
        candidate = sidecar.with_suffix(ext)
        if candidate.is_file():
            return candidate
    return None


def read_run(sidecar: str | Path) -> SavedRun | None:
    """Read one sidecar; None when it is unreadable, not valid, or not from a training run
    (a sidecar without a history, e.g. that of a model saved from another tool)."""
    sidecar = Path(sidecar)
    try:
        data = read_json(sidecar)
        if not isinstance(data, dict) or "history" not in data:
            return None
        record = RunRecord.from_dict(data)
    except (OSError, ValueError):
        return None
    return SavedRun(sidecar, _model_beside(sidecar), record)


def _folders(folder: Path, depth: int) -> list[Path]:
    """``folder`` and the folders below it, ``depth`` levels down; hidden ones and
    :data:`NOT_RUNS` left out."""
    found = [folder]
    if depth > 0:
        try:
            children = sorted(folder.iterdir())
        except OSError:  # not readable: its runs cannot be listed, the others still are
            return found
        for child in children:
            if child.is_dir() and not child.name.startswith(".") and child.name not in NOT_RUNS:
                found += _folders(child, depth - 1)
    return found


def discover_runs(folder: str | Path, depth: int = 0) -> list[SavedRun]:
    """Every training run saved in ``folder`` and, with ``depth``, in the folders that many
    levels below it, oldest first. A runs root needs 2: its old flat models (depth 0), its
    run folders and study folders (1), and folders within those (2).

    A missing folder gives an empty list; sidecars that are broken or not from training
    (any other JSON: a study's ``study.json``) are skipped, so one bad file never hides the
    others.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    runs = [
        run
        for where in _folders(folder, depth)
        for path in where.glob("*.json")
        if (run := read_run(path)) is not None
    ]
    return sorted(runs, key=lambda r: (r.record.finished_at, str(r.sidecar)))
