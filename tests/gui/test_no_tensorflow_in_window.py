"""TensorFlow never enters the window's process: a fresh interpreter builds the main window
offscreen, opens a tiny data set, shows every tab, makes augmentation previews, trains a tiny
run (watched on the Live tab), shows the activations and the evaluation of a model and knows
the device; at the end neither ``tensorflow`` nor ``keras`` is in its ``sys.modules``.

A fresh interpreter, because this test process has TensorFlow imported by other tests. The
module is also that interpreter's script (``python -m tests.gui.test_no_tensorflow_in_window
FOLDER``); it waits on signals, each with a timeout that only guards against a hang.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SIGNAL_TIMEOUT_MS = 180_000  # one step: two processes import TensorFlow on a shared machine
HEAVY = ("tensorflow", "keras")


def wait(signal, trigger=None, timeout_ms: int = SIGNAL_TIMEOUT_MS) -> tuple:
    """Connect to ``signal``, call ``trigger``, run the event loop until ``signal`` is emitted;
    its arguments. Raises TimeoutError naming the signal when it does not come."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop, got = QEventLoop(), []

    def done(*args) -> None:
        got.append(args)
        loop.quit()

    signal.connect(done)
    guard = QTimer(singleShot=True, interval=timeout_ms)
    guard.timeout.connect(loop.quit)
    guard.start()
    if trigger is not None:
        trigger()
    if not got:
        loop.exec()
    guard.stop()
    signal.disconnect(done)
    if not got:
        raise TimeoutError(f"no {signal} within {timeout_ms} ms")
    return got[0]


def exercise_window(folder: Path) -> dict[str, object]:
    """Everything the window does that needs TensorFlow somewhere; what it left in this
    process. ``folder``: a tiny data set in CIFAR-10's python format, and room for the run."""
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication, QMessageBox

    from cifar_gui.config import RunConfig
    from cifar_gui.gui.augmentation_view import BATCH
    from cifar_gui.gui.main_window import MainWindow

    def no_dialog(_parent, _title, text, *_args, **_kwargs):  # a modal box would hang here
        raise RuntimeError(f"a message box: {text}")

    QMessageBox.warning = QMessageBox.critical = QMessageBox.question = no_dialog
    app = QApplication.instance() or QApplication([sys.argv[0]])
    settings = QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings)
    state, shown, steps = window.state, set(), []

    def step(name: str) -> None:  # which step first brought TensorFlow in, for the message
        if not steps and "tensorflow" in sys.modules:
            steps.append(name)

    window.tabs.currentChanged.connect(lambda i: shown.add(window.tabs.tabText(i)))
    wait(window.first_painted, window.show)  # device detection starts now
    shown.add(window.tabs.tabText(window.tabs.currentIndex()))
    (opened,) = wait(window.dataset_panel.load_finished, lambda: window.start(str(folder / "data")))
    assert opened and state.dataset is not None, "the tiny data set did not open"
    step("the window and its data set")

    augmentation = window.augmentation_panel
    wait(augmentation.preview_ready, lambda: window.show_panel("Augmentation"))
    batch_mode = augmentation.mode_combo.findData(BATCH)
    wait(augmentation.preview_ready, lambda: augmentation.mode_combo.setCurrentIndex(batch_mode))
    step("the augmentation previews")

    training = window.training_panel
    window.show_panel("Training")
    training.form.set_config(RunConfig(variant="baseline", epochs=1, batch_size=4, limit=40))
    training.form.out_path.set_text(str(folder / "runs"))

    def start() -> None:
        assert training.start(), "the run did not start"
        window.show_panel("Live")

    (outcome,) = wait(training.run_finished, start)
    assert outcome is not None, "the tiny run failed"
    step("the training run")

    activations = window.activation_panel
    wait(activations.view_updated, lambda: window.show_panel("Activations"))
    wait(window.evaluation_panel.evaluated, lambda: window.show_panel("Evaluation"))
    step("the activations and the evaluation")
    if not window._versions:
        wait(window.device_job.finished)
    step("device detection")
    versions = dict(window._versions)
    window.close()  # joins every worker thread: nothing runs after this
    app.processEvents()
    return {
        "tabs_missed": sorted(set(window.panels()) - shown),
        "device": state.device,
        "tensorflow_version": versions.get("tensorflow", ""),
        "heavy": [name for name in HEAVY if name in sys.modules],
        "first_seen_after": steps[0] if steps else "",
    }


def test_tensorflow_stays_out_of_the_window_process(tmp_path):
    from tests.conftest import write_cifar_batches

    write_cifar_batches(tmp_path / "data")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "tests.gui.test_no_tensorflow_in_window", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    found = json.loads(lines[-1])
    assert found["tabs_missed"] == []
    assert found["device"].startswith(("CPU", "GPU")) and found["tensorflow_version"]
    assert found["heavy"] == [], (
        f"{found['heavy']} imported into the window's process (first seen after "
        f"{found['first_seen_after'] or 'closing'})"
    )


if __name__ == "__main__":
    print(json.dumps(exercise_window(Path(sys.argv[1]))), flush=True)
