"""GUI test fixtures: settings kept in a temporary folder, and a guard that fails any test
which leaves a QThread running or a QTimer active, naming where it was started.
"""

from __future__ import annotations

import traceback
import weakref
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, QStandardPaths, QThread, QTimer


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path: Path):
    """QSettings() of the app read and write a temporary folder, never the user's; the
    per-user folders (documents, data) are Qt's test folders (~/.qttest), not the user's."""
    folder = str(tmp_path / "settings")
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, folder)
    QStandardPaths.setTestModeEnabled(True)


@pytest.fixture
def settings(tmp_path: Path) -> QSettings:
    """A settings file of its own, for a window under test."""
    return QSettings(str(tmp_path / "window.ini"), QSettings.Format.IniFormat)


def _where() -> str:
    """The caller of ``start`` outside this file, as 'file:line in function'."""
    frames = [f for f in traceback.extract_stack()[:-2] if f.filename != __file__]
    frame = frames[-1]
    return f"{Path(frame.filename).name}:{frame.lineno} in {frame.name}"


@pytest.fixture(autouse=True)
def _no_running_qthreads_or_timers(monkeypatch):
    """Fail the test if a QThread or QTimer started from Python is still running at its end."""
    threads: weakref.WeakKeyDictionary[QThread, str] = weakref.WeakKeyDictionary()
    timers: weakref.WeakKeyDictionary[QTimer, str] = weakref.WeakKeyDictionary()
    thread_start, timer_start = QThread.start, QTimer.start

    def start_thread(self, *args):
        threads[self] = _where()
        return thread_start(self, *args)

    def start_timer(self, *args):
        timers[self] = _where()
        return timer_start(self, *args)

    monkeypatch.setattr(QThread, "start", start_thread)
    monkeypatch.setattr(QTimer, "start", start_timer)
    yield
    running = [where for thread, where in list(threads.items()) if _alive(thread.isRunning)]
    active = [where for timer, where in list(timers.items()) if _alive(timer.isActive)]
    for thread in [t for t in list(threads) if _alive(t.isRunning)]:
        thread.quit()
        thread.wait(30_000)  # do not let the next test inherit it
    for timer in [t for t in list(timers) if _alive(t.isActive)]:
        timer.stop()
    assert not running, f"QThread left running, started at: {running}"
    assert not active, f"QTimer left active, started at: {active}"


def _alive(method) -> bool:
    """``method()``, or False when its C++ object is already deleted."""
    try:
        return bool(method())
    except RuntimeError:
        return False


@pytest.fixture
def warnings(monkeypatch) -> list[str]:
    """Messages a panel would show in a dialog (patched so nothing blocks)."""
    from PySide6.QtWidgets import QMessageBox

    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _p, _title, text, *_: shown.append(text))
    return shown


@pytest.fixture
def state(batches_dir):
    """An AppState holding the tiny synthetic CIFAR-10 batches."""
    from cifar_gui.engine.data.dataset import load_dataset
    from cifar_gui.gui.state import AppState

    state = AppState()
    state.set_dataset(load_dataset(batches_dir), str(batches_dir))
    return state
