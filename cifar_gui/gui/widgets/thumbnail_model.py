"""A list model over the images of a data set that renders thumbnails only when asked.

With 50,000 training images one widget per image would take seconds and hundreds of MB;
the view asks :meth:`ThumbnailModel.data` only for the visible rows, and the pixmaps of the
most recently seen rows are kept in a small LRU cache.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, QPersistentModelIndex, Qt
from PySide6.QtGui import QPixmap

from cifar_gui.engine.data.dataset import Dataset
from cifar_gui.gui.widgets.images import to_pixmap

ImageRole = Qt.ItemDataRole.UserRole + 1  # the uint8 (32, 32, 3) array
ItemRole = Qt.ItemDataRole.UserRole + 2  # the ImageItem of the row


@dataclass(frozen=True)
class ImageItem:
    """Where one image of the grid comes from."""

    split: str  # "train" or "test"
    index: int  # 0-based position in that split of the data set
    label: int  # label in the data set
    class_name: str

    @property
    def caption(self) -> str:
        """E.g. ``train #9801 (R 9802): deer``."""
        return f"{self.split} #{self.index} (R {self.index + 1}): {self.class_name}"


class ThumbnailModel(QAbstractListModel):
    """Rows are the images of one split whose label is in a set of classes."""

    def __init__(self, thumb_size: int = 64, cache_size: int = 3000, parent: QObject | None = None):
        super().__init__(parent)
        self.thumb_size = thumb_size  # pixels; 64 = twice the CIFAR size, nearest-neighbour
        self.cache_size = cache_size  # pixmaps kept (64x64x4 bytes each: 3000 is ~50 MB)
        self._dataset: Dataset | None = None
        self._split = "train"
        self._rows = np.zeros(0, dtype=np.int64)  # positions in the split, in order
        self._cache: OrderedDict[int, QPixmap] = OrderedDict()

    # -- filtering ---------------------------------------------------------------------

    def set_dataset(self, dataset: Dataset | None) -> None:
        """Show ``dataset`` (all classes of the current split until :meth:`set_filter`)."""
        self._dataset = dataset
        self.set_filter(self._split, None)

    def set_filter(self, split: str, classes: Sequence[int] | None) -> None:
        """Keep the images of ``split`` whose label is in ``classes`` (None: every class)."""
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', not {split!r}")
        self.beginResetModel()
        self._split = split
        self._cache.clear()
        if self._dataset is None:
            self._rows = np.zeros(0, dtype=np.int64)
        else:
            labels = self._labels()
            if classes is None:
                self._rows = np.arange(len(labels), dtype=np.int64)
            else:
                self._rows = np.flatnonzero(np.isin(labels, list(classes)))
        self.endResetModel()

    @property
    def split(self) -> str:
        return self._split

    def _labels(self) -> np.ndarray:
        assert self._dataset is not None
        return self._dataset.y_train if self._split == "train" else self._dataset.y_test

    def _images(self) -> np.ndarray:
        assert self._dataset is not None
        return self._dataset.x_train if self._split == "train" else self._dataset.x_test

    # -- Qt model interface --------------------------------------------------------------

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def item(self, row: int) -> ImageItem:
        """What row ``row`` shows."""
        assert self._dataset is not None
        index = int(self._rows[row])
        label = int(self._labels()[index])
        return ImageItem(self._split, index, label, self._dataset.class_names[label])

    def image(self, row: int) -> np.ndarray:
        """The uint8 pixels of row ``row``."""
        return self._images()[int(self._rows[row])]

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ):
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        row = index.row()
        if role == Qt.ItemDataRole.DecorationRole:
            return self._pixmap(row)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.item(row).caption
        if role == ImageRole:
            return self.image(row)
        if role == ItemRole:
            return self.item(row)
        return None

    def rendered_count(self) -> int:
        """How many thumbnails are drawn and kept (rows the views have asked for)."""
        return len(self._cache)

    def _pixmap(self, row: int) -> QPixmap:
        pixmap = self._cache.get(row)
        if pixmap is not None:
            self._cache.move_to_end(row)
            return pixmap
        pixmap = to_pixmap(self.image(row), self.thumb_size)
        self._cache[row] = pixmap
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return pixmap
