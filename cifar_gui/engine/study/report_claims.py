"""The seed's five claims, each judged from the runs' histories by a rule fixed here.

Every claim is judged on a list of histories per variant: one run of each, or several (runs
of one variant that differ only in their seed). With several, the rule is applied to their
mean curves (epoch by epoch, over the epochs all of them have), and the spread is the rule
applied to each run alone: for how many runs it holds, and the range of its deciding number.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from cifar_gui.config import SEED_VARIANTS
from cifar_gui.engine.study.runs import SavedRun

History = Mapping[str, Sequence[float]]

# Claim thresholds (fractions of 1; epochs 1-based).
NEARLY_ALL = 0.95  # "nearly 100%" training accuracy
LINEAR_R2 = 0.90  # a straight line explains the rise of the training accuracy this well
# ... and the rise keeps its pace: the slope fitted to its last third is within this factor
# of the slope fitted to its first third. A concave curve that saturates (or one that speeds
# up) can pass R^2 alone: the measured baseline's did, at 0.902, with a last third at 0.27
# times the first third's pace.
LINEAR_PACE = 2.0
MIN_LINEAR_POINTS = 6  # epochs needed to judge a straight line: two per third
STALL_LEVEL = (71, 75)  # "stalls at 71-75%": the plateau's mean, rounded to whole percent
STALL_SLOPE = 0.002  # a plateau rises by at most 0.2 points per epoch
MIN_STALL_EPOCHS = 6  # the plateau is the second half of the epochs: at least 3 of them
LOSS_MIN_EPOCHS = (3, 7)  # "minimum after only five epochs": five, give or take two
MIN_LOSS_EPOCHS = 10  # with fewer epochs, an early minimum says nothing
GAP_MARGIN = 0.02  # augmentation narrows the train-validation gap by at least 2 points
PRETRAINED_MARGIN = 0.02  # a pretrained base beats training from scratch by at least 2 points

HOLDS, FAILS, UNTESTED = "holds", "does not hold", "cannot be tested"


@dataclass(frozen=True)
class Claim:
    """One of the seed's claims, the rule it was judged by, and the verdict with its numbers."""

    claim: str  # the seed's words
    runs: str  # the runs it is judged on
    rule: str
    verdict: str  # HOLDS, FAILS or UNTESTED
    measured: str  # the numbers that decided it (of the mean curves, with several runs)
    summary: str = ""  # the verdict in plain words
    spread: str = ""  # with several runs of a variant: the rule on each run alone


@dataclass(frozen=True)
class Finding:
    """What a rule found on one set of histories."""

    verdict: str
    measured: str
    summary: str
    value: float | None = None  # the deciding number, whose range over the runs is shown


def _values(history: History | None, key: str) -> np.ndarray:
    values = np.asarray((history or {}).get(key, ()), dtype=float)
    return values[np.isfinite(values)]


def _points(fraction: float) -> str:
    return f"{fraction * 100:.1f} points"


def linear_fit(values: Sequence[float]) -> tuple[float, float]:
    """Slope (per epoch) and R^2 of the least-squares line through ``values`` against epoch;
    a flat series has R^2 0."""
    y = np.asarray(values, dtype=float)
    x = np.arange(1, len(y) + 1, dtype=float)
    slope, intercept = np.polyfit(x, y, 1)
    total = float(np.sum((y - y.mean()) ** 2))
    residual = float(np.sum((y - (slope * x + intercept)) ** 2))
    return float(slope), (1.0 - residual / total) if total > 0 else 0.0


def pace_ratio(values: Sequence[float]) -> float:
    """The slope fitted to the last third of ``values`` over the slope fitted to the first
    third (1 for a straight line, below 1 for a curve that flattens); inf when the first
    third is flat or falls."""
    first, _, last = np.array_split(np.asarray(values, dtype=float), 3)
    start = linear_fit(first)[0]
    # Below a millionth per epoch the first third is flat (a fit's rounding is not a rise).
    return linear_fit(last)[0] / start if start > 1e-6 else float("inf")


def overfitting_gap(history: History) -> float | None:
    """Mean of training minus validation accuracy over the last third of the epochs (at least
    the last one); None without both curves."""
    train, val = _values(history, "accuracy"), _values(history, "val_accuracy")
    n = min(len(train), len(val))
    if n == 0:
        return None
    last = max(1, n // 3)
    return float(np.mean(train[n - last : n] - val[n - last : n]))


def best_val(history: History | None) -> float | None:
    """The highest validation accuracy of a history; None without one."""
    val = _values(history, "val_accuracy")
    return float(val.max()) if len(val) else None


def mean_history(histories: Sequence[History]) -> dict[str, list[float]]:
    """The epoch-by-epoch mean of ``histories``, over the keys and epochs all of them have."""
    if len(histories) == 1:
        return {k: list(v) for k, v in histories[0].items()}
    keys = set.intersection(*(set(h) for h in histories))
    out = {}
    for key in sorted(keys):
        n = min(len(h[key]) for h in histories)
        out[key] = list(np.mean([np.asarray(h[key][:n], dtype=float) for h in histories], axis=0))
    return out


def _too_few(history: History | None, epochs: int, needed: int, variant: str) -> Finding:
    if history is None:
        return Finding(UNTESTED, f"no {variant} run", f"Cannot be tested: no {variant} run.")
    return Finding(
        UNTESTED,
        f"only {epochs} epochs",
        f"Cannot be tested: only {epochs} epochs of {variant}, the rule needs {needed}.",
    )


# --------------------------------------------------------------------------------------
# The rules, each on one history per variant


def linear_to_nearly_all(history: History | None) -> Finding:
    train = _values(history, "accuracy")
    if len(train) < MIN_LINEAR_POINTS:
        return _too_few(history, len(train), MIN_LINEAR_POINTS, "baseline")
    reached = np.flatnonzero(train >= NEARLY_ALL)
    end = max(MIN_LINEAR_POINTS, int(reached[0]) + 1 if len(reached) else len(train))
    rise = train[:end]
    slope, r2 = linear_fit(rise)
    pace = pace_ratio(rise)
    final = float(train[-1])
    measured = (
        f"final training accuracy {final:.1%}; over epochs 1-{end}: a line rising "
        f"{slope * 100:+.2f} points an epoch with R\u00b2 {r2:.3f}; the last third's pace "
        f"{pace:.2f} times the first third's"
    )
    steady = 1 / LINEAR_PACE <= pace <= LINEAR_PACE
    if final >= NEARLY_ALL and slope > 0 and r2 >= LINEAR_R2 and steady:
        summary = f"Yes: the training accuracy rose at a steady pace to {final:.1%}."
        return Finding(HOLDS, measured, summary, pace)
    if final < NEARLY_ALL:
        summary = f"No: the training accuracy ends at {final:.1%}, short of {NEARLY_ALL:.0%}."
    elif not steady:
        how = "slows down" if pace < 1 else "speeds up"
        summary = (
            f"No: it reaches {final:.1%}, but not linearly: the rise {how}, its last third "
            f"climbing at {pace:.2f} times the pace of its first."
        )
    else:
        summary = (
            f"No: it reaches {final:.1%}, but a straight line fits it poorly (R\u00b2 {r2:.2f})."
        )
    return Finding(FAILS, measured, summary, pace)


def validation_stalls(history: History | None) -> Finding:
    val = _values(history, "val_accuracy")
    if len(val) < MIN_STALL_EPOCHS:
        return _too_few(history, len(val), MIN_STALL_EPOCHS, "baseline")
    low, high = STALL_LEVEL
    start = len(val) // 2
    plateau = val[start:]
    slope, _ = linear_fit(plateau)
    mean = float(plateau.mean())
    measured = f"epochs {start + 1}-{len(val)}: mean {mean:.1%}, {slope * 100:+.2f} points an epoch"
    level = round(mean * 100)
    if slope > STALL_SLOPE:
        summary = (
            f"No: over epochs {start + 1}-{len(val)} the validation accuracy is still rising "
            f"({slope * 100:+.2f} points an epoch), at {mean:.1%} on average."
        )
        return Finding(FAILS, measured, summary, mean)
    if not low <= level <= high:
        summary = f"No: the validation accuracy levels off at {mean:.1%}, not {low}-{high}%."
        return Finding(FAILS, measured, summary, mean)
    summary = f"Yes: from epoch {start + 1} on, the validation accuracy stays at {mean:.1%}."
    return Finding(HOLDS, measured, summary, mean)


def loss_minimum_early(history: History | None) -> Finding:
    loss = _values(history, "val_loss")
    if len(loss) < MIN_LOSS_EPOCHS:
        return _too_few(history, len(loss), MIN_LOSS_EPOCHS, "baseline")
    low, high = LOSS_MIN_EPOCHS
    best = int(np.argmin(loss)) + 1
    measured = f"lowest validation loss {loss.min():.4f} at epoch {best} of {len(loss)}"
    if low <= best <= high:
        summary = f"Yes: the validation loss is lowest at epoch {best}, then rises."
        return Finding(HOLDS, measured, summary, best)
    summary = f"No: the validation loss is lowest at epoch {best} of {len(loss)}, not near 5."
    return Finding(FAILS, measured, summary, best)


def augmentation_mitigates(baseline: History | None, augmented: History | None) -> Finding:
    base_gap = None if baseline is None else overfitting_gap(baseline)
    aug_gap = None if augmented is None else overfitting_gap(augmented)
    if base_gap is None or aug_gap is None:
        missing = "baseline" if base_gap is None else "augmented"
        return Finding(
            UNTESTED,
            f"no {missing} run with accuracy curves",
            f"Cannot be tested: no {missing} run with accuracy curves.",
        )
    best = f"best validation accuracy {best_val(baseline):.1%} vs {best_val(augmented):.1%}"
    measured = (
        f"gap {base_gap * 100:+.1f} points (baseline) vs {aug_gap * 100:+.1f} (augmented); {best}"
    )
    narrowed = base_gap - aug_gap
    if narrowed >= GAP_MARGIN:
        below = " (validation above training)" if aug_gap < 0 else ""
        summary = (
            "Yes: augmentation narrows the gap between training and validation accuracy from "
            f"{_points(base_gap)} to {_points(aug_gap)}{below}"
        )
        base_best, aug_best = best_val(baseline), best_val(augmented)
        if aug_best < base_best:
            summary += (
                f", though its best validation accuracy is lower: {aug_best:.1%} against "
                f"{base_best:.1%}"
            )
        return Finding(HOLDS, measured, summary + ".", narrowed)
    summary = (
        f"No: the gap between training and validation accuracy is {_points(aug_gap)} with "
        f"augmentation, against {_points(base_gap)} without."
    )
    return Finding(FAILS, measured, summary, narrowed)


def pretrained_effective(
    histories: Mapping[str, History | None], weights: Mapping[str, str]
) -> Finding:
    """``histories``: variant -> history; ``weights``: variant -> where the VGG16 base of the
    transfer and finetune runs came from (``imagenet``, ``none``, a file, ``base MODEL``)."""
    best = {v: best_val(histories.get(v)) for v in SEED_VARIANTS}
    scratch = [best[v] for v in ("baseline", "augmented") if best[v] is not None]
    pretrained = {v: best[v] for v in ("transfer", "finetune") if best[v] is not None}
    if not scratch or not pretrained:
        return Finding(
            UNTESTED,
            "needs a baseline or augmented run and a transfer or finetune run",
            "Cannot be tested: it needs a model trained from scratch and a pretrained one.",
        )
    sources = {weights.get(v, "?") for v in pretrained}
    numbers = f"best from scratch {max(scratch):.1%}; " + ", ".join(
        f"{v} {b:.1%}" for v, b in pretrained.items()
    )
    if sources == {"none"}:
        return Finding(
            UNTESTED,
            f"the VGG16 base had random weights (--weights none), so nothing was pretrained; "
            f"{numbers}",
            "Cannot be tested: the VGG16 base had random weights, so nothing was pretrained.",
        )
    measured = f"{numbers} (VGG16 weights: {', '.join(sorted(sources))})"
    top = max(pretrained, key=pretrained.__getitem__)
    margin = pretrained[top] - max(scratch)
    if margin >= PRETRAINED_MARGIN:
        summary = (
            f"Yes: {top} reaches {pretrained[top]:.1%}, {_points(margin)} above the best "
            "model trained from scratch."
        )
        return Finding(HOLDS, measured, summary, margin)
    summary = (
        f"No: the best pretrained model ({top}, {pretrained[top]:.1%}) is {_points(margin)} "
        f"from the best trained from scratch ({max(scratch):.1%}), not "
        f"{PRETRAINED_MARGIN * 100:.0f} above it."
    )
    return Finding(FAILS, measured, summary, margin)


# --------------------------------------------------------------------------------------
# The claims, each on a list of histories per variant


@dataclass(frozen=True)
class _Spec:
    words: str
    runs: str
    rule: str
    value: str  # the deciding number's name
    show: Callable[[float], str]


LINEAR = _Spec(
    "The training accuracy increases linearly over time, until it reaches nearly 100%",
    "baseline",
    f"final training accuracy >= {NEARLY_ALL:.0%}; over the rise (the epochs up to the first "
    f"at {NEARLY_ALL:.0%}, at least {MIN_LINEAR_POINTS}) a fitted straight line rises with "
    f"R\u00b2 >= {LINEAR_R2}, and the slope fitted to the rise's last third is within a factor "
    f"{LINEAR_PACE:g} of the slope fitted to its first third (a curve that flattens is not "
    "linear)",
    "pace of the last third",
    lambda v: f"{v:.2f}",
)
STALLS = _Spec(
    "The validation accuracy stalls at 71-75%",
    "baseline",
    f"over the second half of the epochs (at least {MIN_STALL_EPOCHS} epochs in all), the "
    f"validation accuracy rises by at most {STALL_SLOPE * 100:.1f} points per epoch (fitted "
    f"line) and its mean, rounded to a whole percent, is {STALL_LEVEL[0]}-{STALL_LEVEL[1]}%",
    "mean of the second half",
    lambda v: f"{v:.1%}",
)
LOSS_MINIMUM = _Spec(
    "The validation loss reaches its minimum after only five epochs",
    "baseline",
    f"the lowest validation loss is at epoch {LOSS_MIN_EPOCHS[0]}-{LOSS_MIN_EPOCHS[1]} (five, "
    f"give or take two), of at least {MIN_LOSS_EPOCHS} epochs",
    "epoch of the lowest loss",
    lambda v: f"{v:.0f}",
)
AUGMENTATION = _Spec(
    "Data augmentation mitigates overfitting",
    "baseline, augmented",
    "the gap between training and validation accuracy (mean over the last third of the "
    f"epochs) of augmented is at least {GAP_MARGIN * 100:.0f} points smaller than baseline's",
    "narrowing of the gap",
    lambda v: _points(v),
)
PRETRAINED = _Spec(
    "A pretrained network is highly effective for small image data sets",
    "all four",
    "the best validation accuracy of transfer or finetune is at least "
    f"{PRETRAINED_MARGIN * 100:.0f} points above the best of baseline and augmented; only "
    "with a pretrained base (not --weights none)",
    "margin over training from scratch",
    lambda v: _points(v),
)


def _judge(
    spec: _Spec,
    groups: Sequence[Sequence[History]],
    rule: Callable[..., Finding],
) -> Claim:
    """``rule`` on the mean of each group (one group per variant it takes, empty for a variant
    without runs) and, where a group has several runs, on each run alone (the i-th of each
    group; a group with fewer runs gives its last)."""
    finding = rule(*(mean_history(g) if g else None for g in groups))
    count = max((len(g) for g in groups), default=0)
    spread = ""
    if count > 1 and finding.verdict != UNTESTED:
        each = [rule(*(g[min(i, len(g) - 1)] if g else None for g in groups)) for i in range(count)]
        held = sum(f.verdict == HOLDS for f in each)
        values = [f.value for f in each if f.value is not None]
        spread = f"Judged on the mean of {count} runs; alone, it holds for {held} of them"
        if values:
            spread += f"; {spec.value} {spec.show(min(values))} to {spec.show(max(values))}"
    return Claim(
        spec.words, spec.runs, spec.rule, finding.verdict, finding.measured, finding.summary, spread
    )


def _listed(histories: Sequence[History] | History | None) -> list[History]:
    """A variant's histories as a list: none, one, or several."""
    if histories is None:
        return []
    return [histories] if isinstance(histories, Mapping) else list(histories)


def claim_linear_to_nearly_all(baseline: Sequence[History] | History | None) -> Claim:
    return _judge(LINEAR, [_listed(baseline)], linear_to_nearly_all)


def claim_validation_stalls(baseline: Sequence[History] | History | None) -> Claim:
    return _judge(STALLS, [_listed(baseline)], validation_stalls)


def claim_loss_minimum_early(baseline: Sequence[History] | History | None) -> Claim:
    return _judge(LOSS_MINIMUM, [_listed(baseline)], loss_minimum_early)


def claim_augmentation_mitigates(
    baseline: Sequence[History] | History | None, augmented: Sequence[History] | History | None
) -> Claim:
    return _judge(AUGMENTATION, [_listed(baseline), _listed(augmented)], augmentation_mitigates)


def claim_pretrained_effective(
    histories: Mapping[str, Sequence[History] | History], weights: Mapping[str, str]
) -> Claim:
    """``histories``: variant -> its history or histories; ``weights``: as
    :func:`pretrained_effective`."""

    def rule(*per_variant: History | None) -> Finding:
        return pretrained_effective(dict(zip(SEED_VARIANTS, per_variant, strict=True)), weights)

    return _judge(PRETRAINED, [_listed(histories.get(v)) for v in SEED_VARIANTS], rule)


def judge_histories(
    histories: Mapping[str, Sequence[History]], weights: Mapping[str, str]
) -> list[Claim]:
    """The seed's five claims judged on ``histories`` (variant -> its runs' histories);
    ``weights``: variant -> where its VGG16 base came from (see :func:`weights_source`)."""
    baseline = histories.get("baseline", [])
    return [
        claim_linear_to_nearly_all(baseline),
        claim_validation_stalls(baseline),
        claim_loss_minimum_early(baseline),
        claim_augmentation_mitigates(baseline, histories.get("augmented", [])),
        claim_pretrained_effective(histories, weights),
    ]


def judge_claims(runs: Mapping[str, SavedRun | Sequence[SavedRun]]) -> list[Claim]:
    """The seed's five claims judged on these runs (variant -> its run, or its runs: several
    seeds of one variant are judged on their mean)."""
    listed = {v: [r] if isinstance(r, SavedRun) else list(r) for v, r in runs.items()}
    histories = {v: [r.record.history for r in rs] for v, rs in listed.items()}
    weights = {v: weights_source(rs[-1]) for v, rs in listed.items() if rs}
    return judge_histories(histories, weights)


def weights_source(run: SavedRun) -> str:
    """Where a run's VGG16 base came from: ``imagenet``, ``none``, a file, ``base MODEL``."""
    config = run.record.config
    if config is None:
        return "?"
    return f"base {config.base}" if config.base else config.weights


def group_by_variant(runs: Sequence[SavedRun]) -> dict[str, list[SavedRun]]:
    """The runs the claims are judged on, in the seed's order of variants: of each variant, the
    last run given and the earlier ones that differ from it only in their seed (one per seed,
    the last given of it)."""
    grouped: dict[str, list[SavedRun]] = {}
    for variant in SEED_VARIANTS:
        mine = [r for r in runs if r.record.variant == variant]
        if not mine:
            continue
        last = mine[-1]
        by_seed: dict[object, SavedRun] = {}
        for run in mine:
            if _same_but_seed(run, last):
                by_seed.pop(_seed(run), None)  # the last given of a seed, in order
                by_seed[_seed(run)] = run
        grouped[variant] = list(by_seed.values())
    return grouped


def _seed(run: SavedRun) -> object:
    return None if run.record.config is None else run.record.config.seed


def _same_but_seed(run: SavedRun, other: SavedRun) -> bool:
    if run is other:
        return True
    a, b = run.record.config, other.record.config
    if a is None or b is None:
        return False
    ignore = ("seed", "data", "out_dir", "from_model", "base")
    return a.replace(**{k: getattr(b, k) for k in ignore}) == b and (
        (a.base is None) == (b.base is None)
    )
