"""The study card's pre-flight: offline it lists the base's pretrain first, every seed's runs
and a total, computed on a worker through the engine service; the study's ETA then uses it."""

from __future__ import annotations

from cifar_gui.engine.study import base as study_base
from cifar_gui.gui.training.results import StudyProgress
from tests.gui.test_study_view import make_panel

ESTIMATE_TIMEOUT_MS = 300_000  # a hang guard only: five tiny calibrations


def test_the_card_estimates_the_offline_study_of_two_seeds(qtbot, tmp_path, monkeypatch):
    monkeypatch.setattr(study_base, "weights_host_reachable", lambda timeout=0: False)
    panel = make_panel(qtbot, tmp_path)
    panel.form.weights_combo.setCurrentIndex(panel.form.weights_combo.findData("imagenet"))
    card = panel.study_card
    card.seeds_spin.setValue(2)
    with qtbot.waitSignal(card.estimated, timeout=ESTIMATE_TIMEOUT_MS) as signal:
        assert panel.estimate_study()
        assert not panel.study_button.isEnabled()  # not while it calibrates
    estimate = signal.args[0]
    lines = card.estimate_label.text().splitlines()
    assert lines == estimate.lines()
    assert len(lines) == 10 and lines[0].startswith("1. pretrain the base (cnn, 8 classes)")
    assert lines[-1].startswith("total: ")
    assert estimate.total_seconds is not None and estimate.total_seconds > 0
    qtbot.waitUntil(panel.study_button.isEnabled)
    assert not list((tmp_path / "runs").glob("*"))  # nothing written
    plan = panel.new_study_plan()
    assert card.estimates_for(plan) == estimate.step_seconds()
    card.seeds_spin.setValue(1)  # another study: the estimate is not its
    assert card.estimates_for(panel.new_study_plan()) == ()


def test_the_study_line_gives_the_eta_the_later_steps_with_their_estimates():
    progress = StudyProgress(
        index=1,
        variant="baseline",
        epochs=2,
        schedule=[("pretrain", 15), ("baseline", 2), ("augmented", 2), ("transfer", 2)],
        estimates=(100.0, 10.0, 12.0, 40.0),
    )
    assert progress.later() == [("augmented", 2, 12.0), ("transfer", 2, 40.0)]
    assert progress.text(0, 5.0).endswith("study ETA 0:00:57")  # 5 + 12 + 40 s
    # Without a schedule (nothing planned told): the seed's runs after this one.
    assert StudyProgress(variant="transfer", epochs=3).later() == [("finetune", 3, None)]
