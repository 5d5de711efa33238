"""`gauntlet infer`: collect API traces (shipped examples, active probing, or a user's own
command under instrumentation) and infer operator rules from them into corpora/rules."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from generators.errors import GauntletError

NOT_THE_APIS = ("Refused:", "Unrepresentable:")


def _progress(quiet: bool):  # type: ignore[no-untyped-def]
    return None if quiet else (lambda line: print(f"gauntlet infer: {line}", file=sys.stderr, flush=True))


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("infer", help="infer operator rules (NeuRI-style) from traces of framework API calls")
    isub = p.add_subparsers(dest="infer_command", required=True, metavar="{apis,collect,rules}")

    a = isub.add_parser("apis", help="list the APIs a framework ships examples for, and those excluded (with why)")
    a.add_argument("--framework", required=True, choices=("torch", "tensorflow"))
    a.add_argument("--json", action="store_true", help="machine-readable output")
    a.set_defaults(func=cmd_apis)

    c = isub.add_parser("collect", help="record API invocations: the framework's shipped examples plus active probing "
                        "(mutated calls), or, after --, a Python command of yours run under instrumentation")
    c.add_argument("--framework", required=True, choices=("torch", "tensorflow"))
    c.add_argument("--apis", default=None, help="comma-separated dotted API names (default: every API with examples)")
    c.add_argument("--limit", type=int, default=None, help="only the first N APIs (sorted by name)")
    c.add_argument("--probes", type=int, default=12, help="mutated calls per seed call (default 12; 0: examples only)")
    c.add_argument("--seeds", type=int, default=6, help="valid calls per API that get mutated (default 6)")
    c.add_argument("--seconds-per-api", type=float, default=20.0, help="probing budget per API (default 20)")
    c.add_argument("--workers", type=int, default=2, help="sandboxed worker processes (default 2)")
    c.add_argument("--seed", type=int, default=0, help="seed of the probing (default 0)")
    c.add_argument("--out", default=None, help="traces file, JSON Lines (default .gauntlet/traces/<framework>-<version>"
                   ".jsonl; with a command: ...-user.jsonl)")
    c.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    c.add_argument("command", nargs=argparse.REMAINDER, help="-- script.py ARGS or -- -m module ARGS: record the calls "
                   "this Python command makes instead")
    c.set_defaults(func=cmd_collect)

    r = isub.add_parser("rules", help="infer output-shape rules and input predicates per API and signature from traces")
    r.add_argument("traces", nargs="+", help="traces files (JSON Lines) from `gauntlet infer collect`")
    r.add_argument("--out", default="corpora/rules", help="rules root; files go to <root>/<framework>/<version>/ "
                   "(default corpora/rules)")
    r.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    r.add_argument("--budget", type=float, default=10.0, help="seconds of inference per API (default 10)")
    r.add_argument("--refine", type=int, default=2, help="rounds of refinement: calls generated from the rules run on "
                   "the framework and every rejected call or wrong shape is learnt from (default 2; 0: none)")
    r.add_argument("--per-op", type=int, default=6, help="calls generated per rule in each refinement round (default 6)")
    r.add_argument("--seed", type=int, default=0, help="seed of the refinement calls (default 0)")
    r.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    r.set_defaults(func=cmd_rules)


def cmd_apis(args: argparse.Namespace) -> int:
    from fuzz.rules_collect import collector

    module = collector(args.framework)
    apis, excluded = module.apis(), module.excluded()
    if args.json:
        print(json.dumps({"framework": args.framework, "version": module.version(), "apis": apis,
                          "excluded": excluded}, indent=1))
        return 0
    for api in apis:
        print(api)
    print(f"# {len(apis)} APIs with shipped examples; {len(excluded)} excluded", file=sys.stderr)
    return 0


def cmd_collect(args: argparse.Namespace) -> int:
    from fuzz.rules_collect import collect, instrument_command, print_summary

    for name in ("probes", "seeds", "workers"):
        if getattr(args, name) < (1 if name == "workers" else 0):
            raise GauntletError(f"--{name} must be {'positive' if name == 'workers' else 'non-negative'}")
    out = Path(args.out) if args.out else None
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if command:
        if args.apis or args.limit is not None:
            raise GauntletError("--apis and --limit select shipped examples; they do not apply to a command")
        summary = instrument_command(args.framework, command, out)
    else:
        from fuzz.rules_collect import collector

        apis = [a.strip() for a in args.apis.split(",") if a.strip()] if args.apis else None
        if args.limit is not None:
            if args.limit < 1:
                raise GauntletError("--limit must be positive")
            apis = (apis or collector(args.framework).apis())[: args.limit]
        summary = collect(args.framework, out, apis, probes=args.probes, seeds=args.seeds,
                          seconds_per_api=args.seconds_per_api, workers=args.workers, seed=args.seed,
                          progress=_progress(args.quiet))
    print_summary(summary)
    return 0


def refine_rules(results: dict[str, Any], traces: list[Any], first: Path, args: argparse.Namespace,
                 versions: dict[str, str], progress: Any) -> list[dict[str, Any]]:
    """Refinement rounds (see fuzz.rules_refine): `results` and `traces` are updated in place;
    the counterexamples are kept in <first traces file>-refine.jsonl."""
    from fuzz.rules_refine import check_calls, counterexample_traces, precision, sample_calls
    from generators.rules.infer import framework_of, infer_all
    from generators.rules.trace import write_traces

    rounds: list[dict[str, Any]] = []
    kept = first.with_name(first.stem + "-refine.jsonl")
    for number in range(1, args.refine + 1):
        found = []
        figures: dict[str, Any] = {"round": number}
        for framework in sorted(versions):
            rules = [r for r in results.values() if r.framework == framework]
            checked = check_calls(framework, sample_calls(rules, args.per_op, args.seed + number), args.workers, progress)
            measured = precision(checked)
            figures[framework] = {"calls": measured.calls, "precision": round(measured.precision, 4),
                                  "shape_accuracy": round(measured.shape_accuracy, 4)}
            found += counterexample_traces(checked)
        figures["counterexamples"] = len(found)
        rounds.append(figures)
        if progress:
            progress(f"refinement round {number}: {json.dumps(figures)}")
        if not found:
            break
        write_traces(kept, found, append=number > 1)
        redo = {t.invocation.api for t in found}
        traces += found
        again = infer_all([t for t in traces if t.invocation.api in redo], workers=args.workers, budget_s=args.budget,
                          versions=versions)
        for api in redo:
            results.pop(api, None)
        results.update({r.api: r for r in again if framework_of(r.api) in versions})
    return rounds


def cmd_rules(args: argparse.Namespace) -> int:
    from fuzz.rules_collect import collector
    from generators.rules.infer import framework_of, infer_all
    from generators.rules.store import rule_path, write_rules
    from generators.rules.trace import read_traces

    paths = [Path(t) for t in args.traces]
    for path in paths:
        if not path.is_file():
            raise GauntletError(f"no traces file {path}")
    if args.workers < 1 or args.budget <= 0 or args.per_op < 1:
        raise GauntletError("--workers, --budget and --per-op must be positive")
    if args.refine < 0:
        raise GauntletError("--refine must be non-negative")
    start = time.monotonic()
    # Calls the collector refused to run (too large) or could not record say nothing of the API.
    traces = [t for path in paths for t in read_traces(path) if not t.error.startswith(NOT_THE_APIS)]
    if not traces:
        raise GauntletError("the traces files hold no trace")
    frameworks_traced = sorted({framework_of(t.invocation.api) for t in traces})
    versions = {fw: collector(fw).version() for fw in frameworks_traced}
    progress = _progress(args.quiet)
    results = {r.api: r for r in infer_all(traces, workers=args.workers, budget_s=args.budget, progress=progress,
                                           versions=versions)}
    rounds = refine_rules(results, traces, paths[0], args, versions, progress)
    root = Path(args.out)
    frameworks: Counter[str] = Counter()
    signatures = 0
    for api in sorted({t.invocation.api for t in traces}):
        framework = framework_of(api)
        stale = rule_path(root, framework, versions[framework], api)
        if api not in results and stale.exists():
            stale.unlink()  # an API whose rules did not survive refinement
    for api_rules in results.values():
        write_rules(root, api_rules)
        frameworks[api_rules.framework] += 1
        signatures += len(api_rules.rules)
    apis_traced = len({t.invocation.api for t in traces})
    print(json.dumps({"traces": len(traces), "apis_traced": apis_traced, "apis_with_rules": len(results),
                      "signatures": signatures, "by_framework": dict(frameworks), "out": str(root), "refinement": rounds,
                      "seconds": round(time.monotonic() - start, 1)}, indent=1))
    return 0
