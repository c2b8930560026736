"""cifar-gui: convolutional networks on CIFAR-10, as a desktop app and a command line."""

__version__ = "0.1.0"
