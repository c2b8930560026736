"""Saving and loading: seed file names, sidecars, plain-Keras reload, atomic writes."""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile

import h5py
import keras
import numpy as np
import pytest

from cifar_gui.config import RunConfig
from cifar_gui.engine.errors import ModelError
from cifar_gui.engine.files import write_json
from cifar_gui.engine.models import persistence
from cifar_gui.engine.models.build import build_baseline, build_model
from cifar_gui.engine.models.persistence import load_model, save_model
from cifar_gui.engine.record import RunRecord, model_filename


def test_seed_file_names():
    assert model_filename("baseline", (4, 7)) == "cifar10_4_7.h5"
    assert model_filename("augmented", (4, 7)) == "cifar10_4_7_augm.h5"
    assert model_filename("transfer", (4, 7)) == "cifar10_4_7_transferlearning.h5"
    assert model_filename("finetune", (4, 7)) == "cifar10_4_7_finetuningtransferlearning.h5"
    assert model_filename("baseline", (1, 2, 3)) == "cifar10_1_2_3.h5"


def test_round_trip_keeps_predictions_and_metadata(tmp_path):
    model = build_baseline()
    path = save_model(model, tmp_path / "cifar10_4_7.h5", RunRecord(class_names=("deer", "horse")))
    loaded = load_model(path)
    assert loaded.class_names == ("deer", "horse")
    assert loaded.input_size == (32, 32)
    x = np.random.default_rng(0).random((3, 32, 32, 3)).astype(np.float32)
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.model.predict(x, verbose=0))
    assert json.loads((tmp_path / "cifar10_4_7.json").read_text())["class_names"] == [
        "deer",
        "horse",
    ]


def test_saved_models_load_in_plain_keras(tmp_path):
    """Without this package: same counts, same predictions (transfer has the VGG16 layers)."""
    x = np.random.default_rng(1).random((2, 32, 32, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    expected = {}
    for name, model in (
        ("baseline", build_baseline()),
        ("transfer", build_model(RunConfig(variant="transfer", weights="none"))),
    ):
        save_model(model, tmp_path / f"{name}.h5", None)
        trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        expected[name] = (model.count_params(), trainable, model.predict(x, verbose=0).tolist())
    code = f"""
import json, sys, numpy as np, keras
assert "cifar_gui" not in sys.modules
x = np.load({str(tmp_path / "x.npy")!r})
out = {{}}
for name in ("baseline", "transfer"):
    m = keras.models.load_model({str(tmp_path)!r} + f"/{{name}}.h5")
    trainable = sum(int(np.prod(w.shape)) for w in m.trainable_weights)
    out[name] = (m.count_params(), trainable, m.predict(x, verbose=0).tolist())
print(json.dumps(out))
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    reloaded = json.loads(result.stdout.strip().splitlines()[-1])
    for name, (count, trainable, preds) in expected.items():
        assert reloaded[name][0] == count
        assert reloaded[name][1] == trainable
        np.testing.assert_allclose(reloaded[name][2], preds, rtol=1e-5, atol=1e-6)
    assert expected["transfer"][:2] == (14_846_273, 131_585)


def test_model_without_sidecar_still_loads(tmp_path):
    path = tmp_path / "elsewhere.h5"
    build_baseline(num_classes=3).save(path)
    loaded = load_model(path)
    assert loaded.record is None
    assert loaded.class_names == ("class 0", "class 1", "class 2")


def test_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    path = save_model(build_baseline(), tmp_path / "cifar10_4_7.h5", RunRecord(seconds=1.0))
    before = path.read_bytes()
    model = build_baseline()

    def broken_save(self, filepath, *args, **kwargs):
        with open(filepath, "wb") as f:
            f.write(b"half a model")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(keras.Model, "save", broken_save)
    with pytest.raises(ModelError, match=r"cannot write.*No space left"):
        save_model(model, path, RunRecord(seconds=2.0))
    assert path.read_bytes() == before
    assert json.loads(path.with_suffix(".json").read_text())["seconds"] == 1.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cifar10_4_7.h5", "cifar10_4_7.json"]


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "not a loadable Keras model"),
        (b"this is a text file, not HDF5", "not a loadable Keras model"),
    ],
    ids=["empty", "text"],
)
def test_not_a_model_is_named(tmp_path, content, message):
    path = tmp_path / "model.h5"
    path.write_bytes(content)
    with pytest.raises(ModelError, match=message) as info:
        load_model(path)
    assert str(path) in str(info.value)


def test_truncated_model_is_named(tmp_path):
    path = save_model(build_baseline(), tmp_path / "m.h5", None)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelError, match=r"m.h5: not a loadable Keras model"):
        load_model(path)


def test_model_whose_input_is_not_an_image(tmp_path):
    path = tmp_path / "dense.h5"
    keras.Sequential([keras.Input((10,)), keras.layers.Dense(1)]).save(path)
    with pytest.raises(ModelError, match="is not an image"):
        load_model(path)


def test_missing_model_file(tmp_path):
    with pytest.raises(ModelError, match="no such model file"):
        load_model(tmp_path / "nope.h5")


# -- model and sidecar together (issue 12, section 2) ---------------------------------------


def _fail_replace_onto(monkeypatch, suffix: str) -> None:
    """Make renaming a temporary file onto a ``suffix`` target fail, as on an immutable file."""
    real = os.replace

    def replace(src, dst, *args, **kwargs):
        if str(dst).endswith(suffix):
            raise PermissionError(errno.EPERM, "Operation not permitted")
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)


@pytest.mark.parametrize("suffix", [".json", ".h5"], ids=["sidecar-fails", "model-fails"])
def test_model_and_sidecar_are_replaced_together_or_not_at_all(tmp_path, monkeypatch, suffix):
    path = save_model(build_baseline(), tmp_path / "cifar10_4_7.h5", RunRecord(seconds=1.0))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    _fail_replace_onto(monkeypatch, suffix)
    with pytest.raises(ModelError) as info:
        save_model(build_baseline(), path, RunRecord(seconds=2.0))
    # The message names the file that could not be written.
    assert str(info.value).startswith(f"{path.with_suffix(suffix)}: cannot write")
    assert "Operation not permitted" in str(info.value)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_first_save_whose_model_fails_leaves_no_sidecar(tmp_path, monkeypatch):
    _fail_replace_onto(monkeypatch, ".h5")
    with pytest.raises(ModelError, match=r"m\.h5: cannot write"):
        save_model(build_baseline(), tmp_path / "m.h5", RunRecord(seconds=1.0))
    assert list(tmp_path.iterdir()) == []


# -- permissions (issue 12, section 6) -------------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_saved_files_get_the_permissions_of_a_plain_write(tmp_path, umask):
    previous = os.umask(umask)
    try:
        path = save_model(build_baseline(), tmp_path / "cifar10_4_7.h5", RunRecord(seconds=1.0))
        write_json(tmp_path / "other.json", {})
        keras_path = save_model(build_baseline(), tmp_path / "m.keras", None)
    finally:
        os.umask(previous)
    expected = 0o666 & ~umask
    for p in (path, path.with_suffix(".json"), tmp_path / "other.json", keras_path):
        assert stat.S_IMODE(p.stat().st_mode) == expected, p


# -- sizes bounded before Keras opens a file (issue 12, section 3) ---------------------------


def _zip_with(path, members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_keras_zip_members_are_bounded(tmp_path):
    many = _zip_with(tmp_path / "many.keras", {f"m{i}": b"" for i in range(1000)})
    with pytest.raises(ModelError, match=r"many.keras: 1000 zip members"):
        load_model(many)
    bomb = _zip_with(tmp_path / "bomb.keras", {"model.weights.h5": bytes(20 * 2**20)})
    with pytest.raises(ModelError, match=r"bomb.keras: zip member model.weights.h5 is compressed"):
        load_model(bomb)


def test_keras_total_size_is_bounded(tmp_path, monkeypatch):
    path = save_model(build_baseline(), tmp_path / "m.keras", None)
    monkeypatch.setattr(persistence, "MAX_MODEL_BYTES", 2**20)
    with pytest.raises(ModelError, match=r"m.keras: (unpacks to|[\d,]+ bytes, more)"):
        load_model(path)


def test_h5_datasets_that_declare_huge_sizes_are_refused(tmp_path):
    """A few kB on disk, 16 GiB declared: a chunked dataset with no chunk written."""
    path = save_model(build_baseline(), tmp_path / "m.h5", None)
    with h5py.File(path, "a") as f:
        f.create_dataset("huge", shape=(2**31,), dtype="float64", chunks=(1024,))
    assert path.stat().st_size < 10 * 2**20
    with pytest.raises(ModelError, match=r"m.h5: its weights declare more than"):
        load_model(path)


# -- sidecars of the wrong shape (issue 12, section 3) ---------------------------------------


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sidecars")
    return save_model(
        build_baseline(), folder / "cifar10_4_7.h5", RunRecord(class_names=("a", "b"))
    )


@pytest.mark.parametrize(
    "content",
    [
        '{"class_names": 5}',
        '{"class_names": {"deer": 1, "horse": 2}}',
        '{"class_names": [1, 2]}',
        '{"config": {"epochs": "3"}}',
        '{"config": {"learning_rate": -1}}',
        '{"config": {"classes": "deer"}}',
        '{"config": {"augment": [1]}}',
        '{"config": 7}',
        '{"history": {"loss": 5}}',
        '{"history": {"loss": [1' + "0" * 400 + "]}}",  # too large for a float
        '{"data_source": ["x"]}',
        '{"class_names": ["a", "b"], "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
        "[1, 2]",
    ],
)
def test_a_sidecar_of_the_wrong_shape_counts_as_absent(saved, tmp_path, content):
    path = tmp_path / saved.name
    shutil.copy(saved, path)
    path.with_suffix(".json").write_text(content)
    loaded = load_model(path)
    assert loaded.record is None
    assert loaded.class_names == ("class 0", "class 1")
    assert loaded.config is None and loaded.history == {}


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_keras_weights_that_declare_huge_sizes_are_refused(tmp_path, compression):
    """The weights HDF5 inside a .keras is checked like a .h5, read in place or inflated."""
    path = save_model(build_baseline(), tmp_path / "m.keras", None)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    weights = tmp_path / "w.h5"
    weights.write_bytes(members["model.weights.h5"])
    load_model(path)  # as saved: fine
    with h5py.File(weights, "a") as f:
        f.create_dataset("huge", shape=(2**31,), dtype="float64", chunks=(1024,))
    members["model.weights.h5"] = weights.read_bytes()
    _zip_with(path, members, compression)
    with pytest.raises(ModelError, match=r"m.keras: its weights declare more than"):
        load_model(path)


# -- layer configs that declare more than their weights (issue 27) ------------------------

HUGE_UNITS = 10**9  # Dense(10**9) after 2 features: 12 GB of float32 weights for 12 bytes


def small_model() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Conv2D(2, 3),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )


def with_huge_dense(path, target=None):
    """``path``'s model with its Dense layer's units in the config raised to HUGE_UNITS (its
    weights as they were), written to ``target`` (default: in place)."""
    target = target or path
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            members = {m.filename: archive.read(m) for m in archive.infolist()}
        config = members["config.json"].decode()
        members["config.json"] = config.replace('"units": 1,', f'"units": {HUGE_UNITS},').encode()
        assert members["config.json"].decode() != config
        with zipfile.ZipFile(target, "w") as archive:
            for name, data in members.items():
                archive.writestr(name, data)
    else:
        with h5py.File(path, "r+") as f:
            config = f.attrs["model_config"]
            config = config.decode() if isinstance(config, bytes) else config
            huge = config.replace('"units": 1,', f'"units": {HUGE_UNITS},')
            assert huge != config
            f.attrs["model_config"] = huge
    return target


@pytest.fixture
def keras_never_loads(monkeypatch):
    """Fails a test whose model reaches Keras' loader (where the layers are allocated)."""

    def refuse(*args, **kwargs):
        raise AssertionError("Keras was asked to build the model")

    monkeypatch.setattr(persistence, "_keras_load", refuse)
    monkeypatch.setattr(keras.saving, "load_model", refuse)


@pytest.mark.parametrize("name", ["m.h5", "m.keras", "zip_named.h5"])
def test_huge_layer_configs_are_refused_before_keras_builds_them(tmp_path, name, keras_never_loads):
    """The config's layers are sized without allocating: 12 GB of a Dense layer declared in a
    file of kilobytes is refused before anything that size exists. A .keras zip named .h5
    (Keras loads it as a zip whatever its name) is checked as a zip."""
    source = tmp_path / ("m.keras" if name == "zip_named.h5" else name)
    small_model().save(source)
    path = with_huge_dense(source, tmp_path / name)
    with pytest.raises(ModelError) as info:
        load_model(path)
    assert str(info.value) == (
        f"{path}: its layers declare {(3 * HUGE_UNITS + 56) * 4:,} bytes of weights, "
        f"more than {persistence.MAX_MODEL_BYTES:,}; not a model of this app"
    )


def test_a_checkpoint_of_huge_layers_is_refused_before_keras_builds_it(tmp_path, keras_never_loads):
    from cifar_gui.engine.models.checkpoint_model import load_checkpoint_model
    from cifar_gui.engine.training.checkpoints import Checkpoint

    model = small_model()
    model.compile("rmsprop", "binary_crossentropy")
    path = tmp_path / "epoch-0001.keras"
    model.save(path)
    with_huge_dense(path)
    checkpoint = Checkpoint(tmp_path, path, RunConfig(), 1, 1, {}, ("deer", "horse"))
    with pytest.raises(ModelError, match=r"epoch-0001.keras: its layers declare 12,000,000,224 "):
        load_checkpoint_model(checkpoint)


@pytest.mark.parametrize("variant", ["baseline", "augmented", "transfer"])
def test_the_apps_models_pass_the_config_check(tmp_path, variant):
    """The check builds the config as Keras does: every model of the app passes, and the
    weights it counts are the model's."""
    model = build_model(RunConfig(variant=variant, weights="none"))
    for suffix in (".h5", ".keras"):
        path = save_model(model, tmp_path / f"{variant}{suffix}", None)
        persistence.check_model_file(path)
        assert load_model(path).model.count_params() == model.count_params()
