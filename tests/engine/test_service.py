"""The engine service: the same answers as the engine's functions (models, augmentation
previews, the device), in its child process or in the caller's thread; one-line errors; a
dead child is replaced; closing ends it; the window's side imports neither Qt nor TensorFlow."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest

from cifar_gui import resources
from cifar_gui.config import AugmentConfig, RunConfig
from cifar_gui.engine.data.augment import preview_augmentations, preview_batch
from cifar_gui.engine.errors import ImageError, ModelError, UserError
from cifar_gui.engine.models import inspect
from cifar_gui.engine.models.build import parameter_counts, planned_parameter_counts
from cifar_gui.engine.models.persistence import load_model
from cifar_gui.engine.record import ParameterCounts
from cifar_gui.engine.service import DeviceInfo, EngineService, ModelHandle
from cifar_gui.engine.service.client import EXIT_WAIT_S
from cifar_gui.engine.training.run import describe_device, versions


@pytest.fixture(scope="module")
def loaded():
    """The bundled baseline, loaded here, to compare the service's answers with."""
    return load_model(resources.default_model_path())


@pytest.fixture(scope="module")
def child():
    """One service with its child process for the whole file (starting it imports TF)."""
    service = EngineService()
    yield service
    service.close()


def picture(seed: int, size: tuple[int, int] = (32, 32)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(*size, 3), dtype=np.uint8)


def test_handle_is_plain_data_read_off_the_model(loaded):
    service = EngineService(in_process=True)
    handle = service.open(resources.default_model_path())
    assert isinstance(handle, ModelHandle)
    assert handle.path == resources.default_model_path()
    assert handle.class_names == ("deer", "horse") == loaded.class_names
    assert handle.input_size == (32, 32)
    assert handle.layers == tuple(inspect.list_layers(loaded.model))
    assert handle.default_layers == tuple(inspect.default_layers(loaded.model))
    assert handle.parameters == parameter_counts(loaded.model)
    assert handle.from_logits is False  # a sigmoid output
    assert handle.record is not None and handle.record.class_names == ("deer", "horse")
    service.close()


@pytest.mark.parametrize("where", ["in_process", "child"])
def test_answers_are_the_engines(where, loaded, child, tmp_path):
    service = child if where == "child" else EngineService(in_process=True)
    handle = service.open(resources.default_model_path())
    model = loaded.model
    image = picture(1)
    names = [info.name for info in handle.layers]
    got = service.activations(handle, image, names)
    want = inspect.activations(model, image, names)
    assert list(got) == names
    for name in names:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        service.grad_cam(handle, image), inspect.grad_cam(model, image), atol=1e-5
    )
    images = np.stack([picture(2), picture(3)])
    np.testing.assert_allclose(
        service.predict_images(handle, images, direct=True),
        inspect.probabilities(model, images, direct=True),
        atol=1e-6,
    )
    file = tmp_path / "photo.png"
    from PIL import Image

    Image.fromarray(picture(4, (40, 24))).save(file)
    [got_pred] = service.predict_files(handle, [file])
    [want_pred] = inspect.predict_files(model, [file], loaded.class_names)
    assert got_pred.label == want_pred.label
    np.testing.assert_allclose(got_pred.probabilities, want_pred.probabilities, atol=1e-6)
    np.testing.assert_array_equal(got_pred.image, want_pred.image)
    labels = np.array([0, 1])
    got_ev = service.evaluate(handle, images, labels, 2)
    want_ev = inspect.evaluate(model, images, labels, 2)
    assert got_ev.accuracy == want_ev.accuracy
    np.testing.assert_array_equal(got_ev.confusion, want_ev.confusion)
    config = RunConfig(variant="baseline")
    assert service.planned_parameter_counts(config, 3) == planned_parameter_counts(config, 3)


@pytest.mark.parametrize("where", ["in_process", "child"])
def test_errors_come_back_as_one_line(where, child, tmp_path):
    service = child if where == "child" else EngineService(in_process=True)
    missing = tmp_path / "none.keras"
    with pytest.raises(ModelError, match=r"none\.keras: no such model file"):
        service.open(missing)
    handle = service.open(resources.default_model_path())
    with pytest.raises(ImageError, match=r"nothing\.png"):
        service.predict_files(handle, [tmp_path / "nothing.png"])
    # Not a UserError in the engine (a KeyError): still one line, with its type.
    with pytest.raises(UserError, match=r"^KeyError: .*no layer 'nope'") as info:
        service.activations(handle, picture(5), ["nope"])
    assert "\n" not in str(info.value)
    # A handle of a file that is gone and not loaded: the file's error, not a crash.
    gone = ModelHandle(missing, ("a", "b"), (32, 32), (), (), ParameterCounts(0, 0, 0), False)
    with pytest.raises(ModelError, match=r"none\.keras"):
        service.grad_cam(gone, picture(6))


def test_save_writes_model_and_sidecar_and_answers_for_the_new_path(child, tmp_path):
    handle = child.open(resources.default_model_path())
    target = tmp_path / "copy.keras"
    saved = child.save(handle, target)
    assert saved.path == target and target.is_file() and target.with_suffix(".json").is_file()
    assert saved.class_names == handle.class_names
    image = picture(7)
    np.testing.assert_allclose(
        child.predict_images(saved, image[None], direct=True),
        child.predict_images(handle, image[None], direct=True),
    )
    assert child.open(target).record.class_names == ("deer", "horse")


def test_a_killed_child_fails_one_call_and_the_next_starts_another(child):
    handle = child.open(resources.default_model_path())
    pid = child.pid
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(UserError, match="engine process was killed by signal 9"):
        child.predict_images(handle, picture(8)[None], direct=True)
    # The next request starts a new child, which reads the handle's file again.
    probs = child.predict_images(handle, picture(8)[None], direct=True)
    assert probs.shape == (1, 2)
    assert child.pid not in (None, pid)


def test_close_ends_the_child_and_refuses_later_requests():
    service = EngineService()
    handle = service.open(resources.default_model_path())
    process_pid = service.pid
    service.close()
    assert service.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(process_pid, 0)  # joined: gone, not a zombie
    with pytest.raises(UserError, match="closed"):
        service.predict_images(handle, picture(9)[None])


@pytest.mark.parametrize("where", ["in_process", "child"])
def test_augmentation_previews_and_the_device_are_the_engines(where, child):
    service = child if where == "child" else EngineService(in_process=True)
    config = AugmentConfig(rotation_deg=30, zoom=0.3, fill_mode="reflect")
    image = picture(10)
    np.testing.assert_array_equal(
        service.augment_copies(image, config, 3, 7), preview_augmentations(image, config, 3, 7)
    )
    images = np.stack([picture(11), picture(12)])
    batch = service.augment_batch(images, config, 5)
    np.testing.assert_array_equal(batch, preview_batch(images, config, 5))
    # Each picture its own draw: copy i is picture i's preview with seed 5 * 1000 + i.
    np.testing.assert_array_equal(batch[1], preview_augmentations(images[1], config, 1, 5001)[0])
    assert service.augment_batch(images[:0], config, 5).shape == (0, 32, 32, 3)
    device = service.detect_device()
    assert device == DeviceInfo(describe_device(), versions())
    assert device.description.startswith(("CPU: ", "GPU: "))


def test_a_failed_preview_is_one_line(child):
    with pytest.raises(UserError) as info:
        child.augment_copies(np.zeros((32, 32), np.uint8), AugmentConfig(), 2, 0)  # no channels
    assert "\n" not in str(info.value) and str(info.value)


def test_service_module_imports_neither_qt_nor_tensorflow():
    import subprocess
    import sys

    code = (
        "import sys, cifar_gui.engine.service\n"
        "bad = [m for m in ('tensorflow', 'keras', 'PySide6') if m in sys.modules]\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_close_without_waiting_returns_while_the_child_runs_and_reaps_it_later():
    service = EngineService()
    service._start()  # what the first request does; no TensorFlow needed for this
    pid = service.pid
    os.kill(pid, signal.SIGSTOP)  # stopped, it cannot read the request to leave
    try:
        service.close(wait=False)  # the window's close: it must not wait for the child
        os.kill(pid, 0)  # still there
        assert service.wait_closed(0) is False
    finally:
        os.kill(pid, signal.SIGCONT)
    assert service.wait_closed(EXIT_WAIT_S * 3) is True  # it leaves, as it was asked
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # joined: gone, not a zombie
