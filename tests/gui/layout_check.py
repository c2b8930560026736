"""Find text that a window shows cut off: labels and buttons narrower than their text, table
cells whose value is elided without a tooltip that gives it in full, tab titles cut, and
plot legend entries that run past their view.

Used by test_layout.py at the window's default size and at 1366 x 768. Only what is visible
counts; a widget inside a scroll area may be scrolled out of view (that is not clipping).
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetrics, QTextDocument
from PySide6.QtGui import Qt as GuiQt
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractScrollArea,
    QCheckBox,
    QComboBox,
    QGroupBox,
    QLabel,
    QPushButton,
    QRadioButton,
    QStyleOptionViewItem,
    QTabBar,
    QWidget,
)

SLACK_PX = 1  # rounding of font metrics against widget geometry
CELL_PADDING_PX = 6  # a cell's text margins in the styles Qt ships


def _plain(text: str) -> str:
    if GuiQt.mightBeRichText(text):  # Qt's namespace function lives in QtGui
        doc = QTextDocument()
        doc.setHtml(text)
        return doc.toPlainText()
    return text


def _name(widget: QWidget) -> str:
    label = widget.objectName() or type(widget).__name__
    return f"{label} in {type(widget.parentWidget()).__name__}" if widget.parentWidget() else label


def _text_width(metrics: QFontMetrics, text: str) -> int:
    return max((metrics.horizontalAdvance(line) for line in text.splitlines()), default=0)


def _label_problem(label: QLabel) -> str | None:
    text = _plain(label.text()).strip()
    if not text or (label.pixmap() is not None and not label.pixmap().isNull()):
        return None
    room = label.contentsRect().width() - 2 * max(label.margin(), 0) - max(label.indent(), 0)
    if label.wordWrap():
        need = label.heightForWidth(label.width())
        if need > label.height() + SLACK_PX:
            return f"label {text[:50]!r} needs {need} px of height, has {label.height()}"
        return None
    need = _text_width(label.fontMetrics(), text)
    if need > room + SLACK_PX:
        return f"label {text[:50]!r} needs {need} px, has {room}"
    return None


def _button_problem(button: QAbstractButton) -> str | None:
    text = button.text().replace("&&", "\0").replace("&", "").replace("\0", "&")
    if not text:
        return None
    if isinstance(button, QPushButton | QCheckBox | QRadioButton):
        need = button.sizeHint().width()
        if need > button.width() + SLACK_PX:
            return f"button {text[:50]!r} needs {need} px, has {button.width()}"
    return None


def _combo_problem(combo: QComboBox) -> str | None:
    text = combo.currentText()
    if not text:
        return None
    # The arrow and frame take about the height of the box.
    room = combo.width() - combo.height()
    need = combo.fontMetrics().horizontalAdvance(text)
    if need > room + SLACK_PX:
        return f"combo box {text[:50]!r} needs {need} px, has {room}"
    return None


def _group_problem(group: QGroupBox) -> str | None:
    need = group.fontMetrics().horizontalAdvance(group.title()) + 16
    if group.title() and need > group.width() + SLACK_PX:
        return f"group title {group.title()[:50]!r} needs {need} px, has {group.width()}"
    return None


def _tabs_problems(bar: QTabBar) -> list[str]:
    out = []
    metrics = bar.fontMetrics()
    for i in range(bar.count()):
        need = metrics.horizontalAdvance(bar.tabText(i).replace("&", ""))
        if need > bar.tabRect(i).width() + SLACK_PX:
            out.append(f"tab {bar.tabText(i)!r} needs {need} px, has {bar.tabRect(i).width()}")
    return out


def _view_problems(view: QAbstractItemView) -> list[str]:
    """Cells whose shown text is cut and whose tooltip does not give the whole value."""
    model = view.model()
    if model is None:
        return []
    out: list[str] = []
    metrics = view.fontMetrics()
    viewport = view.viewport().rect()
    root = view.rootIndex()
    try:
        columns = model.columnCount(root)
    except TypeError:  # a list model keeps columnCount private: one column
        columns = 1
    for row in range(min(model.rowCount(root), 200)):
        for column in range(columns):
            index = model.index(row, column, root)
            rect = view.visualRect(index)
            if rect.isEmpty() or not viewport.intersects(rect):
                continue
            text = model.data(index, Qt.ItemDataRole.DisplayRole)
            if text is None or str(text) == "":
                continue
            text = str(text)
            if view.wordWrap():  # wrapped to the item's width: cut only when it needs more room
                option = QStyleOptionViewItem()
                view.initViewItemOption(option)
                option.rect = rect
                need = view.itemDelegate().sizeHint(option, index)
                if need.height() > rect.height() + SLACK_PX:
                    out.append(f"cell ({row}, {column}) {text[:40]!r} needs {need.height()} px "
                               f"of height, has {rect.height()}")  # fmt: skip
                continue
            icon = model.data(index, Qt.ItemDataRole.DecorationRole)
            room = rect.width() - CELL_PADDING_PX - (view.iconSize().width() if icon else 0)
            if _text_width(metrics, text) <= room + SLACK_PX:
                continue
            tip = model.data(index, Qt.ItemDataRole.ToolTipRole)
            if tip is not None and text in _plain(str(tip)):
                continue
            out.append(f"cell ({row}, {column}) {text[:40]!r} cut to {room} px, no full tooltip")
    return out


def _legend_problems(view: pg.GraphicsView) -> list[str]:
    """Legend entries (pyqtgraph) that run past the right edge of their view."""
    out = []
    for item in view.scene().items():
        if not isinstance(item, pg.LegendItem) or not item.isVisible():
            continue
        for _, label in item.items:
            right = view.mapFromScene(label.sceneBoundingRect()).boundingRect().right()
            if right > view.width() + SLACK_PX:
                out.append(f"legend entry {label.text!r} ends at {right} px of {view.width()}")
    return out


def clipped_text(window: QWidget) -> list[str]:
    """Every piece of visible text in ``window`` that is shown cut off, one line each."""
    problems: list[str] = []
    for widget in window.findChildren(QWidget):
        # A scroll area's own region can be all covered by its viewport: look at the viewport.
        shown = widget.viewport() if isinstance(widget, QAbstractScrollArea) else widget
        if not widget.isVisible() or shown.visibleRegion().isEmpty():
            continue
        found: list[str] = []
        if isinstance(widget, QLabel):
            found = [p for p in [_label_problem(widget)] if p]
        elif isinstance(widget, QAbstractButton):
            found = [p for p in [_button_problem(widget)] if p]
        elif isinstance(widget, QComboBox):
            found = [p for p in [_combo_problem(widget)] if p]
        elif isinstance(widget, QGroupBox):
            found = [p for p in [_group_problem(widget)] if p]
        elif isinstance(widget, QTabBar):
            found = _tabs_problems(widget)
        elif isinstance(widget, QAbstractItemView):
            found = _view_problems(widget)
        elif isinstance(widget, pg.GraphicsView):
            found = _legend_problems(widget)
        problems += [f"{_name(widget)}: {p}" for p in found]
    return problems
