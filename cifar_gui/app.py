"""Entry point: ``cifar-gui`` with a sub-command runs headless, without one opens the window."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from cifar_gui.cli import COMMANDS


def main(argv: Sequence[str] | None = None) -> None:
    """Dispatch to the command line or start the desktop app; exits with its status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and (args[0] in COMMANDS or args[0] in ("-h", "--help")):
        from cifar_gui import cli

        sys.exit(cli.main(args))
    sys.exit(run_gui(args))


def run_gui(args: Sequence[str]) -> int:
    """Start the Qt application with the main window."""
    from PySide6.QtWidgets import QApplication

    from cifar_gui.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0], *args])
    app.setApplicationName("cifar-gui")
    window = MainWindow()
    window.show()
    return app.exec()
