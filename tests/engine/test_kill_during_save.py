"""SIGKILL a training run and a save at random moments: nothing already saved is ever lost.

Children are forked from a forkserver that has imported TensorFlow once, so a kill costs
a fraction of a second instead of a TensorFlow start. Two kinds of children share one run
folder, as a user's would:

``run``   trains a tiny model with a checkpoint every epoch, resuming the folder's checkpoint
          when there is one (kill, resume, kill, ...);
``save``  saves final models (``.h5`` and ``.keras`` with sidecars) over and over, so nearly
          every kill lands inside a save.

Each child announces through a pipe every checkpoint and round of saves it has completed;
the moment of each kill is drawn from those announcements (after the first few, plus a random
fraction of the time one more took), never from fixed delays, so kills land inside runs and
saves on any machine at any load.

After every kill: the model saved before the loop, every final model and the last complete
checkpoint (model, optimizer and history) still load, nothing announced as written is lost
or older on disk, and checkpoints never go backwards.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from cifar_gui.config import RunConfig
from cifar_gui.engine.data.cifar_batches import CIFAR10_CLASSES
from cifar_gui.engine.data.dataset import Dataset
from cifar_gui.engine.models.checkpoint_model import load_checkpoint_model
from cifar_gui.engine.models.persistence import load_model, save_model
from cifar_gui.engine.record import RunRecord
from cifar_gui.engine.training.checkpoints import STATE_FILE, read_checkpoint
from tests.conftest import synthetic_images

ROOT = Path(__file__).resolve().parents[2]
PREVIOUS = "cifar10_4_7_transferlearning.h5"  # saved before the kills, never written again
FINALS = ("cifar10_4_7_augm.h5", "final.keras")  # written over and over by "save" children


def tiny_dataset() -> Dataset:
    """Deer and horse get 8 training and 8 test images: one step per epoch, so most of a
    child's time goes to checkpoint saves."""
    x_train, y_train = synthetic_images(40, seed=3)
    x_test, y_test = synthetic_images(40, seed=4)
    return Dataset(x_train, y_train, x_test, y_test, CIFAR10_CLASSES, "synthetic")


def run_config(out: Path) -> RunConfig:
    return RunConfig(epochs=100_000, batch_size=8, seed=2, out_dir=str(out))


def child(mode: str, out: str, conn, first_version: int) -> None:
    """The process that gets killed (runs in a forked child); it announces on ``conn`` every
    checkpoint (``("epoch", epochs completed)``) or final model (``("saved", version)``) it
    has finished writing."""
    from cifar_gui.engine.events import EpochEvent, only
    from cifar_gui.engine.models.build import build_baseline
    from cifar_gui.engine.training.run import run_training

    out_dir = Path(out)
    if mode == "run":
        config = run_config(out_dir)
        resume = (
            out_dir
            if (out_dir / "checkpoints").is_dir()
            and any((out_dir / "checkpoints").glob(f"*/{STATE_FILE}"))
            else None
        )
        if resume is not None:
            config = read_checkpoint(resume).config
        # A sink hears of an epoch only after its checkpoint is complete (run_training).
        sink = only(EpochEvent, lambda event: conn.send(("epoch", event.epoch + 1)))
        run_training(config, sink, dataset=tiny_dataset(), resume=resume)
        return
    model = build_baseline()
    rng = np.random.default_rng(os.getpid())
    version = first_version
    while True:
        model.layers[-1].set_weights(
            [w + rng.normal(size=w.shape) for w in model.layers[-1].get_weights()]
        )
        for name in FINALS:
            save_model(
                model,
                out_dir / name,
                RunRecord(class_names=("deer", "horse"), epochs_completed=version),
            )
        conn.send(("saved", version))
        version += 1


def leftovers(out: Path) -> list[Path]:
    """Temporary files of interrupted atomic writes (hidden names)."""
    return [p for p in out.rglob(".*") if p.is_file()]


def check_everything_loads(
    out: Path, previous_output: np.ndarray, last_epochs: int, saved_version: int
) -> int:
    """Assert the invariants; return the checkpoint's completed epochs (0 without one).

    ``last_epochs``: the most epochs a checkpoint was announced or seen with; ``saved_version``:
    the newest final model announced as saved (0: none yet).
    """
    x = tiny_dataset().x_test[:4].astype(np.float32) / 255
    kept = load_model(out / PREVIOUS)
    np.testing.assert_array_equal(kept.model.predict(x, verbose=0), previous_output)
    for name in FINALS:
        if saved_version:
            assert (out / name).exists(), f"{name} disappeared"
        if (out / name).exists():
            loaded = load_model(out / name)
            assert loaded.model.output_shape == (None, 1)
            version = json.loads((out / name).with_suffix(".json").read_text())["epochs_completed"]
            assert version >= max(saved_version, 1), f"{name} went back to version {version}"
    if not any((out / "checkpoints").glob(f"*/{STATE_FILE}")):
        assert last_epochs == 0, "a checkpoint disappeared"
        return 0
    checkpoint = read_checkpoint(out)
    assert checkpoint.epochs_completed >= last_epochs, "the checkpoint went backwards"
    model = load_checkpoint_model(checkpoint)
    assert int(model.optimizer.iterations.numpy()) == (
        checkpoint.epochs_completed * checkpoint.steps_per_epoch
    )
    assert len(checkpoint.history["loss"]) == checkpoint.epochs_completed
    return checkpoint.epochs_completed


@pytest.fixture(scope="module")
def forkserver():
    """A multiprocessing context whose server has TensorFlow and the engine imported."""
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p
    )
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(
        ["cifar_gui.engine.training.run", "cifar_gui.engine.models.build", __name__]
    )
    return context


HANG_GUARD_S = 300.0  # only a hang guard: a child's first checkpoint may take long when loaded


def wait_for_announcements(conn, count: int, process) -> tuple[list[tuple[str, int]], list[float]]:
    """The child's next ``count`` announcements, and the seconds from the start of the wait
    to each: how long one more checkpoint or round of saves takes on this machine, now."""
    messages: list[tuple[str, int]] = []
    start, times = time.monotonic(), [0.0]
    while len(messages) < count:
        assert conn.poll(HANG_GUARD_S), f"the child said nothing for {HANG_GUARD_S:.0f} s"
        messages.append(conn.recv())
        times.append(time.monotonic() - start)
    assert process.is_alive(), f"the child ended by itself ({process.exitcode})"
    return messages, times


def kill_at_random(context, tmp_path: Path, kills: int, seed: int) -> dict[str, int]:
    """Kill ``kills`` children at random moments chosen from their own announcements.

    A ``run`` child is killed after 1 to 3 checkpoints, or (one in four) while it starts up
    (loading, resuming, tracing); a ``save`` child after 1 to 3 rounds of saves. After the
    last announcement the kill waits a random fraction of the time the child took for one
    checkpoint or round: on any machine, at any load, kills land anywhere in the next one.
    """
    out = tmp_path / "run"
    model = load_model_or_save_previous(out)
    x = tiny_dataset().x_test[:4].astype(np.float32) / 255
    previous_output = model.predict(x, verbose=0)
    rng = random.Random(seed)
    epochs = saved_version = 0
    startup = None  # seconds a run child took to its first checkpoint, measured
    counts = {"kills": 0, "mid_write": 0, "checkpoints_seen": 0, "during_startup": 0}
    for i in range(kills):
        mode = "save" if i % 3 == 2 else "run"
        reader, writer = context.Pipe(duplex=False)
        process = context.Process(target=child, args=(mode, str(out), writer, saved_version + 1))
        process.start()
        writer.close()
        if mode == "run" and startup is not None and rng.random() < 0.25:
            delay = rng.uniform(0, startup)  # no assertion depends on where this one lands
            counts["during_startup"] += 1
        else:
            messages, times = wait_for_announcements(reader, rng.randint(1, 3), process)
            if mode == "run" and startup is None:
                startup = times[1]  # from the start to the first checkpoint
            for kind, value in messages:
                if kind == "epoch":
                    epochs = max(epochs, value)  # announced: that checkpoint must survive
                else:
                    saved_version = max(saved_version, value)
            delay = rng.uniform(0, times[-1] - times[-2])
        process.join(timeout=delay)
        assert process.is_alive(), f"child {mode} ended by itself ({process.exitcode})"
        os.kill(process.pid, signal.SIGKILL)
        process.join()
        reader.close()
        assert process.exitcode == -signal.SIGKILL
        counts["kills"] += 1
        counts["mid_write"] += bool(leftovers(out))
        epochs = check_everything_loads(out, previous_output, epochs, saved_version)
        counts["checkpoints_seen"] += epochs > 0
        for path in leftovers(out):  # a user's next save would leave them; keep counts honest
            path.unlink()
    counts["epochs"] = epochs
    print(f"\n{counts['kills']} SIGKILLs, {counts['mid_write']} inside a write: {counts}")
    return counts


def load_model_or_save_previous(out: Path):
    """The model saved before any kill: a transfer-named file that nothing writes again."""
    from cifar_gui.engine.models.build import build_baseline

    model = build_baseline()
    save_model(model, out / PREVIOUS, RunRecord(class_names=("deer", "horse")))
    return load_model(out / PREVIOUS).model


def resume_after_kills(out: Path) -> None:
    """The last complete checkpoint still resumes, to the end."""
    from cifar_gui.engine.training.run import run_training

    checkpoint = read_checkpoint(out)
    config = checkpoint.config.replace(epochs=checkpoint.epochs_completed + 1)
    result = run_training(config, dataset=tiny_dataset(), resume=checkpoint)
    assert len(result.history["loss"]) == checkpoint.epochs_completed + 1
    assert load_model(result.path).model.output_shape == (None, 1)


def test_sigkill_20_times_during_runs_and_saves(forkserver, tmp_path):
    counts = kill_at_random(forkserver, tmp_path, kills=20, seed=8)
    assert counts["kills"] == 20
    assert counts["mid_write"] >= 1, "no kill landed inside a write; the test proves nothing"
    assert counts["epochs"] >= 1, "no checkpoint survived the kills"
    resume_after_kills(tmp_path / "run")


@pytest.mark.slow
def test_sigkill_100_times(forkserver, tmp_path):
    counts = kill_at_random(forkserver, tmp_path, kills=100, seed=9)
    assert counts["mid_write"] >= 10
    resume_after_kills(tmp_path / "run")
