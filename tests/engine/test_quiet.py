"""TensorFlow starts without its C++ start-up lines on stderr; a failed start shows them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cifar_gui.engine.quiet import stderr_to_file

START = "import tensorflow as tf; tf.config.list_logical_devices()"


def stderr_of(code: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    return done.stderr


def test_the_start_up_lines_are_gone_and_later_output_still_shows():
    loud = stderr_of(START)
    if not loud.strip():
        pytest.skip("this TensorFlow build prints nothing at start-up: nothing to hide")
    # Its devices are still to be made: a multi-worker strategy or GPU memory growth set up
    # after the quiet start must work (they refuse devices that exist already).
    quiet = stderr_of(
        "from cifar_gui.engine.quiet import start_tensorflow_quietly; "
        "start_tensorflow_quietly(); import tensorflow as tf; "
        "cpu = tf.config.list_physical_devices('CPU')[0]; "
        "two = [tf.config.LogicalDeviceConfiguration()] * 2; "
        "tf.config.set_logical_device_configuration(cpu, two); "
        f"{START}; import os; os.write(2, b'after %d' % len(tf.config.list_logical_devices('CPU')))"
    )
    assert quiet == "after 2"


def test_what_was_captured_is_shown_when_the_block_fails(capfd):
    with pytest.raises(RuntimeError), stderr_to_file():
        os.write(2, b"why it failed\n")
        raise RuntimeError("start failed")
    assert capfd.readouterr().err == "why it failed\n"
    with stderr_to_file():
        os.write(2, b"noise\n")
    assert capfd.readouterr().err == ""


def test_quiet_logger_hides_warnings_only_meanwhile(caplog):
    import logging

    from cifar_gui.engine.quiet import quiet_logger

    logger = logging.getLogger("tensorflow")
    with caplog.at_level(logging.WARNING, logger="tensorflow"), quiet_logger("tensorflow"):
        logger.warning("triggered tf.function retracing")
        logger.error("a real error")
    logger.warning("after")
    messages = [r.getMessage() for r in caplog.records]
    assert "triggered tf.function retracing" not in messages
    assert "a real error" in messages
    assert "after" in messages
