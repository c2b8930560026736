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

MODEL_EXTENSIONS = (".h5", ".keras")


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
        """``deer vs horse``."""
        names = self.record.class_names
        if not names and self.record.config is not None:
            names = tuple(str(c) for c in self.record.config.classes)
        return " vs ".join(names)

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


def discover_runs(folder: str | Path) -> list[SavedRun]:
    """Every training run saved in ``folder`` (not recursive), oldest first.

    A missing folder gives an empty list; sidecars that are broken or not from training
    (any other JSON) are skipped, so one bad file never hides the others.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    runs = [run for path in folder.glob("*.json") if (run := read_run(path)) is not None]
    return sorted(runs, key=lambda r: (r.record.finished_at, r.sidecar.name))
