"""Regenerate docs/screenshots/ from a synthetic image-folder data set.

The README's screenshots may not show CIFAR-10 pictures (the data set is not redistributed
in this repository), so this script draws a small stand-in: per class a sky and ground
colour and a body shape, 60 training and 20 test images each; trains two short runs on it;
then runs ``cifar-gui --screenshot-dir docs/screenshots --data <folder>``. With real
CIFAR-10 the panels look the same, with photographs in the grids.

    .venv/bin/python docs/make_screenshots.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from cifar_gui.engine.data import CIFAR10_CLASSES

ROOT = Path(__file__).resolve().parents[1]


def draw(label: int, rng: np.random.Generator) -> Image.Image:
    """A 32x32 picture: a sky/ground scene with a class-coloured body."""
    hue = np.array([(label * 97) % 256, (label * 53 + 90) % 256, (label * 31 + 40) % 256])
    sky = tuple(int(v) for v in np.clip(hue * 0.4 + 140 + rng.normal(0, 12, 3), 0, 255))
    ground = tuple(int(v) for v in np.clip(np.array([70, 110, 50]) + rng.normal(0, 15, 3), 0, 255))
    body = tuple(int(v) for v in np.clip(hue * 0.8 + rng.normal(0, 20, 3), 0, 255))
    img = Image.new("RGB", (32, 32), sky)
    pen = ImageDraw.Draw(img)
    horizon = int(rng.integers(16, 24))
    pen.rectangle([0, horizon, 31, 31], fill=ground)
    x, y = int(rng.integers(4, 14)), int(rng.integers(8, 16))
    w, h = int(rng.integers(12, 18)), int(rng.integers(6, 11))
    if label % 2:
        pen.ellipse([x, y, x + w, y + h], fill=body)
    else:
        pen.rectangle([x, y, x + w, y + h], fill=body)
    for leg in (x + 2, x + w - 3):  # four-legged or not, it reads as an animal at 32 px
        pen.line([leg, y + h, leg, min(31, y + h + 7)], fill=body, width=2)
    noise = rng.normal(0, 6, (32, 32, 3))
    return Image.fromarray(np.clip(np.asarray(img) + noise, 0, 255).astype(np.uint8))


def make_dataset(root: Path, train: int = 60, test: int = 20) -> Path:
    rng = np.random.default_rng(0)
    for split, count in (("train", train), ("test", test)):
        for label, name in enumerate(CIFAR10_CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                draw(label, rng).save(folder / f"{i:04d}.png")
    return root


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        data = make_dataset(Path(tmp) / "synthetic")
        # Two short runs in <tmp>/runs (the Training tab's default output folder, relative to
        # the working folder), so its screenshot overlays their curves.
        for variant in ("baseline", "augmented"):
            subprocess.check_call(
                [
                    sys.executable,
                    "-m",
                    "cifar_gui",
                    "train",
                    "--variant",
                    variant,
                    "--data",
                    str(data),
                    "--epochs",
                    "12",
                    "--out",
                    "runs",
                ],
                cwd=tmp,
            )
        out = ROOT / "docs" / "screenshots"
        return subprocess.call(
            [sys.executable, "-m", "cifar_gui", "--screenshot-dir", str(out), "--data", str(data)],
            cwd=tmp,
        )


if __name__ == "__main__":
    sys.exit(main())
