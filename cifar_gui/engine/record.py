"""The typed record of one training run, and the sidecar JSON it is saved as.

Every run saved by :func:`cifar_gui.engine.training.run.run_training` leaves ``<stem>.json`` beside
``<stem>.h5`` or ``<stem>.keras``: :meth:`RunRecord.to_dict`, with the keys sidecars have had
since the first version, so older app versions and plain JSON readers still understand it.
:meth:`RunRecord.from_dict` is the one validating reader of that format (the sidecar loader,
the run table and the checkpoints use it); a sidecar of an older version still loads, with
the values it lacks recomputed from its history where possible.

This module imports neither Keras nor Qt, so the GUI can read records before TensorFlow has
loaded.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cifar_gui.config import MAX_CLASSES, RunConfig
from cifar_gui.engine.files import read_json
from cifar_gui.settings import check_int, check_type
from cifar_gui.tutorial import FILE_SUFFIXES

PREPROCESSING = "pixels / 255 (scale_images); VGG16 models preprocess inside"
MAX_COUNT = 2**63 - 1
# The phases of RunRecord.timings, in seconds: "setup" (from the start of run_training to the
# first epoch: data, model, compile, frozen-front features), "epochs" (the timed epochs of this
# session, validation included), "validation" (its part of them), "checkpoints" (after each
# epoch: best weights, checkpoint, TensorBoard; outside the epochs), "between_epochs" (the
# rest of the fit: each epoch's fit call and input pipeline, live snapshots), "final_save".
TIMINGS = ("setup", "epochs", "validation", "checkpoints", "between_epochs", "final_save")

History = dict[str, tuple[float, ...]]


def model_filename(variant: str, class_indices: Sequence[int], extension: str = ".h5") -> str:
    """The seed's file names: ``cifar10_4_7.h5``, ``cifar10_4_7_augm.h5``, ..."""
    joined = "_".join(str(i) for i in class_indices)
    return f"cifar10_{joined}{FILE_SUFFIXES[variant]}{extension}"


def sidecar_path(model_path: str | Path) -> Path:
    """The JSON beside a model: same folder, same stem."""
    return Path(model_path).with_suffix(".json")


def output_units(num_classes: int) -> int:
    """Output units of a classifier of ``num_classes``: one sigmoid unit for two classes."""
    return 1 if num_classes == 2 else num_classes


def class_count(units: int) -> int:
    """Classes of a classifier with ``units`` outputs: one sigmoid unit means two classes."""
    return 2 if units == 1 else units


def number_list(name: str, values: Any) -> tuple[float, ...]:
    """A JSON list of numbers as floats (null and NaN: NaN); anything else raises ValueError."""
    if not isinstance(values, list | tuple):
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
    return tuple(out)


def check_history(value: Any) -> History:
    """A history: metric name -> numbers (a sidecar's, a state.json's, or a run's own)."""
    check_type("history", value, dict)
    return {str(k): number_list(f"history[{k!r}]", v) for k, v in value.items()}


def _optional_number(name: str, value: Any) -> float | None:
    return None if value is None else number_list(name, [value])[0]


def _optional_int(name: str, value: Any) -> int | None:
    return None if value is None else check_int(name, value, 0, MAX_COUNT)


def _optional_str(name: str, value: Any, default: Any = None) -> Any:
    if value is None:
        return default
    check_type(name, value, str)
    return value


def _seconds(name: str, value: Any) -> float:
    seconds = number_list(name, [value])[0]
    if not 0 <= seconds < math.inf:  # NaN too (and null, read as NaN)
        raise ValueError(f"{name} must be a number of seconds, at least 0")
    return seconds


def _optional_seconds(name: str, value: Any) -> float | None:
    return None if value is None else _seconds(name, value)


def _timings(value: Any) -> dict[str, float]:
    """A sidecar's ``timings``: phase name -> seconds (empty when absent)."""
    if value is None:
        return {}
    check_type("timings", value, dict)
    return {str(k): _seconds(f"timings[{k!r}]", v) for k, v in value.items()}


def _items(key: str, value: Any, kind: type) -> tuple:
    """A list of ``kind`` values of 1 to MAX_CLASSES items (empty when absent)."""
    if value is None or value == []:
        return ()
    check_type(key, value, (list, tuple))
    for item in value:
        check_type(f"an item of {key}", item, kind)
    if not 1 <= len(value) <= MAX_CLASSES:
        raise ValueError(f"{key} must have 1 to {MAX_CLASSES} items")
    return tuple(value)


@dataclass(frozen=True)
class ParameterCounts:
    """A model's parameter counts, as ``summary()`` prints them."""

    total: int
    trainable: int
    non_trainable: int

    def to_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> ParameterCounts:
        """From a sidecar's ``parameters`` (a missing count: 0); ValueError on junk."""
        check_type("parameters", data, dict)
        counts = {}
        for key in ("total", "trainable", "non_trainable"):
            counts[key] = check_int(f"parameters[{key!r}]", data.get(key, 0), 0, MAX_COUNT)
        for key, value in data.items():
            check_int(f"parameters[{key!r}]", value, 0, MAX_COUNT)
        return cls(**counts)


@dataclass(frozen=True)
class Performance:
    """What the speed settings of a run came to (:mod:`cifar_gui.engine.training.performance`).
    None: not recorded (a sidecar of a version that did not know the setting)."""

    steps_per_execution: int | None = None  # training batches per compiled call
    intra_op_threads: int | None = None  # 0: TensorFlow's default (every core)
    feature_cache: bool | None = None  # only the head was fitted, behind a frozen front
    frozen_front_layers: int | None = None  # layers run outside the training step
    feature_seconds: float | None = None  # to compute the features computed once (if any)
    matmul_convolutions: tuple[str, ...] | None = None  # layers run as matrix products
    fused_optimizer: bool | None = None  # RMSprop's update as TensorFlow's fused kernel

    def to_dict(self) -> dict[str, Any]:
        """The sidecar's ``performance``: the values recorded (the keys of earlier versions)."""
        out = {k: v for k, v in dataclasses.asdict(self).items() if v is not None}
        if self.matmul_convolutions is not None:
            out["matmul_convolutions"] = list(self.matmul_convolutions)
        return out

    @classmethod
    def from_dict(cls, data: Any) -> Performance:
        """From a sidecar's ``performance`` (keys it does not know are left out); ValueError
        naming the entry on junk."""
        check_type("performance", data, dict)

        def flag(key: str) -> bool | None:
            if data.get(key) is not None:
                check_type(f"performance[{key!r}]", data[key], bool)
            return data.get(key)

        layers = data.get("matmul_convolutions")
        if layers is not None:
            check_type("performance['matmul_convolutions']", layers, list)
            for name in layers:
                check_type("an item of performance['matmul_convolutions']", name, str)
        return cls(
            steps_per_execution=_optional_int(
                "performance['steps_per_execution']", data.get("steps_per_execution")
            ),
            intra_op_threads=_optional_int(
                "performance['intra_op_threads']", data.get("intra_op_threads")
            ),
            feature_cache=flag("feature_cache"),
            frozen_front_layers=_optional_int(
                "performance['frozen_front_layers']", data.get("frozen_front_layers")
            ),
            feature_seconds=_optional_number(
                "performance['feature_seconds']", data.get("feature_seconds")
            ),
            matmul_convolutions=None if layers is None else tuple(layers),
            fused_optimizer=flag("fused_optimizer"),
        )


def best_epoch(history: Mapping[str, Sequence[float]]) -> int | None:
    """0-based epoch of the best validation accuracy (ties: the lower validation loss, then
    the earlier epoch); None without a validation accuracy."""
    accuracy = list(history.get("val_accuracy", ()))
    loss = list(history.get("val_loss", ())) + [math.nan] * len(accuracy)
    ranked = [
        (-a, loss[i] if not math.isnan(loss[i]) else math.inf, i)
        for i, a in enumerate(accuracy)
        if not math.isnan(a)
    ]
    return min(ranked)[2] if ranked else None


def lowest_loss_epoch(history: Mapping[str, Sequence[float]]) -> int | None:
    """0-based epoch of the lowest validation loss (the earlier of equals); None without one."""
    ranked = [(v, i) for i, v in enumerate(history.get("val_loss", ())) if not math.isnan(v)]
    return min(ranked)[1] if ranked else None


@dataclass(frozen=True)
class RunRecord:
    """What is known of one run: its config, data, history, results and where it ran.

    Every field but ``config`` has an empty default, for sidecars of older versions (and
    other tools) that lack it; ``config`` is None only in a sidecar without one.
    """

    config: RunConfig | None = None
    class_names: tuple[str, ...] = ()
    class_indices: tuple[int, ...] = ()
    input_shape: tuple[int, int, int] | None = None
    history: Mapping[str, tuple[float, ...]] = field(default_factory=dict, repr=False)
    epochs_completed: int = 0
    resumed_from_epoch: int | None = None
    stopped: bool = False
    seconds: float | None = None  # wall time of the fit
    # The run as a user waits for it: from the start of run_training (data, model, features)
    # to the final model on disk; None in sidecars older than it.
    wall_seconds: float | None = None
    # Where wall_seconds went (TIMINGS); only what was measured.
    timings: Mapping[str, float] = field(default_factory=dict, repr=False)
    test_loss: float | None = None  # of the saved model: the last epoch's, or the kept one's
    test_accuracy: float | None = None  # the saved model's validation accuracy (see test_loss)
    best_test_accuracy: float | None = None
    train_images: int | None = None
    test_images: int | None = None
    parameters: ParameterCounts | None = None
    device: str = ""
    strategy: str = ""
    precision: str = ""
    global_batch_size: int | None = None
    performance: Performance = field(default_factory=Performance, repr=False)
    versions: Mapping[str, str] = field(default_factory=dict, repr=False)
    finished_at: str = ""  # ISO 8601, UTC
    data_source: str | None = None
    kept_epoch: int | None = None  # 1-based: the epoch the saved weights are from (keep_best)
    variant_name: str | None = field(default=None, repr=False)  # a sidecar's without config

    @property
    def variant(self) -> str:
        """The model variant (``?`` when the sidecar does not say)."""
        if self.config is not None:
            return self.config.variant
        return self.variant_name or "?"

    @property
    def best_epoch(self) -> int | None:
        """0-based epoch of the best validation accuracy (:func:`best_epoch`)."""
        return best_epoch(self.history)

    @property
    def lowest_loss_epoch(self) -> int | None:
        """0-based epoch of the lowest validation loss."""
        return lowest_loss_epoch(self.history)

    @property
    def epochs_planned(self) -> int:
        """The epochs the run was asked for (those completed when the config is unknown)."""
        return self.config.epochs if self.config is not None else self.epochs_completed

    def to_dict(self) -> dict[str, Any]:
        """The sidecar's JSON content: the keys every version of the app has written, and
        ``wall_seconds`` and ``timings`` when known."""
        out = self._keys_of_every_version()
        if self.wall_seconds is not None:
            out["wall_seconds"] = self.wall_seconds
        if self.timings:
            out["timings"] = dict(self.timings)
        return out

    def _keys_of_every_version(self) -> dict[str, Any]:
        return {
            "config": None if self.config is None else self.config.to_dict(),
            "variant": self.variant,
            "class_names": list(self.class_names),
            "class_indices": list(self.class_indices),
            "input_shape": None if self.input_shape is None else list(self.input_shape),
            "preprocessing": PREPROCESSING,
            "history": {k: list(v) for k, v in self.history.items()},
            "epochs_completed": self.epochs_completed,
            "resumed_from_epoch": self.resumed_from_epoch,
            "stopped": self.stopped,
            "seconds": self.seconds,
            "test_loss": self.test_loss,
            "test_accuracy": self.test_accuracy,
            "best_test_accuracy": self.best_test_accuracy,
            "train_images": self.train_images,
            "test_images": self.test_images,
            "parameters": None if self.parameters is None else self.parameters.to_dict(),
            "device": self.device,
            "strategy": self.strategy,
            "global_batch_size": self.global_batch_size,
            "precision": self.precision,
            "performance": self.performance.to_dict(),
            "versions": dict(self.versions),
            "finished_at": self.finished_at,
            "data_source": self.data_source,
            "kept_epoch": self.kept_epoch,
        }

    @classmethod
    def from_dict(cls, data: Any) -> RunRecord:
        """The record of a sidecar's JSON content, every field checked for type and range
        (raises ValueError naming the field); values missing from an older sidecar are
        recomputed from the history where possible."""
        check_type("sidecar", data, dict)
        config = None if data.get("config") is None else RunConfig.from_dict(data["config"])
        history = check_history(data.get("history") or {})
        val = [v for v in history.get("val_accuracy", ()) if not math.isnan(v)]
        val_loss = history.get("val_loss", ())
        shape = _items("input_shape", data.get("input_shape"), int)
        if shape and len(shape) != 3:
            raise ValueError("input_shape must have 3 items (height, width, channels)")
        epochs = _optional_int("epochs_completed", data.get("epochs_completed"))
        test_accuracy = _optional_number("test_accuracy", data.get("test_accuracy"))
        best = _optional_number("best_test_accuracy", data.get("best_test_accuracy"))
        test_loss = _optional_number("test_loss", data.get("test_loss"))
        stopped = data.get("stopped", False)
        check_type("stopped", stopped, bool)
        parameters = data.get("parameters")
        if data.get("versions") is not None:
            check_type("versions", data["versions"], dict)
        return cls(
            config=config,
            class_names=_items("class_names", data.get("class_names"), str),
            class_indices=_items("class_indices", data.get("class_indices"), int),
            input_shape=shape or None,
            history=history,
            epochs_completed=len(history.get("loss", ())) if epochs is None else epochs,
            resumed_from_epoch=_optional_int("resumed_from_epoch", data.get("resumed_from_epoch")),
            stopped=stopped,
            seconds=_optional_number("seconds", data.get("seconds")),
            wall_seconds=_optional_seconds("wall_seconds", data.get("wall_seconds")),
            timings=_timings(data.get("timings")),
            test_loss=test_loss if test_loss is not None else (val_loss[-1] if val_loss else None),
            test_accuracy=(val[-1] if val else None) if test_accuracy is None else test_accuracy,
            best_test_accuracy=best if best is not None else (max(val) if val else None),
            train_images=_optional_int("train_images", data.get("train_images")),
            test_images=_optional_int("test_images", data.get("test_images")),
            parameters=None if parameters is None else ParameterCounts.from_dict(parameters),
            device=_optional_str("device", data.get("device"), ""),
            strategy=_optional_str("strategy", data.get("strategy"), ""),
            precision=_optional_str("precision", data.get("precision"), ""),
            global_batch_size=_optional_int("global_batch_size", data.get("global_batch_size")),
            performance=Performance.from_dict(data.get("performance") or {}),
            versions={str(k): str(v) for k, v in (data.get("versions") or {}).items()},
            finished_at=_optional_str("finished_at", data.get("finished_at"), ""),
            data_source=_optional_str("data_source", data.get("data_source")),
            kept_epoch=_optional_int("kept_epoch", data.get("kept_epoch")),
            variant_name=_optional_str("variant", data.get("variant")),
        )

    def replace(self, **changes: Any) -> RunRecord:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


def read_record(path: str | Path) -> RunRecord | None:
    """The record of a sidecar file; None when it is missing, unreadable or not valid, which
    is then treated as absent (a broken sidecar must not make a good model unusable)."""
    try:
        return RunRecord.from_dict(read_json(path))
    except (OSError, ValueError):
        return None
