"""Fuzz-campaign figures: throughput against the number of workers, and framework coverage
reached with and without coverage steering in equal time (run side by side). Each
campaign is a real `gauntlet fuzz` process; figures come from its report.json.

    python benchmarks/campaign.py scaling --time 60s --repeat 3
    python benchmarks/campaign.py coverage --time 5m --repeat 2
    python benchmarks/campaign.py rules --time 30m --rules corpora/rules/torch/2.13.0
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def start(out: Path, *args: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "fuzz.cli", "fuzz", "--out", str(out), "--quiet", *args]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


def report(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "report.json").read_text())
    return data


def scaling(args: argparse.Namespace, work: Path) -> None:
    """Tests/s of the same campaign with 1..N workers (one after another, so each has the
    machine); the clock starts after the workers are up and the backends probed."""
    rates: dict[int, list[float]] = {}
    for r in range(args.repeat):
        for workers in args.workers:
            out = work / f"scaling-{workers}-{r}"
            code = start(out, "--time", args.time, "--workers", str(workers), "--backends", args.backends,
                         "--seed", str(1000 * r), "--no-reduce").wait()
            rep = report(out)
            rate = rep["totals"]["tests"] / max(rep["campaign"]["elapsed_s"], 1e-9)
            rates.setdefault(workers, []).append(rate)
            print(f"  workers={workers} run {r}: {rep['totals']['tests']} tests in {rep['campaign']['elapsed_s']:.0f}s "
                  f"= {rate:.1f} tests/s (exit {code})", flush=True)
    base = statistics.median(rates[args.workers[0]])
    print(f"\nbackends {args.backends}, {args.time} per campaign, {os.cpu_count()} cores, median of {args.repeat}")
    print("workers  tests/s  speed-up")
    for workers in args.workers:
        m = statistics.median(rates[workers])
        print(f"{workers:7d}  {m:7.1f}  {m / base:6.2f}x")


def coverage(args: argparse.Namespace, work: Path) -> None:
    """Framework lines reached by a steered and a blind (measure-only) campaign of equal
    time, side by side (one worker each, so they share the machine equally)."""
    finals: dict[str, list[int]] = {"steer": [], "measure": []}
    tests: dict[str, list[int]] = {"steer": [], "measure": []}
    for r in range(args.repeat):
        procs = {}
        for mode in ("steer", "measure"):
            out = work / f"coverage-{mode}-{r}"
            procs[mode] = (out, start(out, "--time", args.time, "--workers", "1", "--backends", args.backends,
                                      "--coverage", mode, "--seed", str(1000 * r), "--no-reduce"))
        for mode, (out, proc) in procs.items():
            proc.wait()
            rep = report(out)
            lines = rep["coverage"]["lines"] if rep.get("coverage") else 0
            finals[mode].append(lines)
            tests[mode].append(rep["totals"]["tests"])
            print(f"  run {r} {mode:8s}: {lines} lines, {rep['totals']['tests']} tests, "
                  f"{rep['totals']['ops_covered']} operators", flush=True)
    print(f"\nbackends {args.backends}, {args.time} each, side by side, median of {args.repeat}")
    for mode in ("measure", "steer"):
        print(f"{'blind' if mode == 'measure' else 'steered':8s} {statistics.median(finals[mode]):9.0f} lines  "
              f"{statistics.median(tests[mode]):6.0f} tests")
    gain = statistics.median(finals["steer"]) / max(statistics.median(finals["measure"]), 1) - 1
    print(f"steering: {100 * gain:+.1f}% lines")


def exercised_apis(rep: dict[str, Any], rules: str) -> set[str]:
    """Distinct framework APIs the campaign's tests ran: a rule-backed operator's API, and
    for a hand-written operator the framework function its lowering calls (else its name)."""
    sys.path.insert(0, str(ROOT))
    from generators.rules.catalog import catalog_for
    from generators.spec import Call

    catalog = catalog_for(rules)
    apis = set()
    for row in rep["operators"]:
        if not row["tests"]:
            continue
        spec = catalog.get(row["op"])
        if "(" in row["op"]:
            apis.add(row["op"].split("(", 1)[0])
        elif spec is not None and isinstance(spec.torch, Call):
            apis.add(spec.torch.path)
        else:
            apis.add(f"torch:{row['op']}")
    return apis


def rules(args: argparse.Namespace, work: Path) -> None:
    """A campaign with rule-backed operators and a spec-only one, equal time, side by side
    (one worker each), both eager vs compiled with framework line coverage measured."""
    # Fill the probe cache first (both campaigns share the hand-written catalog's probe;
    # rule-backed operators are probed lazily), so neither clock includes probing.
    warm = start(work / "warm", "--max-tests", "1", "--workers", "1", "--backends", args.backends, "--no-reduce")
    warm.wait()
    procs = {}
    for mode, extra in (("rules", ["--rules", args.rules]), ("spec", [])):
        out = work / f"rules-{mode}"
        procs[mode] = (out, start(out, "--time", args.time, "--workers", "1", "--backends", args.backends,
                                  "--coverage", "measure", "--seed", "0", "--no-reduce", *extra))
    for mode, (out, proc) in procs.items():
        code = proc.wait()
        rep = report(out)
        apis = exercised_apis(rep, args.rules if mode == "rules" else "")
        lines = rep["coverage"]["lines"] if rep.get("coverage") else 0
        t = rep["totals"]
        print(f"{mode:6s}: {t['tests']} tests ({t['valid_pct']}% valid), {t['ops_covered']} operators, "
              f"{len(apis)} distinct APIs, {lines} framework Python lines, {t['unique_bugs']} unique bug(s) "
              f"(exit {code})", flush=True)
        packages = rep["coverage"].get("packages", {}) if rep.get("coverage") else {}
        print("        " + ", ".join(f"{p} {n}" for p, n in packages.items()), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("scaling")
    p.add_argument("--time", default="60s")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--workers", type=lambda t: [int(x) for x in t.split(",")], default=[1, 2])
    p.add_argument("--backends", default="torch_eager,tf_eager,onnxruntime")
    p = sub.add_parser("coverage")
    p.add_argument("--time", default="5m")
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--backends", default="torch_eager,torch_compile")
    p = sub.add_parser("rules")
    p.add_argument("--time", default="30m")
    p.add_argument("--rules", default="corpora/rules/torch/2.13.0")
    p.add_argument("--backends", default="torch_eager,torch_compile")
    for p in sub.choices.values():
        p.add_argument("--keep", default=None, help="keep the campaign directories here")
    args = parser.parse_args()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="gauntlet-bench-"))
    try:
        {"scaling": scaling, "coverage": coverage, "rules": rules}[args.what](args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
