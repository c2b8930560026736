"""Entry point: ``cifar-gui`` with a sub-command runs headless, without one opens the window."""

from __future__ import annotations

import argparse
import os
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


def gui_parser() -> argparse.ArgumentParser:
    """Options of the desktop app (no sub-command)."""
    parser = argparse.ArgumentParser(
        prog="cifar-gui",
        description="Convnets on CIFAR-10. Sub-commands train, evaluate, predict and data "
        "run headless (cifar-gui train --help).",
    )
    parser.add_argument("images", nargs="*", help="image files to classify at start")
    parser.add_argument("--data", help="data set to open: archive, batches folder or image folder")
    parser.add_argument("--screenshot-dir", help="save one PNG per panel here, then exit")
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="open offscreen, classify a bundled image with the default model, exit",
    )
    return parser


def run_gui(args: Sequence[str]) -> int:
    """Start the Qt application with the main window."""
    options = gui_parser().parse_args(args)
    if options.screenshot_dir or options.self_test:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    if options.self_test:
        from cifar_gui.selftest import run_self_test

        return run_self_test()
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from cifar_gui.gui.main_window import MainWindow
    from cifar_gui.resources import resource_path

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("cifar-gui")
    # Wayland matches the window to the installed .desktop file by this name.
    app.setDesktopFileName("cifar-gui")
    app.setWindowIcon(
        QIcon(str(resource_path("icons", "hicolor", "256x256", "apps", "cifar-gui.png")))
    )
    if options.screenshot_dir:
        from cifar_gui.gui.screenshots import save_screenshots

        return save_screenshots(options.screenshot_dir, options.data)
    window = MainWindow()
    window.show()
    window.start(options.data)  # the given data set, else the last one, else the Keras cache
    if options.images:
        window.classify_files(options.images)
    code = app.exec()
    window.wait_closed()  # the engine's child ends after the loop, not during it
    return code
