"""Training progress in the window title, and a desktop notification when a long run ends.

A run of the study takes minutes to hours: the title shows how far the run in progress is
(visible in the task bar while the user works elsewhere), and when a run that took at least
:data:`LONG_RUN_S` ends the window asks for attention (``QApplication.alert``) and, where the
desktop has a notification area, shows a message there.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QObject
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QSystemTrayIcon, QWidget

from cifar_gui.engine.events import BatchEvent

TITLE = "cifar-gui"
LONG_RUN_S = 60.0  # a run at least this long is worth a notification when it ends


def progress_title(event: BatchEvent) -> str:
    """The window title during a run: its share done and its epoch."""
    done = (event.epoch * event.steps + event.batch + 1) / max(event.epochs * event.steps, 1)
    return f"{min(done, 1.0):.0%} \u00b7 epoch {event.epoch + 1}/{event.epochs} \u2014 {TITLE}"


class RunNotice(QObject):
    """Keeps ``window``'s title and the end-of-run notification; the window calls
    :meth:`started`, :meth:`progress` and :meth:`ended`."""

    def __init__(self, window: QWidget, clock: Callable[[], float] = time.monotonic):
        super().__init__(window)
        self.window = window
        self.clock = clock
        self._since: float | None = None
        self._tray: QSystemTrayIcon | None = None
        self.last_notice: str | None = None  # the last notification shown (for tests)

    def started(self) -> None:
        """A run (or a study's first run) has started."""
        if self._since is None:
            self._since = self.clock()

    def progress(self, event: BatchEvent) -> None:
        self.window.setWindowTitle(progress_title(event))

    def ended(self, text: str) -> None:
        """The run (or study) has ended; ``text`` says how, in a few words."""
        self.window.setWindowTitle(TITLE)
        since, self._since = self._since, None
        if since is None or self.clock() - since < LONG_RUN_S:
            return
        self.last_notice = text
        QApplication.alert(self.window)
        if QSystemTrayIcon.isSystemTrayAvailable():
            if self._tray is None:
                self._tray = QSystemTrayIcon(self.window.windowIcon() or QIcon(), self)
            self._tray.show()
            self._tray.showMessage(TITLE, text)
