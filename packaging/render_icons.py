"""Render the app icon SVG to the hicolor PNG sizes with QtSvg (no Inkscape needed).

Run after editing ``resources/icons/hicolor/scalable/apps/cifar-gui.svg``:

    .venv/bin/python packaging/render_icons.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

ICONS = Path(__file__).resolve().parents[1] / "resources" / "icons" / "hicolor"
SVG = ICONS / "scalable" / "apps" / "cifar-gui.svg"
SIZES = (48, 128, 256)  # pixels; the hicolor sizes the .desktop launcher and docks ask for


def render(svg: Path, size: int, out: Path) -> None:
    """Draw ``svg`` on a transparent ``size`` x ``size`` image and save it as PNG."""
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"{svg}: not a valid SVG")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    out.parent.mkdir(parents=True, exist_ok=True)
    if not image.save(str(out)):
        raise SystemExit(f"{out}: cannot write")


def main() -> int:
    """Render every size into ``<size>x<size>/apps/cifar-gui.png``."""
    _app = QGuiApplication(sys.argv[:1])  # QImage painting needs a Gui application
    for size in SIZES:
        out = ICONS / f"{size}x{size}" / "apps" / "cifar-gui.png"
        render(SVG, size, out)
        print(out.relative_to(ICONS.parents[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
