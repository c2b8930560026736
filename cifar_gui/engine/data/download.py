"""The official CIFAR-10 archive downloaded into the Keras cache, its size and sha256 checked
(the Dataset tab's *Download CIFAR-10*; the command line reads the cache)."""

from __future__ import annotations

import hashlib
import urllib.request
from collections.abc import Callable
from pathlib import Path

from cifar_gui.engine.data.dataset import ARCHIVE_NAME, keras_datasets_dir
from cifar_gui.engine.errors import DataError, first_line
from cifar_gui.engine.files import atomic_path

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
CIFAR10_BYTES = 170_498_071  # its size: a download that runs past it is not the archive


def download_cifar10(
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    url: str = CIFAR10_URL,
) -> Path:
    """Download the official archive into the Keras cache, checking its sha256.

    ``progress(done_bytes, total_bytes)`` is called as data arrives; when ``should_stop()``
    turns true the partial file is removed and :class:`DataError` is raised.
    """
    target = keras_datasets_dir() / ARCHIVE_NAME
    digest = hashlib.sha256()
    try:
        # The partial download never takes the archive's name: a cancel or a failure leaves
        # nothing, and the finished file gets the permissions of a plain write.
        with atomic_path(target) as tmp:
            with open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=30) as response:
                total = int(response.headers.get("Content-Length") or 0)
                if total > CIFAR10_BYTES:
                    raise DataError(f"{url}: {total:,} bytes offered, not the CIFAR-10 archive")
                done = 0
                while chunk := response.read(1 << 20):
                    if should_stop and should_stop():
                        raise DataError("download cancelled")
                    if done + len(chunk) > CIFAR10_BYTES:  # a server that never stops
                        raise DataError(f"{url}: more than {CIFAR10_BYTES:,} bytes, not CIFAR-10")
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, total)
            if digest.hexdigest() != CIFAR10_SHA256:
                raise DataError(f"{url}: downloaded file has the wrong checksum")
        return target
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"could not download CIFAR-10 from {url} ({first_line(exc)})") from None
