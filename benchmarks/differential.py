"""Differential-testing throughput and disagreements: runs a fixed set of generated graphs
(default 2,000 graphs of 5-10 operators) through each chosen backend set in the sandbox,
prints tests/s per set, and writes every flagged disagreement to a JSON file for triage.

    python benchmarks/differential.py                                  # the default sets
    python benchmarks/differential.py --sets torch_eager,tf_eager --count 500
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from fuzz.execute import CaseResult
from fuzz.runner import DEFAULT_BATCH, DifferentialRunner, InternalFailure
from fuzz.sandbox import SandboxLimits
from generators.graph_gen import GenOptions

DEFAULT_SETS = (
    "torch_eager,tf_eager",
    "torch_eager,tf_eager,onnxruntime",
    "torch_eager,torch_compile",
    "tf_eager,tf_xla",
)


def options_for(seed: int, lo: int, hi: int) -> GenOptions:
    return GenOptions(max_nodes=lo + seed % (hi - lo + 1))


def run_set(backends: list[str], args: argparse.Namespace) -> dict[str, object]:
    flagged = []
    verdicts: Counter[str] = Counter()
    if args.fresh_compile_cache:
        # Workers inherit it: compile times are measured without kernels cached by earlier runs.
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="gauntlet-inductor-")
    with DifferentialRunner(backends, workers=args.workers, limits=SandboxLimits(timeout_s=args.timeout), batch=args.batch) as runner:
        runner.start()  # probes (or loads the cached probe) before the clock starts
        start = time.perf_counter()
        per_test = []
        last = start
        for done, result in enumerate(runner.run(range(args.seed, args.seed + args.count), lambda s: options_for(s, args.min_nodes, args.max_nodes)), 1):
            if time.perf_counter() - last > 30:
                last = time.perf_counter()
                print(f"  ... {done}/{args.count} tests, {done / (last - start):.2f} tests/s, {len(flagged)} flagged", file=sys.stderr, flush=True)
            if isinstance(result, InternalFailure):
                verdicts["internal_failure"] += 1
                flagged.append({"seed": result.seed, "verdict": "internal_failure", "symptom": result.symptom,
                                "stage": result.stage, "detail": result.detail[:2000]})
                continue
            assert isinstance(result, CaseResult)
            per_test.append(sum(result.seconds.values()))
            kind = result.verdict.kind if result.verdict is not None else "no_stable_inputs"
            verdicts[kind] += 1
            if kind in ("bug", "reference_suspect"):
                assert result.verdict is not None
                flagged.append({
                    "seed": result.seed,
                    "verdict": kind,
                    "ops": list(result.ops),
                    "graph": json.loads(result.graph_json),
                    "findings": [
                        {"symptom": f.symptom, "stage": f.stage, "backends": list(f.backends), "output": f.output, "detail": f.detail}
                        for f in result.verdict.findings
                    ],
                })
        elapsed = time.perf_counter() - start
        restarts = runner.pool.restarts
    return {
        "backends": backends,
        "batch": args.batch,
        "tests": args.count,
        "seconds": round(elapsed, 2),
        "tests_per_s": round(args.count / elapsed, 2),
        "median_test_s": round(statistics.median(per_test), 4) if per_test else None,
        "verdicts": dict(verdicts),
        "worker_restarts": restarts,
        "flagged": flagged,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(DEFAULT_SETS), help="backend sets, each comma-separated")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-nodes", type=int, default=5)
    parser.add_argument("--max-nodes", type=int, default=10)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--timeout", type=float, default=120.0, help="per-stage hang timeout (s)")
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH, help="graphs compiled together by batchable (compiled) backends")
    parser.add_argument("--reuse-compile-cache", dest="fresh_compile_cache", action="store_false",
                        help="let torch.compile reuse kernels cached by earlier runs (default: a fresh cache per set)")
    parser.add_argument("--out", default="runs/differential.json")
    args = parser.parse_args()
    results = []
    for backend_set in args.sets:
        backends = [b.strip() for b in backend_set.split(",") if b.strip()]
        r = run_set(backends, args)
        results.append(r)
        flagged = len(r["flagged"])  # type: ignore[arg-type]
        print(f"{'+'.join(backends) + ' + reference':<52} batch {args.batch:<3} {r['tests_per_s']:>8} tests/s  "
              f"({args.count} graphs in {r['seconds']} s; {flagged} flagged; verdicts {r['verdicts']})", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"count": args.count, "seed": args.seed, "workers": args.workers, "sets": results}, indent=1) + "\n")
    print(f"flagged disagreements: {out}")


if __name__ == "__main__":
    main()
