"""Closing the window during a run (asks, stops, joins, saves) and Resume in the Training tab
(tiny synthetic data; dialogs are patched so nothing blocks)."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtWidgets import QDialog, QMessageBox

from cifar_gui import cli
from cifar_gui.engine.data.dataset import load_dataset
from cifar_gui.engine.training.checkpoints import list_checkpoints
from cifar_gui.gui.resume_dialog import ResumeDialog
from cifar_gui.gui.state import AppState
from cifar_gui.gui.text import format_probability
from cifar_gui.gui.training import TrainingPanel

RUN_TIMEOUT_MS = 120_000  # a tiny run takes seconds; the shared test machine can be slow


@pytest.fixture(autouse=True)
def _no_training_process_left():
    """Every training process has ended (and was joined) when a test ends."""
    yield
    assert multiprocessing.active_children() == []


@pytest.fixture
def warnings(monkeypatch) -> list[str]:
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _p, _title, text, *_: shown.append(text))
    return shown


class Answers:
    """Answers for the close question, in turn, and the questions asked."""

    def __init__(self) -> None:
        self.queue: list[QMessageBox.StandardButton] = []
        self.asked: list[str] = []

    def append(self, answer: QMessageBox.StandardButton) -> None:
        self.queue.append(answer)


@pytest.fixture
def answers(monkeypatch) -> Answers:
    """Patches the close question (a QMessageBox run with exec) so nothing blocks."""
    patched = Answers()

    def exec_(box: QMessageBox) -> QMessageBox.StandardButton:
        patched.asked.append(box.text())
        return patched.queue.pop(0)

    monkeypatch.setattr(QMessageBox, "exec", exec_)
    return patched


@pytest.fixture
def state(batches_dir) -> AppState:
    state = AppState()
    state.set_dataset(load_dataset(batches_dir), str(batches_dir))
    return state


def tiny_panel(qtbot, state: AppState, out_dir: Path, epochs: int, batch: int = 4):
    panel = TrainingPanel(state)
    qtbot.addWidget(panel, before_close_func=lambda p: p.shutdown())
    panel.form.out_path.set_text(str(out_dir))
    panel.form.epochs_spin.setValue(epochs)
    panel.form.batch_spin.setValue(batch)
    panel.form.limit_spin.setValue(40)
    panel.form.seed_spin.setValue(5)
    return panel


def _window_for_a_long_run(qtbot, state, tmp_path, settings):
    """A shown window whose Training tab is set for a 500-epoch run into ``tmp_path/runs``;
    with the list its finished epochs will be appended to."""
    from cifar_gui.gui.main_window import MainWindow

    window = MainWindow(state, settings=settings)
    qtbot.addWidget(window)
    window.show()
    panel = window.training_panel
    out = tmp_path / "runs"
    panel.form.out_path.set_text(str(out))
    panel.form.epochs_spin.setValue(500)
    panel.form.batch_spin.setValue(2)
    panel.form.limit_spin.setValue(40)
    epochs = []
    panel.epoch_finished.connect(epochs.append)
    return window, panel, out, epochs


def test_closing_during_a_run_asks_and_stop_and_quit_saves_everything(
    qtbot, state, tmp_path, settings, answers, warnings
):
    window, panel, out, _epochs = _window_for_a_long_run(qtbot, state, tmp_path, settings)
    with qtbot.waitSignal(panel.batch_progress, timeout=RUN_TIMEOUT_MS):
        panel.form.start_button.click()

    answers.append(QMessageBox.StandardButton.Cancel)
    assert window.close() is False  # Cancel: the window stays and the run goes on
    assert panel.busy and "Stop it and quit?" in answers.asked[0]
    with qtbot.waitSignal(panel.batch_progress, timeout=RUN_TIMEOUT_MS):
        pass

    answers.append(QMessageBox.StandardButton.Yes)  # "Stop and quit"
    # The window does not block on the run: it says so, keeps painting, closes when saved.
    assert window.close() is False and window.isVisible() and not window.tabs.isEnabled()
    # The whole message is the status bar's tooltip; the bar may shorten it to fit beside the
    # permanent labels (how much depends on the device's name).
    assert window.statusBar().currentMessage().startswith("Stopping the")
    assert "Stopping the training run" in window.statusBar().toolTip()
    assert window.close() is False and len(answers.asked) == 2  # no second question
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=RUN_TIMEOUT_MS)
    window.wait_closed()  # the engine's child, as the app waits for it after its event loop
    # It closed once the training process had saved and ended (however long that took).
    assert not [p for p in multiprocessing.active_children() if p.name == "cifar-gui-training"]
    assert not panel.busy and len(answers.asked) == 2
    assert settings.value("window/geometry") is not None
    assert json.loads(str(settings.value("training/form")))["epochs"] == 500
    # The stopped run was saved: it is in the run table of the next session.
    again = TrainingPanel(AppState(), settings)
    qtbot.addWidget(again)
    (run,) = again.results.table.runs
    assert run.record.stopped and run.model_path.name == "cifar10_4_7.h5"
    assert run.model_path.parent.parent == out  # the run's own folder in the output folder
    assert run.model_path.is_file()
    assert warnings == []


def test_the_close_question_says_whether_the_run_can_be_resumed(
    qtbot, state, tmp_path, settings, answers, warnings
):
    window, panel, out, epochs = _window_for_a_long_run(qtbot, state, tmp_path, settings)

    panel.form.start_button.click()  # no event handled yet: the run is inside its first epoch
    answers.append(QMessageBox.StandardButton.Cancel)
    assert window.close() is False
    assert "cannot be resumed" in answers.asked[0] and "resumed later" not in answers.asked[0]

    with qtbot.waitSignal(panel.epoch_finished, timeout=RUN_TIMEOUT_MS):
        pass
    answers.append(QMessageBox.StandardButton.Yes)
    assert window.close() is False
    done = len(epochs)  # each epoch heard of has its checkpoint already
    assert f"resumed later from the end of epoch {done} " in answers.asked[1]
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=RUN_TIMEOUT_MS)
    window.wait_closed()  # the engine's child, as the app waits for it after its event loop
    (checkpoint,) = list_checkpoints(out)
    assert checkpoint.epochs_completed >= done
    assert warnings == []


def test_stop_and_quit_in_the_first_epoch_leaves_no_checkpoint(
    qtbot, state, tmp_path, settings, answers, warnings
):
    window, panel, out, epochs = _window_for_a_long_run(qtbot, state, tmp_path, settings)
    panel.form.start_button.click()
    answers.append(QMessageBox.StandardButton.Yes)
    assert window.close() is False and "cannot be resumed" in answers.asked[0]
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=RUN_TIMEOUT_MS)
    window.wait_closed()  # the engine's child, as the app waits for it after its event loop
    if not epochs:  # the stop came before the first epoch ended, as the question said
        assert list_checkpoints(out) == []
    assert warnings == []


def test_closing_when_idle_does_not_ask(qtbot, state, settings, answers):
    from cifar_gui.gui.main_window import MainWindow

    window = MainWindow(state, settings=settings)
    qtbot.addWidget(window)
    assert window.close() is True and answers.asked == []


def run_to_end(qtbot, panel: TrainingPanel, start) -> object:
    with qtbot.waitSignal(panel.run_finished, timeout=RUN_TIMEOUT_MS) as blocker:
        start()
    return blocker.args[0]


@pytest.mark.slow
def test_resume_continues_a_finished_run_like_an_uninterrupted_one(
    qtbot, state, batches_dir, tmp_path, monkeypatch, warnings
):
    panel = tiny_panel(qtbot, state, tmp_path / "gui", epochs=2)
    first = run_to_end(qtbot, panel, panel.form.start_button.click)
    assert first is not None

    chosen = []

    def pick(dialog: ResumeDialog) -> int:
        chosen.append([dialog.list.item(i).text() for i in range(dialog.list.count())])
        dialog.epochs_spin.setValue(3)  # one more epoch than the finished run had
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(ResumeDialog, "exec", pick)
    outcome = run_to_end(qtbot, panel, panel.form.resume_button.click)

    assert chosen == [
        [
            f"{first.path.parent.name}/cifar10_4_7 \u00b7 baseline \u00b7 deer vs horse \u00b7 "
            "finished, 2 epochs"
            f" \u00b7 val acc {format_probability(outcome.record.history['val_accuracy'][1])}"
        ]
    ]
    assert outcome is not None and outcome.record.epochs_completed == 3
    assert panel.results.plots.point_counts()["train"] == 3  # the earlier epochs are drawn too
    assert "Resume cifar10_4_7" in panel.results.log.toPlainText()
    (row,) = panel.results.table.runs
    assert (row.record.epochs_completed, row.record.epochs_planned) == (3, 3)

    args = ["train", "--variant", "baseline", "--classes", "4", "7", "--data", str(batches_dir),
            "--epochs", "3", "--batch-size", "4", "--limit", "40", "--seed", "5",
            "--out", str(tmp_path / "cli")]  # fmt: skip
    assert cli.main(args) == 0
    cli_history = json.loads((tmp_path / "cli" / "cifar10_4_7.json").read_text())["history"]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(outcome.record.history[key], cli_history[key], rtol=1e-5)
    assert warnings == []


def test_resume_refuses_a_finished_run_without_more_epochs(qtbot, state, tmp_path, warnings):

    panel = tiny_panel(qtbot, state, tmp_path / "runs", epochs=1)
    assert run_to_end(qtbot, panel, panel.form.start_button.click) is not None
    (checkpoint,) = list_checkpoints(tmp_path / "runs")
    assert checkpoint.finished

    assert panel.resume(checkpoint, epochs=1) is False
    assert not panel.busy and len(warnings) == 1
    assert "all 1 epochs are done" in warnings[0] and "\n" not in warnings[0]


def test_resume_with_nothing_to_resume_says_so(qtbot, tmp_path, warnings):
    panel = tiny_panel(qtbot, AppState(), tmp_path / "empty", epochs=1)
    with qtbot.waitSignal(panel.resume_listed, timeout=RUN_TIMEOUT_MS):
        panel.form.resume_button.click()
    assert len(warnings) == 1 and "no run to resume" in warnings[0]
    assert panel.form.resume_button.isEnabled()
