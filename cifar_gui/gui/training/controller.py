"""The run lifecycle of the Training tab: start, stop, resume, and what a stop leaves.

Whether a run may start is the engine's rule (:func:`cifar_gui.engine.runner.plan_run`); the
run goes through the engine's runner (:func:`run`: a spawned training process, so the
window's process never imports TensorFlow for it), watched by a
:class:`~cifar_gui.gui.workers.JobRunner` job on a worker thread. The job turns batch events
into the smoothed curve (:class:`~cifar_gui.gui.training.trace.BatchTrace`) and forwards
epoch events. The model a run saved is not loaded here: the panel asks the app to open it.

A study (:mod:`cifar_gui.engine.study`: the seed's four runs and their report) is one job of
the same kind: the same training process machinery, the same batch and epoch events, plus a
:class:`~cifar_gui.engine.study.StudyRunEvent` as each of its runs starts and ends.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal, Slot

from cifar_gui.engine import runner
from cifar_gui.engine.errors import UserError
from cifar_gui.engine.runner import RunPlan
from cifar_gui.engine.runs import SavedRun
from cifar_gui.engine.study import StudyFinished, StudyPlan, StudyRunEvent
from cifar_gui.gui.training.trace import BatchTrace, BatchUpdate
from cifar_gui.gui.workers import JobRunner, TaskState

if TYPE_CHECKING:
    from cifar_gui.engine.checkpoints import Checkpoint
    from cifar_gui.engine.events import BatchEvent, EpochEvent, LiveRequest


@dataclass(frozen=True)
class TrainingOutcome:
    """What a finished (or stopped) run saved."""

    summary: SavedRun  # its sidecar and record, as the run table shows it
    stopped: bool

    @property
    def path(self) -> Path | None:
        """The saved model."""
        return self.summary.model_path


def run(
    plan: RunPlan,
    on_batch: Callable[[BatchEvent], None],
    on_epoch: Callable[[EpochEvent], None],
    stop: threading.Event,
    live: runner.LiveChannel | None = None,
) -> TrainingOutcome:
    """Train ``plan`` in the engine's training process; what it saved. ``live``: where the
    live view's snapshots go, and its requests come from."""

    def on_bundle(events: list[BatchEvent]) -> None:
        for event in events:
            on_batch(event)

    finished = runner.run(plan, on_bundle, on_epoch, stop, live=live)
    if finished.path is None:
        raise UserError("trained; on a multi-worker run only the chief worker saves the model")
    return TrainingOutcome(SavedRun.of_model(finished.path, finished.record), finished.stopped)


@dataclass(frozen=True)
class StudyOutcome:
    """What a finished (or stopped) study left: its runs and, once all are done, its report."""

    finished: StudyFinished

    @property
    def stopped(self) -> bool:
        return self.finished.stopped

    @property
    def report(self) -> Path | None:
        return self.finished.report


# ---- the GUI's side


def training_job(
    plan: RunPlan, trace: BatchTrace, live: runner.LiveChannel | None, task: TaskState
) -> TrainingOutcome:
    """Job: run ``plan``; reports :class:`BatchUpdate` and epoch events through ``task``, and
    live snapshots through ``live``.

    ``task.stop_event`` ends the run after the batches in progress (the model is still saved).
    """

    def report_batches(update: BatchUpdate | None) -> None:
        if update is not None:
            task.report(update)

    def on_epoch(event: EpochEvent) -> None:
        report_batches(trace.flush())  # the epoch's last points go before its summary
        task.report(event)

    outcome = run(
        plan, lambda event: report_batches(trace.add(event)), on_epoch, task.stop_event, live
    )
    report_batches(trace.flush())
    return outcome


def study_job(
    plan: StudyPlan,
    traces: Callable[[], BatchTrace],
    live: runner.LiveChannel | None,
    task: TaskState,
) -> StudyOutcome:
    """Job: run the study ``plan``; reports :class:`BatchUpdate`, epoch and
    :class:`StudyRunEvent` values through ``task``, and the live snapshots of each run through
    ``live``. ``traces()`` gives the per-batch curve of each run as it starts (its epochs start
    again from 0)."""
    trace = traces()

    def report_batches(update: BatchUpdate | None) -> None:
        if update is not None:
            task.report(update)

    def on_epoch(event: EpochEvent) -> None:
        report_batches(trace.flush())
        task.report(event)

    def on_run(event: StudyRunEvent) -> None:
        nonlocal trace
        report_batches(trace.flush())
        if event.state == "running":
            trace = traces()
        task.report(event)

    def on_bundle(events: list[BatchEvent]) -> None:
        for event in events:
            report_batches(trace.add(event))

    finished = runner.run(plan, on_bundle, on_epoch, task.stop_event, on_run=on_run, live=live)
    report_batches(trace.flush())
    return StudyOutcome(finished)


def list_checkpoints_job(out_dir: str, task: TaskState) -> list[Checkpoint]:
    """Job: the resumable runs under ``out_dir``, unfinished first."""
    from cifar_gui.engine.checkpoints import list_checkpoints

    return list_checkpoints(out_dir)


class RunController(QObject):
    """One training run at a time, and the listing of resumable runs.

    Signals come on the GUI thread; ``finished`` is always the last of a run.
    """

    batches = Signal(object)  # BatchUpdate: call batches_drawn() once it is on screen
    epoch_finished = Signal(object)  # EpochEvent
    study_run = Signal(object)  # StudyRunEvent: a run of the study started or ended
    succeeded = Signal(object)  # TrainingOutcome, or StudyOutcome of a study
    failed = Signal(str)  # one line
    finished = Signal(object)  # TrainingOutcome or StudyOutcome; None when the run failed
    checkpoints_listed = Signal(object)  # list[Checkpoint] of the output folder, once listed
    listing_failed = Signal(str)
    busy_changed = Signal()
    # LiveSnapshot of the run in progress (emitted from the job's thread: queued to the GUI's)
    live_snapshot = Signal(object)
    run_started = Signal()  # a run has started: a single run, or the next run of a study

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._job = JobRunner(self)
        self._list_job = JobRunner(self)
        self._trace = BatchTrace()
        self._outcome: TrainingOutcome | StudyOutcome | None = None
        self._stopping = False
        self._study = False
        self._epochs_done = 0
        self.live_enabled = True  # runs send live snapshots (the Live tab)
        self._live_request: LiveRequest | None = None  # the Live tab's; None: its default
        self._live: runner.LiveChannel | None = None
        self._job.progress.connect(self._on_progress)
        self._job.result.connect(self._on_result)
        self._job.error.connect(self.failed)
        self._job.finished.connect(self._on_finished)
        self._listed: list[Checkpoint] | None = None
        self._list_job.result.connect(lambda found: setattr(self, "_listed", found))
        self._list_job.error.connect(self.listing_failed)
        self._list_job.finished.connect(self._on_listing_finished)

    @property
    def busy(self) -> bool:
        """Whether a run is in progress."""
        return self._job.busy

    @property
    def listing(self) -> bool:
        """Whether the resumable runs are being listed."""
        return self._list_job.busy

    @property
    def stopping(self) -> bool:
        """Whether the run in progress was asked to stop."""
        return self._stopping

    @property
    def epochs_done(self) -> int:
        """Epochs of the current run with a checkpoint (each complete epoch leaves one)."""
        return self._epochs_done

    def start(self, plan: RunPlan) -> bool:
        """Start ``plan``'s run; False when one is in progress."""
        if self._job.busy:
            return False
        self._outcome, self._stopping, self._study = None, False, False
        self._epochs_done = plan.resume.epochs_completed if plan.resume is not None else 0
        self._trace = BatchTrace()
        self._job.start(functools.partial(training_job, plan, self._trace, self._new_live()))
        self.busy_changed.emit()
        self.run_started.emit()
        return True

    def _new_live(self) -> runner.LiveChannel | None:
        """The live view's channel for the job that starts (None when it is off)."""
        self._live = None
        if self.live_enabled:
            self._live = runner.LiveChannel(self.live_snapshot.emit, self._live_request)
        return self._live

    def ask_live(self, request: LiveRequest) -> None:
        """What the live view should show, from the next refresh of this or a later run."""
        self._live_request = request
        if self._live is not None:
            self._live.ask(request)

    def start_study(self, plan: StudyPlan) -> bool:
        """Start the study ``plan``; False when a run or study is in progress."""
        if self._job.busy:
            return False
        self._outcome, self._stopping, self._study = None, False, True
        self._epochs_done = 0
        self._job.start(functools.partial(study_job, plan, self._new_trace, self._new_live()))
        self.busy_changed.emit()
        return True

    @property
    def studying(self) -> bool:
        """Whether the job in progress (or the last one) is a study."""
        return self._study

    def _new_trace(self) -> BatchTrace:
        """A fresh per-batch curve, the one :meth:`batches_drawn` now speaks of (called on the
        job's thread as each run of a study starts)."""
        self._trace = BatchTrace()
        return self._trace

    def stop(self) -> bool:
        """Ask the run to end after the batches in progress; False when there is none, or it
        was asked already."""
        if not self._job.busy or self._stopping:
            return False
        self._stopping = True
        self._job.stop()
        return True

    def list_checkpoints(self, out_dir: str) -> bool:
        """List ``out_dir``'s resumable runs (in a worker): ``checkpoints_listed`` follows."""
        if self._job.busy or self._list_job.busy or not out_dir:
            return False
        self._listed = None
        self._list_job.start(functools.partial(list_checkpoints_job, out_dir))
        self.busy_changed.emit()
        return True

    def batches_drawn(self) -> None:
        """The last :class:`BatchUpdate` is on screen: the next one may come."""
        self._trace.delivered()

    def close_question(self) -> str:
        """The question before closing during a run, true to what a stop leaves behind."""
        done = self._epochs_done
        if done == 0:
            after = (
                "The model learned so far is saved, but the run has not completed its first "
                "epoch: it leaves no checkpoint, so it cannot be resumed (a new run starts "
                "from the beginning)."
            )
        else:
            after = (
                "The model learned so far is saved, and the run can be resumed later from the "
                f"end of epoch {done} (the epoch in progress is not kept)."
            )
        if self._study:
            after += " The study goes on from there with Resume study."
            return f"A study is in progress. Stop it and quit?\n\n{after}"
        return f"A training run is in progress. Stop it and quit?\n\n{after}"

    def shutdown(self) -> None:
        """Stop the run and wait for the worker threads (the training process saves first)."""
        self.stop()
        self._job.shutdown()
        self._list_job.shutdown()

    @Slot(object)
    def _on_progress(self, value: Any) -> None:
        if isinstance(value, BatchUpdate):
            self.batches.emit(value)
            return
        if isinstance(value, StudyRunEvent):
            if value.state == "running":
                self._epochs_done = value.resumed_from_epoch or 0
            self.study_run.emit(value)
            if value.state == "running":
                self.run_started.emit()
            return
        if not self._stopping:  # an epoch the stop cut short keeps no checkpoint
            self._epochs_done = value.epoch + 1
        self.epoch_finished.emit(value)

    @Slot(object)
    def _on_result(self, outcome: TrainingOutcome | StudyOutcome) -> None:
        self._outcome = outcome
        self.succeeded.emit(outcome)

    @Slot()
    def _on_listing_finished(self) -> None:
        self.busy_changed.emit()  # the buttons first: the Resume dialog that follows is modal
        if self._listed is not None:
            self.checkpoints_listed.emit(self._listed)

    @Slot()
    def _on_finished(self) -> None:
        self.busy_changed.emit()
        self.finished.emit(self._outcome)
