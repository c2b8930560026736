"""Errors that the user caused and can fix: shown as one line, never as a traceback."""


class UserError(Exception):
    """Bad input (a path, a file, a name); the message names the problem and the path."""


class DataError(UserError):
    """A data set that is missing, corrupt or does not fit the request."""


class ModelError(UserError):
    """A model file that cannot be loaded or does not fit the data."""


class ImageError(UserError):
    """An image file that cannot be read."""
