"""Event-loop stalls while the window opens its default model and while the Activations tab
changes image, or while the Augmentation tab makes its first previews: the worst gap between
the ticks of a 10 ms ``QTimer`` probe on the GUI thread.

Each run is a fresh process (as ``cifar-gui``): the window is shown, the Activations tab made
current (it asks for the bundled model, which the window opens through its engine service),
then ``--changes`` images are shown one after another, each once the previous one's analysis
has ended. Reported: the worst gap from the tab's first show until the model's first analysis
is shown ("model_open": the child starts, imports TensorFlow, loads the model), and from
the first image change until the last analysis is shown ("image_changes"). The target is no
gap over 50 ms. ``--in-process`` puts the models in the window's process (on the panels'
worker threads, as before the service) for comparison; ``--busy N`` runs N busy-looping
processes beside the app.

``--augmentation``: the window is shown, a picture chosen and the Augmentation tab made current
(its first preview: the engine service starts and imports TensorFlow, unless device detection
has started it already), then ``--changes`` more previews are asked for one after another
(Reseed), each once the previous grid is shown. Reported: the worst gap from the tab's show
until the last grid is shown ("previews").

Usage::

    python bench/model_stalls.py [--repeat 3] [--changes 20] [--busy 1] [--in-process]
        [--augmentation] [--out bench/results/model_stalls.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
from pathlib import Path

from benchutil import machine_fields, write_result
from startup import BUSY, _env

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, tempfile, time
import numpy as np
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtWidgets import QApplication
from cifar_gui.engine.service import EngineService
from cifar_gui.gui.main_window import MainWindow

changes, in_process = int(sys.argv[1]), sys.argv[2] == "1"
app = QApplication([sys.argv[0]])
settings = QSettings(tempfile.mktemp(suffix=".ini"), QSettings.Format.IniFormat)
window = MainWindow(settings=settings, models=EngineService(in_process=in_process))
panel = window.activation_panel
images = np.random.default_rng(0).integers(0, 256, size=(changes, 32, 32, 3), dtype=np.uint8)
ticks, stamps, shown = [], {}, []
probe = QTimer(interval=10, timerType=Qt.TimerType.PreciseTimer)
probe.timeout.connect(lambda: ticks.append(time.time()))

def next_image():
    if len(shown) == changes:
        stamps["changed"] = time.time()
        probe.stop()
        print(json.dumps({"ticks": ticks, **stamps}), flush=True)
        QTimer.singleShot(0, window.close)
        return
    shown.append(True)
    panel.set_image(images[len(shown) - 1], f"image {len(shown)}")

def analysed():
    if not panel.analysis_job.busy and panel.analysis is not None:
        if "model" not in stamps:
            stamps["model"] = time.time()
            stamps["change"] = time.time()
        QTimer.singleShot(0, next_image)

def painted():
    probe.start()
    stamps["open"] = time.time()
    window.tabs.setCurrentWidget(panel)  # shown: it asks for the bundled model

panel.analysis_job.finished.connect(analysed)
window.first_painted.connect(painted)
window.show()
app.exec()
"""

# Only what the window had before the engine service too, so both can be measured.
AUGMENT_CHILD = r"""
import json, sys, tempfile, time
import numpy as np
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtWidgets import QApplication
from cifar_gui.gui.main_window import MainWindow

changes = int(sys.argv[1])
app = QApplication([sys.argv[0]])
settings = QSettings(tempfile.mktemp(suffix=".ini"), QSettings.Format.IniFormat)
window = MainWindow(settings=settings)
panel = window.augmentation_panel
image = np.random.default_rng(0).integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
ticks, stamps, shown = [], {}, []
probe = QTimer(interval=10, timerType=Qt.TimerType.PreciseTimer)
probe.timeout.connect(lambda: ticks.append(time.time()))

def previewed():
    shown.append(time.time())
    if len(shown) == 1:
        stamps["first"] = shown[0]
    if len(shown) <= changes:
        QTimer.singleShot(0, panel.reseed_button.click)
        return
    stamps["previewed"] = shown[-1]
    probe.stop()
    print(json.dumps({"ticks": ticks, "tensorflow": "tensorflow" in sys.modules, **stamps}))
    sys.stdout.flush()
    QTimer.singleShot(0, window.close)

def failed(message):
    print(message, file=sys.stderr)
    app.exit(1)

def painted():
    probe.start()
    stamps["open"] = time.time()
    window.state.choose_image(image, "probe")
    window.tabs.setCurrentWidget(panel)  # shown: its first preview is asked for

panel.preview_ready.connect(previewed)
panel.preview_failed.connect(failed)
window.first_painted.connect(painted)
window.show()
sys.exit(app.exec())
"""


def _worst(data: dict, begin: str, end: str) -> float:
    """The longest probe gap (ms) that overlaps the span from stamp ``begin`` to ``end``."""
    ticks = data["ticks"]
    gaps = [
        (b - a) * 1000 for a, b in itertools.pairwise(ticks) if b > data[begin] and a < data[end]
    ]
    return round(max(gaps, default=0.0), 1)


def one_run(python: str, changes: int, in_process: bool, augmentation: bool) -> dict[str, float]:
    child = [AUGMENT_CHILD, str(changes)] if augmentation else [CHILD, str(changes)]
    if not augmentation:
        child.append("1" if in_process else "0")
    proc = subprocess.run(
        [python, "-c", *child],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"the run failed: {proc.stderr.strip()[-800:]}")
    data = json.loads(lines[-1])
    if augmentation:
        return {
            "first_preview_s": round(data["first"] - data["open"], 2),
            "previews_gap_ms": _worst(data, "open", "previewed"),
            "tensorflow_in_window": data["tensorflow"],
        }
    return {
        "model_open_s": round(data["model"] - data["open"], 2),
        "model_open_gap_ms": _worst(data, "open", "model"),
        "image_changes_gap_ms": _worst(data, "change", "changed"),
    }


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes")
    parser.add_argument("--changes", type=int, default=20, help="image changes per process")
    parser.add_argument("--busy", type=int, default=0, help="busy-looping processes beside")
    parser.add_argument("--in-process", action="store_true", help="models in the window's process")
    parser.add_argument(
        "--augmentation", action="store_true", help="the Augmentation tab's first previews"
    )
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "model_stalls.json"))
    args = parser.parse_args(argv)
    python = sys.executable
    busy = [subprocess.Popen([python, "-c", BUSY]) for _ in range(args.busy)]
    try:
        runs = [
            one_run(python, args.changes, args.in_process, args.augmentation)
            for _ in range(args.repeat)
        ]
    finally:
        for process in busy:
            process.kill()
            process.wait()
    command = f"{Path(python).name} bench/model_stalls.py --repeat {args.repeat}"
    command += f" --changes {args.changes}"
    command += f" --busy {args.busy}" if args.busy else ""
    command += " --in-process" if args.in_process else ""
    command += " --augmentation" if args.augmentation else ""
    if args.augmentation:
        worst = {"previews": max(r["previews_gap_ms"] for r in runs)}
    else:
        worst = {
            "model_open": max(r["model_open_gap_ms"] for r in runs),
            "image_changes": max(r["image_changes_gap_ms"] for r in runs),
        }
    result: dict[str, object] = {
        "command": command,
        "probe_interval_ms": 10,
        "worst_gap_ms": worst,
        "runs": runs,
        "busy_processes": args.busy,
        **(
            {}
            if args.augmentation
            else {"model_service": "in process" if args.in_process else "child process"}
        ),
        "qt_platform": _env().get("QT_QPA_PLATFORM", "default"),
        **machine_fields(),
    }
    return write_result(result, args.out)


if __name__ == "__main__":
    main()
