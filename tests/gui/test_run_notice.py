"""The window title follows a run's progress; a long run's end asks for attention."""

from __future__ import annotations

from PySide6.QtWidgets import QWidget

from cifar_gui.engine.events import BatchEvent
from cifar_gui.gui.run_notice import LONG_RUN_S, TITLE, RunNotice, progress_title


def event(epoch: int, batch: int, epochs: int = 30, steps: int = 10) -> BatchEvent:
    return BatchEvent(epoch, epochs, batch, steps, 0.5, 0.5, 100.0, 60.0)


def test_the_title_gives_the_share_done_and_the_epoch():
    assert progress_title(event(0, 0)).startswith("0% \u00b7 epoch 1/30")
    assert progress_title(event(14, 9)).startswith("50% \u00b7 epoch 15/30")
    assert progress_title(event(29, 9)).startswith("100% \u00b7 epoch 30/30")


def test_only_a_long_run_notifies_and_the_title_comes_back(qtbot):
    window = QWidget()
    qtbot.addWidget(window)
    now = [1000.0]
    notice = RunNotice(window, clock=lambda: now[0])
    notice.started()
    notice.progress(event(2, 4))
    assert window.windowTitle() == progress_title(event(2, 4))
    now[0] += LONG_RUN_S - 1
    notice.ended("Training finished")
    assert window.windowTitle() == TITLE and notice.last_notice is None  # short: no notice
    notice.started()
    notice.started()  # a study's next run: the clock keeps the first run's start
    now[0] += LONG_RUN_S
    notice.ended("The study has finished")
    assert notice.last_notice == "The study has finished"
