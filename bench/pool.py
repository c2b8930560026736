"""Pool the runs of several ``bench/run.py`` result files into one comparison.

Speed-ups and mean accuracies over all their seeds, as ``run.py`` computes them for one file:

    python bench/pool.py bench/results/bench.json bench/results/seeds-3-5/bench.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from run import compare


def main(paths: list[str]) -> int:
    runs = [run for path in paths for run in json.loads(Path(path).read_text())["runs"]]
    print(f"{len(paths)} result files, {len(runs)} runs")
    for row in compare(runs):
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
