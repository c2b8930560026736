"""``cifar-gui --screenshot-dir DIR [--data PATH]``: one PNG per panel, for the README.

The window opens offscreen with throw-away settings (the user's are neither read nor
written; the Training tab lists the runs in ``./runs`` of the working folder), loads the data
in its worker as usual, and waits for every worker to finish before each picture, so the PNGs
show what a person sees once the app has settled.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEventLoop, QSettings, QThread
from PySide6.QtWidgets import QApplication, QWidget

from cifar_gui.gui.main_window import MainWindow
from cifar_gui.gui.training import SETTINGS_OUT_DIR
from cifar_gui.gui.workers import JobRunner

WINDOW_SIZE = (1180, 800)  # pixels; the size of every screenshot


def wait_until(predicate: Callable[[], bool], timeout_s: float) -> bool:
    """Run the event loop until ``predicate()`` is true; False when ``timeout_s`` passed."""
    app = QApplication.instance()
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        QThread.msleep(10)  # the workers need the CPU more than this loop does
    app.processEvents()
    return True


def _settle(window: MainWindow, timeout_s: float) -> None:
    """Wait until no worker of the window (device detection, data, previews) is busy."""
    runners = window.findChildren(JobRunner)
    preview = window.augmentation_panel
    wait_until(lambda: not preview.busy and not any(r.busy for r in runners), timeout_s)


def _save(widget: QWidget, path: Path) -> Path:
    if not widget.grab().save(str(path)):
        raise OSError(f"{path}: cannot write the PNG")
    return path


def save_screenshots(out_dir: str | Path, data: str | None = None, timeout_s: float = 300) -> int:
    """Save one PNG per panel (and a few views of the Dataset panel) into ``out_dir``.

    Returns 0, or 1 after printing one line when the data set could not be opened (the
    pictures are still saved: they then show the no-data page).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        settings = QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat)
        settings.setValue(SETTINGS_OUT_DIR, str(Path("runs").resolve()))
        window = MainWindow(settings=settings)
        try:
            return _shoot(window, out, data, timeout_s)
        finally:
            window.close()
            window.deleteLater()


def _shoot(window: MainWindow, out: Path, data: str | None, timeout_s: float) -> int:
    window.resize(*WINDOW_SIZE)
    window.show()
    panel = window.dataset_panel
    wait_until(lambda: window._painted, 30)
    saved = [_save(window, out / "dataset_empty.png")]

    outcome: list[bool] = []
    panel.load_finished.connect(outcome.append)
    window.start(data)
    if not wait_until(lambda: bool(outcome), timeout_s):
        print(f"cifar-gui: the data set did not load within {timeout_s:.0f} s", file=sys.stderr)
        return 1
    _settle(window, timeout_s)
    for title, widget in window.panels().items():
        window.tabs.setCurrentWidget(widget)
        _settle(window, timeout_s)
        if widget is window.training_panel:
            widget.results.table.selectAll()  # overlay the runs found in the output folder, if any
            _settle(window, timeout_s)
        saved.append(_save(window, out / f"{title.lower()}.png"))
        if widget is panel and outcome[0]:
            saved += _dataset_views(window, out)
    for path in saved:
        print(path)
    if not outcome[0]:
        print(f"cifar-gui: {panel.error_message}", file=sys.stderr)
        return 1
    return 0


def _dataset_views(window: MainWindow, out: Path) -> list[Path]:
    """The seed samples and the large view of one clicked thumbnail."""
    panel = window.dataset_panel
    panel.views.setCurrentIndex(1)
    QApplication.processEvents()
    paths = [_save(window, out / "dataset_seed_samples.png")]
    panel.views.setCurrentIndex(0)
    index = panel.thumbnails.index(0, 0)
    panel.grid.clicked.emit(index)
    QApplication.processEvents()
    paths.append(_save(panel.zoom, out / "dataset_image.png"))
    panel.zoom.close()
    return paths
