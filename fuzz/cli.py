"""The `gauntlet` command: argument handling only; the work happens in generators/ and fuzz/.

User mistakes print one clear line and exit 2; nothing heavy is imported before a
subcommand needs it.
"""

from __future__ import annotations

import argparse
import json
import os
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
    from generators.rules.catalog import catalog_for
    from generators.spec import Missing

    rows: list[dict[str, Any]] = []
    for name, spec in sorted(catalog_for(args.rules or "").items()):
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
        if args.format == "onnx":
            _write_onnx(out, stem, graph, s, cat)
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


def _write_onnx(out: Path, stem: str, graph, seed: int, cat) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    from generators.values import make_feed

    try:
        from generators.materialize.onnx import to_onnx
    except ImportError:
        raise GauntletError("--format onnx needs the onnx package (pip install 'gauntlet[onnx]')") from None
    feed = make_feed(graph, np.random.default_rng(seed), cat)
    if feed is None:
        print(f"seed {seed}: no inputs keep the reference finite and stable; wrote the graph only", file=sys.stderr)
        return
    try:
        model = to_onnx(graph, feed.weights(graph), cat)
    except NotImplementedError as exc:
        print(f"seed {seed}: {exc}; wrote the graph only", file=sys.stderr)
        return
    (out / f"{stem}.onnx").write_bytes(model.SerializeToString())
    for i in graph.input_indices:
        np.save(out / f"{stem}_in{i}.npy", feed.arrays[i], allow_pickle=False)


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


def _limits(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from fuzz.sandbox import SandboxLimits

    workers = getattr(args, "workers", 1)
    if (workers is not None and workers < 1) or args.timeout <= 0 or args.memory_mb < 64 or args.batch < 1:
        raise GauntletError("--workers and --batch must be >= 1, --timeout > 0 and --memory-mb >= 64")
    return SandboxLimits(timeout_s=args.timeout, memory_mb=args.memory_mb)


def cmd_run(args: argparse.Namespace) -> int:
    from fuzz.batch import describe, run_batch
    from generators.ops import catalog

    out = Path(args.out)
    limits = _limits(args)
    options = _options(args)
    print(f"running {args.count} test(s) of {args.max_nodes} operators on {', '.join(args.backends)} "
          f"against the float64 reference, {args.workers} worker(s)", flush=True)
    summary = run_batch(args.count, args.seed, options, catalog(), out, args.backends, args.workers, limits,
                        progress=lambda line: print(line, flush=True), batch=args.batch)
    print()
    for line in describe(summary):
        print(line)
    cases = f"  ({len(summary.cases)} case(s) under {out / 'cases'})" if summary.cases else ""
    print(f"report: {out / 'summary.json'}{cases}")
    return 0


def parse_duration(text: str) -> float:
    """Seconds from "90", "90s", "30m", "2h", "1h30m" or "1d"."""
    import re

    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    parts = re.findall(r"(\d+(?:\.\d+)?)([smhd]?)", text.strip().lower())
    if not parts or "".join(n + u for n, u in parts) != text.strip().lower().replace(" ", ""):
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (examples: 90s, 30m, 2h, 1h30m)")
    seconds = sum(float(n) * units[u or "s"] for n, u in parts)
    if seconds <= 0:
        raise argparse.ArgumentTypeError("a duration must be positive")
    return seconds


def cmd_fuzz(args: argparse.Namespace) -> int:
    from fuzz.backends import CPU_DEFAULT, RULE_BACKENDS
    from fuzz.campaign import Campaign, CampaignConfig, open_campaign
    from fuzz.progress import display_for
    from generators.rules.catalog import catalog_for, rules_framework

    out = Path(args.out)
    if args.workers is not None and args.workers < 1:
        raise GauntletError("--workers must be >= 1")
    if args.max_tests is not None and args.max_tests < 1:
        raise GauntletError("--max-tests must be >= 1")
    config = None
    if not args.resume:
        _limits(args)  # validates --timeout/--memory-mb/--batch
        if args.max_nodes < 1 or args.max_elements < 1:
            raise GauntletError("--max-nodes and --max-elements must be positive")
        backends = args.backends
        if backends is None:
            backends = RULE_BACKENDS[rules_framework(args.rules)] if args.rules else CPU_DEFAULT
        config = CampaignConfig(
            backends=tuple(backends), workers=args.workers or os.cpu_count() or 1, seed=args.seed,
            max_nodes=args.max_nodes, ops=args.ops, exclude_ops=tuple(args.exclude_ops), dtypes=args.dtypes,
            max_elements=args.max_elements, batch=args.batch, timeout_s=args.timeout, memory_mb=args.memory_mb,
            reduce=not args.no_reduce, reduce_seconds=args.reduce_time, time_s=args.time,
            max_tests=args.max_tests, ray=args.ray, coverage=args.coverage,
            rules=str(Path(args.rules).resolve()) if args.rules else "",
        )
        config.options()  # unknown dtypes are user errors: report them before starting workers
        from generators.graph_gen import usable_ops

        usable_ops(catalog_for(config.rules), config.options())
    overrides = {"time_s": args.time, "max_tests": args.max_tests, "workers": args.workers, "ray": args.ray}
    store, config = open_campaign(out, config, args.resume, overrides)
    cat = catalog_for(config.rules)
    command = "gauntlet " + " ".join(sys.argv[1:]) if sys.argv[0].endswith("gauntlet") else "gauntlet fuzz"
    with store:
        result = Campaign(store, config, cat, display_for(args.quiet), command=command).run()
    print(f"{result.status}: {result.tests} tests in total ({result.tests_this_session} this session), "
          f"{result.unique_bugs} unique bug(s)")
    print(f"report: {result.report_html}  (data: {result.report_json})")
    return 130 if result.status == "interrupted" else 0


def cmd_replay(args: argparse.Namespace) -> int:
    from fuzz.replay import replay

    results = replay(Path(args.path), workers=1, limits=_limits(args), progress=lambda line: print(line, flush=True))
    for r in results:
        print(f"{r.label}: {'REPRODUCES' if r.reproduces else 'does not reproduce'} - {r.detail}  ({r.directory})")
    still = sum(r.reproduces for r in results)
    print(f"{still} of {len(results)} bug(s) reproduce")
    return 1 if args.exit_status and still else 0


def cmd_reduce(args: argparse.Namespace) -> int:
    from fuzz.replay import reduce_again
    from generators.ops import catalog

    before, after = reduce_again(Path(args.bug_dir), catalog(), max_checks=args.max_checks, seconds=args.time,
                                 limits=_limits(args), progress=lambda line: print(line, flush=True))
    print(f"{args.bug_dir}: {before} -> {after} operator(s); files rewritten")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from fuzz.report import write_report
    from fuzz.store import CampaignStore
    from generators.rules.catalog import catalog_for

    directory = Path(args.campaign_dir)
    with CampaignStore(directory, create=False) as store:
        sessions = store.sessions()
        status = sessions[-1][3] if sessions else "finished"
        rules = str((store.get_meta("config") or {}).get("rules", ""))
        json_path, html_path = write_report(directory, store, catalog_for(rules), status)
    print(f"report: {html_path}  (data: {json_path})")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    from fuzz.replay import promote

    target = promote(Path(args.bug_dir), Path(args.corpus), confirm=not args.no_confirm, limits=_limits(args),
                     progress=lambda line: print(line, flush=True), upstream=args.upstream)
    print(f"promoted to {target}")
    return 0


def _add_sandbox_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--timeout", type=float, default=120.0, help="seconds without progress before a test counts as a hang (default 120)")
    p.add_argument("--memory-mb", type=int, default=4096, help="memory budget per worker beyond its startup (default 4096)")
    # fuzz.runner.DEFAULT_BATCH, not imported here: it loads NumPy and the generators.
    p.add_argument("--batch", type=int, default=32,
                   help="graphs that compiled backends (torch_compile, tf_xla) build together in one compilation (default 32; 1 = off)")


def cmd_backends(args: argparse.Namespace) -> int:
    from fuzz.backends import BUILTIN, known, load

    rows = []
    for name, target in sorted(known().items()):
        backend = load(name)
        available = backend.available()
        rows.append({
            "name": name,
            "source": "built-in" if name in BUILTIN else f"entry point {target}",
            "available": available,
            "version": backend.version() if available else None,
            "lowering": backend.lowering,
        })
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        state = r["version"] if r["available"] else "not available on this machine"
        print(f"{r['name']:<20} {r['lowering']:<11} {state}  ({r['source']})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from fuzz.backends import CPU_DEFAULT  # imports no framework

    parser = argparse.ArgumentParser(prog="gauntlet", description="Fuzz and test deep-learning libraries and models.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ops", help="list the operator catalog and each operator's framework support")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--rules", default=None, metavar="DIR", help="also list the rule-backed operators of a rules "
                   "directory (e.g. corpora/rules/torch/2.13.0)")
    p.set_defaults(func=cmd_ops)

    p = sub.add_parser("generate", help="write generated graphs (JSON, or JSON + standalone scripts)")
    _add_generation_options(p, count=10)
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--format", choices=("json", "py", "onnx"), default="json",
                   help="json: graphs only; py: also inputs and standalone torch/tf scripts; onnx: also an ONNX model "
                   "and its inputs")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("validate", help="check graph JSON files against the operator specs")
    p.add_argument("files", nargs="+")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("run", help="generate graphs and test them differentially on backends, in sandboxed workers")
    _add_generation_options(p, count=100)
    p.add_argument("--out", default="runs/latest", help="output directory (default runs/latest)")
    p.add_argument("--backends", type=_csv, default=CPU_DEFAULT,
                   help=f"comma-separated backend names, module:Class or file.py:Class (default {','.join(CPU_DEFAULT)}; "
                   "see `gauntlet backends`)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="sandbox worker processes (default: the cores)")
    _add_sandbox_options(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("fuzz", help="run a fuzz campaign: differential tests until the budget is spent, bugs deduplicated, "
                       "reduced and written with reproducers; resumable")
    p.add_argument("--out", required=True, help="campaign directory (database, bugs/, report.json, report.html)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--time", type=parse_duration, default=None, help="time budget of the campaign, e.g. 90s, 30m, 2h")
    budget.add_argument("--max-tests", type=int, default=None, help="number of tests in the campaign")
    p.add_argument("--backends", type=_csv, default=None,
                   help=f"comma-separated backends (default {','.join(CPU_DEFAULT)}; with --rules, that framework's "
                   "eager and compiled CPU backends; see `gauntlet backends`)")
    p.add_argument("--max-nodes", type=int, default=10, help="operators per graph (default 10)")
    p.add_argument("--seed", type=int, default=0, help="first seed; test i uses seed+i (default 0)")
    p.add_argument("--ops", type=_csv, default=None, help="comma-separated operator allow-list")
    p.add_argument("--exclude-ops", type=_csv, default=(), help="comma-separated operators to leave out")
    p.add_argument("--dtypes", type=_csv, default=None, help="comma-separated dtypes (default: a common mix)")
    p.add_argument("--max-elements", type=int, default=4096, help="element limit per tensor (default 4096)")
    p.add_argument("--workers", type=int, default=None, help="worker processes or Ray actors (default: the cores)")
    p.add_argument("--resume", action="store_true", help="continue the campaign in --out (its stored settings; --time, "
                   "--max-tests, --workers and --ray may be given anew)")
    p.add_argument("--ray", default=None, metavar="ADDRESS|auto|local",
                   help="run the workers as Ray actors on this cluster (auto: the running cluster; local: a private instance)")
    p.add_argument("--coverage", nargs="?", const="steer", default="", choices=("steer", "measure"),
                   help="measure Python line coverage of the frameworks' own code (dynamo, inductor, fx, tf's Python "
                   "layers) and steer operator choice toward new coverage; `--coverage measure` only measures")
    p.add_argument("--rules", default=None, metavar="DIR",
                   help="add the rule-backed operators inferred for one framework (a directory such as "
                   "corpora/rules/torch/2.13.0); graphs then use that framework's backends only")
    p.add_argument("--quiet", action="store_true", help="plain progress lines every 30 s instead of a live display")
    p.add_argument("--no-reduce", action="store_true", help="report bugs with their original graphs (no reduction)")
    p.add_argument("--reduce-time", type=parse_duration, default=120.0, help="time limit per bug reduction (default 120s)")
    _add_sandbox_options(p)
    p.set_defaults(func=cmd_fuzz)

    p = sub.add_parser("replay", help="re-run a bug directory (or every bug of a campaign) and say whether it reproduces")
    p.add_argument("path", help="a bug directory (bugs/B0001) or a campaign directory")
    p.add_argument("--exit-status", action="store_true", help="exit 1 when any bug reproduces")
    _add_sandbox_options(p)
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("reduce", help="reduce a bug directory further and rewrite its reproducer")
    p.add_argument("bug_dir")
    p.add_argument("--max-checks", type=int, default=300, help="re-runs allowed (default 300)")
    p.add_argument("--time", type=parse_duration, default=600.0, help="time limit (default 10m)")
    _add_sandbox_options(p)
    p.set_defaults(func=cmd_reduce)

    p = sub.add_parser("report", help="(re)write report.json and report.html of a campaign directory")
    p.add_argument("campaign_dir")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("promote", help="copy a confirmed, reduced bug into the regression corpus")
    p.add_argument("bug_dir")
    p.add_argument("--corpus", default="corpora/regressions", help="regression corpus directory (default corpora/regressions)")
    p.add_argument("--no-confirm", action="store_true", help="do not replay the bug before promoting it")
    p.add_argument("--upstream", default=None, metavar="REF",
                   help="the upstream report (URL or text); the pytest plugin shows it as the open bug's xfail reason")
    _add_sandbox_options(p)
    p.set_defaults(func=cmd_promote)

    p = sub.add_parser("verify", help="prove or refute robustness of a model: a VNN-LIB property (--onnx/--vnnlib), or "
                       "balls and manipulations around samples (MODEL --data)")
    p.add_argument("model", nargs="?", help="an .onnx file, or file.py:factory / package.module:factory returning an "
                   "nn.Module (with --data)")
    p.add_argument("--onnx", help="the network of a VNN-COMP instance")
    p.add_argument("--vnnlib", help="the VNN-LIB property (unsafe set) to decide; prints unsat, sat, timeout or unknown")
    p.add_argument("--cex", help="with --vnnlib: write a counterexample here in the VNN-COMP format")
    p.add_argument("--timeout", type=parse_duration, default=None,
                   help="seconds for the instance (--vnnlib, default 300) or per sample (--data, default 60)")
    p.add_argument("--verbose", action="store_true", help="with --vnnlib: log the pipeline's steps on stderr")
    p.add_argument("--data", help="SAMPLES.npz with x (and optionally y labels) to check one by one")
    p.add_argument("--eps", type=float, default=None, help="radius of the ball around each sample")
    p.add_argument("--norm", choices=("linf", "l2"), default="linf", help="ball norm (default linf)")
    p.add_argument("--domain", default=None, help="input domain LO:HI the ball is clipped to (e.g. 0:1)")
    p.add_argument("--manipulation", action="append", default=[],
                   help="a manipulation family searched exhaustively, e.g. brightness:0.2:21 (repeatable)")
    p.add_argument("--radius", action="store_true", help="also certify the largest radius per sample (bisection)")
    p.add_argument("--out", default="verify-report", help="report directory for --data (default verify-report)")
    p.add_argument("--quiet", action="store_true", help="no per-sample progress lines")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("inputs", help="generate hard inputs for a classifier: adversarial, fooling, ambiguous, corrupted")
    _add_model_options(p)
    p.add_argument("--mix", default=None, help="category=count list, e.g. adversarial=50,fooling=10,ambiguous=20,"
                   "corrupted=50 (the default); parameters as adversarial=50:method=cw (see docs/inputs.md)")
    p.add_argument("--out", required=True, help="output directory (inputs.npz, inputs.json, a PNG grid per category)")
    p.set_defaults(func=cmd_inputs)

    p = sub.add_parser("supervise", help="score uncertainty supervisors (max softmax, entropy, DeepGini, MC dropout, "
                       "Mahalanobis, your own) as AUC-ROC against nominal data, per category of hard inputs")
    _add_model_options(p)
    p.add_argument("--train", default=None, help="TRAIN.npz (x, y): nominal training data to fit Mahalanobis on")
    p.add_argument("--inputs", default=None, help="inputs.npz written by `gauntlet inputs` (instead of --mix)")
    p.add_argument("--mix", default=None, help="generate this mix instead (default adversarial=50,fooling=10,ambiguous=20,"
                   "corrupted=50)")
    p.add_argument("--supervisors", type=_csv, default=None,
                   help="comma-separated: max_softmax, entropy, deepgini, mc_dropout, mc_dropout_entropy, mahalanobis, "
                   "or file.py:function / package.module:function (default: every built-in that applies)")
    p.add_argument("--feature-layer", default=None, help="module / layer whose input Mahalanobis uses (default: the last "
                   "linear layer's)")
    p.add_argument("--out", required=True, help="report directory (report.json, report.html, and inputs.npz when generated)")
    p.set_defaults(func=cmd_supervise)

    from fuzz.rules_command import add_parser as add_infer_parser

    add_infer_parser(sub)

    p = sub.add_parser("backends", help="list the known backends (built-in and entry points) and their availability")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_backends)
    return parser


def cmd_verify(args: argparse.Namespace) -> int:
    if args.vnnlib:
        onnx = args.onnx or args.model
        if not onnx:
            raise GauntletError("--vnnlib needs the network: --onnx NET.onnx")
        from verify.command import vnnlib_command

        return vnnlib_command(onnx, args.vnnlib, args.timeout or 300.0, args.cex, args.verbose)
    if not args.data:
        raise GauntletError("give either --onnx NET --vnnlib PROP, or MODEL --data SAMPLES.npz --eps E")
    if not args.model:
        raise GauntletError("--data needs a MODEL (an .onnx file or file.py:factory)")
    if args.eps is None:
        raise GauntletError("--data needs --eps")
    from verify.api import robustness_command

    return robustness_command(
        args.model, args.data, args.eps, args.norm, args.domain, args.manipulation, args.radius, args.out,
        args.timeout or 60.0, args.quiet,
    )


def _add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="an .onnx file, or file.py:factory / package.module:factory returning a torch.nn.Module "
                   "or a Keras model")
    p.add_argument("--data", required=True, help="SAMPLES.npz with x and integer labels y (the model's accuracy is checked "
                   "on them first)")
    p.add_argument("--shape", default=None, help="one sample's shape, e.g. 1,8,8 (default: the data's)")
    p.add_argument("--bounds", default="0:1", help="range LO:HI of every raw input value (default 0:1)")
    p.add_argument("--probabilities", action="store_true", help="the model outputs probabilities, not logits")
    p.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def cmd_inputs(args: argparse.Namespace) -> int:
    from generators.inputs.command import inputs_command

    return inputs_command(args.model, args.data, args.out, shape=args.shape, bounds=args.bounds, mix=args.mix,
                          seed=args.seed, probabilities=args.probabilities, quiet=args.quiet)


def cmd_supervise(args: argparse.Namespace) -> int:
    from generators.inputs.command import supervise_command

    return supervise_command(
        args.model, args.data, args.out, train=args.train, inputs=args.inputs, mix=args.mix,
        supervisors=args.supervisors, shape=args.shape, bounds=args.bounds, seed=args.seed,
        probabilities=args.probabilities, feature_layer=args.feature_layer, quiet=args.quiet,
    )


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
