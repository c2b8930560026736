"""Time to window: process start to the first paint of the main window, next to the time of
``python -c "import tensorflow"``, both in fresh processes; and the event loop's stalls
while the window starts and opens its first data set.

The window must not wait for TensorFlow: device detection imports it in a child process once
the window has painted, and the jobs that need it import it. This script also records when
the device is known ("time to device").

Stalls: a 10 ms ``QTimer`` probe on the GUI thread runs from the window's construction until
the device is known and the data set given with ``--data`` has opened (``window.start``,
right after the first paint, as ``cifar-gui --data`` does). A gap between two ticks is the
longest the window could not react; reported are the worst gap during start-up (first paint
to device known) and during the first data load (start to the panel's ``load_finished``).
The target is no gap over 50 ms. ``--busy N`` runs N busy-looping processes beside the app
(another program keeping cores busy).

Usage::

    python bench/startup.py [--repeat 5] [--data DIR] [--busy 1] [--out bench/results/startup.json]

Prints one JSON object and writes it to ``--out``. Without a screen, set
``QT_QPA_PLATFORM=offscreen`` (the default here when ``DISPLAY`` is unset).
"""

from __future__ import annotations

import argparse
import itertools
import json
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
import json, sys, tempfile, time
import cifar_gui.app  # the entry point's own imports count too
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtWidgets import QApplication
from cifar_gui.gui.main_window import MainWindow

data = sys.argv[1] or None
app = QApplication([sys.argv[0]])
settings = QSettings(tempfile.mktemp(suffix=".ini"), QSettings.Format.IniFormat)
window = MainWindow(settings=settings)
ticks = []
probe = QTimer(interval=10, timerType=Qt.TimerType.PreciseTimer)
probe.timeout.connect(lambda: ticks.append(time.time()))
probe.start()
pending = {"device", "data"} if data else {"device"}

def done(what):
    print(what, time.time(), flush=True)
    pending.discard(what)
    if not pending:
        probe.stop()
        print("ticks", json.dumps(ticks), flush=True)
        QTimer.singleShot(0, window.close)

def painted():
    print("painted", time.time(), flush=True)
    if data:
        print("load", time.time(), flush=True)
        window.start(data)

window.first_painted.connect(painted)
window.dataset_panel.load_finished.connect(lambda ok: done("data"))
window.device_job.result.connect(lambda _result: done("device"))
window.device_job.error.connect(lambda _msg: window.close())
window.show()
app.exec()
"""

BUSY = "while True: pass"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
    return env


def time_window(python: str, data: str = "") -> dict[str, float]:
    """Seconds from process start to first paint and to the device being known; the worst
    probe gaps (ms) during start-up and during the load of ``data``."""
    start = time.time()
    proc = subprocess.run(
        [python, "-c", CHILD, data],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    stamps: dict[str, float] = {}
    ticks: list[float] = []
    for line in proc.stdout.splitlines():
        word, _, rest = line.partition(" ")
        if word == "ticks":
            ticks = json.loads(rest)
        elif word in ("painted", "device", "load", "data"):
            stamps[word] = float(rest)
    if proc.returncode != 0 or "painted" not in stamps:
        raise RuntimeError(f"the window did not paint: {proc.stderr.strip()[-500:]}")

    def worst_gap(begin: str, end: str) -> float:
        if begin not in stamps or end not in stamps:
            return float("nan")
        # The gap that ends first after ``begin`` counts too: it may have begun before.
        gaps = [
            (b - a) * 1000
            for a, b in itertools.pairwise(ticks)
            if b > stamps[begin] and a < stamps[end]
        ]
        return max(gaps, default=0.0)

    return {
        "window": stamps["painted"] - start,
        "device": stamps.get("device", float("nan")) - start,
        "startup_gap": worst_gap("painted", "device"),
        "load_gap": worst_gap("load", "data"),
    }


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


def _gaps(values: list[float]) -> dict[str, object]:
    return {"worst": round(max(values), 1), "all": [round(v, 1) for v in values]}


def _summary(values: list[float]) -> dict[str, object]:
    return {"median": round(statistics.median(values), 3), "all": [round(v, 3) for v in values]}


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="fresh processes per measure")
    parser.add_argument("--data", default="", help="data set the window opens at start")
    parser.add_argument("--busy", type=int, default=0, help="busy-looping processes beside")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "startup.json"))
    args = parser.parse_args(argv)
    python = sys.executable
    runs: list[dict[str, float]] = []
    tensorflow = []
    busy = [subprocess.Popen([python, "-c", BUSY]) for _ in range(args.busy)]
    try:
        # Interleaved, so a busy moment of a shared machine hits both measures alike.
        for _ in range(args.repeat):
            runs.append(time_window(python, args.data))
            tensorflow.append(time_tensorflow(python))
    finally:
        for process in busy:
            process.kill()
            process.wait()
    command = f"{Path(python).name} bench/startup.py --repeat {args.repeat}"
    if args.data:
        command += f" --data {args.data}"
    if args.busy:
        command += f" --busy {args.busy}"
    result: dict[str, object] = {
        "command": command,
        "time_to_window_s": _summary([r["window"] for r in runs]),
        "time_to_device_s": _summary([r["device"] for r in runs]),
        "import_tensorflow_s": _summary(tensorflow),
        "worst_gap_ms": {
            "probe_interval_ms": 10,
            "startup": _gaps([r["startup_gap"] for r in runs]),
            "first_data_load": _gaps([r["load_gap"] for r in runs]) if args.data else None,
        },
        "busy_processes": args.busy,
        "qt_platform": _env().get("QT_QPA_PLATFORM", "default"),
        **machine_fields(),
    }
    return write_result(result, args.out)


if __name__ == "__main__":
    main()
