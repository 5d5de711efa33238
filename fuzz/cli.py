"""The `gauntlet` command: argument handling only; the work happens in generators/ and fuzz/.

User mistakes print one clear line and exit 2; nothing heavy is imported before a
subcommand needs it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from generators.errors import GauntletError


def _csv(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def _add_generation_options(p: argparse.ArgumentParser, count: int) -> None:
    p.add_argument("--count", type=int, default=count, help=f"number of graphs (default {count})")
    p.add_argument("--max-nodes", type=int, default=10, help="operators per graph (default 10)")
    p.add_argument("--seed", type=int, default=0, help="first seed; graph i uses seed+i (default 0)")
    p.add_argument("--ops", type=_csv, default=None, help="comma-separated operator allow-list")
    p.add_argument("--exclude-ops", type=_csv, default=(), help="comma-separated operators to leave out")
    p.add_argument("--dtypes", type=_csv, default=None, help="comma-separated dtypes (default: a common mix)")
    p.add_argument("--max-elements", type=int, default=4096, help="element limit per tensor (default 4096)")


def _options(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from generators.dtypes import DType
    from generators.graph_gen import DEFAULT_DTYPES, GenOptions
    from generators.instantiate import Limits

    if args.count < 1 or args.max_nodes < 1 or args.max_elements < 1:
        raise GauntletError("--count, --max-nodes and --max-elements must be positive")
    dtypes = DEFAULT_DTYPES if args.dtypes is None else tuple(DType.parse(d) for d in args.dtypes)
    return GenOptions(
        max_nodes=args.max_nodes,
        ops=args.ops,
        exclude_ops=args.exclude_ops,
        dtypes=dtypes,
        limits=Limits(max_elements=args.max_elements),
    )


def cmd_ops(args: argparse.Namespace) -> int:
    from generators.ops import catalog
    from generators.spec import Missing

    rows: list[dict[str, Any]] = []
    for name, spec in sorted(catalog().items()):
        support = {
            fw: ("yes" if not isinstance(spec.lowering(fw), Missing) else f"no: {spec.lowering(fw).reason}")  # type: ignore[union-attr]
            for fw in ("torch", "tensorflow", "numpy")
        }
        rows.append({
            "name": name,
            "dtypes": sorted(d.value for d in spec.dtypes),
            "excluded_dtypes": {d.value: why for d, why in spec.excluded_dtypes.items()},
            "support": support,
            "attributes": sorted(spec.attrs),
            "doc": spec.doc,
        })
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        fw = " ".join(f"{k}={'yes' if v == 'yes' else 'NO'}" for k, v in r["support"].items())
        print(f"{r['name']:<22} {fw:<36} {','.join(r['dtypes'])}")
    print(f"{len(rows)} operators")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    import numpy as np

    from generators.graph_gen import GraphGenerator
    from generators.ops import catalog

    cat = catalog()
    generator = GraphGenerator(cat, _options(args))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for s in range(args.seed, args.seed + args.count):
        graph = generator.generate(s)
        stem = f"graph_{s:06d}"
        (out / f"{stem}.json").write_text(graph.to_json() + "\n")
        if args.format == "py":
            from generators.materialize.script import npy_array, write_script
            from generators.values import make_feed

            feed = make_feed(graph, np.random.default_rng(s), cat)
            if feed is None:
                print(f"seed {s}: no inputs keep the reference finite and stable; wrote the graph only", file=sys.stderr)
                continue
            files = {i: f"{stem}_p{i}.npy" for i in range(len(feed.arrays))}
            for i, array in enumerate(feed.arrays):
                np.save(out / files[i], npy_array(array), allow_pickle=False)
            for fw, suffix in (("torch", "torch"), ("tensorflow", "tf")):
                text = write_script(graph, fw, cat, files, title=f"Gauntlet graph seed {s}")  # type: ignore[arg-type]
                (out / f"{stem}_{suffix}.py").write_text(text)
    print(f"wrote {args.count} graph(s) to {out}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from generators.ir import graph_from_json, validate

    for path in args.files:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise GauntletError(f"{path}: {exc.strerror}") from None
        graph = graph_from_json(text, where=path)
        validate(graph)
        print(f"{path}: ok ({len(graph.nodes)} nodes)")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from fuzz.batch import run_batch
    from generators.ops import catalog

    frameworks = args.frameworks
    unknown = set(frameworks) - {"torch", "tensorflow"}
    if unknown:
        raise GauntletError(f"unknown framework(s) {', '.join(sorted(unknown))}; use torch,tensorflow")
    out = Path(args.out)
    print(f"running {args.count} graph(s) of {args.max_nodes} operators on {', '.join(frameworks)} (eager)")
    s = run_batch(args.count, args.seed, _options(args), catalog(), out, frameworks,
                  progress=lambda line: print(line, flush=True))
    print(f"\ngraphs: {s.graphs}  passed: {s.passed}  no stable inputs: {s.skipped_no_values}  "
          f"operators covered: {s.ops_covered}")
    print(f"generation: {s.graphs / max(s.generation_s, 1e-9):.0f} graphs/s; total {s.total_s:.1f}s")
    for key, n in sorted(s.errors.items()):
        print(f"  error     {key}: {n}")
    for key, n in sorted(s.mismatches.items()):
        print(f"  mismatch  {key}: {n} (unconfirmed: no stability check yet)")
    print(f"report: {out / 'summary.json'}" + (f"  ({len(s.saved_cases)} case(s) under {out / 'cases'})" if s.saved_cases else ""))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gauntlet", description="Fuzz and test deep-learning libraries and models.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ops", help="list the operator catalog and each operator's framework support")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_ops)

    p = sub.add_parser("generate", help="write generated graphs (JSON, or JSON + standalone scripts)")
    _add_generation_options(p, count=10)
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--format", choices=("json", "py"), default="json",
                   help="json: graphs only; py: also inputs and standalone torch/tf scripts")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("validate", help="check graph JSON files against the operator specs")
    p.add_argument("files", nargs="+")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("run", help="generate graphs and run them on torch and tf eager against the reference")
    _add_generation_options(p, count=100)
    p.add_argument("--out", default="runs/latest", help="output directory (default runs/latest)")
    p.add_argument("--frameworks", type=_csv, default=("torch", "tensorflow"), help="torch,tensorflow")
    p.set_defaults(func=cmd_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except GauntletError as exc:
        print(f"gauntlet: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gauntlet: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
