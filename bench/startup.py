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

``--phases`` (needs ``--data``, an image folder with ``test/``): one fresh window each time,
driven through start-up (first paint to device known), the first data load, a drop of
:data:`DROP_FILES` test images (until they are classified and the first one analysed), Start
of a tiny run (baseline, 300 images, until its first batches are drawn), its first epoch, and
"Stop and quit" after it (until the event loop has ended). Reported per phase: the worst probe
gap, median and max over ``--rounds`` rounds, each round quiet and then with one busy
process beside; whether each stopped run saved its model; and the window's child processes
still alive :data:`ORPHAN_WAIT_S` after its process ended. ``--compare DIR`` measures another
checkout (say, the commit before a change) the same way, alternating with this one.
``--trace`` prints the GUI thread's stack whenever the probe is 30 ms late (diagnosis).

Usage::

    python bench/startup.py [--repeat 5] [--data DIR] [--busy 1] [--out bench/results/startup.json]
    python bench/startup.py --phases --data DIR [--rounds 3] [--compare DIR] [--trace]

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

PHASES_CHILD = r"""
import json, os, sys, tempfile, threading, time, traceback
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QTimer, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QApplication
from cifar_gui.gui.main_window import MainWindow

data, drops, trace = sys.argv[1], sys.argv[2].split(os.pathsep), sys.argv[3] == "1"
out = tempfile.mkdtemp(prefix="phases-")
app = QApplication([sys.argv[0]])
settings = QSettings(os.path.join(out, "settings.ini"), QSettings.Format.IniFormat)
window = MainWindow(settings=settings)
window.resize(1300, 850)
panel, activations = window.training_panel, window.activation_panel
ticks, stamps = [time.time()], {}
probe = QTimer(interval=10, timerType=Qt.TimerType.PreciseTimer)
probe.timeout.connect(lambda: ticks.append(time.time()))
probe.start()

if trace:  # the GUI thread's stack, sampled while the probe is late (diagnosis only)
    gui = threading.get_ident()
    def watch():
        while True:
            time.sleep(0.005)
            late = time.time() - ticks[-1]
            if late > 0.03:
                frame = sys._current_frames().get(gui)
                stack = "".join(traceback.format_stack(frame, limit=14)) if frame else ""
                print(f"LATE {late * 1000:.0f} ms\n{stack}", file=sys.stderr, flush=True)
                time.sleep(0.02)
    threading.Thread(target=watch, daemon=True).start()

def stamp(what):
    stamps[what] = time.time()

pending = {"device", "data"}
def ready(what):
    stamp(what)
    pending.discard(what)
    if not pending:
        QTimer.singleShot(300, drop)

def drop():
    stamp("drop")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(path) for path in drops])
    event = QDropEvent(QPointF(200, 200), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)  # as Qt calls it (sendEvent needs a drag in progress)

def classified(_result):
    QTimer.singleShot(0, lambda: waited_analysis())

def waited_analysis():
    if activations.analysis_job.busy:
        QTimer.singleShot(10, waited_analysis)
        return
    stamp("dropped")
    QTimer.singleShot(300, train)

def train():
    stamp("train")
    window.show_panel("Training")
    form = panel.form
    form.out_path.set_text(out)
    panel.set_variant("baseline")
    form.epochs_spin.setValue(4)
    form.batch_spin.setValue(32)
    form.seed_spin.setValue(0)
    form.limit_spin.setValue(300)
    if not panel.start():
        print("the run did not start", file=sys.stderr)
        app.exit(1)

def batches(_event):
    if "batch" not in stamps:
        stamp("batch")

def epoch(_event):
    if "epoch" not in stamps:
        QTimer.singleShot(0, lambda: stamp("epoch"))
        QTimer.singleShot(300, stop_and_quit)

children = []
def stop_and_quit():
    stamp("stop")
    me = str(os.getpid())  # the window's child processes (training, engine), to check later
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                if entry.isdigit() and f.read().rsplit(")", 1)[1].split()[1] == me:
                    with open(f"/proc/{entry}/cmdline", "rb") as c:
                        children.append((int(entry), c.read().replace(b"\0", b" ").decode()))
        except (OSError, IndexError):
            pass
    panel.confirm_close = lambda: True  # the question's "Stop and quit"
    window.close()

window.first_painted.connect(lambda: (stamp("painted"), stamp("load"), window.start(data)))
window.dataset_panel.load_finished.connect(lambda ok: ready("data"))
window.device_job.result.connect(lambda _r: ready("device"))
window.device_job.error.connect(lambda msg: (print(msg, file=sys.stderr), app.exit(1)))
panel.run_failed.connect(lambda msg: (print(msg, file=sys.stderr), app.exit(1)))
activations.files_classified.connect(classified)
panel.batch_progress.connect(batches)
panel.epoch_finished.connect(epoch)
window.show()
code = app.exec()
stamp("exited")
ticks.append(stamps["exited"])  # the loop's last turn until exec() returned counts
getattr(window, "wait_closed", lambda: None)()  # as cifar-gui does (a --compare may lack it)
stamp("ended")
saved = [str(p.relative_to(out)) for p in __import__("pathlib").Path(out).rglob("*.keras")]
print("PHASES " + json.dumps({"ticks": ticks, "stamps": stamps, "children": children,
                              "saved": saved, "code": code}), flush=True)
sys.exit(code)
"""

# The phases of --phases: (name, begin stamp, end stamp) of PHASES_CHILD.
PHASES = (
    ("startup", "painted", "device"),
    ("first_data_load", "load", "data"),
    ("drop", "drop", "dropped"),
    ("start_training", "train", "batch"),
    ("first_epoch", "batch", "epoch"),
    ("stop_and_quit", "stop", "exited"),
)
DROP_FILES = 4  # image files of the data set's test folder dropped on the window
ORPHAN_WAIT_S = 5.0  # a child of the window still alive this long after it exited: an orphan

BUSY = "while True: pass"
STALL_TARGET_MS = 50.0


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

    return {
        "window": stamps["painted"] - start,
        "device": stamps.get("device", float("nan")) - start,
        "startup_gap": worst_gap(ticks, stamps, "painted", "device"),
        "load_gap": worst_gap(ticks, stamps, "load", "data"),
    }


def worst_gap(ticks: list[float], stamps: dict[str, float], begin: str, end: str) -> float:
    """The longest probe gap (ms) overlapping the span from stamp ``begin`` to ``end``."""
    if begin not in stamps or end not in stamps:
        return float("nan")
    # The gap that ends first after ``begin`` counts too: it may have begun before.
    start, stop = stamps[begin], stamps[end]
    gaps = [(b - a) * 1000 for a, b in itertools.pairwise(ticks) if b > start and a < stop]
    return max(gaps, default=0.0)


def time_phases(python: str, data: str, trace: bool, root: Path = ROOT) -> dict[str, object]:
    """One fresh window driven through :data:`PHASES`: the worst probe gap (ms) of each,
    whether the stopped run saved its model, and the window's child processes still alive
    once its process has ended (orphans)."""
    drops = sorted(Path(data, "test").glob("*/*.jpg"))[:DROP_FILES]
    proc = subprocess.run(
        [python, "-c", PHASES_CHILD, data, os.pathsep.join(map(str, drops)), "1" if trace else "0"],
        cwd=root,  # its cifar_gui is the one measured
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("PHASES ")]
    if trace:
        sys.stderr.write(proc.stderr)
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"the phases run failed: {proc.stderr.strip()[-800:]}")
    run = json.loads(lines[-1].removeprefix("PHASES "))
    deadline = time.monotonic() + ORPHAN_WAIT_S
    while any(_alive(pid) for pid, _ in run["children"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    orphans = [what[-120:] for pid, what in run["children"] if _alive(pid)]
    stamps = run["stamps"]
    return {
        **{
            name: round(worst_gap(run["ticks"], run["stamps"], begin, end), 1)
            for name, begin, end in PHASES
        },
        "saved_models": len(run["saved"]),
        "exit_after_loop_s": round(stamps["ended"] - stamps["exited"], 2),
        "orphans": orphans,
    }


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def phases_main(python: str, args: argparse.Namespace) -> dict[str, object]:
    """``--phases``: quiet and busy rounds alternated (and this checkout and ``--compare``'s);
    per phase the median and max of the rounds' worst gaps."""
    roots = {"this": ROOT, **({"compare": Path(args.compare)} if args.compare else {})}
    runs: dict[str, list[dict[str, object]]] = {
        f"{tree}/{load}": [] for tree in roots for load in ("quiet", "busy1")
    }
    for _ in range(args.rounds):
        for key in runs:
            tree, load = key.split("/")
            busy = [subprocess.Popen([python, "-c", BUSY])] if load == "busy1" else []
            try:
                runs[key].append(time_phases(python, args.data, args.trace, roots[tree]))
            finally:
                for process in busy:
                    process.kill()
                    process.wait()
            print(key, runs[key][-1], file=sys.stderr, flush=True)
    summary = {
        key: {
            name: {
                "median": round(statistics.median(r[name] for r in rounds), 1),
                "max": max(r[name] for r in rounds),
                "all": [r[name] for r in rounds],
            }
            for name, _, _ in PHASES
        }
        for key, rounds in runs.items()
    }
    every = [r for rounds in runs.values() for r in rounds]
    command = f"{Path(python).name} bench/startup.py --phases --rounds {args.rounds}"
    command += f" --data {args.data}" + (f" --compare {args.compare}" if args.compare else "")
    return {
        "command": command,
        "trees": {tree: str(root) for tree, root in roots.items()},
        "probe_interval_ms": 10,
        "target_ms": STALL_TARGET_MS,
        "worst_gap_ms": summary,
        "over_target": {
            key: [name for name, _, _ in PHASES if phases[name]["max"] > STALL_TARGET_MS]
            for key, phases in summary.items()
        },
        "stopped_runs_saved": sum(r["saved_models"] > 0 for r in every),
        "rounds_total": len(every),
        "orphan_processes": [pid for r in every for pid in r["orphans"]],
        "qt_platform": _env().get("QT_QPA_PLATFORM", "default"),
        "display": os.environ.get("DISPLAY"),
        **machine_fields(),
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
    parser.add_argument(
        "--phases",
        action="store_true",
        help="drive one window through start, data load, a drop, a tiny run and Stop and quit",
    )
    parser.add_argument("--rounds", type=int, default=3, help="--phases: quiet/busy rounds")
    parser.add_argument(
        "--trace", action="store_true", help="--phases: print the GUI thread's stack when late"
    )
    parser.add_argument(
        "--compare", help="--phases: another checkout (say, before a change), measured alternately"
    )
    parser.add_argument("--out", help="result file (default: bench/results/startup[-phases].json)")
    args = parser.parse_args(argv)
    python = sys.executable
    if args.phases:
        if not args.data:
            parser.error("--phases needs --data (a CIFAR-10 image folder with test/)")
        out = args.out or ROOT / "bench" / "results" / "startup-phases.json"
        return write_result(phases_main(python, args), out)
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
    return write_result(result, args.out or ROOT / "bench" / "results" / "startup.json")


if __name__ == "__main__":
    main()
