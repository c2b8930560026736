"""The one way to start a training run, for the command line and the window alike.

:func:`plan_run` applies the rules of a run before anything starts (which checkpoint it
continues, what may change on resume, whether the output folder can be written, the folder of
a new run, and that no run replaces another unasked), touching the disk only to make that
folder; :func:`run` trains a plan in this process (the command line) or in a
child process (the window), and hands every event of it (:mod:`cifar_gui.engine.events`) to
one sink, in order: batch events bundled at most :data:`BATCH_INTERVAL_S` apart (the one
throttle of batch events), every other event at once. It returns the plan's last word: a
:class:`RunFinished`, or a study's :class:`StudyFinished`.

A plan is anything with ``execute(sink, stop, live)``: a :class:`RunPlan` (one run: train,
pretrain) or a :class:`~cifar_gui.engine.study.plan.StudyPlan`, which runs the run plans it yields
(:meth:`~cifar_gui.engine.study.plan.StudyPlan.steps`) one after the other.

Why a child process for the window and not a thread of it: both would share one interpreter
lock. Keras' per-batch Python code, graph tracing and model saving hold it, and so does the
GUI's painting (pyqtgraph calls into Qt without releasing it). Measured with
``bench/gui_training.py`` on 2 CPU cores, a run on a thread of the GUI took 1.6 times the
command line's epoch time and stalled the event loop for up to 1.8 s. A child started with
``spawn`` (a fresh interpreter, nothing of Qt copied) has its own lock; the GUI process only
forwards its events.

The child calls :func:`cifar_gui.engine.training.run.run_training` as the command line does: it
loads the data set itself from ``config.data``, although the window's process holds it already:
an image folder loads from its decoded cache in about 0.25 s, while sending its 185 MB of arrays
through the pipe would cost more, and twice the memory. It trains, saves the model and sidecar,
and sends ``(kind, value)`` messages: ``("events", [event, ...])`` (a bundle),
``("done", finished)`` or ``("error", exception)``.

This module imports neither Qt nor TensorFlow (the child imports it before anything else; the
window plans runs without TensorFlow).
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import pickle
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

from cifar_gui.config import RunConfig
from cifar_gui.engine.errors import UserError
from cifar_gui.engine.events import (
    BatchEvent,
    Event,
    LiveRequest,
    RunFinished,
    Sink,
    StopFlag,
    StudyFinished,
)
from cifar_gui.engine.files import check_can_write
from cifar_gui.engine.run_folder import model_replaced, new_run_folder
from cifar_gui.engine.training.checkpoints import Checkpoint, check_resumable, read_checkpoint

__all__ = [
    "ChildFailed",
    "LiveRequests",
    "Plan",
    "RunExists",
    "RunPlan",
    "plan_run",
    "run",
]

# Batch events are delivered in bundles this far apart: one wake-up of the window's process
# per batch took CPU from training, and a redraw of its plots costs ~10 ms.
BATCH_INTERVAL_S = 0.2
POLL_S = 0.05  # how often the parent looks at the stop flag while no message arrives
# After Stop, how much work the child may do without ending: CPU seconds where the system
# tells them (Linux), so a busy machine, which slows the child's wall clock, never makes a
# working child look hung; wall seconds elsewhere. Finishing a compiled call (its first one
# traces the step) and saving take a few CPU seconds.
STOP_GRACE_S = 60.0
EXIT_WAIT_S = 10.0  # after its last message, how long the child may take to exit
# Both together stay well under the 60 s JobRunner.shutdown waits for the thread.

# Where a run takes the live view's latest request from (None: it has not changed); a run
# given none sends no snapshots.
LiveSource = Callable[[], LiveRequest | None]


class Plan(Protocol):
    """What :func:`run` trains: ``execute`` runs it on this thread, reporting to ``sink``."""

    def execute(
        self, sink: Sink, stop: StopFlag, live: LiveSource | None
    ) -> RunFinished | StudyFinished: ...


@dataclass(frozen=True)
class RunPlan:
    """A checked run: its config, the checkpoint it continues (None: a new run), and whether
    its folder was made for it (:func:`plan_run`'s ``new_folder``)."""

    config: RunConfig
    resume: Checkpoint | None = None
    new_folder: bool = False

    def execute(self, sink: Sink, stop: StopFlag, live: LiveSource | None) -> RunFinished:
        """Train and save the run here (imports TensorFlow)."""
        from cifar_gui.engine.training.run import run_training

        try:
            return run_training(self.config, sink, stop, live=live, resume=self.resume).finished
        except BaseException:
            if self.new_folder:  # a run that failed its checks leaves no empty folder behind
                with contextlib.suppress(OSError):
                    Path(self.config.out_dir).rmdir()  # refused unless it is still empty
            raise


class LiveRequests:
    """The live view's latest request: set from any thread with :meth:`ask`, taken by the
    run (:data:`LiveSource`) at its next refresh. ``request``: the first one (None: the
    default, the seed's test image 5 and the first convolution)."""

    def __init__(self, request: LiveRequest | None = None):
        self._lock = threading.Lock()
        self._pending = request

    def ask(self, request: LiveRequest) -> None:
        """Show ``request`` from the next refresh on (replaces one not yet taken)."""
        with self._lock:
            self._pending = request

    def take(self) -> LiveRequest | None:
        """The request not yet taken, or None."""
        with self._lock:
            request, self._pending = self._pending, None
        return request


class ChildFailed(UserError):
    """The child failed with an exception that could not be sent as it was, or died."""


class RunExists(UserError):
    """A new run would replace the model at ``path``; it may, when asked to (overwrite)."""

    def __init__(self, path: Path):
        super().__init__(
            f"{path}: a model of this run is saved here already; give --overwrite to replace "
            "it, or leave out --out for a new run folder"
        )
        self.path = path


def plan_run(
    config: RunConfig | None = None,
    *,
    resume: str | Path | Checkpoint | None = None,
    epochs: int | None = None,
    data: str | None = None,
    strategy: str | None = None,
    new_folder: bool = False,
    overwrite: bool = False,
) -> RunPlan:
    """Check a run before it starts; raise :class:`UserError` with one line when it cannot.

    A new run needs ``config``. With ``new_folder``, ``config.out_dir`` is the runs root and
    the run gets a folder of its own in it (:func:`~cifar_gui.engine.run_folder.new_run_folder`,
    made once every other check has passed): the plan's ``out_dir``. Without it,
    ``config.out_dir`` is the run's folder itself, refused (:class:`RunExists`) when it holds a
    model the run would replace, unless ``overwrite``.

    With ``resume`` (a run folder, a checkpoint folder or a :class:`Checkpoint`) the run
    continues the checkpoint's config in its folder, where only ``epochs`` (the new total),
    ``strategy`` and ``data`` (where the data set is now) may change; a ``config`` given too
    must be that run's. The output folder must be creatable and writable. Nothing on disk
    changes but the new folder; the file names, which depend on the data's classes, are
    checked by :func:`cifar_gui.engine.training.run.run_training` once the data is loaded.
    """
    checkpoint = None
    if resume is not None:
        checkpoint = resume if isinstance(resume, Checkpoint) else read_checkpoint(resume)
    base = config if config is not None else checkpoint.config if checkpoint else None
    if base is None:
        raise UserError("nothing to run: give a config or a checkpoint to resume")
    # The settings a resume may give anew (settings.ON_RESUME "new"; a test holds them equal).
    changes = {"epochs": epochs, "strategy": strategy, "data": data}
    try:
        config = base.replace(**{k: v for k, v in changes.items() if v is not None})
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if checkpoint is not None:
        check_resumable(config, checkpoint)
        # Saved beside its checkpoints, wherever the run folder is now.
        config = config.replace(out_dir=checkpoint.config.out_dir)
    elif not new_folder and not overwrite and (found := model_replaced(config.out_dir, config)):
        raise RunExists(found)
    check_can_write(Path(config.out_dir), folder=True)
    new_folder = new_folder and checkpoint is None
    if new_folder:
        config = config.replace(out_dir=str(new_run_folder(config.out_dir, config)))
    return RunPlan(config, checkpoint, new_folder)


def run(
    plan: Plan,
    sink: Sink,
    stop: threading.Event,
    *,
    in_process: bool = False,
    live: LiveRequests | None = None,
) -> RunFinished | StudyFinished:
    """Train ``plan`` (one run, or a study) and return what it saved.

    ``sink`` gets every event of it on the calling thread, in order, batch events in bundles
    (:data:`BATCH_INTERVAL_S`). Setting ``stop`` ends the run after the batches in progress;
    the model is still saved. ``in_process``: train on this thread (the command line) instead
    of a spawned child (the window). Raises the run's exception (a :class:`UserError` keeps
    its one-line message), or :class:`ChildFailed` when the child died without a word.
    ``live``: the live view's requests; with it, the run (each run of a study) sends
    :class:`~cifar_gui.engine.events.LiveSnapshot` events.
    """
    if in_process:

        def deliver(bundle: list[Event]) -> None:
            for event in bundle:
                sink(event)

        return _execute(plan, deliver, stop, None if live is None else live.take)
    return _run_in_child(plan, sink, stop, live)


class _Bundler:
    """Hands events on in bundles: batch events at most :data:`BATCH_INTERVAL_S` apart, any
    other event at once, with the batch events before it."""

    def __init__(self, send: Callable[[list[Event]], None]):
        self.send = send
        self.pending: list[Event] = []
        self.last_sent = -BATCH_INTERVAL_S

    def add(self, event: Event) -> None:
        self.pending.append(event)
        if (
            not isinstance(event, BatchEvent)
            or time.monotonic() - self.last_sent >= BATCH_INTERVAL_S
        ):
            self.flush()

    def flush(self) -> None:
        if self.pending:
            bundle, self.pending = self.pending, []
            self.send(bundle)
        self.last_sent = time.monotonic()


def _execute(
    plan: Plan, send: Callable[[list[Event]], None], stop: StopFlag, live: LiveSource | None
) -> RunFinished | StudyFinished:
    """Run the plan on this thread (imports TensorFlow), its events bundled to ``send``."""
    bundler = _Bundler(send)
    finished = plan.execute(bundler.add, stop, live)
    bundler.flush()
    return finished


def _run_in_child(
    plan: Plan, sink: Sink, stop: threading.Event, live: LiveRequests | None
) -> RunFinished | StudyFinished:
    ctx = multiprocessing.get_context("spawn")
    reader, writer = ctx.Pipe(duplex=False)
    child_stop = ctx.Event()
    # The live view's requests go the other way, on a pipe of their own.
    requests, request_writer = ctx.Pipe(duplex=False) if live is not None else (None, None)
    process = ctx.Process(
        target=_child_main,
        args=(plan, writer, child_stop, requests),
        name="cifar-gui-training",
        daemon=True,  # never outlives the app
    )
    process.start()
    writer.close()  # the child holds the only writer: its exit ends the pipe (EOFError)
    if requests is not None:
        requests.close()
    stop_sent: tuple[float | None, float] | None = None  # (child CPU, wall) at the Stop
    try:
        while True:
            request = live.take() if live is not None else None
            if request is not None:
                with contextlib.suppress(OSError):  # the child is gone: EOF comes next
                    request_writer.send(request)
            if stop.is_set() and stop_sent is None:
                child_stop.set()
                stop_sent = (_cpu_seconds(process.pid), time.monotonic())
            if stop_sent is not None and _worked_since(process.pid, *stop_sent) > STOP_GRACE_S:
                raise ChildFailed(
                    f"the training process did not stop after {STOP_GRACE_S:.0f} s of work"
                )
            if not reader.poll(POLL_S):
                continue
            try:
                kind, value = reader.recv()
            except EOFError:
                process.join(EXIT_WAIT_S)
                raise ChildFailed(_death_message(process.exitcode)) from None
            if kind == "events":
                for event in value:
                    sink(event)
            elif kind == "done":
                return value
            else:
                raise value
    finally:
        reader.close()
        if request_writer is not None:
            request_writer.close()
        process.join(EXIT_WAIT_S)
        if process.is_alive():  # hung (after a Stop that timed out): files are written atomically
            process.kill()
            process.join()
        process.close()


def _cpu_seconds(pid: int | None) -> float | None:
    """The CPU seconds the process ``pid`` has used, or None where the system does not say
    (not Linux, or the process is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def _worked_since(pid: int | None, cpu: float | None, wall: float) -> float:
    """The child's work since the Stop: CPU seconds when they can be read, wall seconds where
    they never could; 0 once they no longer can (it is ending: the pipe says how)."""
    if cpu is None:
        return time.monotonic() - wall
    now = _cpu_seconds(pid)
    return 0.0 if now is None else now - cpu


def _death_message(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        hint = " (out of memory?)" if exitcode == -9 else ""
        return f"the training process was killed by signal {-exitcode}{hint}"
    return f"the training process ended unexpectedly (exit code {exitcode})"


def _latest_request(requests: Connection) -> LiveRequest | None:
    """The newest request waiting on the pipe (older ones are superseded), or None."""
    latest = None
    with contextlib.suppress(EOFError, OSError):
        while requests.poll():
            latest = requests.recv()
    return latest


def _child_main(
    plan: Plan, conn: Connection, stop: Any, requests: Connection | None = None
) -> None:
    """The child: run the plan, send its events, then the result or the exception."""

    def send(message: tuple[str, Any]) -> None:
        try:
            conn.send(message)
        except OSError:  # the GUI is gone: stop, and still save what was learned
            stop.set()

    live = None
    if requests is not None:
        live = functools.partial(_latest_request, requests)  # the window's, through the pipe
    try:
        finished = _execute(plan, lambda bundle: send(("events", bundle)), stop, live)
        send(("done", finished))
    except Exception as exc:
        if not isinstance(exc, UserError):
            traceback.print_exc()  # the details stay on the terminal, as on the GUI's threads
        send(("error", _sendable(exc)))
    finally:
        conn.close()


def _sendable(exc: Exception) -> Exception:
    """``exc`` when it survives pickling, else a :class:`ChildFailed` with its first line."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        return ChildFailed(f"{type(exc).__name__}: {first}" if first else type(exc).__name__)
    return exc
