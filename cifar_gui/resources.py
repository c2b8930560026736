"""Where the bundled resources are: the default model and a sample image (no Qt here).

The ``resources/`` folder sits beside the ``cifar_gui`` package in a checkout or an editable
install. A PyInstaller bundle unpacks it under ``sys._MEIPASS``, and a wheel installs it under
``<prefix>/share/cifar-gui/`` (setuptools ``data-files``, also for ``pip install --user``); the
first folder that exists wins.
"""

from __future__ import annotations

import site
import sys
import sysconfig
from pathlib import Path

DEFAULT_MODEL_NAME = "cifar10_4_7.h5"  # the seed's file name for the deer-vs-horse baseline
SAMPLE_IMAGE_NAME = "horse_drawing.png"
CHECKOUT_RESOURCES = Path(__file__).resolve().parent.parent / "resources"


def resource_dirs() -> list[Path]:
    """Candidate ``resources`` folders, most specific first."""
    candidates = []
    bundle = getattr(sys, "_MEIPASS", None)  # set by PyInstaller's boot loader
    if bundle:
        candidates.append(Path(bundle) / "resources")
    candidates.append(CHECKOUT_RESOURCES)
    # Where a wheel's data-files land: the environment's prefix, or ~/.local for --user.
    for base in (sysconfig.get_path("data"), site.getuserbase()):
        candidates.append(Path(base) / "share" / "cifar-gui" / "resources")
    return candidates


def resource_path(*parts: str) -> Path:
    """The first existing ``resources/<parts>``; the checkout's path if none exists."""
    for folder in resource_dirs():
        path = folder.joinpath(*parts)
        if path.exists():
            return path
    return CHECKOUT_RESOURCES.joinpath(*parts)


def default_model_path() -> Path:
    """The bundled baseline (deer vs horse), with its JSON sidecar beside it."""
    return resource_path("models", DEFAULT_MODEL_NAME)


def sample_image_path() -> Path:
    """A small drawing bundled for the self-test and the first launch (not a CIFAR image)."""
    return resource_path("samples", SAMPLE_IMAGE_NAME)
