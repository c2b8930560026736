"""The Qt desktop app. It reaches Keras only through :mod:`cifar_gui.engine`."""
