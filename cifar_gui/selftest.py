"""``cifar-gui --self-test``: prove that an installed or frozen app works, without a screen.

It opens the main window offscreen, loads the bundled default model, classifies the bundled
sample image and prints one line. The packaging build runs it on the PyInstaller folder
with a bare environment, so a module, Qt plugin or data file missing from the bundle fails
the build instead of the user's first start.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from pathlib import Path


def run_self_test() -> int:
    """Run the check; print one summary line and return 0, or one error line and return 1."""
    # Before Qt and TensorFlow load: no screen needed, no TensorFlow start-up chatter.
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    started = time.perf_counter()
    try:
        summary = _check()
    except Exception as exc:
        from cifar_gui.gui.workers import error_message

        print(f"cifar-gui self-test FAILED: {error_message(exc)}", file=sys.stderr)
        return 1
    print(f"cifar-gui self-test OK: {summary} in {time.perf_counter() - started:.1f} s")
    return 0


def _check() -> str:
    """Open the window, classify the sample with the default model; return what was seen."""
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from cifar_gui.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0]])
    with tempfile.TemporaryDirectory() as tmp:  # throw-away settings: the user's stay as they are
        settings = QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat)
        return _classify_sample(app, MainWindow(settings=settings))


def _classify_sample(app, window) -> str:
    """Show ``window``, classify the sample with the default model; return what was seen."""
    from PySide6.QtCore import qVersion

    from cifar_gui import resources

    try:
        window.show()
        app.processEvents()
        # Painting needs the platform plugin and fonts from the bundle, not just the import.
        if window.grab().isNull():
            raise RuntimeError("the main window did not render")
        model_path = resources.default_model_path()
        sample_path = resources.sample_image_path()
        # Through the window's model service, as the Activations tab does: its child process
        # loads TensorFlow (in a packaged app, the frozen interpreter started again).
        handle = window.models.open(model_path)
        window.state.set_model(handle)
        [prediction] = window.models.predict_files(handle, [sample_path])
        probs = prediction.probabilities
        if not all(math.isfinite(p) for p in probs) or abs(sum(probs) - 1) > 1e-3:
            raise RuntimeError(f"the model returned invalid probabilities {probs}")
    finally:
        window.shutdown()  # joins the device-detection thread; close() would save geometry
        window.deleteLater()
    return (
        f"{model_path.name} says {sample_path.name} is {prediction.label} "
        f"({prediction.confidence:.0%}); Qt {qVersion()} on {app.platformName()}"
    )
