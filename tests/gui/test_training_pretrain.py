"""The Training tab's "Pretrain a base on the other classes": a run of the training process
on every class but the pair, whose model becomes the transfer's base; and the refusal of a
base that saw the pair, shown before the run (tiny synthetic data)."""

from __future__ import annotations

import json

import pytest
from PySide6.QtWidgets import QMessageBox

from cifar_gui.config import PRETRAIN_EPOCHS, RunConfig
from cifar_gui.engine.data.dataset import load_dataset
from cifar_gui.engine.training.run import run_training
from cifar_gui.gui.state import AppState
from cifar_gui.gui.training import TrainingPanel

RUN_TIMEOUT_MS = 120_000  # a tiny run takes seconds; the shared test machine can be slow
CNN_COUNTS = "trainable 295,425 \u00b7 non-trainable 93,248"  # Dense 256 head; three convs


@pytest.fixture
def warnings(monkeypatch) -> list[str]:
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _p, _title, text, *_: shown.append(text))
    return shown


@pytest.fixture
def state(batches_dir) -> AppState:
    state = AppState()
    state.set_dataset(load_dataset(batches_dir), str(batches_dir))
    return state


def make_panel(qtbot, state: AppState, out_dir) -> TrainingPanel:
    panel = TrainingPanel(state)
    qtbot.addWidget(panel, before_close_func=lambda p: p.shutdown())
    panel.form.out_path.set_text(str(out_dir))
    panel.form.batch_spin.setValue(8)
    panel.form.limit_spin.setValue(16)
    return panel


def test_the_pretrain_button_trains_a_base_on_the_other_classes(qtbot, state, tmp_path, warnings):
    panel = make_panel(qtbot, state, tmp_path / "runs")
    form = panel.form
    assert form.pretrain_button.isEnabled()
    assert "8 other classes, never deer or horse" in form.pretrain_label.text()
    with qtbot.waitSignal(panel.run_finished, timeout=RUN_TIMEOUT_MS) as blocker:
        form.pretrain_button.click()
    outcome = blocker.args[0]
    assert warnings == [] and outcome is not None
    path = outcome.path
    assert path.name == "cifar10_0_1_2_3_5_6_8_9_pretrainedbase.h5"
    side = json.loads(path.with_suffix(".json").read_text())
    assert side["config"]["variant"] == "pretrain"
    assert side["config"]["epochs"] == PRETRAIN_EPOCHS["cnn"]
    assert set(side["class_names"]).isdisjoint({"deer", "horse"})
    assert "Start pretrain (cnn)" in panel.results.log.toPlainText()
    # The base is the next transfer's, and its counts are shown before that run.
    assert form.weights_combo.currentData() == "base" and form.weights_path.text() == str(path)
    with qtbot.waitSignal(form.counts_shown, timeout=RUN_TIMEOUT_MS):
        panel.set_variant("transfer")
    assert panel.form.params_label.text() == CNN_COUNTS
    assert form.config().base == str(path)


def test_a_base_that_saw_the_pair_is_refused_before_the_run(qtbot, state, tmp_path, warnings):
    seen = run_training(
        RunConfig.tiny(classes=("deer", "cat"), out_dir=str(tmp_path / "seen")),
        dataset=state.dataset,
    )
    panel = make_panel(qtbot, state, tmp_path / "runs")
    form = panel.form
    panel.set_variant("transfer")
    form.use_base(str(seen.path))
    qtbot.waitUntil(lambda: "trained on deer" in form.params_label.text(), timeout=RUN_TIMEOUT_MS)
    with qtbot.waitSignal(form.counts_shown, timeout=RUN_TIMEOUT_MS):
        form.overlap_check.setChecked(True)
    assert panel.form.params_label.text() == CNN_COUNTS
    assert form.config().allow_overlap
