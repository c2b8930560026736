"""Time to window: process start to the first paint of the main window, next to the time of
``python -c "import tensorflow"``, both in fresh processes.

The window must not wait for TensorFlow: it is imported in a worker once the window has
painted (device detection), and by the jobs that need it. This script also records when that
background import is done and the device is known ("time to device").

Usage::

    python bench/startup.py [--repeat 5] [--out bench/results/startup.json]

Prints one JSON object and writes it to ``--out``. Without a screen, set
``QT_QPA_PLATFORM=offscreen`` (the default here when ``DISPLAY`` is unset).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchutil import machine_fields, write_result

ROOT = Path(__file__).resolve().parents[1]

# What `cifar-gui` does up to the first paint, plus two timestamps on stdout.
CHILD = r"""
import sys, tempfile, time
import cifar_gui.app  # the entry point's own imports count too
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication
from cifar_gui.gui.main_window import MainWindow

app = QApplication([sys.argv[0]])
settings = QSettings(tempfile.mktemp(suffix=".ini"), QSettings.Format.IniFormat)
window = MainWindow(settings=settings)
window.first_painted.connect(lambda: print("painted", time.time(), flush=True))

def device_known(_result):
    print("device", time.time(), flush=True)
    QTimer.singleShot(0, window.close)

window.device_job.result.connect(device_known)
window.device_job.error.connect(lambda _msg: window.close())
window.show()
app.exec()
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
    return env


def time_window(python: str) -> tuple[float, float]:
    """Seconds from process start to first paint, and to the device being known."""
    start = time.time()
    proc = subprocess.run(
        [python, "-c", CHILD], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300
    )
    stamps = dict(
        (parts[0], float(parts[1]))
        for parts in (line.split() for line in proc.stdout.splitlines())
        if len(parts) == 2 and parts[0] in ("painted", "device")
    )
    if proc.returncode != 0 or "painted" not in stamps:
        raise RuntimeError(f"the window did not paint: {proc.stderr.strip()[-500:]}")
    return stamps["painted"] - start, stamps.get("device", float("nan")) - start


def time_tensorflow(python: str) -> float:
    """Seconds for ``python -c "import tensorflow"``."""
    start = time.time()
    subprocess.run(
        [python, "-c", "import tensorflow"],
        env=_env(),
        check=True,
        capture_output=True,
        timeout=300,
    )
    return time.time() - start


def _summary(values: list[float]) -> dict[str, object]:
    return {"median": round(statistics.median(values), 3), "all": [round(v, 3) for v in values]}


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="fresh processes per measure")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "startup.json"))
    args = parser.parse_args(argv)
    python = sys.executable
    window, device, tensorflow = [], [], []
    # Interleaved, so a busy moment of a shared machine hits both measures alike.
    for _ in range(args.repeat):
        paint, known = time_window(python)
        window.append(paint)
        device.append(known)
        tensorflow.append(time_tensorflow(python))
    result: dict[str, object] = {
        "command": f"{Path(python).name} bench/startup.py --repeat {args.repeat}",
        "time_to_window_s": _summary(window),
        "time_to_device_s": _summary(device),
        "import_tensorflow_s": _summary(tensorflow),
        "qt_platform": _env().get("QT_QPA_PLATFORM", "default"),
        **machine_fields(),
    }
    return write_result(result, args.out)


if __name__ == "__main__":
    main()
