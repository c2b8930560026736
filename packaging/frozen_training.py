"""Train a tiny run in the built app's spawned child, as its window does; check what it printed.

    python packaging/frozen_training.py dist/cifar-gui/cifar-gui

The window trains in a child process (:func:`cifar_gui.engine.training.runner.run`,
multiprocessing ``spawn``). In the bundle that child is the frozen program itself, started as
``cifar-gui --multiprocessing-fork tracker_fd=N pipe_handle=M`` and diverted to the training by
``multiprocessing.freeze_support()`` in ``launcher.py``. This script calls the same
``run`` from the build's Python (which has ``cifar_gui``), but spawns the frozen program
with the command line a frozen parent would give it, on a small synthetic image folder (the
``augmented`` variant, so every input-pipeline function runs). The child's imports come from the
bundle: the parent's ``sys.path`` and main script are not passed to it.

Prints one line and exits 0 when the child trained and saved a model without printing
AutoGraph's "could not transform" warnings (those mean the bundle lacks the app's ``.py``
sources, see the spec's ``module_collection_mode``); otherwise prints the reason and the
child's output, and exits 1. ``build.py`` runs it after the self-test, with a time limit.
"""

from __future__ import annotations

import multiprocessing.resource_tracker
import multiprocessing.spawn
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
AUTOGRAPH_WARNING = "could not transform"
CLASSES = ("cat", "dog")
IMAGES_PER_CLASS = {"train": 12, "test": 4}


def write_image_folder(root: Path) -> Path:
    """A ``train/`` and ``test/`` image folder of random 32 x 32 PNGs for :data:`CLASSES`."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, count in IMAGES_PER_CLASS.items():
        for name in CLASSES:
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def frozen_command_line(program: Path):
    """``spawn.get_command_line`` as it is in a frozen parent, with ``program`` as the child."""

    def command_line(**kwds) -> list[str]:
        return [str(program), "--multiprocessing-fork", *(f"{k}={v!r}" for k, v in kwds.items())]

    return command_line


def frozen_preparation_data(name: str) -> dict:
    """What the spawned child is told to prepare, less this interpreter's path and main script.

    A frozen parent passes the bundle's own path and an entry script the child already runs;
    passing this Python's would let the child import the checkout instead of the bundle.
    """
    data = ORIGINAL_PREPARATION_DATA(name)
    for key in ("sys_path", "init_main_from_path", "init_main_from_name"):
        data.pop(key, None)
    data["sys_argv"] = [data["sys_argv"][0]]
    return data


ORIGINAL_PREPARATION_DATA = multiprocessing.spawn.get_preparation_data


def train_in_frozen_child(program: Path, scratch: Path) -> tuple[list[str], str]:
    """Train in ``scratch``; return (the problems found, what the child printed)."""
    sys.path.insert(0, str(ROOT))
    from cifar_gui.config import RunConfig
    from cifar_gui.engine.events import EpochEvent, only
    from cifar_gui.engine.training.runner import plan_run, run

    config = RunConfig(
        variant="augmented",
        classes=CLASSES,
        data=str(write_image_folder(scratch / "images")),
        epochs=1,
        batch_size=8,
        limit=20,
        out_dir=str(scratch / "runs"),
    )
    epochs = []
    problems = []
    # The semaphore tracker is this Python's: a frozen parent starts the frozen program for it
    # with its own interpreter flags, which this parent cannot know.
    multiprocessing.resource_tracker.ensure_running()
    executable = os.fsdecode(program) if os.name == "nt" else os.fsencode(program)  # as spawn's
    with (
        tempfile.TemporaryFile() as log,
        mock.patch.multiple(
            multiprocessing.spawn,
            get_command_line=frozen_command_line(program),
            get_preparation_data=frozen_preparation_data,
            get_executable=lambda: executable,
        ),
    ):
        saved_stderr = os.dup(2)
        os.dup2(log.fileno(), 2)  # the child inherits it
        try:
            result = run(plan_run(config), only(EpochEvent, epochs.append), threading.Event())
        except Exception as exc:
            result = None
            problems.append(f"{type(exc).__name__}: {exc}")
        finally:
            os.dup2(saved_stderr, 2)
            os.close(saved_stderr)
        log.seek(0)
        printed = log.read().decode(errors="replace")
    warnings = [line for line in printed.splitlines() if AUTOGRAPH_WARNING in line]
    if warnings:
        problems.append(f"{len(warnings)} AutoGraph '{AUTOGRAPH_WARNING}' warnings")
    if result is not None:
        if result.path is None or not result.path.is_file():
            problems.append(f"no model saved ({result})")
        if len(epochs) != config.epochs:
            problems.append(f"{len(epochs)} epoch events for {config.epochs} epochs")
    return problems, printed


def main(argv: list[str] | None = None) -> int:
    """Check the built program ``argv[0]`` in a temporary folder; return the exit status."""
    [program] = (Path(arg) for arg in (sys.argv[1:] if argv is None else argv))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cifar-gui-frozen-training-") as scratch:
        problems, printed = train_in_frozen_child(program.resolve(), Path(scratch))
    if not problems:
        print(
            f"frozen training OK: the spawned {program.name} trained and saved a model "
            f"without AutoGraph warnings in {time.perf_counter() - started:.1f} s"
        )
        return 0
    print(printed[-3000:], file=sys.stderr)
    print(f"frozen training FAILED: {'; '.join(problems)}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
