"""Regenerate every picture in docs/screenshots/ from CIFAR-10 and trained models.

    .venv/bin/python docs/make_screenshots.py [--data ../shared/data/cifar10]    # all
    .venv/bin/python docs/make_screenshots.py --only live study report          # some

In a temporary folder it trains the baseline and the augmented model (deer vs horse,
``TABLE_EPOCHS`` epochs each, with ``cifar-gui train``), so the Training tab overlays real
curves, then runs ``cifar-gui --screenshot-dir docs/screenshots --data DATA`` there: one PNG
per tab (the Activations and Evaluation tabs show the bundled baseline, trained 30 epochs).
``live``: the Live tab during a baseline run, ``live.png`` and an animation of its refreshes,
``live.webp``. ``study``: the window during a study (``STUDY_LIMIT`` images, VGG16 with random
weights), ``study.png``. ``report``: the report of the measured study (``docs/study/``, its
run records) as headless Chromium renders it, ``study_report.png``.
CIFAR-10 pictures may appear in screenshots (see ../shared/data/README.md); the data set
itself is never copied into the repository.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "cifar10"
OUT = ROOT / "docs" / "screenshots"
TABLE_EPOCHS = 12  # the runs the Training tab overlays
PARTS = ("tabs", "live", "study", "report")


STUDY_EPOCHS = 3
STUDY_LIMIT = 2000  # images per split: the VGG16 runs in minutes


def loaded_window(data: Path, work: Path, timeout_s: float):
    """An offscreen window with its runs and settings in ``work``, shown, with ``data``
    loaded; None (and a message) when the data set does not load."""
    import os

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from cifar_gui.gui.main_window import MainWindow
    from cifar_gui.gui.screenshots import WINDOW_SIZE, wait_until
    from cifar_gui.gui.training import SETTINGS_OUT_DIR

    QApplication.instance() or QApplication([])
    settings = QSettings(str(work / "settings.ini"), QSettings.Format.IniFormat)
    settings.setValue(SETTINGS_OUT_DIR, str(work / "runs"))
    window = MainWindow(settings=settings)
    window.resize(*WINDOW_SIZE)
    window.show()
    loaded: list[bool] = []
    window.dataset_panel.load_finished.connect(loaded.append)
    window.start(str(data))
    if not wait_until(lambda: bool(loaded), timeout_s) or not loaded[0]:
        print("the data set did not load", file=sys.stderr)
        window.close()
        return None
    return window


def study_screenshot(data: Path, work: Path, out: Path, timeout_s: float = 1800) -> int:
    """The window during a study, as ``out/study.png``."""
    window = loaded_window(data, work, timeout_s)
    if window is None:
        return 1
    from PySide6.QtWidgets import QApplication

    from cifar_gui.gui.screenshots import wait_until

    app = QApplication.instance()
    try:
        window.show_panel("Training")
        panel = window.training_panel
        panel.form.epochs_spin.setValue(STUDY_EPOCHS)
        panel.form.limit_spin.setValue(STUDY_LIMIT)
        panel.form.weights_combo.setCurrentIndex(panel.form.weights_combo.findData("none"))
        folder = work / "runs" / "study"
        if not panel.start_study(folder):
            return 1
        results = panel.results

        def transfer_under_way() -> bool:
            study = results.study
            return study is not None and study.index == 2 and len(results.history.get(
                "loss", [])) >= 2  # fmt: skip

        if not wait_until(transfer_under_way, timeout_s):
            print("the study did not reach its transfer run", file=sys.stderr)
            return 1
        wait_until(lambda: False, 1.0)  # the next batches drawn
        window.grab().save(str(out / "study.png"))
        panel.stop()
        wait_until(lambda: not panel.busy, timeout_s)
        app.processEvents()
    finally:
        window.close()
        window.deleteLater()
    print(out / "study.png")
    return 0


LIVE_EPOCHS = 20
LIVE_FRAMES = 16  # refreshes in the animation
LIVE_EVERY = 40  # batches between refreshes: about 8 in an epoch of 313 batches
LIVE_SCALE = 0.6  # the animation's frames, of the 1180 x 800 window


def live_screenshot(data: Path, work: Path, out: Path, timeout_s: float = 1800) -> int:
    """The Live tab during a baseline run: ``out/live.png`` after the last refresh, and
    ``out/live.webp``, one frame per refresh."""
    window = loaded_window(data, work, timeout_s)
    if window is None:
        return 1
    from PIL import Image
    from PySide6.QtWidgets import QApplication

    from cifar_gui.gui.screenshots import wait_until

    app = QApplication.instance()
    frames: list[Image.Image] = []

    def grab(_snapshot) -> None:
        app.processEvents()
        image = window.grab().toImage()
        size = (int(image.width() * LIVE_SCALE), int(image.height() * LIVE_SCALE))
        frame = Image.frombytes(
            "RGBA", (image.width(), image.height()), bytes(image.constBits()), "raw", "BGRA"
        )
        frames.append(frame.convert("RGB").resize(size, Image.Resampling.LANCZOS))

    try:
        panel, live = window.training_panel, window.live_panel
        panel.form.epochs_spin.setValue(LIVE_EPOCHS)
        panel.form.limit_spin.setValue(0)
        window.show_panel("Live")
        live.every_spin.setValue(LIVE_EVERY)
        panel.controller.live_snapshot.connect(grab)
        panel.form.start_button.click()
        if not wait_until(lambda: len(frames) >= LIVE_FRAMES, timeout_s):
            print("the live view was not refreshed", file=sys.stderr)
            return 1
        panel.controller.live_snapshot.disconnect(grab)
        app.processEvents()
        window.grab().save(str(out / "live.png"))
        frames[0].save(
            out / "live.webp", save_all=True, append_images=frames[1:], duration=700,
            loop=0, quality=70, method=6,
        )  # fmt: skip
        panel.stop()
        wait_until(lambda: not panel.busy, timeout_s)
    finally:
        window.close()
        window.deleteLater()
    print(out / "live.png")
    print(out / "live.webp")
    return 0


def report_screenshot(folder: Path, path: Path) -> int:
    """The top of the report of the study in ``folder`` (its run records are enough: the
    models need not be there), written afresh and rendered by headless Chromium, as
    ``path``."""
    import json
    import shutil

    from cifar_gui.engine.study.plan import STUDY_FILE
    from cifar_gui.engine.study.report import write_report
    from cifar_gui.engine.study.runs import discover_runs

    browser = shutil.which("chromium") or shutil.which("google-chrome")
    if browser is None:
        print("no headless Chromium (chromium or google-chrome) installed", file=sys.stderr)
        return 1
    runs = discover_runs(folder)
    if not runs:
        print(f"{folder}: no run records (sidecar .json files)", file=sys.stderr)
        return 1
    study = folder / STUDY_FILE
    command = json.loads(study.read_text())["command"] if study.is_file() else None
    with tempfile.TemporaryDirectory() as tmp:
        page = write_report(runs, Path(tmp) / "report", study_command=command)
        subprocess.check_call(
            [
                browser,
                "--headless",
                "--no-sandbox",  # Chromium refuses to start as root without it
                "--disable-gpu",
                "--hide-scrollbars",
                f"--user-data-dir={Path(tmp) / 'profile'}",
                f"--screenshot={path}",
                "--window-size=1280,1370",
                page.as_uri(),
            ],
            stderr=subprocess.DEVNULL,
        )
    print(path)
    return 0


def tab_screenshots(data: Path, work: Path, out: Path) -> int:
    """Two short runs for the Training tab's table and curves, then one PNG per tab."""
    for variant in ("baseline", "augmented"):
        subprocess.check_call(
            [sys.executable, "-m", "cifar_gui", "train", "--variant", variant, "--data",
             str(data), "--epochs", str(TABLE_EPOCHS), "--out", "runs"],
            cwd=work,
        )  # fmt: skip
    return subprocess.call(
        [sys.executable, "-m", "cifar_gui", "--screenshot-dir", str(out), "--data", str(data)],
        cwd=work,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description="Regenerate docs/screenshots/.")
    parser.add_argument(
        "--data", default=str(DEFAULT_DATA), help="CIFAR-10, in any form the app opens"
    )
    parser.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS))
    args = parser.parse_args()
    data = Path(args.data)
    report = OUT / "study_report.png"
    if "report" in args.only and report_screenshot(ROOT / "docs" / "study", report):
        return 1
    needs_data = [part for part in args.only if part != "report"]
    if needs_data and not data.exists():
        print(f"{data}: no CIFAR-10 there (give --data)", file=sys.stderr)
        return 2
    steps = {"tabs": tab_screenshots, "live": live_screenshot, "study": study_screenshot}
    for part in needs_data:
        with tempfile.TemporaryDirectory() as tmp:
            if steps[part](data, Path(tmp), OUT):
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
