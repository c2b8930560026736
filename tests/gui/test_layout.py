"""Nothing the window shows is cut off at its default size (1180 x 800) or on a 1366 x 768
laptop screen: every tab is walked with a data set loaded and the default model open."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QApplication

from cifar_gui.engine.service import EngineService
from cifar_gui.gui.main_window import MainWindow
from tests.gui.layout_check import clipped_text

TIMEOUT_MS = 90_000


@pytest.fixture
def loaded_window(qtbot, settings, batches_dir):
    window = MainWindow(settings=settings, models=EngineService(in_process=True))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window._painted, timeout=10_000)
    with qtbot.waitSignal(window.dataset_panel.load_finished, timeout=TIMEOUT_MS):
        window.start(str(batches_dir))
    yield window
    window.close()


@pytest.mark.parametrize("size", [(1180, 800), (1366, 768)], ids=["default", "laptop"])
def test_no_tab_shows_cut_off_text(loaded_window, qtbot, size):
    window = loaded_window
    window.resize(*size)
    problems = []
    for index in range(window.tabs.count()):
        window.tabs.setCurrentIndex(index)
        QApplication.processEvents()
        name = window.tabs.tabText(index)
        problems += [f"{name} tab: {p}" for p in clipped_text(window)]
    assert not problems, "\n".join(problems)
