"""Study folders in an output folder (numbering, the one to continue) and the data a resumed
run reads when its own has moved; without Keras, Qt or a data set."""

from __future__ import annotations

import json
import os
from pathlib import Path

from cifar_gui.config import SEED_VARIANTS, RunConfig
from cifar_gui.engine.study import run_folders
from cifar_gui.engine.study.plan import STUDY_FILE, STUDY_VERSION
from cifar_gui.engine.study.run_folders import (
    data_instead,
    latest_unfinished_study,
    new_study_folder,
)
from tests.test_import_contracts import HEAVY, QT, loaded_on_import


def write_study(folder: Path, states: list[str], mtime: float) -> Path:
    """A study record in ``folder`` whose runs are in ``states``, changed at ``mtime``."""
    folder.mkdir(parents=True)
    record = folder / STUDY_FILE
    pairs = zip(SEED_VARIANTS, states, strict=True)
    runs = [{"variant": v, "state": s, "model": None} for v, s in pairs]
    record.write_text(
        json.dumps({"version": STUDY_VERSION, "config": RunConfig().to_dict(), "runs": runs})
    )
    os.utime(record, (mtime, mtime))
    return folder


def test_a_new_study_takes_the_first_folder_without_a_study(tmp_path):
    assert new_study_folder(tmp_path) == tmp_path / "study"
    (tmp_path / "study").mkdir()  # a folder without a study record is free
    assert new_study_folder(str(tmp_path)) == tmp_path / "study"
    for name in ("study", "study-2"):
        (tmp_path / name).mkdir(exist_ok=True)
        (tmp_path / name / STUDY_FILE).write_text("{}")
    assert new_study_folder(tmp_path) == tmp_path / "study-3"


def test_the_latest_unfinished_study_is_the_newest_with_runs_left(tmp_path):
    assert latest_unfinished_study(tmp_path) is None
    assert latest_unfinished_study(tmp_path / "missing") is None
    done = ["done"] * len(SEED_VARIANTS)
    left = ["done", "stopped", "pending", "pending"]
    write_study(tmp_path / "old", left, 1_000)
    write_study(tmp_path / "finished", done, 3_000)
    assert latest_unfinished_study(tmp_path) == tmp_path / "old"
    write_study(tmp_path / "newer", left, 2_000)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / STUDY_FILE).write_text("not json")
    os.utime(broken / STUDY_FILE, (4_000, 4_000))
    assert latest_unfinished_study(tmp_path) == tmp_path / "newer"


def test_a_run_keeps_its_data_unless_it_has_gone(tmp_path):
    there = tmp_path / "batches"
    there.mkdir()
    assert data_instead(str(there), "/open/now") is None
    assert data_instead("keras", "/open/now") is None
    assert data_instead(None, "/open/now") is None
    assert data_instead(str(tmp_path / "gone"), "/open/now") == "/open/now"
    assert data_instead(str(tmp_path / "gone"), None) is None


def test_the_module_loads_neither_keras_nor_qt():
    loaded = {name.split(".")[0] for name in loaded_on_import(run_folders.__name__)}
    assert not loaded & {*QT, *HEAVY}
