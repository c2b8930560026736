"""Regenerate docs/screenshots/ from a synthetic image-folder data set.

The README's screenshots may not show CIFAR-10 pictures (the data set is not redistributed
in this repository), so this script draws a small stand-in: per class a sky and ground
colour and a body shape, 60 training and 20 test images each; trains two short runs on it;
then runs ``cifar-gui --screenshot-dir docs/screenshots --data <folder>``. With real
CIFAR-10 the panels look the same, with photographs in the grids.

    .venv/bin/python docs/make_screenshots.py
    .venv/bin/python docs/make_screenshots.py --study   # study.png only
    .venv/bin/python docs/make_screenshots.py --live    # live.png: the Live tab during a run
    .venv/bin/python docs/make_screenshots.py --report STUDY_DIR   # study_report.png

``--study`` runs the seed's study in the window (offscreen) on the same stand-in data, 8
epochs a run and VGG16 with random weights, and grabs the window while the transfer run is
in progress (baseline and augmented overlaid). ``--report`` writes the report of a study from
its run records (``docs/study/`` holds the measured study's) and saves the top of it, as
headless Chromium renders it, as ``study_report.png``.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from cifar_gui.engine.data import CIFAR10_CLASSES

ROOT = Path(__file__).resolve().parents[1]


def draw(label: int, rng: np.random.Generator) -> Image.Image:
    """A 32x32 picture: a sky/ground scene with a class-coloured body."""
    hue = np.array([(label * 97) % 256, (label * 53 + 90) % 256, (label * 31 + 40) % 256])
    sky = tuple(int(v) for v in np.clip(hue * 0.4 + 140 + rng.normal(0, 12, 3), 0, 255))
    ground = tuple(int(v) for v in np.clip(np.array([70, 110, 50]) + rng.normal(0, 15, 3), 0, 255))
    body = tuple(int(v) for v in np.clip(hue * 0.8 + rng.normal(0, 20, 3), 0, 255))
    img = Image.new("RGB", (32, 32), sky)
    pen = ImageDraw.Draw(img)
    horizon = int(rng.integers(16, 24))
    pen.rectangle([0, horizon, 31, 31], fill=ground)
    x, y = int(rng.integers(4, 14)), int(rng.integers(8, 16))
    w, h = int(rng.integers(12, 18)), int(rng.integers(6, 11))
    if label % 2:
        pen.ellipse([x, y, x + w, y + h], fill=body)
    else:
        pen.rectangle([x, y, x + w, y + h], fill=body)
    for leg in (x + 2, x + w - 3):  # four-legged or not, it reads as an animal at 32 px
        pen.line([leg, y + h, leg, min(31, y + h + 7)], fill=body, width=2)
    noise = rng.normal(0, 6, (32, 32, 3))
    return Image.fromarray(np.clip(np.asarray(img) + noise, 0, 255).astype(np.uint8))


def make_dataset(root: Path, train: int = 60, test: int = 20) -> Path:
    rng = np.random.default_rng(0)
    for split, count in (("train", train), ("test", test)):
        for label, name in enumerate(CIFAR10_CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                draw(label, rng).save(folder / f"{i:04d}.png")
    return root


STUDY_EPOCHS = 8


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
        panel.form.limit_spin.setValue(0)
        panel.form.weights_combo.setCurrentIndex(panel.form.weights_combo.findData("none"))
        folder = work / "runs" / "study"
        if not panel.start_study(folder):
            return 1
        results = panel.results

        def transfer_under_way() -> bool:
            study = results.study
            return study is not None and study.index == 2 and len(results.history.get(
                "loss", [])) >= 3  # fmt: skip

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


def live_screenshot(data: Path, work: Path, out: Path, timeout_s: float = 900) -> int:
    """The Live tab during a baseline run, after a few refreshes, as ``out/live.png``."""
    window = loaded_window(data, work, timeout_s)
    if window is None:
        return 1
    from PySide6.QtWidgets import QApplication

    from cifar_gui.gui.screenshots import wait_until

    app = QApplication.instance()
    try:
        panel, live = window.training_panel, window.live_panel
        panel.form.epochs_spin.setValue(LIVE_EPOCHS)
        panel.form.limit_spin.setValue(0)
        window.show_panel("Live")
        live.every_spin.setValue(2)  # a refresh every 2 batches: the sparklines fill up
        panel.form.start_button.click()
        if not wait_until(lambda: live.refreshes >= 12, timeout_s):
            print("the live view was not refreshed", file=sys.stderr)
            return 1
        app.processEvents()
        window.grab().save(str(out / "live.png"))
        panel.stop()
        wait_until(lambda: not panel.busy, timeout_s)
    finally:
        window.close()
        window.deleteLater()
    print(out / "live.png")
    return 0


def report_screenshot(folder: Path, path: Path) -> int:
    """The top of the report of the study in ``folder`` (its run records are enough: the
    models need not be there), written afresh and rendered by headless Chromium, as
    ``path``."""
    import json
    import shutil

    from cifar_gui.engine.report import write_report
    from cifar_gui.engine.runs import discover_runs
    from cifar_gui.engine.study import STUDY_FILE

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


def main() -> int:
    if "--live" in sys.argv[1:]:
        with tempfile.TemporaryDirectory() as tmp:
            data = make_dataset(Path(tmp) / "synthetic")
            return live_screenshot(data, Path(tmp), ROOT / "docs" / "screenshots")
    if "--study" in sys.argv[1:]:
        with tempfile.TemporaryDirectory() as tmp:
            data = make_dataset(Path(tmp) / "synthetic")
            return study_screenshot(data, Path(tmp), ROOT / "docs" / "screenshots")
    if "--report" in sys.argv[1:]:
        where = sys.argv[1:][sys.argv[1:].index("--report") + 1 :]
        if not where:
            print("--report needs the folder of a study's run records", file=sys.stderr)
            return 2
        out = ROOT / "docs" / "screenshots" / "study_report.png"
        return report_screenshot(Path(where[0]), out)
    with tempfile.TemporaryDirectory() as tmp:
        data = make_dataset(Path(tmp) / "synthetic")
        # Two short runs in <tmp>/runs (the Training tab's default output folder, relative to
        # the working folder), so its screenshot overlays their curves.
        for variant in ("baseline", "augmented"):
            subprocess.check_call(
                [
                    sys.executable,
                    "-m",
                    "cifar_gui",
                    "train",
                    "--variant",
                    variant,
                    "--data",
                    str(data),
                    "--epochs",
                    "12",
                    "--out",
                    "runs",
                ],
                cwd=tmp,
            )
        out = ROOT / "docs" / "screenshots"
        return subprocess.call(
            [sys.executable, "-m", "cifar_gui", "--screenshot-dir", str(out), "--data", str(data)],
            cwd=tmp,
        )


if __name__ == "__main__":
    sys.exit(main())
