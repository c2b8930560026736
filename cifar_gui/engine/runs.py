"""Previous training runs, found again from the JSON sidecars saved beside their models.

Every run saved by :func:`cifar_gui.engine.training.run_training` leaves ``<stem>.json``
(config, history, timings, parameter counts) beside ``<stem>.h5`` or ``<stem>.keras``.
This module reads those sidecars only: it imports neither Keras nor Qt, so the GUI can list
runs before TensorFlow has loaded.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


def _floats(values: Any) -> list[float]:
    """A list of finite-or-NaN floats from a JSON list; anything else gives []."""
    if not isinstance(values, list):
        return []
    out = []
    for v in values:
        try:
            out.append(float(v))
        except (TypeError, ValueError):
            out.append(math.nan)
    return out


def _model_beside(sidecar: Path) -> Path | None:
    for ext in MODEL_EXTENSIONS:
        candidate = sidecar.with_suffix(ext)
        if candidate.is_file():
            return candidate
    return None


def summarize(metadata: Mapping[str, Any], sidecar: str | Path) -> RunSummary | None:
    """The summary of one run's sidecar content; None when it is not a training sidecar.

    Values missing from older sidecars are recomputed from the history where possible.
    """
    raw_history = metadata.get("history")
    if not isinstance(raw_history, Mapping):
        return None
    history = {str(k): _floats(v) for k, v in raw_history.items() if isinstance(v, list)}
    sidecar = Path(sidecar)
    config = metadata.get("config") if isinstance(metadata.get("config"), Mapping) else {}
    val = [v for v in history.get("val_accuracy", []) if not math.isnan(v)]
    epochs = metadata.get("epochs_completed")
    if not isinstance(epochs, int):
        epochs = len(history.get("loss", []))
    params = metadata.get("parameters")
    names = metadata.get("class_names") or config.get("classes") or ()
    final = metadata.get("test_accuracy")
    best = metadata.get("best_test_accuracy")
    seconds = metadata.get("seconds")
    return RunSummary(
        sidecar=sidecar,
        model_path=_model_beside(sidecar),
        variant=str(metadata.get("variant") or config.get("variant") or "?"),
        class_names=tuple(str(n) for n in names),
        epochs=epochs,
        epochs_planned=int(config.get("epochs") or epochs),
        final_val_accuracy=float(final) if final is not None else (val[-1] if val else None),
        best_val_accuracy=float(best) if best is not None else (max(val) if val else None),
        seconds=float(seconds) if isinstance(seconds, int | float) else None,
        parameters={k: int(v) for k, v in params.items()} if isinstance(params, Mapping) else {},
        history=history,
        stopped=bool(metadata.get("stopped", False)),
        finished_at=str(metadata.get("finished_at") or ""),
    )


def read_run(sidecar: str | Path) -> RunSummary | None:
    """Read one sidecar; None when it is unreadable or not from a training run."""
    try:
        data = json.loads(Path(sidecar).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return summarize(data, sidecar) if isinstance(data, dict) else None


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
