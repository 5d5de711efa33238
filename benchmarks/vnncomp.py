"""VNN-COMP figures: runs the verifier on categories of ../shared/benchmarks/vnncomp with the
competition's timeouts and prints, per category: decided, correct, wrong, unknown/timeout
and the median time, against the known answers. Times include loading the model.

    python benchmarks/vnncomp.py test acasxu mnist_fc --jobs 2
    python benchmarks/vnncomp.py mnist_fc --filter 256x2 --csv /tmp/mnist.csv
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "benchmarks" / "vnncomp"
ANSWER = {"verified": "holds", "counterexample": "violated"}


def expected_answers(category: Path) -> dict[str, str]:
    path = category / "expected_results.csv"
    if not path.exists():  # test/: its README names test_sat the one violated instance
        return {"test_nano": "holds", "test_tiny": "holds", "test_small": "holds", "test_sat": "violated", "test_unsat": "holds"}
    with path.open() as f:
        return {row["instance"]: row["expected"] for row in csv.DictReader(f)}


def instance_name(category: str, onnx: str, vnnlib: str) -> str:
    net, prop = Path(onnx).stem, Path(vnnlib).stem
    return net if category == "test" else f"{net}-{prop}"


def run_one(job: tuple[str, str, str, float, int]) -> tuple[str, str, float, str]:
    category, onnx, vnnlib, timeout, threads = job
    import torch

    torch.set_num_threads(threads)
    from generators.load.onnx import load_onnx
    from verify.solve import verify_property
    from verify.vnnlib import load_vnnlib

    start = time.monotonic()
    model = load_onnx(DATA / category / onnx)
    prop = load_vnnlib(DATA / category / vnnlib)
    verdict = verify_property(model, prop, timeout - (time.monotonic() - start))
    detail = getattr(verdict, "method", "") or getattr(verdict, "reason", "")
    return instance_name(category, onnx, vnnlib), verdict.status, time.monotonic() - start, detail


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("categories", nargs="+", choices=["test", "acasxu", "mnist_fc"])
    parser.add_argument("--filter", default="", help="only instances whose files contain this text")
    parser.add_argument("--limit", type=int, default=0, help="at most this many instances per category")
    parser.add_argument("--every", type=int, default=1, help="take every n-th instance (a spread-out sample)")
    parser.add_argument("--jobs", type=int, default=2, help="instances verified in parallel")
    parser.add_argument("--timeout-scale", type=float, default=1.0)
    parser.add_argument("--csv", help="write per-instance results here")
    args = parser.parse_args(argv)
    threads = 1 if args.jobs > 1 else 2
    rows: list[tuple[str, str, str, str, float, str]] = []
    for category in args.categories:
        folder = DATA / category
        answers = expected_answers(folder)
        with (folder / "instances.csv").open() as f:
            instances = [line.strip().split(",") for line in f if line.strip()]
        instances = [i for i in instances if args.filter in i[0] + i[1]][:: args.every]
        if args.limit:
            instances = instances[: args.limit]
        jobs = [(category, o, v, float(t) * args.timeout_scale, threads) for o, v, t in instances]
        with ProcessPoolExecutor(args.jobs) as pool:
            for name, status, seconds, detail in pool.map(run_one, jobs):
                expected = answers[name]
                got = ANSWER.get(status, "unknown")
                verdict = "unknown" if got == "unknown" else ("correct" if expected in (got, "unknown") else "WRONG")
                rows.append((category, name, expected, status, seconds, detail))
                print(f"{category:9} {name:45} expected {expected:8} got {status:14} {verdict:8} {seconds:7.2f}s  {detail}", flush=True)
    print()
    print(f"{'category':10} {'instances':>9} {'decided':>8} {'correct':>8} {'wrong':>6} {'unknown':>8} {'median s':>9}")
    for category in args.categories:
        mine = [r for r in rows if r[0] == category]
        decided = [r for r in mine if r[3] in ANSWER]
        wrong = [r for r in decided if r[2] != "unknown" and ANSWER[r[3]] != r[2]]
        times = [r[4] for r in mine]
        median = statistics.median(times) if times else 0.0
        print(
            f"{category:10} {len(mine):9} {len(decided):8} {len(decided) - len(wrong):8} {len(wrong):6} "
            f"{len(mine) - len(decided):8} {median:9.2f}"
        )
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["category", "instance", "expected", "status", "seconds", "detail"])
            writer.writerows(rows)
    return 1 if any(r[2] != "unknown" and r[3] in ANSWER and ANSWER[r[3]] != r[2] for r in rows) else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
