"""Nothing the window shows is cut off at its default size (1180 x 800) or on a 1366 x 768
laptop screen: every tab is walked after a short run has trained (a row in the run table,
curves and their legend, a live snapshot) and the default model has been evaluated, with
every folded section of the Training tab open."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QApplication

from cifar_gui.engine.service import EngineService
from cifar_gui.gui.main_window import MainWindow
from cifar_gui.gui.widgets.section import Section
from cifar_gui.gui.workers import JobRunner
from tests.gui.layout_check import clipped_text

TIMEOUT_MS = 180_000  # a tiny run and an evaluation on a busy machine


@pytest.fixture(scope="module")
def trained_window(qapp, tmp_path_factory, request):
    """One window for both sizes: a tiny baseline run trained, the Evaluation tab filled."""
    from PySide6.QtCore import QSettings
    from pytestqt.qtbot import QtBot

    from tests.conftest import write_cifar_batches

    work = tmp_path_factory.mktemp("layout")
    data = write_cifar_batches(work / "cifar-10-batches-py")
    settings = QSettings(str(work / "window.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings, models=EngineService(in_process=True))
    qtbot = QtBot(request)
    window.resize(1180, 800)
    window.show()
    qtbot.waitUntil(lambda: window._painted, timeout=10_000)
    with qtbot.waitSignal(window.dataset_panel.load_finished, timeout=TIMEOUT_MS):
        window.start(str(data))
    panel = window.training_panel
    panel.form.out_path.set_text(str(work / "runs"))
    panel.form.epochs_spin.setValue(2)
    panel.form.batch_spin.setValue(4)
    panel.form.limit_spin.setValue(40)
    window.show_panel("Training")
    with qtbot.waitSignal(panel.run_finished, timeout=TIMEOUT_MS):
        panel.form.start_button.click()
    panel.results.table.selectAll()  # the run overlaid: its legend entries
    evaluation = window.evaluation_panel
    with qtbot.waitSignal(evaluation.evaluated, timeout=TIMEOUT_MS):
        window.show_panel("Evaluation")
    for section in window.findChildren(Section):
        section.set_open(True)
    runners = window.findChildren(JobRunner)  # settled: no job outlives the first test
    qtbot.waitUntil(lambda: not any(runner.busy for runner in runners), timeout=TIMEOUT_MS)
    yield window
    window.close()


@pytest.mark.parametrize("size", [(1180, 800), (1366, 768)], ids=["default", "laptop"])
def test_no_tab_shows_cut_off_text(trained_window, size, qtbot):
    window = trained_window
    window.resize(*size)
    problems = []
    for index in range(window.tabs.count()):
        window.tabs.setCurrentIndex(index)
        QApplication.processEvents()
        name = window.tabs.tabText(index)
        problems += [f"{name} tab: {p}" for p in clipped_text(window)]
    # The tabs just shown start their previews: let them end inside this test.
    busy = [window.augmentation_panel, *window.findChildren(JobRunner)]
    qtbot.waitUntil(lambda: not any(job.busy for job in busy), timeout=TIMEOUT_MS)
    assert not problems, "\n".join(problems)


def test_the_checker_finds_a_label_too_narrow_for_its_text(qtbot):
    from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

    box = QWidget()
    qtbot.addWidget(box)
    label = QLabel("A label whose words do not fit in the forty pixels it is given")
    label.setFixedWidth(40)
    QVBoxLayout(box).addWidget(label)
    box.show()
    QApplication.processEvents()
    assert len(clipped_text(box)) == 1
    label.setFixedWidth(label.sizeHint().width())
    assert clipped_text(box) == []


def test_the_checker_finds_a_legend_entry_past_its_view(qtbot):
    from cifar_gui.gui.widgets.training_plots import TrainingPlots

    plots = TrainingPlots()
    qtbot.addWidget(plots)
    plots.resize(900, 400)
    plots.show()
    history = {"loss": [0.7, 0.6], "val_loss": [0.7, 0.65], "accuracy": [0.5, 0.6]}
    plots.set_overlays([("cifar10_4_7_finetuningtransferlearning_seed12", history)])
    QApplication.processEvents()
    assert clipped_text(plots) == []  # the legend widened to the name
    plots.legend_view.setFixedWidth(120)
    QApplication.processEvents()
    assert any("legend entry" in problem for problem in clipped_text(plots))

