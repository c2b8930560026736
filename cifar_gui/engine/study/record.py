"""The study record, ``study.json`` in a study folder: its settings, its runs and their
states, its base; version 2 (seeds, the base, runs with their seeds), version 1 still read.
Written by :func:`cifar_gui.engine.study.plan.write_study`. Plain files (no Keras, no Qt)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cifar_gui.config import MAX_EPOCHS, PRETRAIN_ARCHS, SEED_VARIANTS, RunConfig
from cifar_gui.engine.errors import ModelError, UserError
from cifar_gui.engine.files import read_json
from cifar_gui.engine.study.base import BASE_ARCH
from cifar_gui.engine.study.layout import STUDY_FILE
from cifar_gui.settings import check_int, check_type

STUDY_VERSION = 2  # 2: seeds, the base and a list of runs with their seeds; 1 still reads
READABLE_VERSIONS = (1, 2)
MAX_SEEDS = 100
STATES = ("pending", "running", "stopped", "done")


@dataclass(frozen=True)
class StudyRun:
    """One run of a study as the study record holds it."""

    variant: str  # a seed variant, or "pretrain" (the base pretrained here)
    state: str = "pending"  # pending, running, stopped, done
    model: str | None = None  # the final model's path in the study folder, once known
    seed: int | None = None  # None: the base (pretrained once), or a version-1 record's run

    def to_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "seed": self.seed,
            "state": self.state,
            "model": self.model,
        }

    @classmethod
    def from_dict(cls, data: Any) -> StudyRun:
        check_type("run", data, dict)
        variant, state, model = data.get("variant"), data.get("state"), data.get("model")
        seed = data.get("seed")
        if variant not in (*SEED_VARIANTS, "pretrain"):
            raise ValueError(f"unknown variant {variant!r}")
        if state not in STATES:
            raise ValueError(f"unknown state {state!r}")
        if seed is not None:
            check_type("seed", seed, int)
        if model is not None:
            check_type("model", model, str)
            parts = Path(model).parts
            # A file of the study folder or of its base or seed folders, nothing else.
            if not parts or Path(model).is_absolute() or ".." in parts or len(parts) > 2:
                raise ValueError(f"model {model!r} is not a file of the study folder")
        return cls(variant, state, model, seed)


@dataclass(frozen=True)
class StudyRecord:
    """A study record as read: its settings, runs and base (see :func:`write_study`)."""

    template: RunConfig
    runs: list[StudyRun]
    seeds: int = 1
    base_arch: str = BASE_ARCH
    base: Mapping[str, Any] | None = None  # None: a version-1 record (no base entry)
    base_epochs: int | None = None


def read_study_record(folder: str | Path) -> StudyRecord:
    """The study record in ``folder`` (version 1 or 2); :class:`UserError` when there is
    none or it is not readable."""
    path = Path(folder).expanduser() / STUDY_FILE
    if not path.is_file():
        raise UserError(f"{path.parent}: no study to resume (no {STUDY_FILE})")
    try:
        data = read_json(path)
        check_type("study", data, dict)
        version = data.get("version")
        if version not in READABLE_VERSIONS:
            raise ValueError(f"version {version!r}, this app reads {READABLE_VERSIONS}")
        template = RunConfig.from_dict(data.get("config"))
        check_type("runs", data.get("runs"), list)
        runs = [StudyRun.from_dict(item) for item in data["runs"]]
        if version == 1:
            if [r.variant for r in runs] != list(SEED_VARIANTS):
                raise ValueError(f"runs must be {', '.join(SEED_VARIANTS)} in that order")
            return StudyRecord(template, runs)
        seeds, arch, base = data.get("seeds", 1), data.get("base_arch", BASE_ARCH), data.get("base")
        check_int("seeds", seeds, 1, MAX_SEEDS)
        if arch not in PRETRAIN_ARCHS:
            raise ValueError(f"unknown base_arch {arch!r}")
        if base is not None:
            check_type("base", base, dict)
        base_epochs = data.get("base_epochs")
        if base_epochs is not None:
            check_int("base_epochs", base_epochs, 1, MAX_EPOCHS)
        return StudyRecord(template, runs, seeds, arch, base, base_epochs)
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: not a readable study record ({exc})") from None


def read_study(folder: str | Path) -> tuple[RunConfig, list[StudyRun]]:
    """The settings and runs of the study record in ``folder`` (:func:`read_study_record`)."""
    record = read_study_record(folder)
    return record.template, record.runs
