"""Errors that the user caused and can fix: shown as one line, never as a traceback."""

from __future__ import annotations

import os


def shown(text: str | os.PathLike) -> str:
    r"""A path (or a message naming one) as any UTF-8 output can print it.

    Python holds the bytes of a file name that are not UTF-8 as lone surrogates
    (``os.fsdecode``), which a strict UTF-8 stream refuses with a ``UnicodeEncodeError``;
    here they become ``\xNN``, the bytes as they are on disk. Other text is unchanged.
    """
    text = os.fsdecode(text)
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that stands for no byte (from JSON, say)
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


def first_line(exc: BaseException) -> str:
    """An exception's message cut to its first line (at most 200 characters), or its type's
    name when it has none: the cause inside a one-line message."""
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


class UserError(Exception):
    """Bad input (a path, a file, a name); the message names the problem and the path.

    The message is kept as :func:`shown` makes it, so every one prints anywhere.
    """

    def __init__(self, message: str = "") -> None:
        super().__init__(shown(message))


class DataError(UserError):
    """A data set that is missing, corrupt or does not fit the request."""


class ModelError(UserError):
    """A model file that cannot be loaded or does not fit the data."""


class ImageError(UserError):
    """An image file that cannot be read."""
