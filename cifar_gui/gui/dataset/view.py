"""The Dataset panel: where the data comes from, how many images each class has, which classes
training uses, and a browser over every image (thumbnails, a large view, the seed's samples).

The widgets only: what they show comes from :mod:`cifar_gui.gui.dataset.model`.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QModelIndex, QSize, Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListView,
    QMenu,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from cifar_gui import tutorial
from cifar_gui.engine.data.dataset import Dataset
from cifar_gui.gui.dataset import model
from cifar_gui.gui.dataset.model import CHOSEN, source_name
from cifar_gui.gui.state import AppState
from cifar_gui.gui.widgets.image_grid import ImageGrid
from cifar_gui.gui.widgets.thumbnail_model import ImageItem, ThumbnailModel
from cifar_gui.gui.widgets.zoom_dialog import ZoomDialog
from cifar_gui.gui.workers import JobRunner


class DatasetPanel(QWidget):
    """Source picker, counts table with the class choice, thumbnails and the seed's samples."""

    load_finished = Signal(bool)  # after every load or download: True when a data set opened

    def __init__(self, state: AppState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.load_job = JobRunner(self)
        self.download_job = JobRunner(self)
        self._order: list[int] = list(state.classes)  # chosen classes in the order ticked
        self._filling_table = False
        self.error_message = ""  # the last load or download failure, in plain words
        self._outcome: bool | None = None  # of the job that just ended, for load_finished

        layout = QVBoxLayout(self)
        layout.addLayout(self._build_source_row())
        layout.addLayout(self._build_busy_row())
        self.stack = QStackedWidget()
        self.empty_page = self._build_empty_page()
        self.browser_page = self._build_browser_page()
        self.stack.addWidget(self.empty_page)
        self.stack.addWidget(self.browser_page)
        layout.addWidget(self.stack, 1)
        self.zoom = ZoomDialog(self)

        for job in (self.load_job, self.download_job):
            job.result.connect(self._on_loaded)
            job.error.connect(self._on_failed)
            job.finished.connect(self._on_job_finished)
        self.download_job.progress.connect(self._on_download_progress)
        state.dataset_changed.connect(self._on_dataset_changed)
        state.classes_changed.connect(self._on_classes_changed)
        self._show_empty("Choose a data set above, or download CIFAR-10.")

    # -- building ------------------------------------------------------------------------

    def _open_menu(self) -> QMenu:
        menu = QMenu(self)
        menu.addAction("Archive file (cifar-10-python.tar.gz)...", self.open_archive)
        menu.addAction("Folder (batches folder, or train/ and test/ images)...", self.open_folder)
        return menu

    def _build_source_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.addWidget(QLabel("Data set:"))
        self.source_label = QLabel("none")
        self.source_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row.addWidget(self.source_label, 1)
        self.keras_button = QPushButton("Keras cache")
        self.keras_button.setToolTip("CIFAR-10 as Keras downloads it (~/.keras/datasets)")
        self.keras_button.clicked.connect(lambda: self.load(model.KERAS))
        self.open_button = QPushButton("Open...")
        self.open_button.setToolTip("The official archive, its batches folder, or an image folder")
        self.open_button.setMenu(self._open_menu())
        self.download_button = QPushButton("Download CIFAR-10")
        self.download_button.setToolTip("163 MB from cs.toronto.edu into the Keras cache")
        self.download_button.clicked.connect(self.download)
        for button in (self.keras_button, self.open_button, self.download_button):
            row.addWidget(button)
        return row

    def _build_busy_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.busy_label = QLabel()
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(320)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_download)
        row.addWidget(self.busy_label)
        row.addWidget(self.progress)
        row.addWidget(self.cancel_button)
        row.addStretch(1)
        for widget in (self.busy_label, self.progress, self.cancel_button):
            widget.hide()
        return row

    def _build_empty_page(self) -> QWidget:
        page = QWidget()
        outer = QVBoxLayout(page)
        # A box of bounded width, so the wrapped text gets the height it needs.
        box = QWidget()
        box.setMaximumWidth(640)
        layout = QVBoxLayout(box)
        title = QLabel("No data set is open.")
        font = QFont(title.font())
        font.setPointSizeF(font.pointSizeF() * 1.5)
        font.setBold(True)
        title.setFont(font)
        self.empty_detail = QLabel()
        self.empty_detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        explain = QLabel(
            "The app needs CIFAR-10 (60,000 small colour pictures in 10 classes). "
            "Download it once (163 MB, kept in the Keras cache), or open a copy you already "
            "have: the official cifar-10-python.tar.gz, its extracted folder, or a folder "
            "of images sorted as train/<class>/ and test/<class>/."
        )
        for label in (title, self.empty_detail, explain):
            label.setWordWrap(True)
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            layout.addWidget(label)
        self.empty_download = QPushButton("Download CIFAR-10")
        self.empty_download.clicked.connect(self.download)
        self.empty_open = QPushButton("Open a local archive or image folder...")
        self.empty_open.setMenu(self._open_menu())
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.empty_download)
        buttons.addWidget(self.empty_open)
        buttons.addStretch(1)
        layout.addSpacing(8)
        layout.addLayout(buttons)
        centre = QHBoxLayout()  # stretches, not alignment: aligned widgets get no wrapping
        centre.addStretch(1)
        centre.addWidget(box, 4)
        centre.addStretch(1)
        outer.addStretch(1)
        outer.addLayout(centre)
        outer.addStretch(2)
        return page

    def _build_browser_page(self) -> QWidget:
        splitter = QSplitter()
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(QLabel("Images per class; tick the classes to train on:"))
        self.counts_table = QTableWidget(0, 4)
        self.counts_table.setHorizontalHeaderLabels(["Class", "Label", "Train", "Test"])
        self.counts_table.verticalHeader().hide()
        self.counts_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.counts_table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        header = self.counts_table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in (1, 2, 3):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.counts_table.itemChanged.connect(self._on_class_ticked)
        left_layout.addWidget(self.counts_table, 1)
        self.summary_label = QLabel()
        self.summary_label.setWordWrap(True)
        left_layout.addWidget(self.summary_label)
        splitter.addWidget(left)

        self.views = QTabWidget()
        self.views.addTab(self._build_thumbnails(), "Thumbnails")
        self.views.addTab(self._build_seed_samples(), "Seed samples")
        splitter.addWidget(self.views)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([330, 770])
        return splitter

    def _build_thumbnails(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        filters = QHBoxLayout()
        filters.addWidget(QLabel("Show"))
        self.class_filter = QComboBox()
        self.split_filter = QComboBox()
        self.split_filter.addItem("training images", "train")
        self.split_filter.addItem("test images", "test")
        filters.addWidget(self.class_filter)
        filters.addWidget(QLabel("from the"))
        filters.addWidget(self.split_filter)
        self.shown_label = QLabel()
        filters.addWidget(self.shown_label, 1)
        layout.addLayout(filters)

        self.thumbnails = ThumbnailModel(parent=self)
        self.grid = QListView()
        self.grid.setViewMode(QListView.ViewMode.IconMode)
        self.grid.setResizeMode(QListView.ResizeMode.Adjust)
        self.grid.setMovement(QListView.Movement.Static)
        self.grid.setUniformItemSizes(True)  # lets the view skip measuring 50,000 items
        self.grid.setLayoutMode(QListView.LayoutMode.Batched)
        self.grid.setIconSize(QSize(64, 64))
        self.grid.setGridSize(QSize(68, 68))
        self.grid.setSpacing(2)
        self.grid.setModel(self.thumbnails)
        self.grid.clicked.connect(self._on_thumbnail_clicked)
        self.grid.activated.connect(self._on_thumbnail_clicked)
        layout.addWidget(self.grid, 1)
        hint = QLabel(
            "Click a picture to see it large; it also becomes the picture that the "
            "Augmentation and Activations tabs use."
        )
        hint.setWordWrap(True)
        layout.addWidget(hint)
        self.class_filter.currentIndexChanged.connect(self.apply_filter)
        self.split_filter.currentIndexChanged.connect(self.apply_filter)
        return page

    def _build_seed_samples(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        intro = QLabel(
            "The ten training pictures the tutorial plots: numbers "
            + ", ".join(f"{i:,}" for i in tutorial.SAMPLE_IMAGES_R)
            + " of the training set, counted from 1 as in R."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.seed_grid = ImageGrid()
        layout.addWidget(self.seed_grid)
        self.seed_note = QLabel()
        self.seed_note.setWordWrap(True)
        layout.addWidget(self.seed_note)
        layout.addStretch(1)
        return page

    # -- loading -------------------------------------------------------------------------

    def load(self, source: str | None) -> None:
        """Open a data set in a worker: ``None`` or ``"keras"`` for the Keras cache, or a path."""
        source = model.normal_source(source)
        self._set_busy(f"Loading {source_name(source)}...", download=False)
        self.load_job.start(lambda task: model.load(source))

    def open_archive(self) -> None:
        """Ask for the official archive and load it."""
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Open the CIFAR-10 archive",
            str(Path.home()),
            "CIFAR-10 archive (*.tar.gz *.tgz *.tar);;All files (*)",
        )
        if path:
            self.load(path)

    def open_folder(self) -> None:
        """Ask for a batches folder or an image folder and load it."""
        path = QFileDialog.getExistingDirectory(
            self, "Open a CIFAR-10 batches folder or an image folder", str(Path.home())
        )
        if path:
            self.load(path)

    def download(self) -> None:
        """Download CIFAR-10 into the Keras cache in a worker, with progress and Cancel."""
        self._set_busy("Downloading CIFAR-10...", download=True)
        self.download_job.start(model.download)

    def cancel_download(self) -> None:
        self.download_job.stop()
        self.busy_label.setText("Cancelling...")

    def _set_busy(self, text: str, download: bool) -> None:
        self.busy_label.setText(text)
        self.progress.setRange(0, 100 if download else 0)  # (0, 0): a moving bar
        self.progress.setValue(0)
        for widget in (self.busy_label, self.progress):
            widget.show()
        self.cancel_button.setVisible(download)
        self._set_sources_enabled(False)

    def _set_sources_enabled(self, enabled: bool) -> None:
        """The buttons that start a load or download: off while one runs."""
        for button in (
            self.keras_button,
            self.open_button,
            self.download_button,
            self.empty_download,
            self.empty_open,
        ):
            button.setEnabled(enabled)

    def _on_job_finished(self) -> None:
        if self.load_job.busy or self.download_job.busy:
            return
        outcome, self._outcome = self._outcome, None
        for widget in (self.busy_label, self.progress, self.cancel_button):
            widget.hide()
        self._set_sources_enabled(True)
        if outcome is not None:
            self.load_finished.emit(outcome)  # last, so the panel is usable again by then

    def _on_download_progress(self, value: tuple[int, int]) -> None:
        percent, text = model.download_progress(*value)
        if percent is not None:
            self.progress.setValue(percent)
        self.busy_label.setText(text)

    def _on_loaded(self, result: tuple[Dataset, str]) -> None:
        dataset, source = result
        self.state.set_dataset(dataset, source)
        self._outcome = True
        self.state.message.emit(model.opened_message(dataset, source))

    def _on_failed(self, message: str) -> None:
        if self.state.dataset is None:
            self._show_empty(message)
        self.error_message = message
        self._outcome = False
        self.state.message.emit(message)

    def _show_empty(self, reason: str) -> None:
        self.error_message = reason
        self.empty_detail.setText(reason)
        self.stack.setCurrentWidget(self.empty_page)

    # -- showing a data set ----------------------------------------------------------------

    def _on_dataset_changed(self, dataset: Dataset | None) -> None:
        if dataset is None:
            self.source_label.setText("none")
            self.thumbnails.set_dataset(None)
            self._show_empty("Choose a data set above, or download CIFAR-10.")
            return
        self.source_label.setText(source_name(self.state.data_source))
        self._order = list(self.state.classes)
        self._fill_counts(dataset)
        self.class_filter.blockSignals(True)
        self.class_filter.clear()
        for text, choice in model.filter_choices(dataset.class_names):
            self.class_filter.addItem(text, choice)
        self.class_filter.blockSignals(False)
        self.thumbnails.set_dataset(dataset)
        self.apply_filter()
        self._show_seed_samples(dataset)
        self.stack.setCurrentWidget(self.browser_page)

    def _fill_counts(self, dataset: Dataset) -> None:
        rows = model.count_rows(dataset)
        self._filling_table = True
        self.counts_table.setRowCount(len(rows))
        for row, counts in enumerate(rows):
            for column, text in enumerate(counts.cells()):
                cell = QTableWidgetItem(text)
                if column == 0 and counts.label is not None:
                    cell.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable)
                elif column > 0 and text:
                    cell.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                self.counts_table.setItem(row, column, cell)
        self._filling_table = False
        self._show_choice()

    def _show_choice(self) -> None:
        """Tick and embolden the chosen classes and summarise what training will get."""
        dataset = self.state.dataset
        if dataset is None:
            return
        chosen = set(self.state.classes)
        self._filling_table = True
        for label in range(len(dataset.class_names)):
            for column in range(4):
                item = self.counts_table.item(label, column)
                font = item.font()
                font.setBold(label in chosen)
                item.setFont(font)
            self.counts_table.item(label, 0).setCheckState(
                Qt.CheckState.Checked if label in chosen else Qt.CheckState.Unchecked
            )
        self._filling_table = False
        self.summary_label.setText(model.choice_summary(dataset, self.state.classes))

    def _on_class_ticked(self, item: QTableWidgetItem) -> None:
        if self._filling_table or item.column() != 0 or self.state.dataset is None:
            return
        label = item.row()
        if label >= len(self.state.dataset.class_names):
            return
        order = model.ticked(self._order, label, item.checkState() == Qt.CheckState.Checked)
        if order is None:
            self.state.message.emit(model.TOO_FEW_CLASSES)
            self._show_choice()  # put the tick back
            return
        self.set_classes(order)

    def set_classes(self, classes: list[int] | tuple[int, ...]) -> None:
        """Choose the classes training uses (label indices, in label order 0, 1, ...)."""
        self._order = list(classes)
        self.state.set_classes(tuple(classes))

    def _on_classes_changed(self, classes: tuple[int, ...]) -> None:
        self._order = list(classes)
        self._show_choice()
        if self.class_filter.currentData() == CHOSEN:
            self.apply_filter()

    # -- thumbnails ----------------------------------------------------------------------

    def apply_filter(self) -> None:
        """Show the images of the split and class(es) picked above the grid."""
        if self.state.dataset is None:
            return
        split = self.split_filter.currentData()
        classes, what = model.filtered_classes(
            self.class_filter.currentData(), self.state.classes, self.state.class_names
        )
        self.thumbnails.set_filter(split, classes)
        self.grid.scrollToTop()
        self.shown_label.setText(f"{self.thumbnails.rowCount():,} images ({split}, {what})")

    def _on_thumbnail_clicked(self, index: QModelIndex) -> None:
        if not index.isValid():
            return
        item: ImageItem = self.thumbnails.item(index.row())
        image = self.thumbnails.image(index.row())
        # Labels as training numbers them (the Dataset tab's "deer = 0"), not the data set's.
        chosen = self.state.classes
        label = f"label {chosen.index(item.label)}" if item.label in chosen else "not chosen"
        self.zoom.show_image(image, f"{item.caption} ({label})")
        self.state.choose_image(image, item.caption)

    # -- seed samples --------------------------------------------------------------------

    def _show_seed_samples(self, dataset: Dataset) -> None:
        samples = model.seed_samples(dataset)
        self.seed_grid.set_images(samples.images, columns=5, size=128, captions=samples.captions)
        self.seed_note.setText(samples.note)

    # -- closing -------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop the download and wait for both workers (called when the window closes)."""
        self.download_job.shutdown()
        self.load_job.shutdown()
        self.zoom.close()
