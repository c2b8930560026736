"""The table of saved training runs: one row per sidecar, sortable, multi-selection; a
double-click opens the run's model."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from cifar_gui.engine.record import RunRecord
from cifar_gui.engine.study.runs import SavedRun
from cifar_gui.gui.text import format_probability

COLUMNS = (
    "Variant", "Classes", "Epochs", "Final val acc", "Best val acc", "Best epochs", "Time",
    "Parameters", "File",
)  # fmt: skip
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
CELL_MARGIN_PX = 12  # a cell's padding
SORT_ARROW_PX = 12  # the sorted column's title also shows its arrow


def format_count(count: int) -> str:
    """``842``, ``95.2 k``, ``14.7 M``: a parameter count short enough for a table cell."""
    if count < 1000:
        return str(count)
    if count < 1_000_000:
        return f"{count / 1000:.1f} k"
    return f"{count / 1_000_000:.1f} M"


def format_seconds(seconds: float | None) -> str:
    """``42 s``, ``3 min 05 s``, ``1 h 02 min``; an em dash when unknown."""
    if seconds is None:
        return "\u2014"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class _Item(QTableWidgetItem):
    """A cell that sorts by a value of its own (numbers as numbers), not by its text."""

    def __init__(self, text: str, key: object):
        super().__init__(text)
        self.setData(SORT_ROLE, key)
        self.setFlags(self.flags() & ~Qt.ItemFlag.ItemIsEditable)

    def __lt__(self, other: QTableWidgetItem) -> bool:
        mine, theirs = self.data(SORT_ROLE), other.data(SORT_ROLE)
        if isinstance(mine, type(theirs)) or isinstance(theirs, type(mine)):
            return mine < theirs
        return str(mine) < str(theirs)


class RunTable(QTableWidget):
    """Saved runs; emits the selected :class:`SavedRun` list when the selection changes, and
    the run whose row is double-clicked (or activated with Enter) when it has a model."""

    selection_changed = Signal(list)
    run_opened = Signal(object)  # SavedRun

    def __init__(self, parent=None):
        super().__init__(0, len(COLUMNS), parent)
        # Two-line titles for the accuracy columns: narrow numbers under a wide title.
        self.setHorizontalHeaderLabels(
            [
                c.replace(" val acc", "\nacc")
                .replace("Parameters", "Params")
                .replace("Best epochs", "Best\nepochs")
                for c in COLUMNS
            ]
        )
        for name, tip in (
            ("Final val acc", "Validation (test) accuracy of the saved model"),
            ("Best val acc", "The best validation (test) accuracy of any epoch"),
        ):
            self.horizontalHeaderItem(COLUMNS.index(name)).setToolTip(tip)
        self.horizontalHeaderItem(COLUMNS.index("Best epochs")).setToolTip(
            "The epochs (counted from 1) of the best validation accuracy and of the lowest "
            "validation loss"
        )
        self.horizontalHeaderItem(COLUMNS.index("Parameters")).setToolTip(
            "Total; * when some are frozen (the cell's tooltip gives the trainable count)"
        )
        self.horizontalHeaderItem(COLUMNS.index("File")).setToolTip(
            "The model's file in its folder under the output folder (a run folder, a study), "
            "or in the output folder itself (the older layout). Double-click a row to open it"
        )
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setAlternatingRowColors(True)
        self.verticalHeader().hide()
        header = self.horizontalHeader()
        # Every column as wide as its values, so none is cut; the file name takes the rest
        # (shortened in the middle when it must be: the cell's tooltip has the whole path).
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setMinimumSectionSize(24)
        header.setStretchLastSection(True)
        self.setWordWrap(False)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.setSortingEnabled(True)
        self._runs: list[SavedRun] = []
        self._root: Path | None = None
        self.itemSelectionChanged.connect(lambda: self.selection_changed.emit(self.selected_runs()))
        self.itemActivated.connect(self._on_activated)

    @property
    def runs(self) -> list[SavedRun]:
        """Every run listed, in the order given to :meth:`set_runs`."""
        return list(self._runs)

    def folder_of(self, run: SavedRun) -> str:
        """The run's folder below the root given to :meth:`set_runs` (``study``,
        ``20261204-213012-baseline-deer-horse``); empty when it is the root itself (or there is
        no root)."""
        folder = run.sidecar.parent
        if self._root is None or folder == self._root or not folder.is_relative_to(self._root):
            return ""
        return folder.relative_to(self._root).as_posix()

    def name_of(self, run: SavedRun) -> str:
        """A name of the run no other listed run has: its folder and file stem
        (``study/cifar10_4_7``), the stem alone for a run in the root (the older layout)."""
        folder = self.folder_of(run)
        return f"{folder}/{run.label}" if folder else run.label

    def set_runs(self, runs: list[SavedRun], root: str | Path | None = None) -> None:
        """Replace the rows by ``runs``, found under ``root`` (their folders are shown below
        it); rows whose sidecar is still listed stay selected."""
        selected = {r.sidecar for r in self.selected_runs()}
        self._runs = list(runs)
        self._root = None if root is None else Path(root)
        self.blockSignals(True)
        self.setSortingEnabled(False)
        self.clearContents()
        self.setRowCount(len(runs))
        for row, run in enumerate(runs):
            for col, item in enumerate(self._items(run)):
                item.setData(Qt.ItemDataRole.UserRole, row)
                self.setItem(row, col, item)
        self.setSortingEnabled(True)
        self._fit_columns()
        for row in range(self.rowCount()):
            if self._run_at(row).sidecar in selected:
                self.selectRow(row)
        self.blockSignals(False)
        self.selection_changed.emit(self.selected_runs())

    def _fit_columns(self) -> None:
        """Each column as wide as its widest value or title line (Qt's own fit also keeps
        room for a sort arrow in every column, which pushed the file name off screen)."""
        metrics = self.fontMetrics()
        header = self.horizontalHeader()
        for col in range(self.columnCount() - 1):  # the file name takes the rest
            title = self.horizontalHeaderItem(col).text().split("\n")
            texts = [self.item(row, col).text() for row in range(self.rowCount())]
            widest = max(metrics.horizontalAdvance(t) for t in [*title, *texts])
            arrow = SORT_ARROW_PX if col == header.sortIndicatorSection() else 0
            header.resizeSection(col, widest + CELL_MARGIN_PX + arrow)

    def _items(self, run: SavedRun) -> list[QTableWidgetItem]:
        def acc(value: float | None) -> _Item:
            return _Item("\u2014" if value is None else format_probability(value), value or 0.0)

        record = run.record
        done = record.epochs_completed
        epochs = f"{done}/{record.epochs_planned}" + (" (stopped)" if record.stopped else "")
        counts = record.parameters
        total = None if counts is None else counts.total
        trainable = None if counts is None else counts.trainable
        params = "\u2014" if total is None else format_count(total)
        details = "" if total is None else f"{total:,} parameters"
        if total is not None and trainable is not None and trainable != total:
            params += "*"  # the tooltip tells how many train
            details += f", {trainable:,} trainable"
        path = run.model_path or run.sidecar
        # With its folder, which tells two runs of one variant apart (the date comes first).
        folder = self.folder_of(run)
        name = f"{folder}/{path.name}" if folder else path.name
        file_item = _Item(name + ("" if run.model_path else " (model missing)"), name)
        file_item.setToolTip(str(path))
        params_item = _Item(params, total or 0)
        params_item.setToolTip(details)
        classes_item = _Item(run.classes_text, run.classes_text)
        classes_item.setToolTip(run.all_classes_text)
        best, lowest = record.best_epoch, record.lowest_loss_epoch
        best_item = _Item(
            "\u2014" if best is None else f"{best + 1} / {lowest + 1}", -1 if best is None else best
        )
        if best is not None:
            kept = record.kept_epoch
            saved = f"the saved model holds epoch {kept}" if kept else "the saved model: the last"
            best_item.setToolTip(
                f"Best validation accuracy at epoch {best + 1}, lowest validation loss at "
                f"epoch {lowest + 1}; {saved}"
            )
        return [
            _Item(record.variant, record.variant),
            classes_item,
            _Item(epochs, done),
            acc(record.test_accuracy),
            acc(record.best_test_accuracy),
            best_item,
            self._time_item(record),
            params_item,
            file_item,
        ]

    @staticmethod
    def _time_item(record: RunRecord) -> _Item:
        """The whole run as its user waited for it; the fit alone for records that predate
        whole-run times (the tooltip says which)."""
        whole = record.wall_seconds
        shown = whole if whole is not None else record.seconds
        item = _Item(format_seconds(shown), shown or 0.0)
        if whole is None:
            item.setToolTip(
                "Time of the fit only (this run was saved before whole runs were timed)"
            )
        else:
            fit = (
                ""
                if record.seconds is None
                else f", {format_seconds(record.seconds)} of it fitting"
            )
            item.setToolTip(f"The whole run, start to saved model{fit}")
        return item

    def _run_at(self, row: int) -> SavedRun:
        return self._runs[self.item(row, 0).data(Qt.ItemDataRole.UserRole)]

    def _on_activated(self, item: QTableWidgetItem) -> None:
        run = self._run_at(item.row())
        if run.model_path is not None:
            self.run_opened.emit(run)

    def selected_runs(self) -> list[SavedRun]:
        """The selected runs, top to bottom as shown."""
        rows = sorted({index.row() for index in self.selectionModel().selectedRows()})
        return [self._run_at(row) for row in rows]
