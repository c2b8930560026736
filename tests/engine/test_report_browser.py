"""A report of tiny synthetic runs opened in a real browser: headless Chromium renders it
(a screenshot that is not blank), prints it to PDF, and its DOM holds the headline and every
claim's verdict. Skipped, with the reason, where no Chromium is installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from cifar_gui.engine.study import report
from tests.engine.test_report import Page, check_claims, history, ramp, saved_run

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
HANG_GUARD_S = 120  # only a hang guard: Chromium takes about 2 s here


@pytest.fixture(scope="module")
def browser() -> str:
    found = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    if found is None:
        pytest.skip(f"no headless Chromium installed (looked for {', '.join(BROWSERS)})")
    return found


def headless(browser: str, profile: Path, *arguments: str) -> str:
    """Run Chromium headless with its own profile; its stdout."""
    command = [
        browser,
        "--headless",
        "--no-sandbox",  # as root (containers, CI) Chromium refuses to start without it
        "--disable-gpu",
        f"--user-data-dir={profile}",
        *arguments,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> tuple[Path, list[report.Claim]]:
    """A report of four runs (no models, no data), and the claims judged on them."""
    folder = tmp_path_factory.mktemp("runs")
    runs = [
        saved_run(folder, "baseline", history(ramp(0.5, 0.99, 12), [0.73] * 12)),
        saved_run(folder, "augmented", history(ramp(0.5, 0.85, 12), [0.80] * 12)),
        saved_run(folder, "transfer", history(ramp(0.6, 0.88, 12), [0.84] * 12), "imagenet"),
        saved_run(folder, "finetune", history(ramp(0.7, 0.95, 12), [0.86] * 12), "imagenet"),
    ]
    claims = report.judge_claims({run.record.variant: run for run in runs})
    return report.write_report(runs, folder / "report"), claims


def test_chromium_renders_the_report_with_its_headline_and_every_verdict(
    browser, written, tmp_path
):
    path, claims = written
    url = path.as_uri()
    dom = Page()
    dom.feed(headless(browser, tmp_path / "profile", "--dump-dom", url))
    dom.close()
    assert "Best model: finetune, 86.0% test accuracy" in dom.headline
    assert "claims hold" in dom.headline
    check_claims(dom, claims)
    assert dom.claims[claims[4].claim]["verdict"] == report.HOLDS  # the pretrained one
    screenshot = tmp_path / "report.png"
    headless(
        browser, tmp_path / "profile", f"--screenshot={screenshot}", "--window-size=1200,900", url
    )
    pixels = imread(screenshot)
    assert pixels.shape[:2] == (900, 1200) and float(np.std(pixels)) > 0.05  # not blank
    pdf = tmp_path / "report.pdf"
    headless(browser, tmp_path / "profile", f"--print-to-pdf={pdf}", "--no-pdf-header-footer", url)
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 20_000
