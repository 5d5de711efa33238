"""Precision of inferred rules: calls generated from every rule-backed operator (the
generator's own instantiation path, as a campaign draws them) run on the framework in
sandboxed workers; prints the accepted fraction, the shape-rule accuracy and the worst APIs.

    .venv/bin/python benchmarks/rules.py --framework torch [--rules corpora/rules/torch/2.13.0]
        [--per-op 10] [--workers 2] [--seed 1000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fuzz.rules_collect import collector  # noqa: E402
from fuzz.rules_refine import check_calls, precision, sample_calls  # noqa: E402
from generators.ops import catalog  # noqa: E402
from generators.rules.catalog import rule_catalog  # noqa: E402
from generators.rules.store import read_rules  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--framework", required=True, choices=("torch", "tensorflow"))
    parser.add_argument("--rules", default=None, help="rules directory (default corpora/rules/<framework>/<installed version>)")
    parser.add_argument("--per-op", type=int, default=10, help="calls generated per rule-backed operator (default 10)")
    parser.add_argument("--workers", type=int, default=2)
    # Refinement rounds use seeds 1, 2, ...: measure on calls they never saw.
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--json", default=None, help="also write the figures and per-API counts to this file")
    args = parser.parse_args()
    rules_dir = Path(args.rules) if args.rules else ROOT / "corpora" / "rules" / args.framework / collector(args.framework).version()
    t0 = time.monotonic()
    rules = [read_rules(f) for f in sorted(rules_dir.glob("*.json"))]
    sampled = sample_calls(rules, args.per_op, args.seed)
    t_gen = time.monotonic() - t0
    checked = check_calls(args.framework, sampled, args.workers)
    measured = precision(checked)
    per_api: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    errors: dict[str, str] = {}
    for c in checked:
        per_api[c.sampled.api][0] += len(c.traces)
        per_api[c.sampled.api][1] += c.accepted
        first = next((t.error for t in c.traces if not t.valid), c.died and f"worker died: {c.died}")
        if first:
            errors.setdefault(c.sampled.api, first[:110])
    campaign_ops = len(rule_catalog(rules, catalog()).ops)
    figures = {
        "framework": args.framework, "rules": str(rules_dir), "apis_with_rules": len(rules),
        "signatures": sum(len(r.rules) for r in rules), "rule_operators": measured.operators,
        "rule_operators_in_campaigns": campaign_ops, "apis_measured": measured.apis, "calls": measured.calls,
        "accepted": measured.accepted, "precision": round(measured.precision, 4),
        "shape_rule_accuracy": round(measured.shape_accuracy, 4),
        "apis_all_accepted": sum(1 for n, ok in per_api.values() if n and ok == n),
        "generation_s": round(t_gen, 1), "total_s": round(time.monotonic() - t0, 1),
    }
    print(json.dumps(figures, indent=1))
    print("worst APIs (accepted/generated, first error):")
    worst = sorted(per_api.items(), key=lambda kv: (kv[1][1] / kv[1][0] if kv[1][0] else 1.0, -kv[1][0]))[:15]
    for api, (n, ok) in worst:
        if ok < n:
            print(f"  {api:45s} {ok:3d}/{n:<3d} {errors.get(api, '')}")
    if args.json:
        Path(args.json).write_text(json.dumps({**figures, "per_api": per_api, "errors": errors}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
