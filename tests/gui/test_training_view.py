"""The Training tab: runs in a child process with live plots, stop, failures, the run table,
export, advanced settings, and GUI vs command line reproducibility (tiny synthetic data).
Closing during a run and Resume: test_resume_close.py."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QSettings, Qt

from cifar_gui import cli
from cifar_gui.config import RunConfig
from cifar_gui.engine.events import BatchEvent
from cifar_gui.gui.state import AppState
from cifar_gui.gui.training import TrainingPanel
from cifar_gui.gui.training.trace import BatchTrace

RUN_TIMEOUT_MS = 120_000  # a tiny run takes seconds; the shared test machine can be slow


def add_panel(qtbot, state: AppState) -> TrainingPanel:
    """A panel whose threads and timers are stopped when the test ends, as the window does."""
    panel = TrainingPanel(state)
    qtbot.addWidget(panel, before_close_func=lambda p: p.shutdown())
    return panel


def make_panel(qtbot, state: AppState, out_dir: Path, **settings) -> TrainingPanel:
    """A panel set to a tiny run: 20 images (10 deer, 10 horse), 5 batches of 4 an epoch."""
    panel = add_panel(qtbot, state)
    panel.form.out_path.set_text(str(out_dir))
    panel.set_variant(settings.get("variant", "baseline"))
    panel.form.epochs_spin.setValue(settings.get("epochs", 2))
    panel.form.batch_spin.setValue(settings.get("batch_size", 4))
    panel.form.limit_spin.setValue(40)
    panel.form.seed_spin.setValue(settings.get("seed", 0))
    return panel


def run(qtbot, panel: TrainingPanel):
    """Click Start and wait for the run to end; returns the outcome (None on failure)."""
    with qtbot.waitSignal(panel.run_finished, timeout=RUN_TIMEOUT_MS) as blocker:
        panel.form.start_button.click()
    return blocker.args[0]


def event(epoch: int, batch: int, loss: float, accuracy: float, steps: int = 4) -> BatchEvent:
    return BatchEvent(epoch, 2, batch, steps, loss, accuracy, 100.0, 1.0)


def test_batch_trace_recovers_batch_values_and_bundles_them():
    trace = BatchTrace(smoothing=0.0)
    # Per-batch losses 1, 2, 3, 4 arrive as the epoch's running means 1, 1.5, 2, 2.5.
    first = trace.add(event(0, 0, 1.0, 0.0))
    assert first is not None and first.x.tolist() == [0.25]  # the first batch goes at once
    assert trace.add(event(0, 1, 1.5, 0.5)) is None  # not drawn yet: kept for the next bundle
    assert trace.add(event(0, 2, 2.0, 2 / 3)) is None
    trace.delivered()  # the GUI thread has drawn the first bundle
    bundle = trace.add(event(0, 3, 2.5, 0.75))
    assert bundle.x.tolist() == [0.5, 0.75, 1.0]
    np.testing.assert_allclose(bundle.loss, [2.0, 3.0, 4.0])
    np.testing.assert_allclose(bundle.accuracy, [1.0, 1.0, 1.0])
    assert bundle.event.batch == 3
    assert trace.add(event(1, 0, 7.0, 1.0)) is None  # a new epoch restarts the running mean
    np.testing.assert_allclose(trace.flush().loss, [7.0])
    assert trace.flush() is None


def test_run_reports_progress_plots_saves_and_lists_it(qtbot, state, tmp_path, warnings):
    panel = make_panel(qtbot, state, tmp_path / "runs", variant="augmented")
    batches, epochs = [], []
    panel.batch_progress.connect(batches.append)
    panel.epoch_finished.connect(epochs.append)
    assert panel.results.table.rowCount() == 0

    requested = []
    state.model_requested.connect(requested.append)
    heard = []  # (signal, whether on the GUI thread)
    c = panel.controller
    for name in ("run_started", "batches", "epoch_finished", "live_snapshot"):
        getattr(c, name).connect(  # direct: called on the thread that emits
            lambda *_, n=name: heard.append(
                (n, threading.current_thread() is threading.main_thread())
            ),
            Qt.ConnectionType.DirectConnection,
        )
    outcome = run(qtbot, panel)

    assert warnings == []
    assert outcome is not None and not outcome.stopped
    # The controller's one dispatcher emits every signal on the GUI thread, live snapshots too.
    assert {n for n, _ in heard} == {"run_started", "batches", "epoch_finished", "live_snapshot"}
    assert all(on_gui for _, on_gui in heard) and heard[0][0] == "run_started"
    assert [e.epoch for e in epochs] == [0, 1]
    # One batch event per compiled call: on a CPU "auto" runs up to 8 batches a call, so each
    # epoch of 5 batches is one call, reported as its last batch.
    assert 1 <= len(batches) <= 2 and batches[-1].batch == 4  # throttled, last one kept
    assert panel.results.plots.point_counts() == {"batch": 2, "train": 2, "val": 2}
    model_file = outcome.path  # in the run's own folder under the output folder
    assert (
        model_file.parent.parent == tmp_path / "runs" and model_file.name == "cifar10_4_7_augm.h5"
    )
    assert model_file.is_file() and model_file.with_suffix(".json").is_file()
    table = panel.results.table
    assert table.rowCount() == 1 and table.runs[0].model_path == model_file
    # The window opens the saved model (outside this process); the panel only asks for it.
    assert requested == [str(model_file)] and outcome.path == model_file
    assert panel.results.progress.format() == "Done" and panel.form.start_button.isEnabled()
    assert "Epoch 2/2" in panel.results.log.toPlainText()


def test_stop_ends_the_run_and_keeps_it(qtbot, state, tmp_path, warnings):
    panel = make_panel(qtbot, state, tmp_path / "runs", epochs=500, batch_size=2)
    with qtbot.waitSignal(panel.epoch_finished, timeout=RUN_TIMEOUT_MS):
        panel.form.start_button.click()
    assert panel.form.stop_button.isEnabled()
    # The timeout only guards against a hang: the run must end because of the Stop (stopped,
    # short of its 500 epochs), however long the machine takes for the batches in progress.
    with qtbot.waitSignal(panel.run_finished, timeout=RUN_TIMEOUT_MS) as blocker:
        panel.form.stop_button.click()
    outcome = blocker.args[0]
    assert outcome.stopped and 1 <= outcome.record.epochs_completed < 500
    assert outcome.path.is_file()  # what was learned so far is saved
    assert not panel.busy and panel.results.progress.format() == "Stopped"
    assert warnings == []


def test_engine_failure_reaches_the_gui_as_one_message(qtbot, state, tmp_path, warnings):
    panel = make_panel(qtbot, state, tmp_path / "runs", variant="finetune")
    missing = tmp_path / "no_such_model.h5"
    panel.form.from_path.set_text(str(missing))
    failures = []
    panel.run_failed.connect(failures.append)

    assert run(qtbot, panel) is None

    assert failures == warnings and len(warnings) == 1
    assert str(missing) in warnings[0] and "\n" not in warnings[0]
    assert panel.results.progress.format() == "Failed" and panel.form.start_button.isEnabled()


def test_bad_settings_are_refused_before_any_thread_starts(qtbot, tmp_path, warnings):
    panel = add_panel(qtbot, AppState())
    assert not panel.form.start_button.isEnabled()  # no data set yet
    assert panel.start() is False and "load a data set" in warnings[-1]
    assert not panel.busy


def write_sidecar(folder: Path, stem: str, variant: str, val: list[float], **extra) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.h5").write_bytes(b"not read by the table")
    meta = {
        "variant": variant,
        "class_names": ["deer", "horse"],
        "config": {"variant": variant, "epochs": len(val)},
        "history": {
            "loss": [0.7] * len(val),
            "accuracy": val,
            "val_loss": [0.6] * len(val),
            "val_accuracy": val,
        },
        "seconds": 12.5,
        "parameters": {"total": 10, "trainable": 4, "non_trainable": 6},
        **extra,
    }
    path = folder / f"{stem}.json"
    path.write_text(json.dumps(meta))
    return path


def test_previous_runs_come_back_and_overlay_and_export(qtbot, tmp_path, warnings):
    out = tmp_path / "runs"
    write_sidecar(out, "cifar10_4_7", "baseline", [0.6, 0.7], finished_at="2026-01-01T10:00:00")
    write_sidecar(out, "cifar10_4_7_augm", "augmented", [0.6, 0.8, 0.75])
    (out / "notes.json").write_text("[1, 2]")  # other JSON files are not runs
    settings = QSettings("cifar-gui", "cifar-gui")
    settings.setValue("training/out_dir", str(out))
    settings.sync()

    panel = add_panel(qtbot, AppState())  # a restart: the folder comes from the settings
    assert panel.form.out_path.text() == str(out)
    assert panel.results.table.rowCount() == 2
    assert panel.results.table.item(0, panel_column("Best val acc")).text() in ("70.0%", "80.0%")

    panel.results.table.selectAll()
    assert sorted(panel.results.plots.overlay_labels) == ["cifar10_4_7", "cifar10_4_7_augm"]
    target = panel.export_plots(str(tmp_path / "curves.png"))
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    panel.results.table.clearSelection()
    assert panel.results.plots.overlay_labels == []
    assert warnings == []


def panel_column(name: str) -> int:
    from cifar_gui.gui.run_table import COLUMNS

    return COLUMNS.index(name)


def test_advanced_settings_reach_the_config_and_come_back(qtbot, state, tmp_path):
    panel = make_panel(qtbot, state, tmp_path / "runs", epochs=7)
    form = panel.form
    form.strategy_combo.setCurrentIndex(form.strategy_combo.findData("mirrored"))
    form.precision_combo.setCurrentIndex(form.precision_combo.findData("mixed_bfloat16"))
    form.keep_best_check.setChecked(True)
    config = panel.build_config()
    assert (config.strategy, config.precision, config.epochs) == ("mirrored", "mixed_bfloat16", 7)
    assert config.keep_best

    panel.shutdown()  # as the window does when it closes
    again = add_panel(qtbot, state)
    assert again.form.strategy_combo.currentData() == "mirrored"
    assert again.form.precision_combo.currentData() == "mixed_bfloat16"
    assert again.form.keep_best_check.isChecked()
    assert again.form.epochs_spin.value() == 7 and again.form.limit_spin.value() == 40


def test_gui_run_matches_the_command_line_run(qtbot, state, batches_dir, tmp_path, warnings):
    args = ["train", "--variant", "augmented", "--classes", "4", "7", "--data", str(batches_dir),
            "--epochs", "2", "--batch-size", "4", "--limit", "40", "--seed", "3",
            "--out", str(tmp_path / "cli")]  # fmt: skip
    assert cli.main(args) == 0
    cli_history = json.loads((tmp_path / "cli" / "cifar10_4_7_augm.json").read_text())["history"]

    panel = make_panel(qtbot, state, tmp_path / "gui", variant="augmented", seed=3)
    outcome = run(qtbot, panel)

    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(outcome.record.history[key], cli_history[key], rtol=1e-5)


@pytest.mark.slow
def test_finetune_shows_counts_of_the_transfer_model_just_trained(qtbot, state, tmp_path, warnings):
    panel = make_panel(qtbot, state, tmp_path / "runs", variant="transfer", epochs=1)
    panel.form.weights_combo.setCurrentIndex(panel.form.weights_combo.findData("none"))  # offline
    transfer = run(qtbot, panel)
    assert panel.form.from_path.text() == str(transfer.path)

    with qtbot.waitSignal(panel.form.counts_shown, timeout=RUN_TIMEOUT_MS):
        panel.set_variant("finetune")
    # The seed's counts: VGG16 blocks 1 and 2 stay frozen (260,160 parameters).
    assert panel.form.params_label.text() == "trainable 14,586,113 \u00b7 non-trainable 260,160"
    assert warnings == []


def test_failures_of_the_training_process_become_one_line_messages():
    from cifar_gui.engine.errors import DataError
    from cifar_gui.engine.training.runner import ChildFailed, _death_message, _sendable

    class Unpicklable(Exception):  # a local class cannot be pickled
        pass

    sent = _sendable(Unpicklable("bad weights\nlong details"))
    assert isinstance(sent, ChildFailed) and str(sent) == "Unpicklable: bad weights"
    kept = _sendable(DataError("/x: no such file or folder"))
    assert type(kept) is DataError and str(kept) == "/x: no such file or folder"
    assert _death_message(-9) == "the training process was killed by signal 9 (out of memory?)"
    assert "exit code 1" in _death_message(1)


def test_the_legend_of_many_overlays_stays_outside_the_plots(qtbot, tmp_path):
    out = tmp_path / "runs"
    for i, variant in enumerate(("baseline", "augmented", "transfer", "finetune")):
        write_sidecar(out, f"run_{i}", variant, [0.5 + i / 10, 0.6 + i / 10])
    panel = add_panel(qtbot, AppState())
    panel.form.out_path.set_text(str(out))
    panel.resize(1180, 700)
    panel.show()
    panel.results.table.selectAll()

    plots = panel.results.plots
    assert len(plots.legend_labels()) == 8  # the live run's 3 series and star, 1 per overlay
    assert {"run_0", "run_3", "validation (epoch)"} <= set(plots.legend_labels())
    for plot in plots.plots.values():
        assert plot.legend is None  # nothing drawn inside the plotting area
        area = plot.getViewWidget()
        assert not area.geometry().intersects(plots.legend_view.geometry())
    # Each overlay's stars: its best validation accuracy (epoch 2) and lowest loss (epoch 1).
    stars = [
        curve.getData()
        for plot in plots.plots.values()
        for curve in plot.listDataItems()
        if curve.opts.get("symbol") == "star" and curve.getData()[0] is not None
        and len(curve.getData()[0])
    ]  # fmt: skip
    assert len(stars) == 8
    assert sorted((float(x[0]), round(float(y[0]), 3)) for x, y in stars) == sorted(
        [(1.0, 0.6)] * 4 + [(2.0, round(0.6 + i / 10, 3)) for i in range(4)]
    )
    panel.results.table.clearSelection()
    assert len(plots.legend_labels()) == 4


def test_the_log_keeps_file_names_whole_and_counts_in_words(qtbot, state, tmp_path, warnings):
    panel = make_panel(qtbot, state, tmp_path / ("a_folder_with_a_long_name_" * 4), epochs=1)
    panel.results.log.setFixedWidth(260)
    panel.show()
    outcome = run(qtbot, panel)
    assert outcome is not None
    text = panel.results.log.toPlainText()
    assert "1 epoch," in text and "after 1 epoch," in text and "1 epochs" not in text
    # Every wrapped line of the log starts after a space, a folder's "/" or a hyphen of a run
    # folder's name (20261204-213012-baseline-...): no name is broken elsewhere.
    document = panel.results.log.document()
    breaks = 0
    block = document.begin()
    while block.isValid():
        layout = block.layout()
        for i in range(1, layout.lineCount()):
            start = layout.lineAt(i).textStart()
            assert block.text()[start - 1] in " /-", block.text()[start - 5 : start + 5]
            breaks += 1
        block = block.next()
    assert breaks > 0  # the narrow log did wrap
    assert warnings == []


def test_the_form_comes_back_from_a_config_and_from_an_older_session(qtbot, state, tmp_path):
    settings = QSettings(str(tmp_path / "old.ini"), QSettings.Format.IniFormat)
    # As the previous version stored it: a few keys, and 0 for "all images".
    old = {"variant": "augmented", "epochs": 7, "limit": 0, "precision": "float32"}
    settings.setValue("training/form", json.dumps(old))
    panel = TrainingPanel(state, settings)
    qtbot.addWidget(panel, before_close_func=lambda p: p.shutdown())
    assert (panel.variant, panel.form.epochs_spin.value(), panel.form.limit_spin.value()) == (
        "augmented", 7, 0,
    )  # fmt: skip
    assert panel.form.precision_combo.currentData() == "float32"
    assert panel.form.batch_spin.value() == RunConfig().batch_size  # the rest: RunConfig's defaults

    panel.form.lr_edit.setText("0.003")
    panel.form.out_path.set_text(str(tmp_path / "runs"))
    panel.save_form()
    saved = RunConfig.from_dict(json.loads(str(settings.value("training/form"))))
    assert (saved.variant, saved.epochs, saved.limit, saved.learning_rate) == (
        "augmented", 7, None, 0.003,
    )  # fmt: skip
    again = TrainingPanel(state, settings)
    qtbot.addWidget(again, before_close_func=lambda p: p.shutdown())
    assert again.build_config() == panel.build_config()


def test_the_run_table_marks_the_best_and_the_lowest_loss_epochs(qtbot, tmp_path):
    from cifar_gui.engine.record import RunRecord
    from cifar_gui.engine.study.runs import SavedRun
    from cifar_gui.gui.run_table import RunTable

    history = {"val_accuracy": [0.6, 0.9, 0.8], "val_loss": [0.5, 0.4, 0.3]}
    table = RunTable()
    qtbot.addWidget(table)
    table.set_runs(
        [
            SavedRun.of_model(tmp_path / "a.h5", RunRecord(history=history, kept_epoch=2)),
            SavedRun.of_model(tmp_path / "b.h5", RunRecord()),
        ]
    )
    texts = sorted(table.item(r, panel_column("Best epochs")).text() for r in (0, 1))
    assert texts == ["2 / 3", "\u2014"]
    row = next(r for r in (0, 1) if table.item(r, panel_column("Best epochs")).text() == "2 / 3")
    tip = table.item(row, panel_column("Best epochs")).toolTip()
    assert "epoch 2, lowest validation loss at epoch 3" in tip and "holds epoch 2" in tip


def test_the_forms_table_maps_each_field_it_shows_both_ways(qtbot, state, tmp_path):
    """The form's table covers the fields the settings say the form shows, and a config with
    every one of them changed comes back from the widgets as it was."""
    from cifar_gui.config import SETTINGS, STRATEGIES
    from cifar_gui.gui.training.form_fields import STRATEGY_LABELS

    panel = add_panel(qtbot, state)
    form = panel.form
    shown = {n for n, s in SETTINGS.items() if s.shown in ("run", "transfer", "advanced")}
    assert set(form.widgets) == shown
    assert tuple(STRATEGY_LABELS) == STRATEGIES
    config = RunConfig(
        variant="transfer", classes=state.chosen_names, data=state.data_source, epochs=7,
        batch_size=5, learning_rate=0.003, seed=9, base=str(tmp_path / "base.h5"),
        allow_overlap=True, limit=40, out_dir=str(tmp_path / "runs"),
        use_augmentation=state.use_augmentation, augment=state.augment, strategy="mirrored",
        keep_best=True, precision="float32",
    )  # fmt: skip
    form.out_path.set_text(config.out_dir)
    form.set_config(config)
    assert form.config() == config
    # Not strict (the form saved between sessions): the fine-tune's file is kept too.
    form.set_config(config.replace(variant="finetune", from_model="m.h5", base=None))
    assert form._config(strict=False).from_model == "m.h5"
    assert form.config().base is None  # a fine-tune has no transfer base


def test_the_windows_pretrain_is_the_command_lines(qtbot, state, tmp_path):
    """Issue 23: the window's pretrain passed no weights, so a VGG16 pretrain meant ImageNet."""
    panel = make_panel(qtbot, state, tmp_path / "runs", batch_size=8, seed=3)
    panel.form.arch_combo.setCurrentIndex(panel.form.arch_combo.findData("vgg16"))
    args = ["pretrain", "--arch", "vgg16", "--batch-size", "8", "--seed", "3", "--limit", "40",
            "--data", state.data_source, "--out", str(tmp_path / "runs")]  # fmt: skip
    expected = cli.pretrain_from_args(cli.build_parser().parse_args(args), state.class_names)
    assert panel.form.pretrain_config() == expected
    assert expected.weights == "none"
