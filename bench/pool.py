"""Pool the rounds of several ``bench/run.py`` result files into one comparison.

Medians and ranges over all their rounds (each file's rounds kept apart), as ``run.py``
computes them for one file; the files must share their settings (epochs, --limit):

    python bench/pool.py bench/results/bench.json bench/results/bench-quiet.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from run import compare, study


def main(paths: list[str]) -> int:
    reports = [json.loads(Path(path).read_text()) for path in paths]
    settings = {(r["settings"]["epochs"], r["settings"]["limit"]) for r in reports}
    if len(settings) > 1:
        print(f"error: the files were measured with other settings: {settings}", file=sys.stderr)
        return 2
    runs = [{**run, "round": (i, run["round"])} for i, r in enumerate(reports) for run in r["runs"]]
    print(f"{len(paths)} result files, {len(runs)} runs")
    for row in compare(runs):
        print(json.dumps(row))
    print(json.dumps({"study": study(runs, reports[0]["settings"]["study_epochs"])}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
