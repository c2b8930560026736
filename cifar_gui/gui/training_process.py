"""A training run in a child process, reporting to the GUI process through a pipe.

Why a process and not a thread of the GUI: both would share one interpreter lock. Keras'
per-batch Python code, graph tracing and model saving hold it, and so does the GUI's painting
(pyqtgraph calls into Qt without releasing it). Measured with ``bench/gui_training.py`` on 2
CPU cores, a run on a thread of the GUI took 1.6 times the command line's epoch time and
stalled the event loop for up to 1.8 s. A child started with ``spawn`` (a fresh interpreter,
nothing of Qt copied) has its own lock; the GUI process only forwards its events.

The child calls :func:`cifar_gui.engine.training.run_training` exactly as ``cifar-gui train``
does: it loads the data from ``config.data`` (the data set's source; an image folder loads from
its decoded cache in about 0.25 s, cheaper for the GUI than sending 185 MB of arrays), trains,
saves the model and sidecar, and sends ``(kind, value)`` messages:

``("batches", [BatchEvent, ...])`` (bundled, at most :data:`SEND_INTERVAL_S` apart: one wake-up
of the GUI process per batch took CPU from training), ``("epoch", EpochEvent)``,
``("done", ChildResult)`` or ``("error", exception)``.

This module imports neither Qt nor TensorFlow: the child imports it before anything else.
"""

from __future__ import annotations

import multiprocessing
import pickle
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cifar_gui.config import RunConfig
from cifar_gui.engine.errors import UserError
from cifar_gui.engine.record import RunRecord

if TYPE_CHECKING:
    from cifar_gui.engine.checkpoints import Checkpoint
    from cifar_gui.engine.training import BatchEvent, EpochEvent

SEND_INTERVAL_S = 0.1  # the child sends batch events in bundles this far apart
POLL_S = 0.05  # how often the parent looks at the stop flag while no message arrives
STOP_GRACE_S = 20.0  # after Stop, how long the child may take to finish its batch and save
EXIT_WAIT_S = 10.0  # after its last message, how long the child may take to exit
# Both together stay well under the 60 s JobRunner.shutdown waits for the thread.


@dataclass(frozen=True)
class ChildResult:
    """What a finished or stopped run in the child saved."""

    path: Path | None  # the saved model; None on a multi-worker run's non-chief worker
    record: RunRecord  # the sidecar's content
    stopped: bool


class ChildFailed(UserError):
    """The child failed with an exception that could not be sent as it was, or died."""


def run_in_child(
    config: RunConfig,
    on_batch: Callable[[BatchEvent], None],
    on_epoch: Callable[[EpochEvent], None],
    stop: threading.Event,
    resume: Checkpoint | None = None,
) -> ChildResult:
    """Train ``config`` (continuing ``resume``) in a child process; return what it saved.

    ``on_batch`` and ``on_epoch`` are called on the calling thread with the child's events.
    Setting ``stop`` ends the run after the batches in progress; the child still saves the model.
    Raises the child's exception (a :class:`UserError` keeps its one-line message), or
    :class:`ChildFailed` when the child died without a word.
    """
    ctx = multiprocessing.get_context("spawn")
    reader, writer = ctx.Pipe(duplex=False)
    child_stop = ctx.Event()
    process = ctx.Process(
        target=_child_main,
        args=(config, resume, writer, child_stop),
        name="cifar-gui-training",
        daemon=True,  # never outlives the app
    )
    process.start()
    writer.close()  # the child holds the only writer: its exit ends the pipe (EOFError)
    stop_sent: float | None = None
    try:
        while True:
            if stop.is_set() and stop_sent is None:
                child_stop.set()
                stop_sent = time.monotonic()
            if stop_sent is not None and time.monotonic() - stop_sent > STOP_GRACE_S:
                raise ChildFailed(f"the training process did not stop within {STOP_GRACE_S:.0f} s")
            if not reader.poll(POLL_S):
                continue
            try:
                kind, value = reader.recv()
            except EOFError:
                process.join(EXIT_WAIT_S)
                raise ChildFailed(_death_message(process.exitcode)) from None
            if kind == "batches":
                for event in value:
                    on_batch(event)
            elif kind == "epoch":
                on_epoch(value)
            elif kind == "done":
                return value
            else:
                raise value
    finally:
        reader.close()
        process.join(EXIT_WAIT_S)
        if process.is_alive():  # hung (after a Stop that timed out): files are written atomically
            process.kill()
            process.join()
        process.close()


def _death_message(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        hint = " (out of memory?)" if exitcode == -9 else ""
        return f"the training process was killed by signal {-exitcode}{hint}"
    return f"the training process ended unexpectedly (exit code {exitcode})"


def _child_main(config: RunConfig, resume: Checkpoint | None, conn: Connection, stop: Any) -> None:
    """The child: run the training, send its events, then the result or the exception."""

    def send(message: tuple[str, Any]) -> None:
        try:
            conn.send(message)
        except OSError:  # the GUI is gone: stop, and still save what was learned
            stop.set()

    pending: list[BatchEvent] = []
    last_sent = -SEND_INTERVAL_S

    def flush() -> None:
        nonlocal last_sent
        if pending:
            send(("batches", list(pending)))
            pending.clear()
        last_sent = time.monotonic()

    def on_batch(event: BatchEvent) -> None:
        pending.append(event)
        if time.monotonic() - last_sent >= SEND_INTERVAL_S:
            flush()

    def on_epoch(event: EpochEvent) -> None:
        flush()  # the epoch's last batches go before its summary
        send(("epoch", event))

    try:
        from cifar_gui.engine.training import Listener, run_training

        listener = Listener(on_batch=on_batch, on_epoch=on_epoch, stop=stop)
        result = run_training(config, listener, resume=resume)
        flush()
        send(("done", ChildResult(result.path, result.record, result.stopped)))
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
