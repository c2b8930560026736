"""Previous training runs, found again from the JSON sidecars saved beside their models.

Every run saved by :func:`cifar_gui.engine.training.run_training` leaves ``<stem>.json``
(config, history, timings, parameter counts) beside ``<stem>.h5`` or ``<stem>.keras``.
This module reads those sidecars only: it imports neither Keras nor Qt, so the GUI can list
runs before TensorFlow has loaded.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cifar_gui.config import MAX_CLASSES, RunConfig, check_int, check_type
from cifar_gui.engine.files import read_json

MODEL_EXTENSIONS = (".h5", ".keras")
HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")


@dataclass(frozen=True)
class RunSummary:
    """What the run table shows of one saved run."""

    sidecar: Path
    model_path: Path | None  # None when the model file beside the sidecar is gone
    variant: str
    class_names: tuple[str, ...]
    epochs: int  # epochs completed
    epochs_planned: int
    final_val_accuracy: float | None
    best_val_accuracy: float | None
    seconds: float | None  # wall time of the fit
    parameters: dict[str, int]  # total, trainable, non_trainable
    history: dict[str, list[float]] = field(repr=False)
    stopped: bool = False
    finished_at: str = ""  # ISO 8601, UTC

    @property
    def classes_text(self) -> str:
        """``deer vs horse``."""
        return " vs ".join(self.class_names)

    @property
    def label(self) -> str:
        """A short legend entry: the file stem, which names the classes and the variant."""
        return self.sidecar.stem


def number_list(name: str, values: Any) -> list[float]:
    """A JSON list of numbers as floats (null and NaN: NaN); anything else raises ValueError."""
    if not isinstance(values, list):
        raise ValueError(f"{name} must be a list of numbers")
    out = []
    for v in values:
        if v is None:
            out.append(math.nan)
            continue
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ValueError(f"{name} must be a list of numbers, not {type(v).__name__}")
        try:
            out.append(float(v))
        except OverflowError:
            raise ValueError(f"{name} holds a number too large for a float") from None
    return out


def check_history(value: Any) -> dict[str, list[float]]:
    """A history: metric name -> list of numbers."""
    check_type("history", value, dict)
    return {str(k): number_list(f"history[{k!r}]", v) for k, v in value.items()}


def check_sidecar(data: Any) -> dict[str, Any]:
    """The sidecar content ``data`` with every field this app reads checked for type and range
    (a missing field is fine: older sidecars lack some); raises ValueError naming the field.
    Lists of numbers come back as floats, ``config`` as a checked dictionary."""
    check_type("sidecar", data, dict)
    out = dict(data)
    if "history" in data:
        out["history"] = check_history(data["history"])
    if data.get("config") is not None:
        out["config"] = RunConfig.from_dict(data["config"]).to_dict()
    for key in ("class_names", "class_indices", "input_shape"):
        value = data.get(key)
        if value is None:
            continue
        kind = str if key == "class_names" else int
        check_type(key, value, list)
        for item in value:
            check_type(f"an item of {key}", item, kind)
        if not 1 <= len(value) <= MAX_CLASSES:
            raise ValueError(f"{key} must have 1 to {MAX_CLASSES} items")
    for key in ("variant", "data_source", "finished_at", "device", "strategy", "precision"):
        if data.get(key) is not None:
            check_type(key, data[key], str)
    for key in ("epochs_completed", "resumed_from_epoch", "train_images", "test_images"):
        if data.get(key) is not None:
            check_int(key, data[key], 0, 2**63 - 1)
    for key in ("test_loss", "test_accuracy", "best_test_accuracy", "seconds"):
        if data.get(key) is not None:
            (out[key],) = number_list(key, [data[key]])
    if data.get("parameters") is not None:
        check_type("parameters", data["parameters"], dict)
        for value in data["parameters"].values():
            check_int("a parameter count", value, 0, 2**63 - 1)
    if "stopped" in data:
        check_type("stopped", data["stopped"], bool)
    return out


def read_sidecar(path: str | Path) -> dict[str, Any] | None:
    """The checked content of a sidecar (:func:`check_sidecar`); None when the file is missing,
    unreadable or not a valid sidecar, which is then treated as absent."""
    try:
        return check_sidecar(read_json(path))
    except (OSError, ValueError):
        return None


def _model_beside(sidecar: Path) -> Path | None:
    for ext in MODEL_EXTENSIONS:
        candidate = sidecar.with_suffix(ext)
        if candidate.is_file():
            return candidate
    return None


def summarize(metadata: Mapping[str, Any], sidecar: str | Path) -> RunSummary | None:
    """The summary of one run's sidecar content; None when it is not a (valid) training sidecar.

    Values missing from older sidecars are recomputed from the history where possible.
    """
    try:
        metadata = check_sidecar(dict(metadata))
    except ValueError:
        return None
    history = metadata.get("history")
    if history is None:
        return None
    sidecar = Path(sidecar)
    config = metadata.get("config") or {}
    val = [v for v in history.get("val_accuracy", []) if not math.isnan(v)]
    epochs = metadata.get("epochs_completed")
    if epochs is None:
        epochs = len(history.get("loss", []))
    names = metadata.get("class_names") or config.get("classes") or ()
    final = metadata.get("test_accuracy")
    best = metadata.get("best_test_accuracy")
    return RunSummary(
        sidecar=sidecar,
        model_path=_model_beside(sidecar),
        variant=str(metadata.get("variant") or config.get("variant") or "?"),
        class_names=tuple(str(n) for n in names),
        epochs=epochs,
        epochs_planned=int(config.get("epochs") or epochs),
        final_val_accuracy=final if final is not None else (val[-1] if val else None),
        best_val_accuracy=best if best is not None else (max(val) if val else None),
        seconds=metadata.get("seconds"),
        parameters=dict(metadata.get("parameters") or {}),
        history=history,
        stopped=metadata.get("stopped", False),
        finished_at=metadata.get("finished_at") or "",
    )


def read_run(sidecar: str | Path) -> RunSummary | None:
    """Read one sidecar; None when it is unreadable or not from a training run."""
    data = read_sidecar(sidecar)
    return None if data is None else summarize(data, sidecar)


def discover_runs(folder: str | Path) -> list[RunSummary]:
    """Every training run saved in ``folder`` (not recursive), oldest first.

    A missing folder gives an empty list; sidecars that are broken or not from training
    (any other JSON) are skipped, so one bad file never hides the others.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    runs = [run for path in folder.glob("*.json") if (run := read_run(path)) is not None]
    return sorted(runs, key=lambda r: (r.finished_at, r.sidecar.name))
