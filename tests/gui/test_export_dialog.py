"""The Export dialog: it exports through a child process and shows the result, shows a bad
target's one-line error, offers only the formats that can be exported, and opens from
File > Export model... with the current model."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QFileDialog

from cifar_gui import resources
from cifar_gui.engine.models import export
from cifar_gui.engine.record import ParameterCounts
from cifar_gui.engine.service import EngineService, ModelHandle
from cifar_gui.gui.export_dialog import ExportDialog
from cifar_gui.gui.main_window import MainWindow

TIMEOUT_MS = 180_000  # a child process that imports TensorFlow, on a busy machine


@pytest.fixture
def dialog(qtbot):
    dialog = ExportDialog(resources.default_model_path())
    qtbot.addWidget(dialog)  # closed at the end: its close joins the export's thread
    dialog.show()
    return dialog


def test_the_dialog_exports_in_a_child_process_and_shows_the_result(qtbot, tmp_path):
    """Close during the export waits for it (its child writes a temporary folder), then
    closes the dialog, which deletes itself (so it is not given to qtbot to close)."""
    dialog = ExportDialog(resources.default_model_path())
    destroyed: list[bool] = []
    dialog.destroyed.connect(lambda: destroyed.append(True))
    dialog.show()
    dialog.set_format("tflite")
    assert dialog.folder_edit.text().endswith("cifar10_4_7_tflite")  # suggested beside it
    dialog.folder_edit.setText(str(tmp_path / "out"))
    with qtbot.waitSignal(dialog.exported, timeout=TIMEOUT_MS) as done:
        dialog.export_button.click()
        assert not dialog.export_button.isEnabled()  # busy
        dialog.reject()
        assert dialog.isVisible() and "closes when the export is done" in dialog.status.text()
    result = done.args[0]
    assert result.artifact == tmp_path / "out" / "model.tflite" and result.artifact.is_file()
    assert (tmp_path / "out" / "README.md").is_file()
    assert f"Exported {result.artifact}" in dialog.status.text()
    qtbot.waitUntil(lambda: destroyed == [True], timeout=10_000)  # closed when the job ended


def test_a_bad_target_shows_its_one_line_error(dialog, qtbot, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("x")
    dialog.folder_edit.setText(str(tmp_path / "full"))
    failed = []
    dialog.failed.connect(failed.append)
    # The job's end too: its thread must be over before the test ends, on a busy machine also.
    with qtbot.waitSignals([dialog.failed, dialog.job.finished], timeout=TIMEOUT_MS):
        dialog.export_button.click()
    assert failed[0] == f"{tmp_path / 'full'}: folder is not empty (export into a new or " \
        "an empty folder)"  # fmt: skip
    assert dialog.status.text() == f"Not exported: {failed[0]}"
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["mine.txt"]


def test_a_format_that_cannot_be_exported_is_offered_disabled_with_why(qtbot, monkeypatch):
    monkeypatch.setattr(export, "ONNX_CONVERTER", "no_such_converter_module")
    dialog = ExportDialog()
    qtbot.addWidget(dialog)
    item = dialog.format_combo.model().item(dialog.format_combo.findData("onnx"))
    assert not item.isEnabled()
    assert "needs the tf2onnx converter" in item.toolTip()
    saved = dialog.format_combo.model().item(dialog.format_combo.findData("savedmodel"))
    assert saved.isEnabled() and "serving" in saved.toolTip()


def test_browse_fills_in_the_folder_and_an_own_folder_stays(dialog, monkeypatch, tmp_path):
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a: str(tmp_path))
    dialog._browse_folder()
    assert dialog.folder_edit.text() == str(tmp_path)
    dialog.set_format("onnx")  # a folder the user chose is not replaced by a suggestion
    assert dialog.folder_edit.text() == str(tmp_path)


def test_file_export_model_opens_the_dialog_with_the_current_model(qtbot, settings, tmp_path):
    window = MainWindow(settings=settings, models=EngineService(in_process=True))
    qtbot.addWidget(window)
    model = Path(tmp_path / "mine.h5")
    window.state.model = ModelHandle(
        model, ("deer", "horse"), (32, 32), (), (), ParameterCounts(0, 0, 0), False
    )
    file_menu = window.menuBar().actions()[0].menu()
    assert window.export_model_action in file_menu.actions()
    window.export_model_action.trigger()
    dialog = window.findChild(ExportDialog)
    assert dialog is not None and dialog.isVisible()
    assert dialog.model_edit.text() == str(model)
    assert dialog.folder_edit.text() == str(tmp_path / "mine_savedmodel")
    dialog.reject()
    window.close()
