"""Where studies go in an output folder, which one to continue, and which data a resumed run
reads when its own has moved.

Rules the window and any other front share; plain files and paths (no Keras, no Qt).
"""

from __future__ import annotations

from pathlib import Path

from cifar_gui.engine.errors import UserError
from cifar_gui.engine.study.plan import STUDY_FILE, read_study

STUDY_FOLDER = "study"  # a new study goes to <output folder>/study, study-2, ...
MAX_STUDIES = 10_000  # folders tried before giving up (a guard, not a real limit)


def new_study_folder(out_dir: str | Path) -> Path:
    """The first of ``study``, ``study-2``, ... in ``out_dir`` that holds no study."""
    out_dir = Path(out_dir)
    for number in range(1, MAX_STUDIES):
        folder = out_dir / (STUDY_FOLDER if number == 1 else f"{STUDY_FOLDER}-{number}")
        if not (folder / STUDY_FILE).exists():
            return folder
    raise UserError(f"{out_dir}: too many studies")


def latest_unfinished_study(out_dir: str | Path) -> Path | None:
    """The most recently changed study in ``out_dir`` with runs left, if any; unreadable
    study records are passed over."""
    found = []
    for record in Path(out_dir).glob(f"*/{STUDY_FILE}"):
        try:
            _, runs = read_study(record.parent)
        except UserError:
            continue
        if any(run.state != "done" for run in runs):
            found.append((record.stat().st_mtime, record.parent))
    return max(found)[1] if found else None


def data_instead(recorded: str | None, open_now: str | None) -> str | None:
    """The data a resumed run or study should read in place of ``recorded`` (its own):
    ``None`` (keep it) while it is the Keras cache or still exists, else ``open_now``, the
    data set open now (``None`` when there is none either)."""
    gone = recorded not in (None, "keras") and not Path(recorded).exists()
    return open_now if gone else None
