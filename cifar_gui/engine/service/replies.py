"""What the engine service answers with besides numpy arrays and the dataclasses of
:mod:`cifar_gui.engine.models.predictions`: plain data, safe to keep in the window and to signal.
Imported by both sides of the pipe (unpickling a class imports its module: no TensorFlow here).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cifar_gui.engine.errors import UserError
from cifar_gui.engine.models.predictions import LayerInfo
from cifar_gui.engine.record import ParameterCounts, RunRecord


@dataclass(frozen=True)
class ModelHandle:
    """What the window knows of a loaded model: plain data, safe to keep and to signal."""

    path: Path
    class_names: tuple[str, ...]
    input_size: tuple[int, int]  # (height, width)
    layers: tuple[LayerInfo, ...]  # every inspectable layer, in call order
    default_layers: tuple[str, ...]  # the seed's activation model: the first eight
    parameters: ParameterCounts
    from_logits: bool  # the outputs are scores (shown as probabilities)
    record: RunRecord | None = None  # the sidecar's; None without a valid one


@dataclass(frozen=True)
class DeviceInfo:
    """The device training runs on, and the versions of the libraries (as runs record them)."""

    description: str  # "GPU: <name>" or "CPU: <model>"
    versions: dict[str, str]


class ServiceError(UserError):
    """The engine process failed in a way that is not the input's fault (it died, or broke)."""
