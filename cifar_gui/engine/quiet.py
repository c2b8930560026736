"""Start TensorFlow without its start-up chatter on the terminal.

TensorFlow's C++ core logs a few lines when it is imported ("oneDNN custom operations are
on...", "All log messages before absl::InitializeLog() is called are written to STDERR").
Those lines are written before its logging is set up, so ``TF_CPP_MIN_LOG_LEVEL`` does not
hide them (TensorFlow 2.21, measured here): only the file descriptor can. The command line
calls :func:`start_tensorflow_quietly` unless ``--verbose`` is given; what TensorFlow printed
is shown after all if starting fails.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_logger(name: str) -> Iterator[None]:
    """Show only errors of the Python logger ``name`` meanwhile (for warnings that are
    expected where this is used: each use says why)."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def stderr_to_file() -> Iterator[None]:
    """Send file descriptor 2 (C and C++ code's stderr) to a temporary file meanwhile; on an
    exception, write what was captured to the real stderr before it propagates."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            os.write(2, captured.read())
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def start_tensorflow_quietly() -> None:
    """Import TensorFlow with its start-up lines kept off stderr (later warnings and errors
    still show). Its devices are not created here: a multi-worker strategy and GPU memory
    growth must be set up before they are, and with ``TF_CPP_MIN_LOG_LEVEL`` 2 their creation
    prints nothing."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with stderr_to_file():
        import tensorflow  # noqa: F401
