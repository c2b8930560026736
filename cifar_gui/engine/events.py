"""The one vocabulary of a run's reports (no Keras, no Qt): every run (train, pretrain, each
run of a study) sends these :data:`Event` values to one :data:`Sink`, in order; they cross the
pipe from the training process and reach the CLI's progress bar and the window alike.

A run says :class:`RunStarted`, then :class:`BatchEvent` and :class:`EpochEvent` values (and
:class:`LiveSnapshot` values when the live view asked for them, see
:mod:`cifar_gui.engine.training.live`), then :class:`RunFinished`. A study wraps the start and
end of each of its runs in a :class:`StudyProgress` (which run of how many) and ends with
:class:`StudyFinished`, the value its run returns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np

from cifar_gui import tutorial
from cifar_gui.engine.record import RunRecord


@dataclass(frozen=True)
class BatchEvent:
    """After each compiled call of ``steps_per_execution`` training batches (one, unless set
    otherwise). Loss and accuracy are running means over the epoch."""

    epoch: int  # 0-based
    epochs: int
    batch: int  # 0-based, within the epoch: the call's last batch
    steps: int  # batches per epoch
    loss: float
    accuracy: float
    images_per_second: float
    eta_seconds: float  # to the end of the run


@dataclass(frozen=True)
class EpochEvent:
    """After each epoch, with its training and validation metrics."""

    epoch: int  # 0-based
    epochs: int
    metrics: dict[str, float]  # loss, accuracy, val_loss, val_accuracy
    seconds: float


@dataclass(frozen=True)
class LiveRequest:
    """What the live view asks the training process to show: a probe image, either test
    image ``test_index`` (0-based, of the run's test images; default the seed's image 5) or
    ``image`` (uint8, the model's input size); one layer by qualified name (None: the first
    convolution); refreshed at every epoch's end, and every ``every_batches`` batches when
    set."""

    test_index: int = tutorial.TEST_INDEX
    image: np.ndarray | None = None
    layer: str | None = None
    every_batches: int | None = None


@dataclass(frozen=True)
class LayerHealth:
    """One layer at one refresh. ``mean`` and ``zero_fraction``: of its outputs over the
    probe images (zero_fraction of a ReLU layer: its dead or silent units); ``weight_norm``:
    the L2 norm of its kernel; ``update_ratio``: the norm of the kernel's change since the
    previous refresh, per training step, over the kernel's norm (NaN at the first refresh)."""

    name: str
    mean: float
    zero_fraction: float
    weight_norm: float
    update_ratio: float


@dataclass(frozen=True)
class LiveSnapshot:
    """The model as it is now, for the live view: small arrays only (a few hundred kB)."""

    epoch: int  # 0-based
    batch: int  # batches done in the epoch (``steps`` at its end)
    steps: int
    image: np.ndarray  # the probe image (uint8)
    image_caption: str  # which image it is
    layers: tuple[str, ...]  # every layer that can be asked for
    layer: str
    activation: np.ndarray  # (H, W, C) float32: the probe image at ``layer``
    cam: np.ndarray | None  # (H, W) in [0, 1]: Grad-CAM of the predicted class, if any
    filters_layer: str | None
    filters: np.ndarray | None  # (h, w, 3, N) float32: the first convolution's kernel
    probabilities: tuple[float, ...]  # of the probe image, per class
    health: tuple[LayerHealth, ...]
    strip_indices: tuple[int, ...]  # test images of the prediction strip (0-based)
    strip_images: np.ndarray  # (8, H, W, 3) uint8: those images
    strip_labels: tuple[int, ...]  # their true classes
    strip_true_probability: tuple[float, ...]  # each one's probability of its true class
    strip_correct: tuple[bool, ...]
    running_accuracy: float  # over the last RUNNING_WINDOW test predictions
    running_count: int  # how many predictions that is (fewer at first)
    class_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunStarted:
    """A run starts, after its checks: ``resumed_from_epoch`` and ``history`` are those of the
    checkpoint a resumed run continues (None for a new run)."""

    variant: str
    epochs: int
    resumed_from_epoch: int | None = None
    history: Mapping[str, Sequence[float]] | None = None


@dataclass(frozen=True)
class RunFinished:
    """What a finished or stopped run saved."""

    path: Path | None  # the saved model; None on a multi-worker run's non-chief worker
    record: RunRecord  # the sidecar's content
    stopped: bool


@dataclass(frozen=True)
class StudyProgress:
    """A run of a study starts or ends: ``run`` is its own :class:`RunStarted` or
    :class:`RunFinished`; ``skipped``: it was done already (a resumed study)."""

    index: int  # 0-based, in SEED_VARIANTS order
    count: int
    run: RunStarted | RunFinished
    skipped: bool = False

    @property
    def variant(self) -> str:
        run = self.run
        return run.variant if isinstance(run, RunStarted) else run.record.variant

    @property
    def state(self) -> str:
        """``running``, ``stopped`` or ``done``: the study record's state of the run."""
        if isinstance(self.run, RunStarted):
            return "running"
        return "stopped" if self.run.stopped else "done"

    # What the window's study line shows of the run (the run's own events hold it).
    @property
    def epochs(self) -> int:
        run = self.run
        return run.epochs if isinstance(run, RunStarted) else run.record.epochs_planned

    @property
    def resumed_from_epoch(self) -> int | None:
        run = self.run
        if isinstance(run, RunStarted):
            return run.resumed_from_epoch
        return run.record.resumed_from_epoch

    @property
    def history(self) -> Mapping[str, Sequence[float]] | None:
        return self.run.history if isinstance(self.run, RunStarted) else self.run.record.history

    @property
    def record(self) -> RunRecord | None:
        return None if isinstance(self.run, RunStarted) else self.run.record

    @property
    def model_path(self) -> Path | None:
        return None if isinstance(self.run, RunStarted) else self.run.path


@dataclass(frozen=True)
class StudyFinished:
    """What a study left: the ends of the runs it has (done or stopped), the report (None
    until every run is done), and whether it was stopped."""

    folder: Path
    runs: tuple[StudyProgress, ...]
    report: Path | None
    stopped: bool


Event = BatchEvent | EpochEvent | LiveSnapshot | RunStarted | RunFinished | StudyProgress
Sink = Callable[[Event], None]
E = TypeVar("E")


class StopFlag(Protocol):
    """Set from anywhere (a thread, the window's process) to end a run after the batches in
    progress: a :class:`threading.Event` or a :mod:`multiprocessing` one."""

    def is_set(self) -> bool: ...


def ignore(event: Event) -> None:
    """The sink of a run nobody follows."""


def only(kind: type[E], handler: Callable[[E], None]) -> Sink:
    """A sink that hands the events of ``kind`` to ``handler`` and drops the others."""

    def sink(event: Event) -> None:
        if isinstance(event, kind):
            handler(event)

    return sink
