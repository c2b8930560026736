"""Entry script of the frozen app: the ``cifar-gui`` executable PyInstaller builds."""

from cifar_gui.app import main

main()
