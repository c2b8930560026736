"""Build the one-folder desktop app with PyInstaller, then check it in a bare environment.

    python packaging/build.py            # dist/cifar-gui/, trimmed (what `make package` runs)
    python packaging/build.py --no-trim  # the same without trimming, to compare sizes

Run it with the project's virtual environment (``.venv/bin/python``): the bundle contains
the packages installed there, the CPU TensorFlow by default. PyInstaller itself comes from
the ``package`` extra and is installed on first use. The checks: ``cifar-gui --self-test``,
then a tiny training run in the frozen program spawned as the window's training child
(``frozen_training.py``). Exits non-zero when the build or a check fails.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "packaging" / "cifar-gui.spec"
NAME = "cifar-gui"
CHECK_TIMEOUT_S = 600  # each check; a cold start of TensorFlow from disk on a loaded machine


def ensure_pyinstaller() -> None:
    """Install the ``package`` extra into this interpreter's environment when it is missing."""
    if importlib.util.find_spec("PyInstaller") is None:
        print("PyInstaller not found: installing the 'package' extra", flush=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[package]"],
            check=True,
        )


def check_resources() -> None:
    """Fail before the long build when the default model or the sample image is missing."""
    sys.path.insert(0, str(ROOT))
    from cifar_gui import resources

    for path in (resources.default_model_path(), resources.sample_image_path()):
        if not Path(path).is_file():
            raise SystemExit(f"error: {path} is missing; the bundle needs it")


def tensorflow_build() -> str:
    """Which TensorFlow wheel the bundle will contain (the CUDA one adds gigabytes)."""
    for name in ("tensorflow-cpu", "tensorflow"):
        try:
            return f"{name} {importlib.metadata.version(name)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    raise SystemExit("error: TensorFlow is not installed in this environment")


def folder_size(folder: Path) -> int:
    """Bytes of the files under ``folder``; links count as themselves, not their targets."""
    return sum(
        (Path(dirpath) / name).lstat().st_size
        for dirpath, _, names in os.walk(folder)
        for name in names
    )


def unresolved_libraries(bundle: Path) -> list[str]:
    """Linux: shared libraries that bundled binaries need but neither bundle nor system has."""
    if not sys.platform.startswith("linux") or shutil.which("ldd") is None:
        return []
    env = dict(os.environ, LD_LIBRARY_PATH=str(bundle / "_internal"))
    missing = set()
    for path in bundle.rglob("*.so*"):
        if path.is_symlink() or not path.is_file():
            continue
        done = subprocess.run(["ldd", str(path)], env=env, capture_output=True, text=True)
        for line in done.stdout.splitlines():
            if "not found" in line:
                missing.add(f"{line.split()[0]} (needed by {path.relative_to(bundle)})")
    return sorted(missing)


def bare_environment(home: Path) -> dict[str, str]:
    """What a desktop launcher gives a program: no venv, no Python, a fresh home folder."""
    env = {
        "HOME": str(home),
        "USERPROFILE": str(home),
        "TMPDIR": str(home),
        "TEMP": str(home),
        "TMP": str(home),
        "XDG_RUNTIME_DIR": str(home),
        "QT_QPA_PLATFORM": "offscreen",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "LANG": os.environ.get("LANG", "C.UTF-8"),
    }
    if sys.platform == "win32":
        system_root = os.environ.get("SYSTEMROOT", r"C:\Windows")
        env["SYSTEMROOT"] = system_root
        env["PATH"] = str(Path(system_root) / "System32")
    else:
        # An empty folder: no python, pip or venv can be found by accident.
        empty = home / "empty-path"
        empty.mkdir()
        env["PATH"] = str(empty)
    return env


def executable(dist: Path) -> Path:
    """The built program inside the dist folder, per platform."""
    if sys.platform == "win32":
        return dist / NAME / f"{NAME}.exe"
    if sys.platform == "darwin":
        return dist / f"{NAME}.app" / "Contents" / "MacOS" / NAME
    return dist / NAME / NAME


def run_check(command: list[str], label: str) -> bool:
    """Run ``command`` from a scratch folder in a bare environment; print its ``label`` line."""
    with tempfile.TemporaryDirectory(prefix="cifar-gui-check-") as scratch:
        home = Path(scratch)
        os.chmod(home, 0o700)  # Qt insists on a private XDG_RUNTIME_DIR
        try:
            done = subprocess.run(
                command,
                cwd=home,
                env=bare_environment(home),
                capture_output=True,
                text=True,
                timeout=CHECK_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            print(f"{label}: no answer within {CHECK_TIMEOUT_S} s")
            return False
    lines = [line for line in (done.stdout + done.stderr).splitlines() if label in line]
    print(lines[-1] if lines else f"{label} printed nothing (exit status {done.returncode})")
    if done.returncode != 0:
        print(done.stderr[-3000:], file=sys.stderr)
    return done.returncode == 0


def self_test(program: Path) -> bool:
    """``program --self-test``: the window, the default model and the sample image."""
    return run_check([str(program), "--self-test"], "self-test")


def training_test(program: Path) -> bool:
    """A tiny training run in ``program`` spawned as the window's training child."""
    script = ROOT / "packaging" / "frozen_training.py"
    return run_check([sys.executable, str(script), str(program)], "frozen training")


def main(argv: list[str] | None = None) -> int:
    """Build, measure and check; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-trim", action="store_true", help="keep unused Qt modules etc.")
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="output folder")
    parser.add_argument("--skip-self-test", action="store_true", help="only build, no checks")
    options = parser.parse_args(argv)

    ensure_pyinstaller()
    check_resources()
    print(f"bundling {tensorflow_build()} from {sys.prefix}", flush=True)
    env = dict(os.environ, CIFAR_GUI_NO_TRIM="1" if options.no_trim else "0")
    started = time.perf_counter()
    command = [
        sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN",
        "--distpath", str(options.dist), "--workpath", str(ROOT / "build" / "pyinstaller"),
        str(SPEC),
    ]  # fmt: skip
    print("$", " ".join(command), flush=True)
    if subprocess.run(command, cwd=ROOT, env=env).returncode != 0:
        print("error: PyInstaller failed (see above)", file=sys.stderr)
        return 1
    minutes = (time.perf_counter() - started) / 60
    program = executable(options.dist)
    bundle = options.dist / (f"{NAME}.app" if sys.platform == "darwin" else NAME)
    size_mib = folder_size(bundle) / 2**20
    trimmed = "untrimmed" if options.no_trim else "trimmed"
    print(f"built {program} in {minutes:.1f} min; folder {size_mib:,.0f} MiB ({trimmed})")
    # Not fatal: optional plugins (the GTK theme) may lack libraries the user's desktop has.
    for line in unresolved_libraries(bundle):
        print(f"warning: not in the bundle nor on this system: {line}")
    if options.skip_self_test:
        return 0
    if not self_test(program):
        print("error: the built app failed its self-test", file=sys.stderr)
        return 1
    if not training_test(program):
        print("error: the built app failed to train in its spawned child", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
