"""The per-batch training curve: Keras' running means turned into smoothed per-batch values,
handed to the GUI thread one bundle at a time.

Why here and not in the engine: the smoothing is a choice of the plot (the command line
prints Keras' running means as they are), and it runs on the training job's worker thread, so
the GUI thread only draws. Why no clock: the training process already bundles its batch
events (the engine's one throttle); a bundle waits here only while the GUI thread has not yet
drawn the previous one, so a busy window is never queued more than one redraw.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from cifar_gui.gui.widgets.training_plots import METRICS

if TYPE_CHECKING:
    from cifar_gui.engine.events import BatchEvent

SMOOTHING = 0.9  # weight of the past in the per-batch curve's moving average


@dataclass(frozen=True)
class BatchUpdate:
    """New points of the smoothed per-batch curve, and the latest batch event."""

    x: np.ndarray  # fractional epochs: 1.0 is the end of the first epoch
    loss: np.ndarray
    accuracy: np.ndarray
    event: BatchEvent


class BatchTrace:
    """Per-batch training values, smoothed, bundled for the GUI.

    Keras reports the running mean of the epoch after each compiled call of one or more
    batches. The mean of the call's batches is recovered from two consecutive means (all
    batches weigh the same; only the last, partial batch of an epoch is slightly off), then
    smoothed with a debiased exponential moving average, as TensorBoard does.

    :meth:`add` returns a bundle only when the previous one was :meth:`delivered` (the GUI
    thread says so once it has drawn it); until then the points wait for the next bundle.
    """

    def __init__(self, smoothing: float = SMOOTHING):
        self.smoothing = smoothing
        self._drawn = threading.Event()  # set by the GUI thread, read by the worker
        self._drawn.set()
        self.reset()

    def reset(self) -> None:
        """Start the curve of a new run (a study's next one): nothing of the last run's
        values weighs on it; whether its last bundle was drawn still counts."""
        self._epoch = -1
        self._prev = {m: (-1, 0.0) for m in METRICS}  # metric -> (batch, running mean)
        self._ema = dict.fromkeys(METRICS, 0.0)
        self._steps = dict.fromkeys(METRICS, 0)
        self._pending: dict[str, list[float]] = {"x": [], **{m: [] for m in METRICS}}
        self._event: BatchEvent | None = None

    def add(self, event: BatchEvent) -> BatchUpdate | None:
        """Record one batch; return a bundle unless the GUI is still drawing the last one."""
        if event.epoch != self._epoch:
            self._epoch = event.epoch
            self._prev = {m: (-1, 0.0) for m in METRICS}
        self._pending["x"].append(event.epoch + (event.batch + 1) / max(event.steps, 1))
        for metric, mean in (("loss", event.loss), ("accuracy", event.accuracy)):
            prev_batch, prev_mean = self._prev[metric]
            value = ((event.batch + 1) * mean - (prev_batch + 1) * prev_mean) / max(
                event.batch - prev_batch, 1
            )
            if math.isfinite(value):
                self._prev[metric] = (event.batch, mean)
                self._ema[metric] = (
                    self.smoothing * self._ema[metric] + (1 - self.smoothing) * value
                )
                self._steps[metric] += 1
                value = self._ema[metric] / (1 - self.smoothing ** self._steps[metric])
            self._pending[metric].append(value)
        self._event = event
        if not self._drawn.is_set():
            return None
        return self.flush()

    def delivered(self) -> None:
        """The GUI thread has drawn the last bundle: the next :meth:`add` may send one."""
        self._drawn.set()

    def flush(self) -> BatchUpdate | None:
        """The points not sent yet, if any (sent whether or not the last bundle was drawn)."""
        if not self._pending["x"] or self._event is None:
            return None
        self._drawn.clear()
        update = BatchUpdate(
            np.asarray(self._pending["x"]),
            np.asarray(self._pending["loss"]),
            np.asarray(self._pending["accuracy"]),
            self._event,
        )
        for values in self._pending.values():
            values.clear()
        return update
