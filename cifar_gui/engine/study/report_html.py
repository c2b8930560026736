"""The report's page: a self-contained HTML document (figures embedded as base64 PNG, no
script, nothing fetched) that prints cleanly.

Top to bottom: the headline (the best model, how many of the seed's claims hold), one verdict
per claim in plain words with its rule and numbers a click away, the histories side by side,
the small-data curve, the runs, each model's confusion matrix and mistakes, the seed's
activation figure, and at the end the data, versions and the commands that reproduce it.
"""

from __future__ import annotations

import base64
import html
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cifar_gui.engine.record import RunRecord
from cifar_gui.engine.study.report_claims import FAILS, HOLDS, UNTESTED, Claim
from cifar_gui.engine.study.runs import SavedRun
from cifar_gui.variant_style import variant_color

esc = html.escape

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1150px;
       padding: 0 1em; color: #222; line-height: 1.4; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: 2px; margin-top: 1.6em; }
.headline { font-size: 1.25em; background: #f4f6fa; border-left: 6px solid #1f77b4;
            padding: 0.6em 1em; margin: 0.8em 0; }
.headline p { margin: 0.2em 0; }
.headline .note { font-size: 0.8em; color: #555; }
.claim { border: 1px solid #ccc; border-left: 8px solid #999; margin: 0.4em 0;
         padding: 0.25em 0.8em; }
.claim p { margin: 0.2em 0; }
.claim.holds { border-left-color: #2e8b3a; } .claim.fails { border-left-color: #c0392b; }
.claim .words { font-style: italic; }
.verdict { display: inline-block; min-width: 8.5em; font-weight: bold; padding: 1px 6px;
           border-radius: 3px; margin-right: 0.5em; text-align: center; }
.holds .verdict { background: #d8f0d8; } .fails .verdict { background: #f6d5d5; }
.untested .verdict { background: #e6e6e6; }
.spread { font-size: 0.9em; color: #555; }
details { font-size: 0.9em; color: #333; } summary { cursor: pointer; color: #1f5fa0; }
dl { margin: 0.3em 0 0.3em 1em; } dt { font-weight: bold; } dd { margin: 0 0 0.3em 1em; }
.grid { display: grid; gap: 6px; grid-template-columns: repeat(4, 1fr); }
.grid img, figure img { width: 100%; }
figure { margin: 0.5em 0; } figure.medium img { max-width: 780px; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.85em; }
th, td { border: 1px solid #bbb; padding: 3px 6px; text-align: left; vertical-align: top; }
td.number { text-align: right; }
th { background: #eee; }
td.nowrap { white-space: nowrap; }
code { background: #f4f4f4; padding: 1px 4px; overflow-wrap: anywhere; }
.swatch { display: inline-block; width: 0.9em; height: 0.9em; margin-right: 4px; }
@media print {
  body { max-width: none; margin: 0; font-size: 10pt; }
  details::details-content { content-visibility: visible; display: block; }
  summary { display: none; }
  .claim, figure, tr, img, .headline, dl { break-inside: avoid; }
  h2 { break-after: avoid; }
  thead { display: table-header-group; }
  table { font-size: 8pt; width: 100%; }
  a { color: inherit; text-decoration: none; }
}
"""
VERDICT_CLASS = {HOLDS: "holds", FAILS: "fails", UNTESTED: "untested"}


@dataclass(frozen=True)
class Content:
    """What the page shows; ``figures``: name -> PNG beside the report."""

    runs: Sequence[SavedRun]
    groups: Mapping[str, Sequence[SavedRun]]  # variant -> the runs its claims are judged on
    claims: Sequence[Claim]
    figures: Mapping[str, Path]
    history_figures: Sequence[str]  # names in ``figures``, in the seed's order
    model_parts: Mapping[str, Sequence[str]]  # run label -> names in ``figures``
    about: Sequence[tuple[str, str]]
    commands: Sequence[tuple[str, str]]  # (what, command)
    small_data: str  # what the small-data section says (its figure is ``small data``)
    notes: Sequence[str] = field(default_factory=tuple)
    pretrained_note: str = ""


def final_accuracy(run: SavedRun) -> float | None:
    """The saved model's test accuracy (its last validation accuracy when not recorded)."""
    accuracy = run.record.test_accuracy
    if accuracy is not None and math.isfinite(accuracy):
        return accuracy
    val = [v for v in run.record.history.get("val_accuracy", ()) if math.isfinite(v)]
    return val[-1] if val else None


def accuracy_text(runs: Sequence[SavedRun]) -> tuple[float | None, str]:
    """The mean final test accuracy of ``runs`` and its text: ``87.6%``, or with several runs
    ``87.1% ± 0.6 (86.5-87.6%, 3 runs)`` (sample standard deviation, in points)."""
    values = [a for a in (final_accuracy(r) for r in runs) if a is not None]
    if not values:
        return None, "?"
    mean = float(np.mean(values))
    if len(values) == 1:
        return mean, f"{mean:.1%}"
    sd = statistics.stdev(values) * 100
    return mean, (
        f"{mean:.1%} \u00b1 {sd:.1f} ({min(values):.1%}-{max(values):.1%}, {len(values)} runs)"
    )


def headline(groups: Mapping[str, Sequence[SavedRun]], claims: Sequence[Claim]) -> str:
    """The best model and its test accuracy, and how many of the claims hold."""
    scored = {v: accuracy_text(rs) for v, rs in groups.items()}
    scored = {v: s for v, s in scored.items() if s[0] is not None}
    count = {verdict: sum(c.verdict == verdict for c in claims) for verdict in VERDICT_CLASS}
    tally = f"{count[HOLDS]} of the tutorial's {len(claims)} claims hold"
    rest = [
        f"{count[FAILS]} do{'es' if count[FAILS] == 1 else ''} not" if count[FAILS] else "",
        f"{count[UNTESTED]} cannot be tested" if count[UNTESTED] else "",
    ]
    tally += "".join(f", {part}" for part in rest if part) + "."
    if count[HOLDS] == 1:
        tally = tally.replace("claims hold", "claims holds", 1)
    if not scored:
        return f"<p>{esc(tally)}</p>"
    best = max(scored, key=lambda v: scored[v][0])
    swatch = f'<span class="swatch" style="background:{variant_color(best)}"></span>'
    return (
        f"<p>Best model: {swatch}<b>{esc(best)}</b>, <b>{esc(scored[best][1])}</b> test "
        "accuracy (the saved model, on the test images).</p>"
        f"<p>{esc(tally)}</p>"
    )


def claim_section(claim: Claim) -> str:
    """One claim: its verdict and plain words, the rule and numbers behind a click."""
    css = VERDICT_CLASS[claim.verdict]
    details = [("rule", claim.rule), ("measured", claim.measured), ("runs", claim.runs)]
    spread = f'<p class="spread">{esc(claim.spread)}</p>' if claim.spread else ""
    items = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in details)
    return (
        f'<section class="claim {css}" data-verdict="{esc(claim.verdict)}">'
        f'<p><span class="verdict">{esc(claim.verdict)}</span>'
        f'<span class="words">\u201c{esc(claim.claim)}\u201d</span></p>'
        f'<p class="summary">{esc(claim.summary)}</p>{spread}'
        f"<details><summary>The rule and the numbers</summary><dl>{items}</dl></details>"
        "</section>"
    )


def img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{data}">'


def figure(path: Path, alt: str, css: str = "") -> str:
    attr = f' class="{css}"' if css else ""
    return f"<figure{attr}>{img(path, alt)}</figure>"


def table(
    header: Sequence[str] | None,
    rows: Sequence[Sequence[str]],
    css: Mapping[int, str] | None = None,
) -> str:
    """An HTML table (no header row for None); ``rows`` hold HTML already; ``css``: column ->
    class of its cells."""
    css = css or {}
    head = "" if header is None else "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="{css[j]}">{c}</td>' if j in css else f"<td>{c}</td>"
            for j, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    thead = f"<thead><tr>{head}</tr></thead>" if head else ""
    return f"<table>{thead}<tbody>{body}</tbody></table>"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def run_time(record: RunRecord) -> str:
    """The "total time" cell: the run as its user waited for it (``wall_seconds``: data,
    model, epochs, checkpoints, final save), or in a record older than that, the time of its
    fit, labelled so; a resumed run's is its last session's."""
    if record.wall_seconds is not None:
        shown = _duration(record.wall_seconds)
    elif record.seconds is not None:
        shown = f"{_duration(record.seconds)} (fit only)"
    else:
        return "?"
    if record.resumed_from_epoch is not None:
        shown += f" (from epoch {record.resumed_from_epoch + 1})"
    return shown


def _percent(value: float | None) -> str:
    return "?" if value is None or not math.isfinite(value) else f"{value:.1%}"


RUN_COLUMNS = (
    "run",
    "variant",
    "seed",
    "trainable / total parameters",
    "epochs",
    "final test accuracy",
    "best test accuracy (epoch)",
    "lowest val. loss at epoch",
    "s / epoch",
    "total time",
    "device, precision",
)


def run_row(run: SavedRun) -> list[str]:
    """The table's row of one run, formatted (plain text, in :data:`RUN_COLUMNS` order)."""
    record = run.record
    val = list(record.history.get("val_accuracy", ()))
    seconds = [s for s in record.history.get("epoch_seconds", ()) if math.isfinite(s)]
    params = record.parameters
    best, low = record.best_epoch, record.lowest_loss_epoch
    return [
        run.label,
        record.variant,
        "?" if record.config is None else str(record.config.seed),
        "?" if params is None else f"{params.trainable:,} / {params.total:,}",
        f"{record.epochs_completed} of {record.epochs_planned}"
        + (" (stopped)" if record.stopped else ""),
        _percent(final_accuracy(run))
        + (f" (kept epoch {record.kept_epoch})" if record.kept_epoch else ""),
        "?" if best is None else f"{val[best]:.1%} ({best + 1})",
        "?" if low is None else str(low + 1),
        f"{np.mean(seconds):.1f}" if seconds else "?",
        run_time(record),
        f"{record.device or '?'}, {record.precision or '?'}",
    ]


def _runs_table(runs: Sequence[SavedRun]) -> str:
    rows = []
    for run in runs:
        cells = [esc(c) for c in run_row(run)]
        colour = variant_color(run.record.variant)
        swatch = f'<span class="swatch" style="background:{colour}"></span>'
        cells[0] = cells[0].replace("_", "_<wbr>")  # long file stems break at their parts
        cells[1] = swatch + cells[1]
        rows.append(cells)
    numbers = dict.fromkeys((2, 3, 5, 6, 7, 8, 9), "number")
    return table(RUN_COLUMNS, rows, {**numbers, 1: "nowrap", 4: "nowrap"})


def render(content: Content) -> str:
    """The whole page."""
    f = content.figures
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>cifar-gui study report</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>Convnets on small data: the study report</h1>",
        f'<div class="headline">{headline(content.groups, content.claims)}',
    ]
    if content.pretrained_note:
        parts.append(f'<p class="note">{esc(content.pretrained_note)}</p>')
    parts += [
        "</div>",
        "<h2>The tutorial's claims</h2>",
        "<p>Each verdict follows from the runs' histories by the fixed rule shown with it "
        "(open <i>The rule and the numbers</i>).</p>",
        *(claim_section(c) for c in content.claims),
        "<h2>Training histories</h2>",
        '<div class="grid">',
        *(img(f[name], name) for name in content.history_figures),
        "</div>",
        "<p><small>Loss above, accuracy below, on the same axes for every model; solid: "
        "training, dashed: validation (the test images); \u2605: the lowest validation loss "
        "and the best validation accuracy. Several runs of a model: their mean, their range "
        "shaded.</small></p>",
        "<h2>Validation curves together</h2>",
        figure(f["overlay"], "validation curves of every run", "medium"),
        "<h2>The small-data curve</h2>",
        f"<p>{esc(content.small_data)}</p>",
    ]
    if "small data" in f:
        parts.append(figure(f["small data"], "test accuracy against training images", "medium"))
    parts += [
        "<h2>The runs</h2>",
        "<p>Test accuracy is the validation accuracy: the tutorial validates on the test set.</p>",
        _runs_table(content.runs),
    ]
    shown = {label: names for label, names in content.model_parts.items() if names}
    if shown:
        parts.append("<h2>Confusion matrices and the most confident mistakes</h2>")
        confusions = [n for names in shown.values() for n in names if n.startswith("confusion")]
        parts.append('<div class="grid">')
        parts += [img(f[n], n) for n in confusions]
        parts.append("</div>")
        for names in shown.values():
            parts += [figure(f[n], n) for n in names if n.startswith("mistakes")]
    if "activations" in f:
        parts += [
            "<h2>Activations (the tutorial's figure)</h2>",
            "<p>Test image 5; the first layer, channels 1, 5, 15, 20; layer 6, channels 1, "
            "50, 110 (numbered from 1, as the tutorial).</p>",
            figure(f["activations"], "activations of test image 5", "medium"),
        ]
    if content.notes:
        parts.append("<h2>Notes</h2><ul>")
        parts += [f"<li>{esc(n)}</li>" for n in content.notes]
        parts.append("</ul>")
    parts += [
        "<h2>Data, versions and how to reproduce this</h2>",
        table(None, [[esc(k), esc(v)] for k, v in content.about]),
        *(f"<p>{esc(what)}:<br><code>{esc(cmd)}</code></p>" for what, cmd in content.commands),
        "</body></html>",
    ]
    return "\n".join(parts)
