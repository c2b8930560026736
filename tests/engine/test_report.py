"""The report's claim rules on hand-made histories (each claim holding and failing, one run
or several of a variant), and reports of runs whose models and data are gone: they still
parse, embed their figures, lead with the headline and say what they left out."""

from __future__ import annotations

import base64
import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from cifar_gui.config import RunConfig
from cifar_gui.engine.record import RunRecord
from cifar_gui.engine.study import report, report_claims
from cifar_gui.engine.study.runs import SavedRun

FAILS, HOLDS, UNTESTED = report.FAILS, report.HOLDS, report.UNTESTED
rc = report_claims


def history(train: list[float], val: list[float], val_loss: list[float] | None = None) -> dict:
    n = len(train)
    loss = val_loss if val_loss is not None else [1.0] * n
    return {
        "loss": [1.0 - a for a in train],
        "accuracy": list(train),
        "val_loss": loss,
        "val_accuracy": list(val),
        "epoch_seconds": [2.0] * n,
    }


def ramp(start: float, stop: float, n: int) -> list[float]:
    return list(np.linspace(start, stop, n))


EPOCHS = np.arange(1, 31)
# Saturating: fast at first, then slower, reaching 95% at epoch 27. A straight line fits
# it with R^2 0.94 (the old rule's 0.90 let it pass as linear); its last third rises at a
# quarter of its first third's pace.
CONCAVE = list(0.995 - 0.33 * np.exp(-(EPOCHS - 1) / 13))
# Accelerating: slow, then faster.
CONVEX = list(0.5 + 0.49 * (EPOCHS / 30) ** 2.5)


def linear_verdict(train: list[float]) -> str:
    return rc.claim_linear_to_nearly_all(history(train, [0.7] * len(train))).verdict


def test_a_straight_rise_to_nearly_all_holds_even_with_noise():
    assert linear_verdict(ramp(0.5, 0.99, 30)) == HOLDS
    noisy = np.array(ramp(0.5, 0.99, 30)) + np.random.default_rng(0).normal(0, 0.01, 30)
    assert linear_verdict(list(noisy)) == HOLDS
    assert linear_verdict(ramp(0.6, 0.96, 6)) == HOLDS  # the fewest epochs judged


def test_a_concave_saturating_curve_does_not_pass_as_linear():
    end = int(np.flatnonzero(np.array(CONCAVE) >= rc.NEARLY_ALL)[0]) + 1
    assert rc.linear_fit(CONCAVE[:end])[1] >= rc.LINEAR_R2  # R^2 alone would pass it
    claim = rc.claim_linear_to_nearly_all(history(CONCAVE, [0.7] * 30))
    assert claim.verdict == FAILS
    assert "slows down" in claim.summary and "0.25 times" in claim.measured


def test_the_linear_rule_fails_an_accelerating_rise_a_jump_and_a_plateau_below_95():
    claim = rc.claim_linear_to_nearly_all(history(CONVEX, [0.7] * 30))
    assert claim.verdict == FAILS and "speeds up" in claim.summary
    # Reaches 95% but by a jump: epochs 1-10 flat, then 0.97.
    assert linear_verdict([0.6] * 10 + [0.97] * 20) == FAILS
    plateau = rc.claim_linear_to_nearly_all(history(ramp(0.5, 0.85, 30), [0.7] * 30))
    assert plateau.verdict == FAILS and "85.0%" in plateau.measured
    assert "short of 95%" in plateau.summary
    # At 95% by epoch 2: the rise judged is the first six epochs, flat after the jump.
    assert linear_verdict([0.9, 0.96, 0.97, 0.975, 0.98, 0.985, 0.99, 0.99]) == FAILS


def test_the_linear_rule_cannot_judge_fewer_than_six_epochs():
    claim = rc.claim_linear_to_nearly_all(history(ramp(0.5, 0.96, 5), [0.7] * 5))
    assert claim.verdict == UNTESTED and "only 5 epochs" in claim.summary
    assert rc.claim_linear_to_nearly_all(None).verdict == UNTESTED
    assert rc.claim_linear_to_nearly_all([]).verdict == UNTESTED


def test_pace_ratio_of_thirds():
    assert rc.pace_ratio([1, 2, 3, 4, 5, 6, 7, 8, 9]) == pytest.approx(1.0)
    assert rc.pace_ratio([0, 4, 8, 9, 10, 11, 11.5, 11.75, 12]) == pytest.approx(0.25 / 4)
    assert rc.pace_ratio([1, 1, 1, 2, 3, 4]) == float("inf")  # a flat first third


def test_validation_stalls_at_71_to_75_only_when_flat_in_that_band():
    flat = history(ramp(0.5, 0.99, 20), ramp(0.6, 0.73, 10) + [0.73, 0.72] * 5)
    assert rc.claim_validation_stalls(flat).verdict == HOLDS
    higher = history(ramp(0.5, 0.99, 20), ramp(0.6, 0.80, 10) + [0.80] * 10)
    claim = rc.claim_validation_stalls(higher)
    assert claim.verdict == FAILS and "80.0%" in claim.measured
    # Mean 71.5% over epochs 11-20, but still rising 0.7 points per epoch: not stalled.
    rising = rc.claim_validation_stalls(history(ramp(0.5, 0.99, 20), ramp(0.6, 0.74, 20)))
    assert rising.verdict == FAILS and "still rising" in rising.summary
    assert rc.claim_validation_stalls(history([0.5] * 5, [0.7] * 5)).verdict == UNTESTED


def test_validation_loss_minimum_after_five_epochs():
    def loss_with_minimum_at(epoch: int) -> list[float]:
        return [abs(e - epoch) * 0.05 + 0.5 for e in range(1, 31)]

    for epoch, verdict in ((5, HOLDS), (3, HOLDS), (7, HOLDS), (2, FAILS), (15, FAILS)):
        h = history([0.9] * 30, [0.7] * 30, loss_with_minimum_at(epoch))
        claim = rc.claim_loss_minimum_early(h)
        assert claim.verdict == verdict, epoch
        assert f"at epoch {epoch} of 30" in claim.measured
    assert rc.claim_loss_minimum_early(history([0.9] * 9, [0.7] * 9)).verdict == UNTESTED


def test_augmentation_mitigates_overfitting_when_the_gap_narrows_by_two_points():
    baseline = history([0.99] * 9, [0.72] * 9)  # gap 27 points
    narrower = history([0.85] * 9, [0.78] * 9)  # gap 7 points
    just_below = history([0.99] * 9, [0.73] * 9)  # gap 26 points: less than 2 narrower
    claim = rc.claim_augmentation_mitigates(baseline, narrower)
    assert claim.verdict == HOLDS and "from 27.0 points to 7.0 points" in claim.summary
    assert rc.claim_augmentation_mitigates(baseline, just_below).verdict == FAILS
    assert rc.claim_augmentation_mitigates(baseline, None).verdict == UNTESTED
    # Only the last third counts: early epochs of augmented with a wide gap do not.
    late = history([0.99] * 6 + [0.80] * 3, [0.5] * 6 + [0.78] * 3)
    assert rc.claim_augmentation_mitigates(baseline, late).verdict == HOLDS


def test_pretrained_network_is_judged_only_with_pretrained_weights():
    histories = {
        "baseline": history([0.99] * 5, [0.72] * 5),
        "augmented": history([0.85] * 5, [0.78] * 5),
        "transfer": history([0.85] * 5, [0.85] * 5),
        "finetune": history([0.9] * 5, [0.88] * 5),
    }
    imagenet = {"transfer": "imagenet", "finetune": "imagenet"}
    claim = rc.claim_pretrained_effective(histories, imagenet)
    assert claim.verdict == HOLDS and "finetune reaches 88.0%, 10.0 points" in claim.summary
    worse = {
        **histories,
        "transfer": history([0.8] * 5, [0.7] * 5),
        "finetune": history([0.8] * 5, [0.79] * 5),
    }
    assert rc.claim_pretrained_effective(worse, imagenet).verdict == FAILS
    random = rc.claim_pretrained_effective(histories, {"transfer": "none", "finetune": "none"})
    assert random.verdict == UNTESTED and "random weights" in random.measured
    alone = rc.claim_pretrained_effective({"baseline": histories["baseline"]}, imagenet)
    assert alone.verdict == UNTESTED


def test_linear_fit_r2():
    slope, r2 = rc.linear_fit([1.0, 2.0, 3.0, 4.0])
    assert slope == pytest.approx(1.0) and r2 == pytest.approx(1.0)
    assert rc.linear_fit([0.5, 0.5, 0.5])[1] == 0.0


# --------------------------------------------------------------------------------------
# Several runs of a variant


def plateau_at(level: float, n: int = 20) -> dict:
    return history(ramp(0.5, 0.99, n), ramp(0.6, level, n // 2) + [level] * (n - n // 2))


def test_several_runs_are_judged_on_their_mean_with_the_spread_shown():
    # Plateaus at 70%, 73% and 76%: only the middle one is in 71-75% alone; their mean is.
    runs = [plateau_at(0.70), plateau_at(0.73), plateau_at(0.76)]
    claim = rc.claim_validation_stalls(runs)
    assert claim.verdict == HOLDS and "mean 73.0%" in claim.measured
    assert "mean of 3 runs; alone, it holds for 1 of them" in claim.spread
    assert "70.0% to 76.0%" in claim.spread
    # The mean of two that fail is judged, not a vote: 68% and 80% average 74%.
    assert rc.claim_validation_stalls([plateau_at(0.68), plateau_at(0.80)]).verdict == HOLDS
    assert rc.claim_validation_stalls([plateau_at(0.73)]).spread == ""  # one run: no spread


def test_two_variant_claims_pair_the_runs_of_each_and_a_single_run_serves_all():
    baselines = [history([0.99] * 9, [0.72] * 9), history([0.99] * 9, [0.74] * 9)]
    augmented = [history([0.85] * 9, [0.78] * 9), history([0.85] * 9, [0.60] * 9)]
    claim = rc.claim_augmentation_mitigates(baselines, augmented)
    # Mean gaps 26 and 16 points: holds; run by run 27-7 and 25-25: holds for one of two.
    assert claim.verdict == HOLDS and "holds for 1 of them" in claim.spread
    one = rc.claim_augmentation_mitigates(baselines, augmented[:1])
    assert "mean of 2 runs; alone, it holds for 2 of them" in one.spread


def test_mean_history_keeps_the_epochs_all_runs_have():
    mean = rc.mean_history([{"accuracy": [0.2, 0.4, 0.6]}, {"accuracy": [0.4, 0.6], "x": [1]}])
    assert mean == {"accuracy": pytest.approx([0.3, 0.5])}


def saved_run(
    folder: Path, variant: str, h: dict, weights: str = "none", seed: int = 0, **config
) -> SavedRun:
    config = RunConfig(
        variant=variant, weights=weights, data=str(folder / "gone"), seed=seed, **config
    )
    record = RunRecord(
        config=config,
        class_names=("deer", "horse"),
        history=h,
        epochs_completed=len(h["loss"]),
        data_source=str(folder / "gone"),
    )
    return SavedRun(folder / f"{variant}_{seed}.json", None, record)


def test_runs_of_a_variant_are_grouped_by_seed_when_nothing_else_differs(tmp_path):
    h = history([0.9] * 3, [0.7] * 3)
    other = saved_run(tmp_path, "baseline", h, seed=1, epochs=5)  # other settings: left out
    seeds = [saved_run(tmp_path, "baseline", h, seed=s) for s in (0, 1, 2)]
    again = saved_run(tmp_path, "baseline", h, seed=1)  # the same seed again: this one counts
    augmented = saved_run(tmp_path, "augmented", h)
    groups = rc.group_by_variant([augmented, other, *seeds, again])
    assert list(groups) == ["baseline", "augmented"]  # the seed's order
    assert groups["baseline"] == [seeds[0], seeds[2], again]
    assert rc.judge_claims(groups) == rc.judge_histories(
        {"baseline": [h] * 3, "augmented": [h]}, {"baseline": "none", "augmented": "none"}
    )


# --------------------------------------------------------------------------------------
# The page


class Page(HTMLParser):
    """The parts of the report the tests look at: images, table cells, anything fetched,
    the headline's text and each claim (its words, verdict, summary, rule and numbers)."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.cells: list[str] = []
        self.links: list[str] = []
        self.headline = ""
        self.claims: dict[str, dict[str, str]] = {}
        self._in: list[str] = []  # the open elements' roles
        self._claim: dict[str, str] | None = None
        self._field = ""

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        css = attrs.get("class") or ""
        if tag == "img":
            self.images.append(attrs["src"])
        if tag in ("link", "script") or (tag == "a" and "href" in attrs):
            self.links.append(tag)
        role = ""
        if tag in ("td", "th"):
            self.cells.append("")
            role = "cell"
        elif "headline" in css.split():
            role = "headline"
        elif tag == "section" and "claim" in css.split():
            self._claim = {
                "verdict": attrs["data-verdict"],
                "words": "",
                "summary": "",
                "spread": "",
            }
            role = "claim"
        elif "words" in css.split():
            role = "words"
        elif "summary" in css.split() or "spread" in css.split():
            role = css
        elif tag == "dt":
            role = "dt"
        elif tag == "dd":
            role = "dd"
        if tag not in ("img", "br", "meta", "wbr"):
            self._in.append(role)

    def handle_endtag(self, tag):
        if tag in ("img", "br", "meta", "wbr"):
            return
        role = self._in.pop()
        if role == "claim":
            words = self._claim["words"].strip("\u201c\u201d")
            self.claims[words] = self._claim
            self._claim = None

    def handle_data(self, data):
        if "cell" in self._in:
            self.cells[-1] += data
        if "headline" in self._in:
            self.headline += data
        if self._claim is None or not self._in:
            return
        role = self._in[-1]
        if role in ("words", "summary", "spread"):
            self._claim[role] += data
        elif role == "dt":
            self._field = data
        elif role == "dd":
            self._claim[self._field] = data


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


def check_claims(page: Page, claims: list[report.Claim]) -> None:
    """The page shows each claim with its verdict, plain words, rule and numbers."""
    assert len(page.claims) == len(claims)
    for claim in claims:
        shown = page.claims[claim.claim]
        assert shown["verdict"] == claim.verdict and shown["summary"] == claim.summary
        assert shown["rule"] == claim.rule and shown["measured"] == claim.measured
        assert shown["spread"] == claim.spread


def test_report_of_runs_without_models_or_data_still_has_curves_table_and_claims(tmp_path):
    runs = [
        saved_run(tmp_path, "baseline", history(ramp(0.5, 0.99, 12), [0.73] * 12)),
        saved_run(tmp_path, "augmented", history(ramp(0.5, 0.85, 12), [0.80] * 12)),
    ]
    path = report.write_report(runs, tmp_path / "out")
    assert path == tmp_path / "out" / "report.html"
    page = parse(path)
    check_embedded_pngs(page)
    # Each variant's plot(history) and the overlay, also as PNG files beside the HTML.
    assert len(page.images) == 3
    assert {p.name for p in (tmp_path / "out").glob("*.png")} == {
        "history_baseline.png",
        "history_augmented.png",
        "validation_overlay.png",
    }
    text = path.read_text()
    assert "No model files" in text and "No transfer run" in text
    claims = report.judge_claims({r.record.variant: r for r in runs})
    check_claims(page, claims)
    assert [c.verdict for c in claims].count(HOLDS) == 3  # linear, stalls, augmentation
    # The headline: the best model's test accuracy (its last validation accuracy here).
    assert "Best model: augmented, 80.0% test accuracy" in page.headline
    assert "3 of the tutorial's 5 claims hold, 1 does not, 1 cannot be tested." in page.headline
    # Versions and commands come last, after the claims and the runs.
    assert text.index("cifar-gui report") > text.index("The runs") > text.index("claim")


def test_report_of_several_seeds_shows_mean_and_spread(tmp_path):
    runs = [
        saved_run(tmp_path, "baseline", plateau_at(level), seed=seed)
        for seed, level in enumerate((0.70, 0.73, 0.76))
    ]
    page = parse(report.write_report(runs, tmp_path / "out"))
    claims = report.judge_claims(rc.group_by_variant(runs))
    check_claims(page, claims)
    assert "holds for 1 of them" in page.claims[rc.STALLS.words]["spread"]
    assert "baseline, 73.0% \u00b1 3.0 (70.0%-76.0%, 3 runs) test accuracy" in page.headline
    assert len(page.images) == 2  # one history figure of the three runs, and the overlay
    assert "baseline: 3" in " ".join(page.cells)


def base_record(folder: Path, epochs: int) -> Path:
    """A pretrained base's sidecar (no model): eight classes, the small CNN."""
    eight = ("airplane", "automobile", "bird", "cat", "dog", "frog", "ship", "truck")
    config = RunConfig(variant="pretrain", classes=eight, excluded=("deer", "horse"))
    record = RunRecord(config=config, class_names=eight, epochs_completed=epochs)
    (folder / "base.json").write_text(json.dumps(record.to_dict()))
    return folder / "base.h5"


def small_data_result(folder: Path, epochs: int) -> None:
    classes = ["airplane", "automobile", "bird", "cat", "dog", "frog", "ship", "truck"]
    summary = [
        {"variant": v, "n": n, "mean": m, "min": m - 0.01, "max": m + 0.01}
        for v, shift in (("baseline", 0.0), ("finetune", 0.02))
        for n, m in ((250, 0.75 + shift), (1000, 0.8 + shift))
    ]
    result = {
        "pair": ["deer", "horse"],
        "base": {"classes": classes, "epochs": epochs, "test_accuracy": 0.73},
        "summary": summary,
    }
    (folder / report.SMALL_DATA_FILE).write_text(json.dumps(result))


def test_the_small_data_curve_is_shown_only_for_the_base_it_was_measured_with(tmp_path):
    # A base pretrained for 12 epochs, and a curve in the study's folder measured with it.
    base = base_record(tmp_path, epochs=12)
    small_data_result(tmp_path, epochs=12)
    h = history(ramp(0.5, 0.99, 6), [0.8] * 6)
    runs = [saved_run(tmp_path, "baseline", h), saved_run(tmp_path, "transfer", h, base=str(base))]
    groups = rc.group_by_variant(runs)
    text, curve = report.small_data_curve(runs, groups)
    assert curve is not None and "pretrained on airplane" in text and "12 epochs" in text
    page = parse(report.write_report(runs, tmp_path / "out"))
    assert (tmp_path / "out" / "small_data.png").is_file() and len(page.images) == 4
    # Measured with another base (10 epochs), or random VGG16 weights: not measured.
    small_data_result(tmp_path, epochs=10)
    text, curve = report.small_data_curve(runs, groups)
    assert curve is None and "not measured for this base (base.h5)" in text
    random = [runs[0], saved_run(tmp_path, "transfer", h)]
    text, curve = report.small_data_curve(random, rc.group_by_variant(random))
    assert curve is None and "weights 'none'" in text


def test_the_repository_small_data_curve_serves_a_base_made_as_it_was(tmp_path):
    measured = json.loads(report.BENCH_SMALL_DATA.read_text())
    base = base_record(tmp_path, epochs=measured["base"]["epochs"])
    h = history(ramp(0.5, 0.99, 6), [0.8] * 6)
    runs = [saved_run(tmp_path, "transfer", h, base=str(base))]
    text, curve = report.small_data_curve(runs, rc.group_by_variant(runs))
    assert curve == measured and "(small_data.json)" in text
