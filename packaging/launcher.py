"""Entry script of the frozen app: the ``cifar-gui`` executable PyInstaller builds."""

import multiprocessing

from cifar_gui.app import main

# A frozen program that a library starts worker processes from (spawn, the default on
# Windows and macOS) must hand those children to multiprocessing first.
multiprocessing.freeze_support()
main()
