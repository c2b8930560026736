"""Where a run is saved: a folder of its own under the runs root, named by its start, variant
and classes (``runs/20261204-213012-baseline-deer-horse/``), like a TensorBoard or Lightning
run folder; inside it the tutorial's file names (``cifar10_4_7.h5``, its ``.json``,
``checkpoints/``). And which model a run would replace in a folder chosen by hand.

The one naming rule of the command line and the window; plain paths (no Keras, no Qt).
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Sequence
from pathlib import Path

from cifar_gui.config import RunConfig
from cifar_gui.engine.errors import UserError
from cifar_gui.engine.files import read_json
from cifar_gui.engine.training.checkpoints import CHECKPOINTS
from cifar_gui.tutorial import FILE_SUFFIXES

MODEL_EXTENSIONS = (".h5", ".keras")
MAX_CLASS_TEXT = 80  # characters of class names in a folder name (a name has 255 bytes at most)
MAX_FOLDERS = 10_000  # suffixes tried before giving up (a guard, not a real limit)
_UNSAFE = re.compile(r"[^A-Za-z0-9._]+")  # what a portable file name may not hold, in a part


def safe_part(text: str) -> str:
    """``text`` as a piece of a portable file name: ASCII letters, digits, ``.`` and ``_``
    (accents dropped, anything else ``_``), never empty, never starting with a dot."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return _UNSAFE.sub("_", ascii_text).strip("._") or "_"


def _classes_text(classes: Sequence[str | int]) -> str:
    """``deer-horse``; shortened to ``airplane-bird-and-6-more`` when too long."""
    parts = [safe_part(str(c)) for c in classes]
    text = "-".join(parts)
    for kept in range(len(parts) - 1, 0, -1):
        if len(text) <= MAX_CLASS_TEXT:
            break
        text = "-".join(parts[:kept]) + f"-and-{len(parts) - kept}-more"
    return text[:MAX_CLASS_TEXT]


def run_folder_name(config: RunConfig, started: float | None = None) -> str:
    """``20261204-213012-baseline-deer-horse``: the local start time (``started``, seconds
    since the epoch; default now), the variant and the classes as given. A pretrain is named
    by its network and the pair it never sees: ``...-pretrain-cnn-not-deer-horse``."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(started))
    if config.variant == "pretrain":
        what = f"pretrain-{config.arch}-not-{_classes_text(config.excluded or ('none',))}"
    else:
        what = f"{config.variant}-{_classes_text(config.classes)}"
    return f"{stamp}-{what}"


def new_run_folder(root: str | Path, config: RunConfig, started: float | None = None) -> Path:
    """Make the new run's folder under ``root`` and return it: :func:`run_folder_name`, or
    that name with ``-2``, ``-3``... when taken. Made empty at once (with the folders above
    it), so two runs started in the same second never share one."""
    name = run_folder_name(config, started)
    root = Path(root)
    for number in range(1, MAX_FOLDERS):
        folder = root / (name if number == 1 else f"{name}-{number}")
        try:
            folder.mkdir(parents=True)
        except FileExistsError:
            continue
        return folder
    raise UserError(f"{root}: too many runs named {name}")


def _same_classes(sidecar: Path, classes: Sequence[str | int]) -> bool:
    """Whether the run of ``sidecar`` trained ``classes`` (names or indices, as given), or
    cannot be told (no readable sidecar: counted as the same, so nothing is replaced unasked)."""
    try:
        data = read_json(sidecar)
        names, indices = list(data["class_names"]), list(data["class_indices"])
    except (OSError, ValueError, KeyError, TypeError):
        return True
    if len(names) != len(classes) or len(indices) != len(classes):
        return False
    for given, name, index in zip(classes, names, indices, strict=True):
        text = str(given).strip()
        if text != name and not (text.isascii() and text.isdigit() and int(text) == index):
            return False
    return True


def model_replaced(folder: str | Path, config: RunConfig) -> Path | None:
    """The saved model (or the checkpoint of a killed run) in ``folder`` that a new run of
    ``config`` would replace: one of its variant's file name (``cifar10_<i>_<j><suffix>``)
    whose run trained the same classes; None when there is none."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    pattern = re.compile(rf"cifar10_\d+(?:_\d+)+{re.escape(FILE_SUFFIXES[config.variant])}")
    # Saved models first: the error names the model when there is one.
    found = sorted(p for p in folder.iterdir() if p.suffix in MODEL_EXTENSIONS and p.is_file())
    checkpoints = folder / CHECKPOINTS
    if checkpoints.is_dir():
        found += sorted(p for p in checkpoints.iterdir() if p.is_dir())
    for path in found:
        stem = path.stem if path.is_file() else path.name
        if pattern.fullmatch(stem) and _same_classes(folder / f"{stem}.json", config.classes):
            return path
    return None
