"""Saving and loading models (``.h5`` or ``.keras``) with a JSON sidecar of the same stem.

Writes are atomic: the file is written beside its target under a temporary name and renamed
over it, so a failed or interrupted save leaves the previous file intact.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
import struct
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import h5py
import keras

from cifar_gui.config import RunConfig
from cifar_gui.engine.errors import ModelError, first_line
from cifar_gui.engine.files import (
    MAX_JSON_BYTES,
    WRITE_ERRORS,
    atomic_path,
    write_failure,
    write_json,
)
from cifar_gui.engine.quiet import quiet_logger
from cifar_gui.engine.record import RunRecord, class_count, read_record, sidecar_path

# Bounds checked before Keras opens a model file. The largest model of this app, a finetune
# checkpoint with its optimizer state, is about 180 MB; a .keras holds 3 or 4 zip members.
MAX_MODEL_BYTES = 2 * 2**30
MAX_ZIP_MEMBERS = 64
MAX_ZIP_RATIO = 100  # uncompressed / compressed, for members over 1 MiB
MAX_H5_OBJECTS = 100_000


@dataclass
class LoadedModel:
    """A model with what is known about it (its sidecar's record, or what the model says)."""

    model: keras.Model
    path: Path
    record: RunRecord | None = None  # None: no valid sidecar

    @property
    def class_names(self) -> tuple[str, ...]:
        if self.record is not None and self.record.class_names:
            return self.record.class_names
        return tuple(f"class {i}" for i in range(class_count(self.model.output_shape[-1])))

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) of the images the model takes."""
        return tuple(self.model.input_shape[1:3])

    @property
    def config(self) -> RunConfig | None:
        """The run's config, when the sidecar has one."""
        return None if self.record is None else self.record.config

    @property
    def history(self) -> Mapping[str, tuple[float, ...]]:
        return {} if self.record is None else self.record.history


def save_model(
    model: keras.Model, path: str | Path, record: RunRecord | Callable[[], RunRecord] | None
) -> Path:
    """Save ``model`` (``.h5`` or ``.keras``) and its JSON sidecar (``record``'s, or ``{}``
    when nothing is known of the model): both or neither replaced. ``record`` may be a
    function, called once the model is written (a run's record counts that time).

    Both are written to temporary files first; then the sidecar is renamed over its target,
    then the model. Should the model's rename fail (say, the old model is immutable), the
    previous sidecar is put back. The model goes last because its rename is the commit: until
    then the old model is untouched. Only a crash between the two renames (microseconds) can
    leave a new sidecar beside the old model: the model, the valuable part, is then the old
    one, whole; the other order would leave the new model described by the old run.
    """
    path = Path(path)
    side = sidecar_path(path)
    previous = side.read_bytes() if side.is_file() else None
    failing, side_replaced = path, False
    try:
        with atomic_path(path) as tmp:
            # Keras' "HDF5 is legacy" warning: the seed's .h5 names are asked for on purpose.
            with quiet_logger("absl"):
                model.save(tmp)
            failing = side
            if callable(record):  # asked now, so the record can count the model's write
                record = record()
            write_json(side, {} if record is None else record.to_dict())
            side_replaced, failing = True, path
        # The model's rename happened as the block above closed.
    except WRITE_ERRORS as exc:
        if side_replaced:
            _restore(side, previous)
        raise ModelError(f"{failing}: cannot write ({write_failure(exc)})") from None
    return path


def _restore(path: Path, content: bytes | None) -> None:
    """Put back a file's previous content (``None``: it did not exist), as far as possible."""
    with contextlib.suppress(OSError):
        if content is None:
            path.unlink(missing_ok=True)
        else:
            with atomic_path(path) as tmp:
                tmp.write_bytes(content)


def check_model_file(path: Path, what: str = "Keras model") -> None:
    """Raise :class:`ModelError` unless the model file's sizes are bounded, before Keras
    reads it: a ``.keras`` is a zip, so its member count, total uncompressed size and
    compression ratio are checked; the datasets of an HDF5 file (a ``.h5``, or the weights
    inside a ``.keras``) may not declare more bytes than :data:`MAX_MODEL_BYTES` in all, and
    neither may the layers its config describes (:func:`_check_config`). Told apart by
    content, as Keras tells them: a zip named ``.h5`` is loaded as a ``.keras``.
    """
    size = path.stat().st_size
    if size > MAX_MODEL_BYTES:
        raise ModelError(f"{path}: {size:,} bytes, more than a model of this app can be")
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive, open(path, "rb") as raw:
                members = archive.infolist()
                _check_zip_members(path, members)
                for member in members:
                    if member.filename.endswith(".h5"):
                        with _open_member(archive, raw, member) as f:
                            _check_h5(path, f, what)
                config = _config_text(archive)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise ModelError(f"{path}: not a loadable {what} ({exc})") from None
        if config is not None:
            _check_config(path, config, legacy=False, what=what)
    elif h5py.is_hdf5(path):
        _check_h5(path, path, what)


def _config_text(archive: zipfile.ZipFile) -> bytes | None:
    """The ``config.json`` of a ``.keras`` (None without one: Keras then refuses the file)."""
    try:
        member = archive.getinfo("config.json")
    except KeyError:
        return None
    if member.file_size > MAX_JSON_BYTES:
        raise ValueError(f"config.json of {member.file_size:,} bytes")
    return archive.read(member)


def _dtype_bytes(dtype: str) -> int:
    """Bytes per element of a Keras dtype name: float32 4, bfloat16 2, bool 1."""
    bits = re.search(r"\d+", str(dtype))
    return max(1, int(bits.group()) // 8) if bits else 1


def _check_config(path: Path, config: str | bytes, *, legacy: bool, what: str) -> None:
    """Refuse a model whose layers, as its config describes them, would hold more than
    :data:`MAX_MODEL_BYTES` of weights, before Keras builds them: they are built in a
    stateless scope, where Keras records each variable's shape and allocates nothing (a
    config of a few bytes can ask for a Dense layer of billions of units).

    ``legacy``: the config of a ``.h5``, read as Keras reads it there. Keras' private
    modules (as of 3.15) are the only way to build a config as ``load_model`` does.
    """
    from keras.src.backend.common import global_state
    from keras.src.legacy.saving import json_utils, saving_options, saving_utils
    from keras.src.saving import serialization_lib

    pending = global_state.get_global_attribute("uninitialized_variables") or []
    waiting = len(pending)
    legacy_scope = (
        saving_options.keras_option_scope(use_legacy_config=True)
        if legacy
        else contextlib.nullcontext()
    )
    try:
        text = config.decode("utf-8") if isinstance(config, bytes) else config
        parsed = json_utils.decode(text) if legacy else json.loads(text)
        if isinstance(parsed, dict):
            parsed.pop("compile_config", None)  # only the layers: no optimizer, no metrics
        with (
            legacy_scope,
            serialization_lib.SafeModeScope(True),
            keras.StatelessScope(initialize_variables=False),
        ):
            if legacy:
                model = saving_utils.model_from_config(parsed)
            else:
                model = serialization_lib.deserialize_keras_object(parsed)
            declared = sum(
                math.prod(v.shape) * _dtype_bytes(v.dtype) for v in getattr(model, "variables", ())
            )
    except Exception as exc:  # a config Keras could not build either
        reason = first_line(exc)
        raise ModelError(f"{path}: not a loadable {what} ({reason})") from None
    finally:
        # The variables made here are never initialised: Keras keeps no list of them.
        del (global_state.get_global_attribute("uninitialized_variables") or [])[waiting:]
    if declared > MAX_MODEL_BYTES:
        raise ModelError(
            f"{path}: its layers declare {declared:,} bytes of weights, more than "
            f"{MAX_MODEL_BYTES:,}; not a model of this app"
        )


class _StoredMember(io.RawIOBase):
    """An uncompressed zip member read in place: h5py seeks back and forth, which costs
    nothing here but re-reads the member from its start with ``ZipFile.open``."""

    def __init__(self, raw: BinaryIO, member: zipfile.ZipInfo):
        super().__init__()
        raw.seek(member.header_offset)
        header = raw.read(30)
        if len(header) < 30 or header[:4] != b"PK\x03\x04":
            raise zipfile.BadZipFile(f"no local header for {member.filename}")
        name_length, extra_length = struct.unpack("<HH", header[26:30])
        self._raw, self._size, self._pos = raw, member.file_size, 0
        self._start = member.header_offset + 30 + name_length + extra_length

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        self._raw.seek(self._start + self._pos)
        data = self._raw.read(max(0, min(len(buffer), self._size - self._pos)))
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


def _open_member(archive: zipfile.ZipFile, raw: BinaryIO, member: zipfile.ZipInfo) -> BinaryIO:
    """A seekable reader of a zip member (Keras stores its members uncompressed)."""
    if member.compress_type == zipfile.ZIP_STORED:
        return _StoredMember(raw, member)
    return io.BufferedReader(archive.open(member), 2**16)


def _check_zip_members(path: Path, members: list[zipfile.ZipInfo]) -> None:
    if len(members) > MAX_ZIP_MEMBERS:
        raise ModelError(f"{path}: {len(members)} zip members, more than a Keras model has")
    total = sum(m.file_size for m in members)
    if total > MAX_MODEL_BYTES:
        raise ModelError(f"{path}: unpacks to {total:,} bytes, more than a model can be")
    for m in members:
        if m.file_size > MAX_ZIP_RATIO * max(m.compress_size, 2**20 // MAX_ZIP_RATIO):
            raise ModelError(f"{path}: zip member {m.filename} is compressed suspiciously well")


def _check_h5(path: Path, source: Any, what: str = "Keras model") -> None:
    """Refuse an HDF5 file whose datasets declare too many bytes or that has too many objects
    (a small file can declare huge sparse or compressed datasets)."""
    declared, objects = 0, 0

    def visit(_name: str, item: Any) -> bool | None:
        nonlocal declared, objects
        objects += 1
        if isinstance(item, h5py.Dataset):
            declared += item.size * item.dtype.itemsize
        return True if objects > MAX_H5_OBJECTS or declared > MAX_MODEL_BYTES else None

    try:
        with h5py.File(source, "r") as f:
            f.visititems(visit)
            config = _h5_config(f) if source is path else None
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: not a loadable {what} ({exc})") from None
    if objects > MAX_H5_OBJECTS:
        raise ModelError(f"{path}: more than {MAX_H5_OBJECTS:,} HDF5 objects")
    if declared > MAX_MODEL_BYTES:
        raise ModelError(f"{path}: its weights declare more than {MAX_MODEL_BYTES:,} bytes")
    if config is not None:
        _check_config(path, config, legacy=True, what=what)


def _h5_config(f: h5py.File) -> str | bytes | None:
    """A ``.h5`` model's ``model_config`` attribute, its size checked before it is read."""
    if "model_config" not in f.attrs:
        return None
    size = f.attrs.get_id("model_config").get_storage_size()
    if size > MAX_JSON_BYTES:
        raise ValueError(f"a model config of {size:,} bytes")
    return f.attrs["model_config"]


def load_model(path: str | Path, compile: bool = False) -> LoadedModel:
    """Load a model saved by this app or elsewhere; check that it takes images.

    The sidecar is optional: without it, or when it is not valid
    (:func:`cifar_gui.engine.record.read_record`), class names are generic and the input shape
    and class count are read from the model.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such model file")
    check_model_file(path)
    model = _keras_load(path, compile)
    check_model_shapes(path, model)
    # A broken sidecar must not make a good model unusable: it counts as absent. (Class names
    # that do not fit the outputs are refused where they are used, with both counts.)
    return LoadedModel(model, path, read_record(sidecar_path(path)))


def check_model_shapes(path: Path, model: keras.Model) -> None:
    """Raise :class:`ModelError` unless ``model`` is an image classifier of a fixed image
    size: input (N, height, width, 1 or 3), output (N, classes). Every path that opens a model
    checks this, so a model that cannot be used says why before an image is blamed."""
    shape = getattr(model, "input_shape", None)
    if not (isinstance(shape, tuple) and len(shape) == 4 and shape[-1] in (1, 3)):
        raise ModelError(f"{path}: model input {shape} is not an image (N, H, W, 1 or 3)")
    if not all(type(d) is int and d > 0 for d in shape[1:3]):
        raise ModelError(
            f"{path}: model input {shape} has no fixed image size; this app needs a model of "
            "one height and width, such as (None, 32, 32, 3)"
        )
    output = getattr(model, "output_shape", None)
    if not (isinstance(output, tuple) and len(output) == 2 and (output[-1] or 0) >= 1):
        raise ModelError(f"{path}: model output {output} is not a classifier's (N, classes)")


def _keras_load(path: Path, compile: bool) -> keras.Model:
    """``keras.models.load_model`` of a checked file; any failure is one :class:`ModelError`."""
    try:
        return keras.models.load_model(path, compile=compile)
    except Exception as exc:
        reason = first_line(exc)
        raise ModelError(f"{path}: not a loadable Keras model ({reason})") from None
