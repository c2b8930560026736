"""The main window: opening and closing cleanly, menus, settings that persist, starting
without data, a failing download, model open/save errors, and the screenshot mode."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from types import SimpleNamespace

import pytest
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from cifar_gui.engine.data import download
from cifar_gui.engine.errors import DataError
from cifar_gui.engine.service import EngineService
from cifar_gui.engine.service.client import EXIT_WAIT_S
from cifar_gui.gui.main_window import MainWindow
from cifar_gui.gui.state import user_settings
from cifar_gui.gui.workers import JobRunner

TIMEOUT_MS = 90_000  # loading, and TensorFlow imported by device detection


@pytest.fixture
def make_window(qtbot, settings):
    """Windows over one settings file; each is closed (and its threads joined) at the end."""
    windows = []

    def make(ini: QSettings = settings) -> MainWindow:
        # In-process model service: the same answers as its child, without its start.
        window = MainWindow(settings=ini, models=EngineService(in_process=True))
        qtbot.addWidget(window)
        windows.append(window)
        window.show()
        qtbot.waitUntil(lambda: window._painted, timeout=10_000)
        return window

    yield make
    for window in windows:
        window.close()


@pytest.fixture
def warnings(monkeypatch) -> list[str]:
    """QMessageBox.warning, recorded instead of shown."""
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text, *a: shown.append(text))
    return shown


def load(window: MainWindow, qtbot, source: str | None = None) -> bool:
    with qtbot.waitSignal(window.dataset_panel.load_finished, timeout=TIMEOUT_MS) as done:
        window.start(source)
    return done.args[0]


def test_window_opens_with_all_panels_and_closes_cleanly(make_window, qtbot):
    window = make_window()
    assert list(window.panels()) == [
        "Dataset",
        "Augmentation",
        "Training",
        "Live",
        "Activations",
        "Evaluation",
    ]
    assert [window.tabs.tabText(i) for i in range(window.tabs.count())] == list(window.panels())
    menus = [a.text() for a in window.menuBar().actions()]
    assert menus == ["&File", "&Help"]
    assert not window.save_model_action.isEnabled()  # no model yet
    assert "No data set" in window.status_data.text()
    qtbot.waitUntil(lambda: not window.device_job.busy, timeout=TIMEOUT_MS)
    assert window.status_device.text().startswith(("CPU", "GPU"))
    assert "TensorFlow 2." in window.about_text()
    window.close()
    assert not any(runner.busy for runner in window.findChildren(JobRunner))


def test_start_without_data_says_so_in_plain_words(make_window, qtbot):
    window = make_window()
    assert load(window, qtbot) is False  # the Keras cache of this test is empty
    panel = window.dataset_panel
    assert panel.stack.currentWidget() is panel.empty_page
    assert "not in the Keras cache" in panel.empty_detail.text()
    assert panel.empty_download.isEnabled() and panel.empty_open.isEnabled()


def test_failing_download_shows_a_message_and_leaves_the_app_usable(
    make_window, qtbot, monkeypatch, batches_dir
):
    def offline(progress=None, should_stop=None, url=download.CIFAR10_URL):
        progress(1 << 20, 10 << 20)
        raise DataError(f"could not download CIFAR-10 from {url} (network is unreachable)")

    monkeypatch.setattr(download, "download_cifar10", offline)
    window = make_window()
    panel = window.dataset_panel
    with qtbot.waitSignal(panel.load_finished, timeout=TIMEOUT_MS) as done:
        panel.empty_download.click()
    assert done.args == [False]
    assert "network is unreachable" in panel.empty_detail.text()
    assert "network is unreachable" in window.statusBar().toolTip()  # the whole message
    assert panel.stack.currentWidget() is panel.empty_page
    assert not panel.progress.isVisible() and not panel.cancel_button.isVisible()
    assert panel.empty_download.isEnabled() and panel.download_button.isEnabled()
    # Still usable: a local data set opens.
    assert load(window, qtbot, str(batches_dir)) is True
    assert panel.stack.currentWidget() is panel.browser_page
    assert "deer vs horse" in window.status_data.text()


def test_window_layout_data_source_and_classes_persist(make_window, qtbot, settings, batches_dir):
    window = make_window()
    assert load(window, qtbot, str(batches_dir)) is True
    window.state.set_classes((3, 5))
    window.tabs.setCurrentIndex(1)
    window.resize(1111, 777)
    window.close()

    again = make_window(QSettings(settings.fileName(), QSettings.Format.IniFormat))
    assert again.tabs.currentIndex() == 1
    # The offscreen screen is 800 x 800, so Qt clamps the restored width; the height fits.
    assert settings.value("window/geometry") is not None
    assert abs(again.height() - 777) <= 8
    assert again.state.classes == (3, 5)
    assert load(again, qtbot) is True  # no source given: the last one
    assert again.state.data_source == str(batches_dir)
    assert again.state.chosen_names == ("cat", "dog")
    assert "cat vs dog" in again.status_data.text()


def test_bad_model_files_give_one_line_messages(make_window, qtbot, tmp_path, warnings):
    window = make_window()
    missing = tmp_path / "missing.h5"
    with qtbot.waitSignal(window.model_job.finished, timeout=TIMEOUT_MS):
        window.open_model(str(missing))
    assert warnings == [f"{missing}: no such model file"]
    # Any model will do: the file name is checked before saving.
    window.state.model = SimpleNamespace(path=tmp_path / "current.h5")
    window.save_model(str(tmp_path / "model.txt"))
    assert warnings[-1].endswith("the name must end in .keras or .h5")
    assert window.state.model is not None


def test_save_then_open_a_model(make_window, qtbot, tmp_path, warnings):
    import keras

    from cifar_gui.engine.models.persistence import save_model
    from cifar_gui.engine.record import RunRecord

    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Flatten(),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    first = save_model(model, tmp_path / "cifar10_4_7.h5", RunRecord(class_names=("a", "b")))
    window = make_window()
    with qtbot.waitSignal(window.state.model_changed, timeout=TIMEOUT_MS):
        window.state.request_model(str(first))  # as the Training tab asks after a run
    assert window.save_model_action.isEnabled()
    target = tmp_path / "saved.keras"
    with qtbot.waitSignal(window.state.model_changed, timeout=TIMEOUT_MS):
        window.save_model(str(target))
    assert target.is_file() and target.with_suffix(".json").is_file()
    assert window.status_model.text() == "Model: saved.keras"
    window.state.set_model(None)
    with qtbot.waitSignal(window.state.model_changed, timeout=TIMEOUT_MS):
        window.open_model(str(target))
    assert window.state.model.class_names == ("a", "b")
    assert warnings == []


@pytest.mark.slow
def test_screenshot_mode_saves_one_png_per_panel(qtbot, tmp_path, batches_dir, capsys):
    from PySide6.QtGui import QImage

    from cifar_gui.gui.screenshots import save_screenshots

    assert save_screenshots(tmp_path / "shots", str(batches_dir)) == 0
    names = {p.name for p in (tmp_path / "shots").glob("*.png")}
    expected = {
        f"{t}.png" for t in ("dataset", "augmentation", "training", "activations", "evaluation")
    }
    assert expected <= names
    assert {"dataset_empty.png", "dataset_seed_samples.png", "dataset_image.png"} <= names
    image = QImage(str(tmp_path / "shots" / "augmentation.png"))
    assert (image.width(), image.height()) == (1180, 800)
    assert user_settings().allKeys() == []  # the user's settings were neither read nor written


def test_the_window_keeps_every_setting_in_the_store_it_was_given(make_window, settings, tmp_path):
    from cifar_gui.gui.training import SETTINGS_FORM, SETTINGS_OUT_DIR

    window = make_window()
    panel = window.training_panel
    panel.form.epochs_spin.setValue(7)
    panel.form.out_path.set_text(str(tmp_path / "chosen"))
    window.close()

    assert user_settings().allKeys() == []
    assert settings.value(SETTINGS_OUT_DIR) == str(tmp_path / "chosen")
    assert '"epochs": 7' in str(settings.value(SETTINGS_FORM))
    again = make_window(QSettings(settings.fileName(), QSettings.Format.IniFormat))
    assert again.training_panel.form.epochs_spin.value() == 7
    assert again.training_panel.form.out_path.text() == str(tmp_path / "chosen")


def test_the_self_test_leaves_the_users_settings_alone(qapp, capsys):
    from cifar_gui.selftest import run_self_test

    assert run_self_test() == 0, capsys.readouterr().err
    assert user_settings().allKeys() == []


def test_runs_go_to_a_per_user_folder_unless_one_was_chosen(make_window):
    from PySide6.QtCore import QStandardPaths

    documents = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    window = make_window()
    expected = Path(documents) / "cifar-gui" / "runs"
    assert expected.is_absolute() and window.training_panel.form.out_path.text() == str(expected)


def test_the_window_does_not_wait_for_tensorflow(tmp_path):
    """Building and painting the window, and detecting the device, import neither
    TensorFlow nor Keras into the window's process."""
    import os
    import subprocess
    import sys

    # Device detection imports TensorFlow in a child process: the window's process never
    # does (its import would hold the interpreter lock for about a second).
    code = (
        "import sys\n"
        "from PySide6.QtWidgets import QApplication\n"
        "from cifar_gui.gui.main_window import MainWindow\n"
        "app = QApplication([])\n"
        "w = MainWindow()\n"
        "w.device_job.finished.connect(app.quit)\n"
        "w.show(); app.processEvents(); assert w._painted\n"
        "app.exec()\n"
        "assert w._versions.get('tensorflow'), w.state.device\n"
        "heavy = sorted(m for m in ('tensorflow', 'keras') if m in sys.modules)\n"
        "w.close(); print(w.state.device); print(heavy)\n"
    )
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path)}  # not the user's settings
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr[-2000:]
    device, heavy = done.stdout.strip().splitlines()[-2:]
    assert device.startswith(("CPU: ", "GPU: ")) and heavy == "[]"


def test_status_messages_end_before_the_permanent_labels(make_window):
    window = make_window()
    window.state.message.emit("Opened model " + "/very/long/folder/name" * 20 + "/model.h5")
    bar = window.statusBar()
    shown = bar.currentMessage()
    assert shown.startswith("Opened model /very") and shown.endswith("model.h5")
    width = bar.fontMetrics().horizontalAdvance(shown)
    assert 6 + width < window.status_data.x()  # the message is drawn from x = 6
    assert "/very/long/folder/name" * 20 in bar.toolTip()  # the whole message


def test_every_run_table_column_is_on_screen_at_the_default_size(make_window, tmp_path):
    from tests.gui.test_training_view import panel_column, write_sidecar

    out = tmp_path / "runs"
    write_sidecar(out, "cifar10_4_7_augmented_with_a_long_name", "augmented", [0.6, 0.7],
                  parameters={"total": 14_846_273, "trainable": 14_586_113,
                              "non_trainable": 260_160})  # fmt: skip
    window = make_window()
    panel = window.training_panel
    window.tabs.setCurrentWidget(panel)
    panel.form.out_path.set_text(str(out))
    table = panel.results.table
    QApplication.processEvents()
    assert table.rowCount() == 1 and window.size().width() == 1180
    file_column = panel_column("File")
    assert table.columnViewportPosition(file_column) + 100 <= table.viewport().width()
    header = table.horizontalHeader()
    for column in range(table.columnCount()):
        right = header.sectionViewportPosition(column) + header.sectionSize(column)
        sizes = [header.sectionSize(c) for c in range(table.columnCount())]
        assert right <= table.viewport().width(), (column, sizes)
    assert "14,846,273" in table.item(0, panel_column("Parameters")).toolTip()


def test_the_window_never_imports_tensorflow(tmp_path, batches_dir):
    """Opening the bundled model, showing activations, evaluating and classifying a file
    through the window: the Keras models live in the model service's child process, and
    TensorFlow is never imported into the window's (its import and first calls would hold
    the interpreter lock for seconds: the window could not repaint)."""
    import os
    import subprocess
    import sys

    from PIL import Image

    picture = tmp_path / "picture.png"
    Image.new("RGB", (40, 30), (200, 120, 40)).save(picture)
    code = f"""
import sys
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication
from cifar_gui.engine.data.dataset import load_dataset
from cifar_gui.gui.main_window import MainWindow
app = QApplication([])
window = MainWindow(settings=QSettings({str(tmp_path / "w.ini")!r}, QSettings.Format.IniFormat))
window.state.set_dataset(load_dataset({str(batches_dir)!r}), "tiny")
window.show()
activations, evaluation = window.activation_panel, window.evaluation_panel

def wait(predicate, what):
    deadline = 600_000  # ms; the child imports TensorFlow on a shared machine
    from PySide6.QtCore import QDeadlineTimer, QEventLoop
    timer = QDeadlineTimer(deadline)
    while not predicate():
        assert not timer.hasExpired(), what
        app.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents, 50)

window.tabs.setCurrentWidget(activations)  # shown: it asks for the bundled model
wait(lambda: window.state.model is not None, "the bundled model")
wait(lambda: activations.analysis is not None, "the activations")
wait(lambda: not activations.analysis_job.busy, "the analysis job")
assert len(activations.analysis.layers) == 9 and activations.analysis.cam is not None
activations.test_index.setValue(2)  # another image: analysed again, in the child
wait(lambda: "x_test[1]" in activations.analysis.caption, "the second image")
results = []
activations.files_classified.connect(results.append)
window.classify_files([{str(picture)!r}])
wait(lambda: results, "the dropped file")
assert len(results[0].predictions) == 1, results[0].errors
window.tabs.setCurrentWidget(evaluation)
wait(lambda: evaluation.result is not None, "the evaluation")
assert evaluation.confusion.rowCount() == 2
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
pid = window.models.pid
window.close()
print(heavy[:5]); print(pid is not None)
"""
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path)}  # not the user's settings
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    heavy, child = done.stdout.strip().splitlines()[-2:]
    assert heavy == "[]" and child == "True"


def test_the_status_bar_says_which_model_is_opening_and_which_is_current(make_window):
    window = make_window()
    window.state.model_loading.emit("/somewhere/cifar10_4_7_augm.h5")
    assert window.status_model.text() == "Opening cifar10_4_7_augm.h5\u2026"
    window.state.model_failed.emit("cifar10_4_7_augm.h5: not a model file")
    assert window.status_model.text() == "No model"  # the current one again


def test_closing_returns_to_the_event_loop_before_the_engine_child_ends(qtbot, settings):
    """The window closes at once; the engine's child ends after it, and none outlives it."""
    window = MainWindow(settings=settings, models=EngineService())
    qtbot.addWidget(window)
    window.models._start()  # what its first request does (no TensorFlow needed here)
    pid = window.models.pid
    os.kill(pid, signal.SIGSTOP)  # stopped, the child cannot end until the test lets it
    try:
        assert window.close() is True and not window.isVisible()
        turns = []
        QTimer.singleShot(0, lambda: turns.append(True))
        qtbot.waitUntil(lambda: turns == [True])  # the event loop runs: close did not wait
        os.kill(pid, 0)  # and the child is still there
        assert window.wait_closed(0) is False
    finally:
        os.kill(pid, signal.SIGCONT)
    assert window.wait_closed(EXIT_WAIT_S * 3) is True
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # reaped: no orphan, no zombie
