"""The desktop packaging: .desktop file, icons, PyInstaller spec, and the --self-test entry.

The PyInstaller build itself is too slow for the default tests (``make package`` runs it
and checks the result; the slow-marked test here does the same); here the spec is executed
with stand-ins for PyInstaller's build classes, which proves it is valid Python, evaluates on
every platform and points at files that exist.
"""

from __future__ import annotations

import configparser
import importlib.util
import inspect
import mimetypes
import shutil
import subprocess
import sys
import types
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from cifar_gui.engine.data.dataset import IMAGE_EXTENSIONS

ROOT = Path(__file__).resolve().parents[1]
PACKAGING = ROOT / "packaging"
DESKTOP = PACKAGING / "cifar-gui.desktop"
SPEC = PACKAGING / "cifar-gui.spec"
ICONS = ROOT / "resources" / "icons" / "hicolor"


def desktop_entry() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.optionxform = str  # keys are case-sensitive
    parser.read(DESKTOP, encoding="utf-8")
    return parser["Desktop Entry"]


def test_desktop_file_has_the_launcher_keys():
    entry = desktop_entry()
    assert entry["Type"] == "Application"
    assert entry["Name"] and entry["Comment"]
    assert entry["Icon"] == "cifar-gui"
    assert entry["Exec"].split()[-1] == "%F", "files from 'Open with' must reach the app"
    categories = entry["Categories"].split(";")
    assert "Education" in categories and "Science" in categories


def test_desktop_file_offers_every_image_type_the_app_reads():
    offered = set(filter(None, desktop_entry()["MimeType"].split(";")))
    for extension in IMAGE_EXTENSIONS:
        mime, _ = mimetypes.guess_type(f"x{extension}", strict=False)
        if mime is not None:  # this system's MIME table may not know every extension
            assert mime in offered, f"{extension} ({mime}) missing from MimeType"


@pytest.mark.skipif(
    shutil.which("desktop-file-validate") is None,
    reason="desktop-file-validate not installed (Debian/Ubuntu: apt install desktop-file-utils)",
)
def test_desktop_file_validates():
    done = subprocess.run(
        ["desktop-file-validate", str(DESKTOP)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "error:" not in done.stdout + done.stderr


@pytest.mark.parametrize("size", [48, 128, 256])
def test_icon_png_in_hicolor_layout(size):
    from PIL import Image

    path = ICONS / f"{size}x{size}" / "apps" / "cifar-gui.png"
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (size, size)
        assert image.mode == "RGBA"  # transparent corners


def test_icon_svg_is_an_svg():
    root = ET.parse(ICONS / "scalable" / "apps" / "cifar-gui.svg").getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("viewBox") == "0 0 256 256"


def test_install_scripts_are_valid_shell():
    for script in ("install.sh", "uninstall.sh"):
        done = subprocess.run(["sh", "-n", str(PACKAGING / script)], capture_output=True)
        assert done.returncode == 0, done.stderr.decode()


class _Recorder:
    """Stands in for one PyInstaller build class; records how the spec calls it."""

    def __init__(self, calls: dict[str, list], name: str):
        self.calls, self.name = calls, name

    def __call__(self, *args, **kwargs):
        self.calls.setdefault(self.name, []).append((args, kwargs))
        return types.SimpleNamespace(
            args=args, kwargs=kwargs, pure=[], scripts=[], binaries=[], datas=[]
        )


def run_spec(monkeypatch, tmp_path, platform: str, trim: bool = True) -> tuple[dict, dict]:
    """Execute the spec as PyInstaller would, on ``platform``; return (calls, namespace)."""
    hooks = types.ModuleType("PyInstaller.utils.hooks")
    hooks.collect_submodules = lambda package, **kwargs: [package]
    monkeypatch.setitem(sys.modules, "PyInstaller.utils.hooks", hooks)
    monkeypatch.setattr(sys, "platform", platform)
    monkeypatch.setenv("CIFAR_GUI_NO_TRIM", "0" if trim else "1")
    calls: dict[str, list] = {}
    namespace = {"SPECPATH": str(PACKAGING), "workpath": str(tmp_path), "__name__": "__main__"}
    for name in ("Analysis", "PYZ", "EXE", "COLLECT", "BUNDLE"):
        namespace[name] = _Recorder(calls, name)
    exec(compile(SPEC.read_text(), str(SPEC), "exec"), namespace)
    return calls, namespace


@pytest.mark.parametrize("platform", ["linux", "win32", "darwin"])
def test_spec_evaluates_and_points_at_existing_files(monkeypatch, tmp_path, platform):
    calls, _ = run_spec(monkeypatch, tmp_path, platform)
    [((scripts,), analysis)] = calls["Analysis"]
    assert all(Path(script).is_file() for script in scripts)
    assert all(Path(source).exists() for source, _ in analysis["datas"])
    assert (Path(analysis["pathex"][0]) / "cifar_gui" / "__init__.py").is_file()
    [(_, exe)] = calls["EXE"]
    assert exe["name"] == "cifar-gui" and Path(exe["icon"]).is_file()
    assert exe["console"] == (platform == "linux")
    assert ("BUNDLE" in calls) == (platform == "darwin")


def test_spec_trims_unused_qt_and_tests(monkeypatch, tmp_path):
    calls, spec = run_spec(monkeypatch, tmp_path, "linux")
    excludes = calls["Analysis"][0][1]["excludes"]
    assert {"PySide6.QtWebEngineCore", "PySide6.QtQml", "PySide6.QtMultimedia"} <= set(excludes)
    assert "PySide6.QtWidgets" not in excludes and "PySide6.QtSvg" not in excludes
    keep = spec["keep"]
    assert keep(("PySide6/Qt/plugins/platforms/libqoffscreen.so", "", "BINARY"))
    assert keep(("PySide6/Qt/plugins/platforms/libqxcb.so", "", "BINARY"))
    assert not keep(("tensorflow/python/kernel_tests/x.so", "", "BINARY"))
    assert not keep(("PySide6\\Qt\\qml\\QtQuick\\x.dll", "", "BINARY"))  # Windows separators
    assert not keep(("PySide6/Qt/lib/libQt6Quick.so.6", "", "BINARY"))
    assert not keep(("libQt6Quick.so.6", "", "BINARY"))  # PyInstaller's top-level link


def test_spec_strips_only_the_listed_libraries(monkeypatch, tmp_path):
    _, spec = run_spec(monkeypatch, tmp_path, "linux")
    monkeypatch.setattr(spec["subprocess"], "run", lambda *args, **kwargs: None)
    entry = ("numpy.libs/libscipy_openblas.so", "/src/libscipy_openblas.so", "BINARY")
    assert spec["stripped"](entry) == entry
    dest, source, kind = spec["stripped"](("tensorflow/libtensorflow_cc.so.2", "/src/x", "BINARY"))
    assert dest == "tensorflow/libtensorflow_cc.so.2" and kind == "BINARY"
    assert Path(source) == tmp_path / "stripped" / dest

    untrimmed, _ = run_spec(monkeypatch, tmp_path, "linux", trim=False)
    assert untrimmed["Analysis"][0][1]["excludes"] == []


def test_spec_arguments_fit_pyinstallers_analysis(monkeypatch, tmp_path):
    build_main = pytest.importorskip("PyInstaller.building.build_main", reason="no PyInstaller")
    calls, _ = run_spec(monkeypatch, tmp_path, "linux")
    args, kwargs = calls["Analysis"][0]
    inspect.signature(build_main.Analysis.__init__).bind(None, *args, **kwargs)


def test_spec_ships_the_apps_sources_for_autograph(monkeypatch, tmp_path):
    # AutoGraph converts the input pipeline's tf.data functions from their source code; a
    # bundle without the .py files warns "could not transform" and runs them unconverted.
    for trim in (True, False):
        calls, spec = run_spec(monkeypatch, tmp_path, "linux", trim=trim)
        modes = calls["Analysis"][0][1].get("module_collection_mode", {})
        assert modes.get("cifar_gui") in ("py", "pyz+py", "py+pyz"), modes
    sources = list((ROOT / "cifar_gui").rglob("*.py"))
    assert ROOT / "cifar_gui" / "engine" / "training" / "run.py" in sources
    for source in sources:  # the trimming after the analysis keeps them
        dest = source.relative_to(ROOT).as_posix()
        assert spec["keep"]((dest, str(source), "DATA")), dest


def test_pyinstaller_reads_the_spec_as_shipping_every_app_source(monkeypatch, tmp_path):
    build_main = pytest.importorskip("PyInstaller.building.build_main", reason="no PyInstaller")
    calls, _ = run_spec(monkeypatch, tmp_path, "linux")
    modes = calls["Analysis"][0][1]["module_collection_mode"]
    for name in ("cifar_gui", "cifar_gui.engine.training.run", "cifar_gui.engine.data.augment"):
        collected = build_main._get_module_collection_mode(modes, name)
        assert build_main._ModuleCollectionMode.PY in collected, (name, collected)


def load_frozen_training() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(
        "frozen_training", PACKAGING / "frozen_training.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(sys.platform == "win32", reason="the stand-in program is a shell script")
def test_frozen_training_check_spawns_the_program_as_a_frozen_child(tmp_path, capsys):
    # A stand-in for the built program that records how it was started, prints AutoGraph's
    # warning and dies: the check must report both, in one line, without hanging.
    args_file = tmp_path / "args"
    program = tmp_path / "cifar-gui"
    program.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$@" > "{args_file}"\n'
        'echo "WARNING:tensorflow:AutoGraph could not transform <function f> and will run it '
        'as-is." >&2\n'
        "exit 3\n"
    )
    program.chmod(0o755)
    assert load_frozen_training().main([str(program)]) == 1
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("frozen training FAILED:")
    assert "exit code 3" in line and "1 AutoGraph 'could not transform' warnings" in line
    # What PyInstaller's freeze_support() in launcher.py diverts to multiprocessing's spawn_main.
    flag, *values = args_file.read_text().split()
    assert flag == "--multiprocessing-fork"
    assert sorted(value.split("=")[0] for value in values) == ["pipe_handle", "tracker_fd"]
    assert all(value.split("=")[1].isdigit() for value in values)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the build is tried on Linux")
def test_built_app_trains_without_autograph_warnings(tmp_path):
    pytest.importorskip("PyInstaller", reason="no PyInstaller: pip install -e '.[package]'")
    dist = tmp_path / "dist"
    built = subprocess.run(
        [sys.executable, str(PACKAGING / "build.py"), "--dist", str(dist)],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    assert "self-test OK" in built.stdout and "frozen training OK" in built.stdout
    # The headless command line of the bundle runs the same input pipeline.
    images = load_frozen_training().write_image_folder(tmp_path / "images")
    command = [str(dist / "cifar-gui" / "cifar-gui"), "train", "--data", str(images)]
    options = ["--classes", "cat", "dog", "--variant", "augmented", "--limit", "20"]
    done = subprocess.run(
        [*command, *options, "--epochs", "1", "--out", str(tmp_path / "runs")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "could not transform" not in done.stderr
    assert list((tmp_path / "runs").glob("*.h5"))


def test_self_test_flag_runs_the_self_test(monkeypatch):
    from cifar_gui import app, selftest

    monkeypatch.setattr(selftest, "run_self_test", lambda: 7)
    assert app.run_gui(["--self-test"]) == 7


def test_self_test_reports_a_missing_model_in_one_line(monkeypatch, capsys, qapp):
    from cifar_gui import resources, selftest

    monkeypatch.setattr(resources, "default_model_path", lambda: Path("/nonexistent/model.h5"))
    assert selftest.run_self_test() == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "self-test FAILED" in err and "/nonexistent/model.h5" in err


def test_self_test_passes_from_source(capsys, qapp):
    from cifar_gui import selftest

    assert selftest.run_self_test() == 0
    out = capsys.readouterr().out
    assert out.startswith("cifar-gui self-test OK:")
