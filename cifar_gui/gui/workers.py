"""Long work off the GUI thread: one worker object per job, each on its own QThread.

A job is a plain function ``fn(task: TaskState) -> result``. It reports progress with
``task.report(value)`` (plain Python data only) and checks ``task.stop_requested()``
between steps; stopping is cooperative, threads are never terminated. Every exception is
caught in the worker and emitted as one line of text; ``finished`` is always emitted last.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from cifar_gui.engine.errors import UserError


class TaskState:
    """What a job function sees of its worker: progress reporting and the stop flag."""

    def __init__(self, report: Callable[[Any], None]):
        self._report = report
        self.stop_event = threading.Event()

    def report(self, value: Any) -> None:
        """Send plain data (numbers, strings, arrays, dataclasses) to the GUI thread."""
        self._report(value)

    def stop_requested(self) -> bool:
        return self.stop_event.is_set()


def error_message(exc: BaseException) -> str:
    """One line for the user: the message of a :class:`UserError`, else type and message."""
    if isinstance(exc, UserError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "out of memory: try a smaller batch size or fewer images"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}"[:300] if first else type(exc).__name__


class Worker(QObject):
    """Runs one job function when its thread starts."""

    progress = Signal(object)
    result = Signal(object)
    error = Signal(str)
    finished = Signal()

    def __init__(self, fn: Callable[[TaskState], Any]):
        super().__init__()
        self.fn = fn
        self.task = TaskState(self.progress.emit)

    @Slot()
    def run(self) -> None:
        """Run the job; emit ``result`` or ``error``, then ``finished``."""
        try:
            value = self.fn(self.task)
        except Exception as exc:
            if not isinstance(exc, UserError):
                traceback.print_exc()  # keep the details for a bug report
            self.error.emit(error_message(exc))
        else:
            self.result.emit(value)
        finally:
            self.finished.emit()

    def stop(self) -> None:
        """Ask the job to end at its next check."""
        self.task.stop_event.set()


class JobRunner(QObject):
    """Owns at most one running job of a kind; starting a new one stops the old one.

    ``progress``, ``result`` and ``error`` of the current job are forwarded; results of a
    replaced job are dropped. :meth:`shutdown` stops and joins the thread.
    """

    progress = Signal(object)
    result = Signal(object)
    error = Signal(str)
    finished = Signal()

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._jobs: list[tuple[QThread, Worker]] = []

    @property
    def busy(self) -> bool:
        return any(thread.isRunning() for thread, _ in self._jobs)

    def start(self, fn: Callable[[TaskState], Any]) -> Worker:
        """Run ``fn`` on a new thread, asking any job still running to stop."""
        self.stop()
        thread = QThread()
        worker = Worker(fn)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        # Slots of this object (which lives on the GUI thread) run there, queued.
        worker.progress.connect(self._on_progress)
        worker.result.connect(self._on_result)
        worker.error.connect(self._on_error)
        worker.finished.connect(thread.quit)
        thread.finished.connect(self._on_thread_finished)
        self._jobs.append((thread, worker))
        thread.start()
        return worker

    def _is_current(self, worker: QObject) -> bool:
        return bool(self._jobs) and self._jobs[-1][1] is worker

    @Slot(object)
    def _on_progress(self, value: Any) -> None:
        if self._is_current(self.sender()):
            self.progress.emit(value)

    @Slot(object)
    def _on_result(self, value: Any) -> None:
        if self._is_current(self.sender()):
            self.result.emit(value)

    @Slot(str)
    def _on_error(self, message: str) -> None:
        if self._is_current(self.sender()):
            self.error.emit(message)

    @Slot()
    def _on_thread_finished(self) -> None:
        thread = self.sender()
        for i, (t, _) in enumerate(self._jobs):
            if t is thread:
                current = i == len(self._jobs) - 1
                t.wait()
                del self._jobs[i]
                if current:
                    self.finished.emit()
                return

    def stop(self) -> None:
        """Ask every running job to stop (cooperatively)."""
        for _, worker in self._jobs:
            worker.stop()

    def shutdown(self, timeout_ms: int = 60_000) -> None:
        """Stop every job and wait for its thread to end."""
        self.stop()
        for thread, _ in list(self._jobs):
            thread.quit()
            thread.wait(timeout_ms)
        self._jobs.clear()
