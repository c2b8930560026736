"""The command line's progress: the sink of a run's (or a study's) events on stderr."""

from __future__ import annotations

import sys
import time
from typing import Any

from cifar_gui.engine.errors import shown


class Progress:
    """The sink of a run's events on stderr: where a new run is saved (``folder``) once it has
    started, one self-rewriting line of the batch events (the runner bundles them), a line per
    epoch, and a line as each run of a study starts."""

    def __init__(self, stream=None, folder: str | None = None):
        self.stream = stream or sys.stderr  # the stderr of now (a test's capture), not of import
        self.folder = folder

    def __call__(self, event: Any) -> None:
        from cifar_gui.engine.events import BatchEvent, EpochEvent, RunStarted, StudyProgress

        if isinstance(event, RunStarted) and self.folder is not None:
            # After the run's checks: a run refused says its one error line, nothing more.
            print(f"saving in {shown(self.folder)}", file=self.stream)
        elif isinstance(event, BatchEvent):
            self.batch(event)
        elif isinstance(event, EpochEvent):
            self.epoch(event)
        elif isinstance(event, StudyProgress):
            self.study_run(event)

    def batch(self, event) -> None:
        if not self.stream.isatty():
            return  # a log file gets the epoch lines only
        width = 24
        filled = int(width * (event.batch + 1) / event.steps)
        eta = time.strftime("%H:%M:%S", time.gmtime(event.eta_seconds))
        self.stream.write(
            f"\repoch {event.epoch + 1}/{event.epochs} [{'#' * filled}{'.' * (width - filled)}] "
            f"{event.batch + 1}/{event.steps} loss {event.loss:.4f} acc {event.accuracy:.1%} "
            f"{event.images_per_second:,.0f} img/s ETA {eta}  "
        )
        self.stream.flush()

    def epoch(self, event) -> None:
        m = event.metrics
        self.stream.write(
            f"\repoch {event.epoch + 1}/{event.epochs}: loss {m.get('loss', 0):.4f} "
            f"acc {m.get('accuracy', 0):.1%} val_loss {m.get('val_loss', float('nan')):.4f} "
            f"val_acc {m.get('val_accuracy', float('nan')):.1%} ({event.seconds:.1f} s)"
            + " " * 30
            + "\n"
        )
        self.stream.flush()

    def study_run(self, event) -> None:
        where = f"run {event.index + 1} of {event.count}: {event.variant}"
        if event.state == "running" and event.resumed_from_epoch is not None:
            print(f"{where}, from epoch {event.resumed_from_epoch + 1}", file=self.stream)
        elif event.state == "running":
            print(where, file=self.stream)
        elif event.skipped:
            print(f"{where} done already", file=self.stream)
