"""The Training tab, one job per module: ``form`` (widgets <-> RunConfig, kept between
sessions), ``controller`` (a run's lifecycle on the engine's runner), ``trace`` (the smoothed
per-batch curve), ``results`` (plots, log, run table, export) and ``panel`` (the tab)."""

from cifar_gui.gui.training.form import SETTINGS_FORM, SETTINGS_OUT_DIR
from cifar_gui.gui.training.panel import TrainingPanel

__all__ = ["SETTINGS_FORM", "SETTINGS_OUT_DIR", "TrainingPanel"]
