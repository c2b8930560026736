"""The Study action of the Training tab on tiny data: the study runs in the training process
with its overall progress, is stopped mid-study, resumed to its end, and its report opens."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox

from cifar_gui.config import SEED_VARIANTS
from cifar_gui.engine.data.dataset import load_dataset
from cifar_gui.engine.study.plan import read_study
from cifar_gui.engine.study.run_folders import new_study_folder
from cifar_gui.gui.live_view import LiveView
from cifar_gui.gui.state import AppState
from cifar_gui.gui.training import TrainingPanel
from cifar_gui.gui.training import panel as panel_module
from cifar_gui.variant_style import variant_color
from tests.conftest import write_cifar_batches

STUDY_TIMEOUT_MS = 600_000  # a hang guard only: four tiny runs take a minute or two


@pytest.fixture
def warnings(monkeypatch) -> list[str]:
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _p, _title, text, *_: shown.append(text))
    return shown


@pytest.fixture
def opened(monkeypatch) -> list[Path]:
    """Reports the panel would open in the browser (patched: no browser in a test)."""
    paths: list[Path] = []
    monkeypatch.setattr(panel_module, "open_in_browser", lambda path: paths.append(path) or True)
    return paths


def make_panel(qtbot, tmp_path: Path) -> TrainingPanel:
    """Deer and horse: 20 training images (3 batches of 8), 12 test images; 2 epochs a run,
    VGG16 with random weights (nothing to download)."""
    data = write_cifar_batches(tmp_path / "batches", per_batch=20, test=60)
    state = AppState()
    state.set_dataset(load_dataset(data), str(data))
    panel = TrainingPanel(state)
    qtbot.addWidget(panel, before_close_func=lambda p: p.shutdown())
    panel.form.out_path.set_text(str(tmp_path / "runs"))
    panel.form.epochs_spin.setValue(2)
    panel.form.batch_spin.setValue(8)
    panel.form.limit_spin.setValue(0)
    panel.form.weights_combo.setCurrentIndex(panel.form.weights_combo.findData("none"))
    return panel


def test_study_stops_mid_way_resumes_and_opens_its_report(qtbot, tmp_path, warnings, opened):
    panel = make_panel(qtbot, tmp_path)
    lines: list[str] = []
    panel.batch_progress.connect(lambda _e: lines.append(panel.results.study_label.text()))
    events = []
    panel.study_run.connect(events.append)
    # The Live tab, wired as the main window wires it: each run of the study is shown live.
    live = LiveView()
    qtbot.addWidget(live)
    panel.controller.run_started.connect(live.begin_run)
    panel.controller.live_snapshot.connect(live.show_snapshot)
    live.request_changed.connect(panel.controller.ask_live)
    shown: list[tuple[str, str, int]] = []  # (variant of the run, layer shown, epoch)
    panel.controller.live_snapshot.connect(
        lambda snap: shown.append((events[-1].variant, snap.layer, snap.epoch))
    )
    assert panel.study_button.isEnabled()

    # Stop once the augmented run has trained an epoch.
    with qtbot.waitSignal(
        panel.epoch_finished,
        timeout=STUDY_TIMEOUT_MS,
        check_params_cb=lambda _e: events[-1].variant == "augmented",
    ):
        panel.study_button.click()
    assert not panel.study_button.isEnabled() and panel.form.stop_button.isEnabled()
    with qtbot.waitSignal(panel.run_finished, timeout=STUDY_TIMEOUT_MS) as blocker:
        panel.form.stop_button.click()
    stopped = blocker.args[0]
    assert stopped.stopped and stopped.report is None
    folder = tmp_path / "runs" / "study"
    assert stopped.folder == folder
    assert read_study(folder)[1][0].state == "done"
    assert "Study stopped" in panel.results.study_label.text()
    assert panel.results.progress.format() == "Stopped" and opened == []
    # The overall progress: which run, which epoch, the whole study's time left.
    assert any(line.startswith("Study: run 1 of 4 (baseline) \u00b7 epoch ") for line in lines)
    assert any("run 2 of 4 (augmented)" in line and "study ETA " in line for line in lines)
    # The finished baseline is overlaid in its variant's colour; the live run in its own.
    assert panel.results.plots.overlay_labels == ["baseline"]
    assert ("baseline", "conv2d", 0) in shown and ("baseline", "conv2d", 1) in shown
    # Ask for the baseline's second convolution: the augmented run (the same network) shows it.
    index = live.layer_combo.findData("conv2d_1")
    live.layer_combo.setCurrentIndex(index)
    live.layer_combo.activated.emit(index)  # as a click on it

    # Resume: the study continues to its end and its report opens.
    events.clear()
    before_resume = len(shown)
    with qtbot.waitSignal(panel.run_finished, timeout=STUDY_TIMEOUT_MS) as blocker:
        panel.resume_study_button.click()
    done = blocker.args[0]
    assert not done.stopped
    report = folder / "report" / "report.html"
    assert done.report == report and report.is_file()
    assert opened == [report]
    assert str(report) in panel.report_label.text()
    assert "Study done" in panel.results.study_label.text()
    assert [(e.variant, e.skipped) for e in events if e.state == "done"] == [
        ("baseline", True), ("augmented", False), ("transfer", False), ("finetune", False)
    ]  # fmt: skip
    assert [r.state for r in read_study(folder)[1]] == ["done"] * 4
    # Every run trained after the resume was shown live at each epoch's end (augmented from
    # the epoch it resumed at) with the layer asked for; the VGG16 runs, which have no
    # conv2d_1, at their first convolution.
    resumed = shown[before_resume:]
    assert [(v, e) for v, _, e in resumed] == [
        ("augmented", 1), ("transfer", 0), ("transfer", 1), ("finetune", 0), ("finetune", 1)
    ]  # fmt: skip
    assert [layer for _, layer, _ in resumed] == ["conv2d_1"] + ["vgg16/block1_conv1"] * 4
    assert live.snapshot.layer == "vgg16/block1_conv1" and live.layer_combo.currentData() is None
    assert panel.results.plots.overlay_labels == list(SEED_VARIANTS)
    pen = panel.results.plots._overlays["augmented"][0][1].opts["pen"]
    assert pen.color().name() == variant_color("augmented")
    # The transfer model just trained is where a fine-tune would continue from.
    assert panel.form.from_path.text() == str(folder / "cifar10_4_7_transferlearning.h5")
    assert warnings == []
    assert panel.study_button.isEnabled()


def test_a_second_study_goes_to_a_new_folder_and_resume_without_a_study_says_so(
    qtbot, tmp_path, warnings, opened
):
    panel = make_panel(qtbot, tmp_path)
    first = tmp_path / "runs" / "study"
    first.mkdir(parents=True)
    (first / "study.json").write_text("{}")
    assert new_study_folder(tmp_path / "runs") == tmp_path / "runs" / "study-2"
    assert not panel.resume_study(tmp_path / "runs" / "nothing")
    assert "no study to resume" in warnings[-1]
    assert not panel.busy


def test_an_offline_study_from_the_window_pretrains_its_base_and_its_report_says_so(
    qtbot, tmp_path, warnings, opened, monkeypatch
):
    """Issue 25: offline, with the form's default weights (ImageNet), the window's study
    pretrains a base on the other classes first, starts its transfer from it, and its report
    judges the pretrained-network claim with that base and names it."""
    from cifar_gui.engine.record import read_record
    from cifar_gui.engine.study import base as study_base
    from cifar_gui.engine.study.record import read_study_record

    monkeypatch.setattr(study_base, "weights_host_reachable", lambda timeout=0: False)
    monkeypatch.setattr(study_base, "imagenet_weights_cached", lambda: None)
    panel = make_panel(qtbot, tmp_path)
    panel.form.weights_combo.setCurrentIndex(panel.form.weights_combo.findData("imagenet"))
    events = []
    panel.study_run.connect(events.append)
    with qtbot.waitSignal(panel.run_finished, timeout=STUDY_TIMEOUT_MS) as blocker:
        panel.study_button.click()
    done = blocker.args[0]
    assert not done.stopped and warnings == []
    assert [e.variant for e in events if e.state == "done"] == ["pretrain", *SEED_VARIANTS]

    record = read_study_record(done.folder)
    assert record.base["source"] == "pretrained-here"
    base = done.folder / record.runs[0].model
    assert base.is_file() and base.parent.name == "base"
    transfer = read_record(done.folder / "cifar10_4_7_transferlearning.json")
    assert transfer.config.base == str(base)
    assert set(record.base["classes"]).isdisjoint({"deer", "horse"})
    page = done.report.read_text()
    assert base.name in page and "ImageNet weights unavailable offline" in page
    claim = page[: page.index("A pretrained network is highly effective")]
    verdict = claim[claim.rindex('<section class="claim') :]
    assert 'data-verdict="holds"' in verdict or 'data-verdict="does not hold"' in verdict
