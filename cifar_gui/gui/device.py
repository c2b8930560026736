"""Device detection in a child process: it needs TensorFlow, whose import would hold the GUI
process' interpreter lock for about a second (the window could not repaint meanwhile).

This module imports neither Qt nor TensorFlow; the spawned child imports TensorFlow.
"""

from __future__ import annotations

import multiprocessing
from typing import Any

from cifar_gui.engine.errors import UserError

POLL_S = 0.1  # how often the waiting thread looks at its stop flag


def detect() -> tuple[str, dict[str, str]]:
    """In the child: the device training runs on, and the versions of the libraries."""
    from cifar_gui.engine.training.run import describe_device, versions

    return describe_device(), versions()


def detect_device_job(task: Any) -> tuple[str, dict[str, str]]:
    """Job: :func:`detect` in a spawned child (nothing of Qt copied); waits without the lock.

    A stop request (the window closes) ends the child at once.
    """
    with multiprocessing.get_context("spawn").Pool(1) as pool:  # leaving it kills the child
        pending = pool.apply_async(detect)
        while not task.stop_requested():
            try:
                return pending.get(POLL_S)
            except multiprocessing.TimeoutError:
                continue
    raise UserError("device detection stopped")
