"""The Dataset tab without widgets: where a data set comes from, the load and download jobs,
the counts table, the class choice, the thumbnail filter and the seed's sample pictures.

Plain Python and numpy (no Qt), so the tab's rules are tested without a window.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cifar_gui import tutorial
from cifar_gui.engine.data import dataset as data
from cifar_gui.engine.data import download as archive
from cifar_gui.engine.data.dataset import Dataset

if TYPE_CHECKING:
    from cifar_gui.gui.workers import TaskState

# The ten training pictures the seed plots in a 2 x 5 grid, as R's 1-based indices.

CHOSEN, ALL = "chosen", "all"  # class-filter choices besides a single class
KERAS = "keras"  # the data source of the Keras cache
TOO_FEW_CLASSES = "Choose at least two classes"
SORTED_NOTE = (
    "This data set is an image folder sorted by class, so these positions hold other "
    "pictures than in the official archive the tutorial used."
)
TOO_FEW_IMAGES = "This data set has too few training images for the samples."


def source_name(source: str | None) -> str:
    """How a data source reads in the window: 'Keras cache' or the path."""
    return "Keras cache" if source in (None, KERAS) else str(source)


def normal_source(source: str | None) -> str:
    """``"keras"`` for the Keras cache (``None``, ``""``), else the absolute path, so the
    source remembered in the settings works from any folder."""
    return KERAS if source in (None, "", KERAS) else str(Path(source).expanduser().resolve())


def load(source: str) -> tuple[Dataset, str]:
    """Job: load the data set (decoding 60,000 JPEGs takes seconds the first time)."""
    return data.load_dataset(source), source


def download(task: TaskState) -> tuple[Dataset, str]:
    """Job: download the official archive into the Keras cache, then load it."""
    last = [-1]

    def progress(done: int, total: int) -> None:
        # One report per visible step (a percent, or a MB when the size is unknown).
        step = done * 100 // total if total else done >> 20
        if step != last[0]:
            last[0] = step
            task.report((done, total))

    archive.download_cifar10(progress, task.stop_requested)
    return load(KERAS)


def download_progress(done: int, total: int) -> tuple[int | None, str]:
    """The bar's percent (``None`` when the size is unknown) and the line beside it."""
    if total:
        return done * 100 // total, f"Downloading CIFAR-10: {done >> 20} of {total >> 20} MB"
    return None, f"Downloading CIFAR-10: {done >> 20} MB"


def opened_message(dataset: Dataset, source: str) -> str:
    """The status line once a data set has opened."""
    return (
        f"Opened {source_name(source)}: {len(dataset.y_train):,} "
        f"training and {len(dataset.y_test):,} test images"
    )


@dataclass(frozen=True)
class CountRow:
    """A row of the counts table: a class (``label`` its index) or the total (``label`` None)."""

    name: str
    label: int | None
    train: int
    test: int

    def cells(self) -> tuple[str, str, str, str]:
        """The texts of the Class, Label, Train and Test columns."""
        label = "" if self.label is None else str(self.label)
        return self.name, label, f"{self.train:,}", f"{self.test:,}"


def count_rows(dataset: Dataset) -> list[CountRow]:
    """Images per class and split, as the seed's ``table(cifar10$train$y)``, then the total."""
    counts = dataset.counts()
    rows = [
        CountRow(name, label, int(counts["train"][label]), int(counts["test"][label]))
        for label, name in enumerate(dataset.class_names)
    ]
    rows.append(CountRow("total", None, int(counts["train"].sum()), int(counts["test"].sum())))
    return rows


def choice_summary(dataset: Dataset, classes: tuple[int, ...]) -> str:
    """What training gets from the chosen classes (label indices, in label order)."""
    counts = dataset.counts()
    train = sum(int(counts["train"][c]) for c in classes)
    test = sum(int(counts["test"][c]) for c in classes)
    names = [dataset.class_names[c] for c in classes]
    labels = ", ".join(f"{name} = {i}" for i, name in enumerate(names))
    return (
        f"<b>Training uses {' vs '.join(names)}</b>: {train:,} training and {test:,} "
        f"test images. Labels: {labels}."
    )


def ticked(order: list[int], label: int, checked: bool) -> list[int] | None:
    """The class choice after ticking (``checked``) or unticking ``label``, in the order the
    classes were ticked; ``None`` when fewer than two would be left (the tick goes back)."""
    chosen = [c for c in order if c != label]
    if checked:
        chosen.append(label)
    return chosen if len(chosen) >= 2 else None


def filter_choices(class_names: tuple[str, ...]) -> list[tuple[str, str | int]]:
    """The class filter's entries (text, data): the chosen classes, all, then each class."""
    return [
        ("the chosen classes", CHOSEN),
        ("all classes", ALL),
        *((name, label) for label, name in enumerate(class_names)),
    ]


def filtered_classes(
    choice: str | int, classes: tuple[int, ...], class_names: tuple[str, ...]
) -> tuple[list[int] | None, str]:
    """The classes the thumbnails show for a filter entry (``None``: all) and how they read."""
    if choice == CHOSEN:
        return list(classes), " + ".join(class_names[c] for c in classes)
    if choice == ALL:
        return None, "all classes"
    return [int(choice)], class_names[int(choice)]


@dataclass(frozen=True)
class SeedSamples:
    """The seed's sample pictures present in a data set, their captions and a note."""

    images: np.ndarray  # (n, H, W, 3) uint8; n is 0 when the data set is too small
    captions: list[str]
    note: str


def seed_samples(dataset: Dataset) -> SeedSamples:
    """The seed's ten training pictures (those the data set has), captioned by R index."""
    present = [
        (r, i)
        for r, i in zip(tutorial.SAMPLE_IMAGES_R, tutorial.SAMPLE_IMAGES, strict=True)
        if i < len(dataset.y_train)
    ]
    if not present:
        return SeedSamples(np.zeros((0, 32, 32, 3), np.uint8), [], TOO_FEW_IMAGES)
    images = np.stack([dataset.x_train[i] for _, i in present])
    captions = [f"R {r}: {dataset.class_names[dataset.y_train[i]]}" for r, i in present]
    sorted_by_class = bool(np.all(np.diff(dataset.y_train) >= 0))
    return SeedSamples(images, captions, SORTED_NOTE if sorted_by_class else "")
