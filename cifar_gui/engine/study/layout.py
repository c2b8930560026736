"""The names in a study folder (see :mod:`cifar_gui.engine.study.plan`), apart from both the study
and its report, which each need them: neither imports the other for a name."""

from __future__ import annotations

STUDY_FILE = "study.json"  # the study record
REPORT_DIR = "report"  # the report's folder
BASE_DIR = "base"  # the base an offline study pretrains
