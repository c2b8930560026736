"""The run lifecycle of the Training tab: start, stop, resume, and what a stop leaves.

Whether a run may start is the engine's rule (:func:`cifar_gui.engine.training.runner.plan_run`); a
plan (one run, or a study: :mod:`cifar_gui.engine.study.plan`) goes through the engine's runner
(:func:`~cifar_gui.engine.training.runner.run`: a spawned training process, so the window's process
never imports TensorFlow for it), watched by one kind of
:class:`~cifar_gui.gui.workers.JobRunner` job, :func:`run_job`, on a worker thread. The job
turns batch events into the smoothed curve (:class:`~cifar_gui.gui.training.trace.BatchTrace`)
and passes every other event on, as plain data; one dispatcher on the GUI thread
(:meth:`RunController._dispatch`) turns them into the controller's signals. Nothing on the
worker thread touches a QObject but its own worker. The model a run saved is not loaded here:
the panel asks the app to open it.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal, Slot

from cifar_gui.engine.errors import UserError
from cifar_gui.engine.events import (
    BatchEvent,
    EpochEvent,
    Event,
    LiveSnapshot,
    RunFinished,
    RunStarted,
    StudyFinished,
    StudyProgress,
)
from cifar_gui.engine.study.plan import StudyPlan
from cifar_gui.engine.training import runner
from cifar_gui.engine.training.runner import RunPlan
from cifar_gui.gui.training.trace import BatchTrace, BatchUpdate
from cifar_gui.gui.workers import JobRunner, TaskState

if TYPE_CHECKING:
    from cifar_gui.engine.events import LiveRequest
    from cifar_gui.engine.training.checkpoints import Checkpoint


def run_job(
    plan: RunPlan | StudyPlan,
    trace: BatchTrace,
    live: runner.LiveRequests | None,
    task: TaskState,
) -> RunFinished | StudyFinished:
    """Job: run ``plan`` in the engine's training process; report its events through
    ``task`` in order, the batch events as :class:`BatchUpdate` bundles of ``trace`` (which
    starts again with each run). ``live``: the live view's requests (None: no snapshots).

    ``task.stop_event`` ends the run after the batches in progress (the model is still saved).
    """

    def report_batches(update: BatchUpdate | None) -> None:
        if update is not None:
            task.report(update)

    def sink(event: Event) -> None:
        if isinstance(event, BatchEvent):
            report_batches(trace.add(event))
            return
        report_batches(trace.flush())  # the points before it go first
        if _starts_run(event):
            trace.reset()  # a run's epochs start from its own first one
        task.report(event)

    finished = runner.run(plan, sink, task.stop_event, live=live)
    report_batches(trace.flush())
    if isinstance(finished, RunFinished) and finished.path is None:
        raise UserError("trained; on a multi-worker run only the chief worker saves the model")
    return finished


def _starts_run(event: Event) -> bool:
    return isinstance(event, RunStarted) or (
        isinstance(event, StudyProgress) and event.state == "running"
    )


def list_checkpoints_job(out_dir: str, task: TaskState) -> list[Checkpoint]:
    """Job: the resumable runs under ``out_dir``, unfinished first."""
    from cifar_gui.engine.training.checkpoints import list_checkpoints

    return list_checkpoints(out_dir)


class RunController(QObject):
    """One training run at a time, and the listing of resumable runs.

    Signals come on the GUI thread; ``finished`` is always the last of a run.
    """

    batches = Signal(object)  # BatchUpdate: call batches_drawn() once it is on screen
    epoch_finished = Signal(object)  # EpochEvent
    study_run = Signal(object)  # StudyProgress: a run of the study started or ended
    succeeded = Signal(object)  # RunFinished, or StudyFinished of a study
    failed = Signal(str)  # one line
    finished = Signal(object)  # RunFinished or StudyFinished; None when the run failed
    checkpoints_listed = Signal(object)  # list[Checkpoint] of the output folder, once listed
    listing_failed = Signal(str)
    busy_changed = Signal()
    live_snapshot = Signal(object)  # LiveSnapshot of the run in progress
    run_started = Signal()  # a run has started: a single run, or the next run of a study

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._job = JobRunner(self)
        self._list_job = JobRunner(self)
        self._trace = BatchTrace()
        self._outcome: RunFinished | StudyFinished | None = None
        self._stopping = False
        self._study = False
        self._epochs_done = 0
        self.live_enabled = True  # runs send live snapshots (the Live tab)
        self._live_request: LiveRequest | None = None  # the Live tab's; None: its default
        self._live: runner.LiveRequests | None = None
        self._job.progress.connect(self._dispatch)
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

    def start(self, plan: RunPlan | StudyPlan) -> bool:
        """Start ``plan`` (a run, or a study); False when one is in progress."""
        if self._job.busy:
            return False
        self._outcome, self._stopping = None, False
        self._study = isinstance(plan, StudyPlan)
        resume = None if self._study else plan.resume
        self._epochs_done = resume.epochs_completed if resume is not None else 0
        self._trace = BatchTrace()
        self._live = runner.LiveRequests(self._live_request) if self.live_enabled else None
        self._job.start(functools.partial(run_job, plan, self._trace, self._live))
        self.busy_changed.emit()
        return True

    def ask_live(self, request: LiveRequest) -> None:
        """What the live view should show, from the next refresh of this or a later run."""
        self._live_request = request
        if self._live is not None:
            self._live.ask(request)

    @property
    def studying(self) -> bool:
        """Whether the job in progress (or the last one) is a study."""
        return self._study

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
    def _dispatch(self, value: BatchUpdate | Event) -> None:
        """The one place the job's reports become signals (on the GUI thread)."""
        if isinstance(value, BatchUpdate):
            self.batches.emit(value)
        elif isinstance(value, LiveSnapshot):
            self.live_snapshot.emit(value)
        elif isinstance(value, EpochEvent):
            if not self._stopping:  # an epoch the stop cut short keeps no checkpoint
                self._epochs_done = value.epoch + 1
            self.epoch_finished.emit(value)
        elif isinstance(value, RunStarted):
            self._epochs_done = value.resumed_from_epoch or 0
            self.run_started.emit()
        elif isinstance(value, StudyProgress):
            if value.state == "running":
                self._epochs_done = value.resumed_from_epoch or 0
            self.study_run.emit(value)
            if value.state == "running":
                self.run_started.emit()
        # A single run's RunFinished: its job's result says the same (``succeeded``).

    @Slot(object)
    def _on_result(self, outcome: RunFinished | StudyFinished) -> None:
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
