"""The report's claim rules on hand-made histories (each claim holding and failing), and a
report of runs whose models and data are gone: it still parses, embeds its figures and says
what it left out."""

from __future__ import annotations

import base64
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from cifar_gui.config import RunConfig
from cifar_gui.engine import report
from cifar_gui.engine.record import RunRecord
from cifar_gui.engine.runs import SavedRun

FAILS, HOLDS, UNTESTED = report.FAILS, report.HOLDS, report.UNTESTED


def history(train: list[float], val: list[float], val_loss: list[float] | None = None) -> dict:
    n = len(train)
    loss = val_loss if val_loss is not None else [1.0] * n
    return {
        "loss": [1.0 - a for a in train],
        "accuracy": train,
        "val_loss": loss,
        "val_accuracy": val,
        "epoch_seconds": [2.0] * n,
    }


def ramp(start: float, stop: float, n: int) -> list[float]:
    return list(np.linspace(start, stop, n))


def test_linear_rise_to_nearly_all_holds_for_a_straight_ramp_and_not_for_a_jump_or_a_plateau():
    straight = history(ramp(0.5, 0.99, 30), [0.7] * 30)
    assert report.claim_linear_to_nearly_all(straight).verdict == HOLDS
    # Reaches 95% but by a jump, not linearly: epochs 1-10 flat, then 0.97.
    jump = history([0.6] * 10 + [0.97] * 20, [0.7] * 30)
    assert report.claim_linear_to_nearly_all(jump).verdict == FAILS
    plateau = history(ramp(0.5, 0.85, 30), [0.7] * 30)
    claim = report.claim_linear_to_nearly_all(plateau)
    assert claim.verdict == FAILS and "85.0%" in claim.measured
    assert report.claim_linear_to_nearly_all(history([0.5, 0.9], [0.7, 0.7])).verdict == UNTESTED
    assert report.claim_linear_to_nearly_all(None).verdict == UNTESTED


def test_validation_stalls_at_71_to_75_only_when_flat_in_that_band():
    flat = history(ramp(0.5, 0.99, 20), ramp(0.6, 0.73, 10) + [0.73, 0.72] * 5)
    assert report.claim_validation_stalls(flat).verdict == HOLDS
    higher = history(ramp(0.5, 0.99, 20), ramp(0.6, 0.80, 10) + [0.80] * 10)
    claim = report.claim_validation_stalls(higher)
    assert claim.verdict == FAILS and "80.0%" in claim.measured
    # Mean 71.5% over epochs 11-20, but still rising 0.7 points per epoch: not stalled.
    rising = history(ramp(0.5, 0.99, 20), ramp(0.6, 0.74, 20))
    assert report.claim_validation_stalls(rising).verdict == FAILS
    assert report.claim_validation_stalls(history([0.5] * 5, [0.7] * 5)).verdict == UNTESTED


def test_validation_loss_minimum_after_five_epochs():
    def loss_with_minimum_at(epoch: int) -> list[float]:
        return [abs(e - epoch) * 0.05 + 0.5 for e in range(1, 31)]

    for epoch, verdict in ((5, HOLDS), (3, HOLDS), (7, HOLDS), (2, FAILS), (15, FAILS)):
        h = history([0.9] * 30, [0.7] * 30, loss_with_minimum_at(epoch))
        claim = report.claim_loss_minimum_early(h)
        assert claim.verdict == verdict, epoch
        assert f"at epoch {epoch} of 30" in claim.measured
    assert report.claim_loss_minimum_early(history([0.9] * 9, [0.7] * 9)).verdict == UNTESTED


def test_augmentation_mitigates_overfitting_when_the_gap_narrows_by_two_points():
    baseline = history([0.99] * 9, [0.72] * 9)  # gap 27 points
    narrower = history([0.85] * 9, [0.78] * 9)  # gap 7 points
    just_below = history([0.99] * 9, [0.73] * 9)  # gap 26 points: less than 2 narrower
    assert report.claim_augmentation_mitigates(baseline, narrower).verdict == HOLDS
    assert report.claim_augmentation_mitigates(baseline, just_below).verdict == FAILS
    assert report.claim_augmentation_mitigates(baseline, None).verdict == UNTESTED
    # Only the last third counts: early epochs of augmented with a wide gap do not.
    late = history([0.99] * 6 + [0.80] * 3, [0.5] * 6 + [0.78] * 3)
    assert report.claim_augmentation_mitigates(baseline, late).verdict == HOLDS


def test_pretrained_network_is_judged_only_with_pretrained_weights():
    histories = {
        "baseline": history([0.99] * 5, [0.72] * 5),
        "augmented": history([0.85] * 5, [0.78] * 5),
        "transfer": history([0.85] * 5, [0.85] * 5),
        "finetune": history([0.9] * 5, [0.88] * 5),
    }
    imagenet = {"transfer": "imagenet", "finetune": "imagenet"}
    assert report.claim_pretrained_effective(histories, imagenet).verdict == HOLDS
    worse = {
        **histories,
        "transfer": history([0.8] * 5, [0.7] * 5),
        "finetune": history([0.8] * 5, [0.79] * 5),
    }
    assert report.claim_pretrained_effective(worse, imagenet).verdict == FAILS
    random = report.claim_pretrained_effective(histories, {"transfer": "none", "finetune": "none"})
    assert random.verdict == UNTESTED and "random weights" in random.measured
    alone = report.claim_pretrained_effective({"baseline": histories["baseline"]}, imagenet)
    assert alone.verdict == UNTESTED


def test_linear_fit_r2():
    slope, r2 = report.linear_fit([1.0, 2.0, 3.0, 4.0])
    assert slope == pytest.approx(1.0) and r2 == pytest.approx(1.0)
    assert report.linear_fit([0.5, 0.5, 0.5])[1] == 0.0


class Page(HTMLParser):
    """The parts of the report the tests look at."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.cells: list[str] = []
        self.links: list[str] = []
        self._in_cell = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        if tag in ("td", "th"):
            self._in_cell = True
            self.cells.append("")
        if tag in ("link", "script") or (tag == "a" and "href" in attrs):
            self.links.append(tag)

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._in_cell = False

    def handle_data(self, data):
        if self._in_cell:
            self.cells[-1] += data


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return page


def check_embedded_pngs(page: Page) -> None:
    """Every image is an embedded PNG; nothing is fetched from elsewhere."""
    assert page.images
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert not page.links


def saved_run(folder: Path, variant: str, h: dict, weights: str = "none") -> SavedRun:
    config = RunConfig(variant=variant, weights=weights, data=str(folder / "gone"))
    record = RunRecord(
        config=config,
        class_names=("deer", "horse"),
        history=h,
        epochs_completed=len(h["loss"]),
        data_source=str(folder / "gone"),
    )
    return SavedRun(folder / f"{variant}.json", None, record)


def test_report_of_runs_without_models_or_data_still_has_curves_table_and_claims(tmp_path):
    runs = [
        saved_run(tmp_path, "baseline", history(ramp(0.5, 0.99, 12), [0.73] * 12)),
        saved_run(tmp_path, "augmented", history(ramp(0.5, 0.85, 12), [0.80] * 12)),
    ]
    path = report.write_report(runs, tmp_path / "out")
    assert path == tmp_path / "out" / "report.html"
    page = parse(path)
    check_embedded_pngs(page)
    # Each run's plot(history) and the overlay, also as PNG files beside the HTML.
    assert len(page.images) == 3
    assert {p.name for p in (tmp_path / "out").glob("*.png")} == {
        "history_baseline.png",
        "history_augmented.png",
        "validation_overlay.png",
    }
    text = " ".join(page.cells)
    assert "could not be loaded" in path.read_text()
    # The verdicts are the rules' verdicts on these histories.
    for claim in report.judge_claims({r.record.variant: r for r in runs}):
        assert claim.claim in text and claim.measured in text
    assert report.HOLDS in text and "cannot be tested" in text  # the pretrained claim
