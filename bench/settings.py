"""What each speed setting buys: the baseline with one setting changed at a time.

Every row is a fresh ``cifar-gui train`` process (thread settings apply only at
TensorFlow's start) on deer vs horse with the automatic settings except the one named;
seconds per epoch are the median of the epochs after the first, from the run's sidecar
(training plus validation). Rows run in rounds, so the machine's load changes hit all alike.

    python bench/settings.py [--epochs 6] [--rounds 2] [--out bench/results/settings.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchutil import machine_fields, write_result  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "cifar10"
# name -> the flags that differ from the automatic settings
VARIANTS = {
    "auto": [],
    "float32": ["--precision", "float32"],
    "1 batch per call": ["--steps-per-execution", "1"],
    "32 batches per call": ["--steps-per-execution", "32"],
    "1 thread": ["--threads", "1"],
}


def epoch_seconds(flags: list[str], args: argparse.Namespace) -> list[float]:
    """One training run's epoch seconds."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [
            sys.executable, "-m", "cifar_gui", "train", "--data", str(args.data),
            "--epochs", str(args.epochs), "--no-checkpoint", "--out", out, *flags,
        ]  # fmt: skip
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(flags) or 'auto'}: {proc.stderr.strip()[-300:]}")
        (sidecar,) = Path(out).glob("*.json")
        return json.loads(sidecar.read_text())["history"]["epoch_seconds"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "settings.json"))
    args = parser.parse_args()
    seconds: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(args.rounds):
        for name, flags in VARIANTS.items():
            seconds[name] += epoch_seconds(flags, args)[1:]  # the first epoch traces
    medians = {name: round(statistics.median(values), 3) for name, values in seconds.items()}
    rows = {
        name: {"median_epoch_seconds": value, "relative_to_auto": round(value / medians["auto"], 2)}
        for name, value in medians.items()
    }
    result = {**machine_fields(), "epochs": args.epochs, "rounds": args.rounds, "settings": rows}
    write_result(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
