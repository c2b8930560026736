"""The window's runs never replace each other (issue 25): each Start saves in a new run folder
under the output folder, the runs root; the run table lists every run under it (older flat
runs, run folders, studies), tells them apart by folder, and opens one on a double-click."""

from __future__ import annotations

import json
from pathlib import Path

from cifar_gui.gui.run_table import COLUMNS
from cifar_gui.gui.state import AppState
from tests.gui.test_training_view import add_panel, make_panel, run, write_sidecar


def test_the_second_run_of_a_variant_does_not_replace_the_first(qtbot, state, tmp_path, warnings):
    root = tmp_path / "runs"
    panel = make_panel(qtbot, state, root, epochs=1, seed=1)
    first = run(qtbot, panel)
    panel.form.seed_spin.setValue(2)
    second = run(qtbot, panel)

    assert warnings == [] and first is not None and second is not None
    assert first.path != second.path and first.path.name == second.path.name == "cifar10_4_7.h5"
    for outcome, seed in ((first, 1), (second, 2)):
        assert outcome.path.parent.parent == root and outcome.path.is_file()
        sidecar = json.loads(outcome.path.with_suffix(".json").read_text())
        assert sidecar["config"]["seed"] == seed
        assert sidecar["config"]["out_dir"] == str(outcome.path.parent)  # resume finds it
    table = panel.results.table
    assert [r.model_path for r in table.runs] == [first.path, second.path]
    files = {table.item(row, COLUMNS.index("File")).text() for row in range(2)}
    assert files == {f"{p.parent.name}/cifar10_4_7.h5" for p in (first.path, second.path)}
    table.selectAll()  # two baselines, two overlays: each named by its folder
    assert sorted(panel.results.plots.overlay_labels) == sorted(
        f"{p.parent.name}/cifar10_4_7" for p in (first.path, second.path)
    )
    assert f"in {second.path.parent.name}" in panel.results.log.toPlainText()


def test_the_table_lists_flat_run_folder_and_study_runs_and_opens_them(qtbot, tmp_path):
    root = tmp_path / "runs"
    flat = write_sidecar(root, "cifar10_4_7", "baseline", [0.6], finished_at="2026-01-01T10:00")
    folder = root / "20261204-213012-baseline-deer-horse"
    own = write_sidecar(folder, "cifar10_4_7", "baseline", [0.7], finished_at="2026-12-04T21:31")
    study = root / "study"
    studied = write_sidecar(
        study, "cifar10_4_7_transferlearning", "transfer", [0.8], finished_at="2026-12-04T22:00"
    )
    (study / "study.json").write_text(json.dumps({"runs": []}))

    state = AppState()
    panel = add_panel(qtbot, state)
    panel.form.out_path.set_text(str(root))
    table = panel.results.table
    assert [r.sidecar for r in table.runs] == [flat, own, studied]
    files = {
        table.item(row, COLUMNS.index("File")).toolTip(): table.item(
            row, COLUMNS.index("File")
        ).text()
        for row in range(table.rowCount())
    }
    assert files == {
        str(flat.with_suffix(".h5")): "cifar10_4_7.h5",  # in the output folder: the old layout
        str(own.with_suffix(".h5")): f"{folder.name}/cifar10_4_7.h5",
        str(studied.with_suffix(".h5")): "study/cifar10_4_7_transferlearning.h5",
    }

    # A double-click opens the run's model in every tab, as a finished run does: the old
    # flat run and the study's run alike.
    requested = []
    state.model_requested.connect(requested.append)
    for sidecar in (flat, studied):
        model = str(sidecar.with_suffix(".h5"))
        row = next(r for r in range(3) if table.item(r, COLUMNS.index("File")).toolTip() == model)
        table.itemActivated.emit(table.item(row, 1))
    assert requested == [str(flat.with_suffix(".h5")), str(studied.with_suffix(".h5"))]

    # Fine-tuning starts from the latest transfer run, the study's one included.
    panel.set_variant("finetune")
    assert panel.form.from_path.text() == str(studied.with_suffix(".h5"))


def test_the_time_column_shows_the_whole_run_and_says_when_only_the_fit_is_known(qtbot):
    """Issue 27: the table's time is the whole run as its user waited (wall_seconds); older
    records, which know only the fit, show it and say so."""
    from cifar_gui.config import RunConfig
    from cifar_gui.engine.record import RunRecord
    from cifar_gui.engine.study.runs import SavedRun
    from cifar_gui.gui.run_table import RunTable

    table = RunTable()
    qtbot.addWidget(table)
    whole = RunRecord(config=RunConfig(variant="baseline"), seconds=60.0, wall_seconds=95.0)
    fit_only = RunRecord(config=RunConfig(variant="augmented"), seconds=60.0)
    table.set_runs([SavedRun(Path(f"/runs/{r.variant}.json"), None, r) for r in (whole, fit_only)])
    column = COLUMNS.index("Time")
    cells = {table.item(row, 0).text(): table.item(row, column) for row in range(2)}
    assert cells["baseline"].text() == "1 min 35 s"
    assert (
        "whole run" in cells["baseline"].toolTip() and "1 min 00 s" in cells["baseline"].toolTip()
    )
    assert cells["augmented"].text() == "1 min 00 s"
    assert "fit only" in cells["augmented"].toolTip()
