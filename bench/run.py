"""Benchmark: whole runs of the seed's recipe in stock Keras against this project's CLI.

Every measurement is a whole run as a user waits for it, timed from outside (perf_counter
around a fresh process, from its start to its exit): ours is ``python -m cifar_gui train``
with its defaults (checkpoints on, the saved model and sidecar), the reference is
``python bench/reference.py`` (the seed's recipe in stock Keras: data, model, every epoch
with validation, the saved model). Each run is split into a fixed and a per-epoch cost by the
times its ``epoch K/N:`` lines appear: the per-epoch cost is the median gap between them
(all that recurs each epoch, checkpoints included), the fixed cost the rest (start-up, data,
model, tracing, saves); the 30-epoch estimate is fixed + 30 x per-epoch.

Rounds alternate the two recipes (reference first in odd rounds, ours first in even ones, so
a drift in the machine's load hits both); each ratio is taken per round, then reported as
the median and the range over rounds. The study line sums the four variants' estimates per
round. The floor (``bench/floor.py``) is each variant's least arithmetic at the best
matrix-product rate measured before and after the runs: no run can beat it.

    python bench/run.py                     # 4 variants, 3 rounds, 3 epochs, --limit 2000
    python bench/run.py --quick             # smoke test: 2 rounds, 2 epochs, --limit 200
    python bench/run.py --study-end-to-end --epochs 30 --against bench/results/bench.json

``--study-end-to-end`` times ``python -m cifar_gui study --weights none`` from start to
report, and with ``--against`` compares it with the reference's whole-run estimate of the
same epochs from a bench result of the same ``--limit``. Also runs the GUI benchmarks that
exist (``bench/startup.py``, ``bench/gui_training.py``, ``bench/activation_update.py``;
``--no-gui`` skips them). Writes ``bench/results/bench[-TAG].json`` and
``RESULTS[-TAG].md`` (``--quick``: tag ``quick``; end to end: ``study-e2e[-TAG]``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from timing import estimate, floor_flops, ratios, spread, whole_run_fit

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "cifar10"
# The GUI benchmarks of other issues, with the arguments that shorten them in quick mode
# (passed only when the script knows the option).
GUI_BENCHMARKS = {
    "startup": ["--repeat", "3"],
    "gui_training": ["--epochs", "2", "--limit", "2000", "--rounds", "1"],
    "activation_update": ["--repeat", "10"],
}
RESULT_PREFIX = "BENCH-RESULT "
EPOCH_LINE = re.compile(r"^epoch (\d+)/(\d+):")
STUDY_RUN_LINE = re.compile(r"^run (\d+) of (\d+): (\w+)")
SAVED_LINE = re.compile(r"^saved (.+?) \(")
STUDY_EPOCHS = 30  # the seed trains every variant 30 epochs
VARIANTS = ("baseline", "augmented", "transfer", "finetune")
RECIPES = ("reference", "ours")


# --------------------------------------------------------------------------------------
# One whole run in a fresh process, timed from outside


def timed(cmd: list[str]) -> dict:
    """Run ``cmd`` from the repository root; its wall and CPU seconds, peak memory, exit
    status, the seconds at which each line appeared and the lines."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append((time.perf_counter() - started, line.replace("\r", "").strip()))
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "wall_seconds": wall,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "peak_rss_mib": usage.ru_maxrss / 1024,  # KiB on Linux
        "returncode": proc.returncode,
        "lines": lines,
    }


def epoch_marks(lines: list[tuple[float, str]]) -> list[float]:
    """The times of the ``epoch K/N:`` lines."""
    return [t for t, text in lines if EPOCH_LINE.match(text)]


def command(variant: str, recipe: str, spec: dict, out: str) -> list[str]:
    """The command line of one whole run."""
    common = ["--data", spec["data"], "--epochs", str(spec["epochs"]), "--seed", str(spec["seed"])]
    common += ["--limit", str(spec["limit"])] if spec["limit"] else []
    if recipe == "reference":
        return [
            sys.executable,
            str(BENCH / "reference.py"),
            "--variant",
            variant,
            *common,
            "--out",
            out,
        ]
    extra = ["--from", spec["transfer_model"]] if variant == "finetune" else []
    return [
        sys.executable,
        "-m",
        "cifar_gui",
        "train",
        "--variant",
        variant,
        *common,
        "--weights",
        "none",
        *extra,
        "--out",
        out,
    ]


def whole_run(variant: str, recipe: str, spec: dict) -> dict:
    """One whole run of ``recipe`` for ``variant`` (a fresh ``--out`` folder each time),
    with its fit and its estimate at ``spec['study_epochs']``."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{recipe}-") as out:
        t = timed(command(variant, recipe, spec, out))
    head = {"round": spec["round"], "variant": variant, "recipe": recipe}
    marks = epoch_marks(t["lines"])
    if t["returncode"] != 0 or len(marks) != spec["epochs"]:
        tail = " | ".join(text for _, text in t["lines"][-4:])
        return {**head, "error": f"exit {t['returncode']}, {len(marks)} epoch lines: {tail}"}
    fit = whole_run_fit(t["wall_seconds"], marks, spec["epochs"])
    return {
        **head,
        "epochs": spec["epochs"],
        "wall_seconds": round(t["wall_seconds"], 2),
        "cpu_seconds": round(t["cpu_seconds"], 2),
        "peak_rss_mib": round(t["peak_rss_mib"]),
        "epoch_marks": [round(m, 2) for m in marks],
        "per_epoch_seconds": round(fit["per_epoch"], 3),
        "fixed_seconds": round(fit["fixed"], 2),
        "estimate_seconds": round(estimate(fit, spec["study_epochs"]), 1),
    }


def transfer_model(data: str) -> str:
    """A saved transfer model (random weights, one short epoch) for ours' finetune to start
    from, made once, untimed, as the study's transfer run would have made it."""
    out = tempfile.mkdtemp(prefix="bench-transfer-")
    cmd = [
        sys.executable,
        "-m",
        "cifar_gui",
        "train",
        "--variant",
        "transfer",
        "--data",
        data,
        "--epochs",
        "1",
        "--limit",
        "64",
        "--weights",
        "none",
        "--no-checkpoint",
        "--out",
        out,
    ]
    t = timed(cmd)
    saved = [m.group(1) for _, text in t["lines"] if (m := SAVED_LINE.match(text))]
    if t["returncode"] != 0 or not saved:
        tail = " | ".join(text for _, text in t["lines"][-4:])
        raise SystemExit(f"error: the transfer model for finetune failed: {tail}")
    return saved[-1]


def floor_inputs(variants: list[str]) -> dict:
    """``bench/floor.py``'s measured rates and the variants' weighted layers."""
    t = timed([sys.executable, str(BENCH / "floor.py"), "--variants", *variants])
    for _, text in t["lines"]:
        if text.startswith("{"):
            return json.loads(text)
    tail = " | ".join(text for _, text in t["lines"][-4:])
    return {"error": f"exit {t['returncode']}: {tail}"}


# --------------------------------------------------------------------------------------
# The report's figures


def _rounded(s: dict | None, digits: int = 2) -> dict | None:
    return None if s is None else {k: round(v, digits) for k, v in s.items()}


def by_round(runs: list[dict], variant: str, recipe: str, key: str) -> dict[int, float]:
    """``key`` of each round's successful run of (variant, recipe)."""
    return {
        r["round"]: r[key]
        for r in runs
        if r["variant"] == variant and r["recipe"] == recipe and "error" not in r
    }


def compare(runs: list[dict]) -> list[dict]:
    """One row per variant measured by both recipes: each figure's median and range over
    rounds, and the ratios reference / ours taken per round."""
    rows = []
    for variant in VARIANTS:
        figures = {}
        for key in ("estimate_seconds", "per_epoch_seconds", "fixed_seconds", "wall_seconds"):
            ref, ours = (by_round(runs, variant, r, key) for r in RECIPES)
            both = sorted(set(ref) & set(ours))
            if not both:
                break
            figures[key] = {
                "reference": _rounded(spread([ref[i] for i in both])),
                "ours": _rounded(spread([ours[i] for i in both])),
                "ratio": _rounded(spread(ratios([ref[i] for i in both], [ours[i] for i in both]))),
            }
        if figures:
            rows.append(
                {"variant": variant, "rounds": figures["wall_seconds"]["ours"]["n"], **figures}
            )
    return rows


def study(runs: list[dict], epochs: int) -> dict | None:
    """The seed's four variants at ``epochs`` each, per round: the sum of the whole-run
    estimates, reference and ours, and their ratio; None unless some round has all eight."""
    per_round = {}
    for recipe in RECIPES:
        found = [by_round(runs, v, recipe, "estimate_seconds") for v in VARIANTS]
        complete = set.intersection(*(set(f) for f in found))
        per_round[recipe] = {i: sum(f[i] for f in found) for i in complete}
    both = sorted(set(per_round["reference"]) & set(per_round["ours"]))
    if not both:
        return None
    ref = [per_round["reference"][i] / 60 for i in both]
    ours = [per_round["ours"][i] / 60 for i in both]
    return {
        "epochs": epochs,
        "reference_minutes": _rounded(spread(ref), 1),
        "ours_minutes": _rounded(spread(ours), 1),
        "speedup": _rounded(spread(ratios(ref, ours))),
    }


def floors(runs: list[dict], inputs: list[dict], epochs: int, images: tuple[int, int]) -> dict:
    """Each variant's floor (least FLOPs at the best rate measured) per epoch and at
    ``epochs``, and every run measured below it (there should be none)."""
    rates = [max(i["rates_gflops"].values()) for i in inputs if "rates_gflops" in i]
    if not rates:
        return {"error": "; ".join(i.get("error", "") for i in inputs)}
    rate = max(rates) * 1e9
    layers = next(i["layers"] for i in inputs if "layers" in i)
    out: dict = {"best_gflops": max(rates), "variants": {}, "beaten": []}
    for variant, entries in layers.items():
        train, test = images
        # The reference's augmented epochs use len // 32 whole batches: count no more.
        flops = floor_flops([tuple(e) for e in entries], train // 32 * 32, test)
        per_epoch, once = flops["per_epoch"] / rate, flops["once"] / rate
        out["variants"][variant] = {
            "per_epoch_seconds": round(per_epoch, 3),
            "estimate_seconds": round(once + epochs * per_epoch, 1),
            "tflop_per_epoch": round(flops["per_epoch"] / 1e12, 3),
        }
        for r in runs:
            if r["variant"] == variant and "error" not in r:
                floor_run = once + r["epochs"] * per_epoch
                if r["per_epoch_seconds"] < per_epoch or r["wall_seconds"] < floor_run:
                    out["beaten"].append(f"{variant}/{r['recipe']} round {r['round']}")
    return out


def image_counts(data: str, limit: int | None) -> tuple[int, int]:
    """Training and test images of the pair at ``limit``, read as the runs read them."""
    sys.path.insert(0, str(ROOT))
    from cifar_gui import tutorial
    from cifar_gui.engine.data.dataset import load_dataset, select_classes

    subset = select_classes(load_dataset(data), tutorial.PAIR, limit)
    return len(subset.x_train), len(subset.x_test)


# --------------------------------------------------------------------------------------
# GUI benchmarks of other issues, merged when their scripts exist


def run_gui_benchmarks(quick: bool, log) -> dict:
    """Run each ``bench/<name>.py --out TMP`` that exists; its JSON, or why there is none."""
    found = {}
    for name, quick_args in GUI_BENCHMARKS.items():
        script = BENCH / f"{name}.py"
        if not script.is_file():
            found[name] = {"skipped": f"bench/{name}.py does not exist yet"}
            continue
        log(f"GUI benchmark {name} ...")
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / f"{name}.json"
            cmd = [sys.executable, str(script), "--out", str(out)]
            if quick:
                text = script.read_text()
                pairs = zip(quick_args[::2], quick_args[1::2], strict=True)
                cmd += [arg for pair in pairs if pair[0] in text for arg in pair]
            started = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            seconds = round(time.perf_counter() - started, 1)
            if proc.returncode == 0 and out.is_file():
                found[name] = {**json.loads(out.read_text()), "bench_seconds": seconds}
            else:
                lines = (proc.stderr or proc.stdout).strip().splitlines() or [""]
                why = next((x for x in lines if "Error" in x or "Fatal" in x), lines[-1])
                found[name] = {"error": f"exit {proc.returncode}: {why.strip()[:200]}"}
    return found


# --------------------------------------------------------------------------------------
# Report


def machine() -> dict:
    """CPU model, cores, versions and the device TensorFlow trains on."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, str(ROOT))
    from cifar_gui.engine.training.hardware import cpu_name
    from cifar_gui.engine.training.performance import cpu_has_bfloat16, resolve_precision
    from cifar_gui.engine.training.run import describe_device, versions

    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_bfloat16": cpu_has_bfloat16(),
        "device": describe_device(),
        "auto_precision": resolve_precision("auto"),
        "platform": platform.platform(),
        **versions(),
    }


def _fmt(value, spec: str = "") -> str:
    return "-" if value is None else format(value, spec)


def _range(s: dict | None, spec: str = ".2f", unit: str = "") -> str:
    """``median unit (min-max)``."""
    if s is None:
        return "-"
    return f"{s['median']:{spec}}{unit} ({s['min']:{spec}}-{s['max']:{spec}})"


def _header(report: dict) -> list[str]:
    m = report["machine"]
    return [
        f"{report['finished']}; `{report['command']}` ({report['seconds'] / 60:.0f} min)",
        "",
        f"- Machine: {m['cpu']}, {m['cores']} cores ({m['cores_usable']} usable); "
        f"{m['device']}; bfloat16 CPU: {m['cpu_bfloat16']}; auto precision: "
        f"{m['auto_precision']}",
        f"- TensorFlow {m['tensorflow']}, Keras {m['keras']}, Python {m['python']}, "
        f"{m['platform']}",
        f"- Load average (1, 5, 15 min) before / after: {report['load_before']} / "
        f"{report['load_after']}; above {m['cores']} the machine was shared and the seconds "
        "are under load",
    ]


def linearity(runs: list[dict]) -> str:
    """Whether the per-epoch cost holds from epoch to epoch (what the estimate assumes): each
    run's last gap between epoch lines over its first."""
    drift = [
        (m[-1] - m[-2]) / (m[1] - m[0])
        for r in runs
        if "error" not in r and len(m := r["epoch_marks"]) >= 3
    ]
    if not drift:
        return "Per-epoch cost from epoch to epoch: not measured (runs of 2 epochs have one gap)."
    return (
        "Per-epoch cost from epoch to epoch (the estimate assumes it holds): each run's last "
        f"gap between epoch lines over its first, {_range(spread(drift), '.2f')} over "
        f"{len(drift)} runs."
    )


def markdown(report: dict) -> str:
    """The results as Markdown: machine, method, the runs, the ratios, study and floor."""
    s, n = report["settings"], report["settings"]["study_epochs"]
    limit = f"--limit {s['limit']}" if s["limit"] else "all images"
    lines = [
        "# Benchmark results: whole runs",
        "",
        *_header(report),
        f"- Deer vs horse, {limit} ({report['images'][0]} training, {report['images'][1]} test "
        f"images), {s['epochs']} epochs a run, {s['rounds']} rounds, random VGG16 weights",
        f"- Each time is a whole run, process start to exit, timed from outside; per-epoch: "
        f"the median gap between its epoch lines; fixed: the rest; {n}-epoch estimate: "
        f"fixed + {n} x per-epoch. Figures: median (min-max) over rounds; ratios per round.",
        "",
        "| round | variant | recipe | wall s | CPU s | per-epoch s | fixed s "
        f"| {n}-epoch est. min | peak RSS MiB |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["runs"]:
        if "error" in r:
            lines.append(
                f"| {r['round']} | {r['variant']} | {r['recipe']} | failed: "
                f"{r['error'][:100]} |||||"
            )
            continue
        lines.append(
            f"| {r['round']} | {r['variant']} | {r['recipe']} | {r['wall_seconds']:.1f} "
            f"| {r['cpu_seconds']:.1f} | {r['per_epoch_seconds']:.2f} | {r['fixed_seconds']:.1f} "
            f"| {r['estimate_seconds'] / 60:.2f} | {r['peak_rss_mib']} |"
        )
    floor = report["floor"]
    lines += [
        "",
        f"| variant | rounds | {n}-epoch run, reference s | ours s | **speed-up, whole run** "
        "| per-epoch, reference s | ours s | speed-up, per epoch | fixed, reference s "
        f"| ours s | floor, {n} epochs s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in report["comparison"]:
        e, p, f = c["estimate_seconds"], c["per_epoch_seconds"], c["fixed_seconds"]
        fl = floor.get("variants", {}).get(c["variant"], {})
        lines.append(
            f"| {c['variant']} | {c['rounds']} | {_range(e['reference'], '.0f')} "
            f"| {_range(e['ours'], '.0f')} | **{_range(e['ratio'], '.2f', 'x')}** "
            f"| {_range(p['reference'])} | {_range(p['ours'])} | {_range(p['ratio'], '.2f', 'x')} "
            f"| {_range(f['reference'], '.1f')} | {_range(f['ours'], '.1f')} "
            f"| {_fmt(fl.get('estimate_seconds'), '.0f')} |"
        )
    st = report.get("study")
    if st:
        lines += [
            "",
            f"Study ({len(VARIANTS)} variants x {st['epochs']} epochs, the sum of the whole-run "
            f"estimates per round): reference {_range(st['reference_minutes'], '.1f', ' min')}, "
            f"ours {_range(st['ours_minutes'], '.1f', ' min')}: "
            f"**{_range(st['speedup'], '.2f', 'x')}**. Separate processes per variant: the "
            "study command runs them in one (`--study-end-to-end` times that).",
        ]
    lines += ["", linearity(report["runs"])]
    if "error" in floor:
        lines += ["", f"Floor: failed ({floor['error'][:200]})"]
    else:
        beaten = ", ".join(floor["beaten"]) or "none"
        lines += [
            "",
            f"Floor: each variant's least FLOPs (`bench/timing.py` `floor_flops`) at the best "
            f"rate measured before and after the runs, {floor['best_gflops']} GFLOP/s "
            f"(`bench/floor.py`). Per epoch: "
            + ", ".join(
                f"{v} {d['per_epoch_seconds']:.2f} s ({d['tflop_per_epoch']} TFLOP)"
                for v, d in floor["variants"].items()
            )
            + f". Runs below their floor: {beaten}.",
        ]
    lines += ["", "## GUI figures", ""]
    for name, data in report["gui"].items():
        if "skipped" in data or "error" in data:
            lines.append(f"- `{name}`: {data.get('skipped') or data.get('error')}")
        else:
            lines.append(f"- `{name}`: `{json.dumps(_summary(data))}`")
    return "\n".join(lines) + "\n"


def _summary(data: dict) -> dict:
    """The top-level numbers of a GUI benchmark's JSON (nested dicts one level down)."""
    out = {}
    for key, value in data.items():
        if isinstance(value, int | float | bool):
            out[key] = value
        elif isinstance(value, dict):
            out[key] = {k: v for k, v in value.items() if isinstance(v, int | float | bool)}
    return out


# --------------------------------------------------------------------------------------
# The study end to end


def study_end_to_end(args: argparse.Namespace, log) -> dict:
    """Time ``cifar-gui study --weights none`` from start to report, ``args.rounds`` times;
    with ``args.against``, the reference's whole-run estimate of the same epochs."""
    rounds = []
    for i in range(args.rounds or 1):
        with tempfile.TemporaryDirectory(prefix="bench-study-") as out:
            cmd = [
                sys.executable,
                "-m",
                "cifar_gui",
                "study",
                "--weights",
                "none",
                "--data",
                args.data,
                "--epochs",
                str(args.epochs),
                "--out",
                out,
            ]
            cmd += ["--limit", str(args.limit)] if args.limit else []
            log(f"study end to end, round {i + 1}: {' '.join(cmd[1:])} ...")
            t = timed(cmd)
        starts = [(m.group(3), s) for s, text in t["lines"] if (m := STUDY_RUN_LINE.match(text))]
        if t["returncode"] != 0:
            tail = " | ".join(text for _, text in t["lines"][-4:])
            rounds.append({"round": i + 1, "error": f"exit {t['returncode']}: {tail}"})
            continue
        ends = [s for _, s in starts[1:]] + [t["wall_seconds"]]
        rounds.append(
            {
                "round": i + 1,
                "wall_seconds": round(t["wall_seconds"], 1),
                "cpu_seconds": round(t["cpu_seconds"], 1),
                "peak_rss_mib": round(t["peak_rss_mib"]),
                # From each "run K of 4" line to the next (the last: to the exit, report included).
                "variant_seconds": {
                    v: round(e - s, 1) for (v, s), e in zip(starts, ends, strict=True)
                },
            }
        )
        log(f"  {t['wall_seconds'] / 60:.1f} min")
    walls = [r["wall_seconds"] / 60 for r in rounds if "error" not in r]
    result: dict = {"minutes": _rounded(spread(walls), 1), "rounds": rounds}
    if args.against:
        bench = json.loads(Path(args.against).read_text())
        if bench["settings"]["limit"] != args.limit:
            raise SystemExit(
                f"error: {args.against}: measured at --limit {bench['settings']['limit']}, "
                f"not {args.limit}: the estimate would be of other work"
            )
        reference = study(_refit(bench["runs"], args.epochs), args.epochs)
        ref = (reference or {}).get("reference_minutes")
        result["against"] = args.against
        result["reference_minutes"] = ref
        if ref and walls:
            # Every pairing of the reference's rounds with ours: its range is the ratio's.
            pairs = [r / w for r in (ref["min"], ref["median"], ref["max"]) for w in walls]
            result["speedup"] = {
                "median": round(ref["median"] / spread(walls)["median"], 2),
                "min": round(min(pairs), 2),
                "max": round(max(pairs), 2),
            }
    return result


def _refit(runs: list[dict], epochs: int) -> list[dict]:
    """``runs`` with their estimates at ``epochs`` epochs."""
    return [
        r
        if "error" in r
        else {**r, "estimate_seconds": r["fixed_seconds"] + epochs * r["per_epoch_seconds"]}
        for r in runs
    ]


def e2e_markdown(report: dict) -> str:
    """The study end to end as Markdown."""
    r, s = report["study_end_to_end"], report["settings"]
    limit = f"--limit {s['limit']}" if s["limit"] else "all images"
    lines = [
        "# Benchmark results: the study end to end",
        "",
        *_header(report),
        f"- `cifar-gui study --weights none`, deer vs horse, {limit}, {s['epochs']} epochs a "
        f"variant: {_range(r['minutes'], '.1f', ' min')} from start to exit (report included)",
    ]
    for run in r["rounds"]:
        if "error" in run:
            lines.append(f"- round {run['round']}: failed: {run['error'][:200]}")
        else:
            parts = ", ".join(f"{v} {sec / 60:.1f}" for v, sec in run["variant_seconds"].items())
            lines.append(
                f"- round {run['round']}: {run['wall_seconds'] / 60:.1f} min ({parts} "
                f"min), peak {run['peak_rss_mib']} MiB"
            )
    if r.get("reference_minutes"):
        lines.append(
            f"- The reference's whole-run estimate of the same study, from `{r['against']}`: "
            f"{_range(r['reference_minutes'], '.1f', ' min')}: "
            f"**{_range(r.get('speedup'), '.2f', 'x')}**"
        )
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds, 2 epochs, --limit 200")
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="CIFAR-10 source")
    parser.add_argument("--epochs", type=int, help="epochs a run (default 3; end to end: 30)")
    parser.add_argument("--limit", type=int, help="N training and N test images (default 2000)")
    parser.add_argument("--all-images", action="store_true", help="no --limit")
    parser.add_argument("--rounds", type=int, help="alternating rounds (default 3; end to end 1)")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--study-epochs",
        type=int,
        default=STUDY_EPOCHS,
        help="epochs of the estimates (default: the seed's 30)",
    )
    parser.add_argument(
        "--study-end-to-end",
        action="store_true",
        help="time `cifar-gui study --weights none` instead",
    )
    parser.add_argument("--against", help="end to end: a bench JSON for the reference")
    parser.add_argument("--no-gui", action="store_true", help="skip the GUI benchmarks")
    parser.add_argument("--out", default=str(RESULTS), help="results folder")
    parser.add_argument("--tag", help="added to the result file names: bench-TAG.json")
    args = parser.parse_args(argv)
    if args.all_images:
        args.limit = None
    elif args.limit is None and not args.study_end_to_end:
        args.limit = 200 if args.quick else 2000
    if args.epochs is None:
        args.epochs = 30 if args.study_end_to_end else (2 if args.quick else 3)
    if args.rounds is None and not args.study_end_to_end:
        args.rounds = 2 if args.quick else 3
    if args.quick:
        args.no_gui, args.tag = True, args.tag or "quick"
    if not args.study_end_to_end and args.epochs < 2:
        parser.error("--epochs: at least 2 (the per-epoch cost is the gap between epochs)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not Path(args.data).exists():
        print(f"error: {args.data}: no CIFAR-10 data (give --data PATH)", file=sys.stderr)
        return 2
    args.data = str(Path(args.data).resolve())

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    load_before = [round(v, 2) for v in os.getloadavg()]
    started = time.perf_counter()
    report: dict = {
        "command": " ".join(["python bench/run.py", *(sys.argv[1:] if argv is None else argv)]),
        "settings": {
            k: getattr(args, k)
            for k in ("epochs", "limit", "rounds", "variants", "seed", "study_epochs")
        },
        "load_before": load_before,
    }
    if args.study_end_to_end:
        report["study_end_to_end"] = study_end_to_end(args, log)
        name, render = f"study-e2e{'-' + args.tag if args.tag else ''}", e2e_markdown
    else:
        report.update(bench(args, log))
        name, render = f"bench{'-' + args.tag if args.tag else ''}", markdown
    report |= {
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - started, 1),
        "load_after": [round(v, 2) for v in os.getloadavg()],
        "machine": machine(),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    text = render(report)
    (
        out / f"RESULTS-{name.removeprefix('bench-')}.md"
        if args.tag or args.study_end_to_end
        else out / "RESULTS.md"
    ).write_text(text)
    print(text)
    return 0


def bench(args: argparse.Namespace, log) -> dict:
    """The rounds of whole runs, the floor and the GUI benchmarks: the report's figures."""
    images = image_counts(args.data, args.limit)
    log("floor: rates and layers ...")
    floor_in = [floor_inputs(args.variants)]
    spec = {
        "data": args.data,
        "epochs": args.epochs,
        "limit": args.limit,
        "seed": args.seed,
        "study_epochs": args.study_epochs,
    }
    if "finetune" in args.variants:
        log("a transfer model for ours' finetune to start from (untimed) ...")
        spec["transfer_model"] = transfer_model(args.data)
    runs = []
    for i in range(1, args.rounds + 1):
        for variant in args.variants:
            for recipe in RECIPES if i % 2 else RECIPES[::-1]:
                log(f"round {i}: {variant} / {recipe}, {args.epochs} epochs ...")
                run = whole_run(variant, recipe, {**spec, "round": i})
                log(
                    f"  {run['error']}"
                    if "error" in run
                    else f"  {run['wall_seconds']:.1f} s: {run['per_epoch_seconds']:.2f} s an "
                    f"epoch + {run['fixed_seconds']:.1f} s fixed"
                )
                runs.append(run)
    log("floor: rates again ...")
    floor_in.append(floor_inputs(args.variants))
    return {
        "images": images,
        "runs": runs,
        "comparison": compare(runs),
        "study": study(runs, args.study_epochs),
        "floor": floors(runs, floor_in, args.study_epochs, images),
        "floor_inputs": floor_in,
        "gui": {} if args.no_gui else run_gui_benchmarks(args.quick, log),
    }


if __name__ == "__main__":
    sys.exit(main())
