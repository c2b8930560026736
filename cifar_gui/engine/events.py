"""The plain events a training run reports (no Keras, no Qt): they cross the pipe from the
training process and reach the CLI's progress bar and the window alike."""

from __future__ import annotations

from dataclasses import dataclass


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
