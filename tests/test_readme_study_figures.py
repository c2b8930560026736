"""The README's measured study is the one recorded in docs/study/ (issue 25): each row of its
table recomputes from the run's sidecar, so a re-run study cannot leave stale figures."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILES = {
    "baseline": "cifar10_4_7.json",
    "augmented": "cifar10_4_7_augm.json",
    "transfer": "cifar10_4_7_transferlearning.json",
    "finetune": "cifar10_4_7_finetuningtransferlearning.json",
}
ROW = re.compile(r"^\| (\w+)[^|]* \| ([\d.]+)% \| ([\d.]+)% \(epoch (\d+)\) \|$")


def readme_rows(text: str) -> dict[str, tuple[str, str, int]]:
    """The rows of the README's study table: model -> (final %, best %, best epoch)."""
    section = text[text.index("**What it found here**") : text.index("## Where things are saved")]
    rows = {}
    for line in section.splitlines():
        match = ROW.match(line)
        if match and match.group(1) in FILES:
            rows[match.group(1)] = (match.group(2), match.group(3), int(match.group(4)))
    return rows


def recorded(variant: str) -> tuple[str, str, int]:
    record = json.loads((ROOT / "docs" / "study" / FILES[variant]).read_text())
    validation = record["history"]["val_accuracy"]
    best = max(range(len(validation)), key=validation.__getitem__)
    return f"{100 * record['test_accuracy']:.1f}", f"{100 * validation[best]:.1f}", best + 1


def test_the_readme_study_table_is_the_recorded_study():
    rows = readme_rows((ROOT / "README.md").read_text())
    assert set(rows) == set(FILES)  # every model has its row
    assert {v: recorded(v) for v in FILES} == rows


def test_a_stale_figure_is_found():
    text = (ROOT / "README.md").read_text()
    final, best, epoch = recorded("augmented")
    stale = text.replace(f"| augmented | {final}% |", "| augmented | 12.3% |")
    assert stale != text and readme_rows(stale)["augmented"] != (final, best, epoch)
