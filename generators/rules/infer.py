"""Rule inference: traces of one API, grouped by signature, become SignatureRules (output
shapes from generators.rules.shapes, requires from generators.rules.predicates, dtypes,
ranges); `infer_all` runs it per API in spawned worker processes under a time budget.
Imports no framework (versions come from package metadata)."""

from __future__ import annotations

import concurrent.futures
import importlib.metadata
import multiprocessing
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from generators.rules.expr import Expr
from generators.rules.predicates import infer_requires
from generators.rules.shapes import SynthesisLimits, synthesize
from generators.rules.store import ApiRules, SignatureRule, SlotRule
from generators.rules.trace import Arg, Invocation, Trace, symbols

# Distributions whose installed version names a framework's rules directory.
_DISTRIBUTIONS = {"torch": ("torch",), "tensorflow": ("tensorflow", "tensorflow-cpu", "tf-nightly")}


@dataclass
class ApiInference:
    """What inference made of one API: its rules (None when no signature got one), why each
    other signature got none, and notes on the ones that did."""

    api: str
    rules: ApiRules | None
    skipped: dict[str, str] = field(default_factory=dict)  # signature -> reason
    notes: dict[str, list[str]] = field(default_factory=dict)  # signature -> remarks
    seconds: float = 0.0


def framework_of(api: str) -> str:
    head = api.split(".", 1)[0]
    return "tensorflow" if head in ("tf", "tensorflow") else head


def installed_version(framework: str) -> str:
    """The framework's installed version from package metadata (no import), or "unknown"."""
    for dist in _DISTRIBUTIONS.get(framework, (framework,)):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "unknown"


def _slot(arg: Arg) -> SlotRule:
    if arg.kind == "tensor":
        return SlotRule("tensor", rank=arg.rank)
    if arg.kind == "ints":
        return SlotRule("ints", length=len(arg.value or ()))  # type: ignore[arg-type]
    if arg.kind in ("str", "bool", "dtype", "none"):
        return SlotRule(arg.kind, value=arg.value)  # type: ignore[arg-type]
    return SlotRule(arg.kind)


def _structure(trace: Trace) -> tuple[int, ...]:
    """The ranks of a call's tensor outputs: what one rule's output list fixes."""
    return tuple(o.rank for o in trace.outputs if o.kind == "tensor")


def _matrix(names: Sequence[str], envs: Sequence[Mapping[str, int]]) -> np.ndarray:
    return np.array([[env[n] for env in envs] for n in names], dtype=np.int64).reshape(len(names), len(envs))


def _fits(expr: Expr, envs: Sequence[Mapping[str, int]], values: Sequence[int]) -> bool:
    divisors = expr.divisors()
    for env, value in zip(envs, values):
        if any(d.evaluate(env) <= 0 for d in divisors) or expr.evaluate(env) != value:
            return False
    return True


def _output_dtype(invocations: Sequence[Invocation], dtypes: Sequence[str]) -> str | None:
    """The first tensor argument whose dtype the output always has, else the output's one
    fixed dtype name, else None."""
    prefixes = [p for p, _ in invocations[0].tensors()]
    for prefix in prefixes:
        if all(dict(inv.tensors()).get(prefix, Arg("none")).dtype == d for inv, d in zip(invocations, dtypes)):
            return prefix
    return dtypes[0] if len(set(dtypes)) == 1 else None


def infer_signature(signature: str, valid: Sequence[Trace], invalid: Sequence[Trace], deadline: float,
                    limits: SynthesisLimits | None = None) -> tuple[SignatureRule | None, list[str]]:
    """One signature's rule from its traces, or None; the notes say why or what was odd."""
    notes: list[str] = []
    structures = Counter(_structure(t) for t in valid)
    structure = structures.most_common(1)[0][0]
    kept = [t for t in valid if _structure(t) == structure]
    minority = [t for t in valid if _structure(t) != structure]
    if minority:
        notes.append(f"{len(minority)} valid calls with other tensor-output ranks than {list(structure)} "
                     "are treated as calls to exclude")
    if not structure:
        return None, notes + ["no tensor output"]
    names = list(symbols(kept[0].invocation))
    envs = [symbols(t.invocation) for t in kept]
    if any(set(env) != set(names) for env in envs):
        return None, notes + ["the calls do not share one symbol set"]
    outputs = [[o for o in t.outputs if o.kind == "tensor"] for t in kept]
    targets: dict[str, list[int]] = {f"o{k}_s{j}": [outs[k].shape[j] for outs in outputs]  # type: ignore[index]
                                     for k, rank in enumerate(structure) for j in range(rank)}
    # One column per distinct symbol vector; equal symbols with different outputs defeat any rule.
    columns: dict[tuple[int, ...], int] = {}
    for i, env in enumerate(envs):
        columns.setdefault(tuple(env[n] for n in names), i)
    for name, values in targets.items():
        by_key: dict[tuple[int, ...], set[int]] = {}
        for env, v in zip(envs, values):
            by_key.setdefault(tuple(env[n] for n in names), set()).add(v)
        if any(len(s) > 1 for s in by_key.values()):
            return None, notes + [f"{name} differs between calls with equal symbols (it depends on values)"]
    first = list(columns.values())
    limits = limits or SynthesisLimits()
    used = first[: limits.max_columns]
    matrix = _matrix(names, [envs[i] for i in used])
    # Synthesis gets three quarters of the time; the predicates (cheap, but z3) the rest.
    now = time.monotonic()
    synthesis = synthesize(names, matrix, {k: np.array([v[i] for i in used], dtype=np.int64)
                                           for k, v in targets.items()}, now + 0.75 * (deadline - now), limits)
    for name, reason in synthesis.missing.items():
        return None, notes + [f"{name}: {reason}"]
    exprs = synthesis.found
    all_envs = [envs[i] for i in first]
    for name, expr in exprs.items():
        if not _fits(expr, all_envs, [targets[name][i] for i in first]):
            return None, notes + [f"{name}: {expr} fits the first {len(used)} distinct calls only"]
    out_dtypes = []
    invocations = [t.invocation for t in kept]
    for k in range(len(structure)):
        dtype = _output_dtype(invocations, [str(outs[k].dtype) for outs in outputs])
        if dtype is None:
            return None, notes + [f"output {k}: its dtype follows no argument and is not fixed"]
        out_dtypes.append(dtype)
    ranges = {n: (int(min(e[n] for e in envs)), int(max(e[n] for e in envs))) for n in names}
    invalid_envs = [symbols(t.invocation) for t in list(invalid) + minority]
    invalid_envs = [e for e in invalid_envs if set(e) == set(names)]
    chosen = [exprs[f"o{k}_s{j}"] for k, rank in enumerate(structure) for j in range(rank)]
    requires = infer_requires(names, _matrix(names, all_envs), _matrix(names, invalid_envs), chosen, ranges,
                              deadline)
    if requires.timed_out:
        return None, notes + ["the time budget ran out while choosing the requires"]
    if requires.uncovered:
        notes.append(f"{requires.uncovered} invalid calls (with symbols no valid call has) are not excluded")
    if requires.indistinct:
        notes.append(f"{requires.indistinct} invalid calls share their symbols with a valid call (dtype or values)")
    floats: dict[str, tuple[float, float]] = {}
    for t in kept:
        for prefix, arg in t.invocation.named():
            if arg.kind == "float" and isinstance(arg.value, (int, float)):
                lo, hi = floats.get(prefix, (float(arg.value), float(arg.value)))
                floats[prefix] = (min(lo, float(arg.value)), max(hi, float(arg.value)))
    # Empty tensors pass checks real ones fail (a kernel that never runs accepts any dtype),
    # so dtypes come from calls whose tensors all hold elements where there are such calls.
    populated = [t for t in kept if all(0 not in (a.shape or ()) for _, a in t.invocation.tensors())] or kept
    # An invalid call identical to a valid one (shapes, dtypes, attributes) failed on its
    # values: rules over shapes cannot say when such an API accepts a call.
    valid_calls = {t.invocation for t in kept}
    value_dependent = sum(t.invocation in valid_calls for t in invalid)
    if value_dependent:
        notes.append(f"{value_dependent} invalid calls equal a valid call but for their values")
    inv = kept[0].invocation
    rule = SignatureRule(
        signature=signature,
        args=tuple(_slot(a) for a in inv.args),
        kwargs={k: _slot(a) for k, a in inv.kwargs},
        dtypes=tuple(sorted({tuple(str(a.dtype) for _, a in t.invocation.tensors()) for t in populated})),
        outputs=tuple((tuple(str(exprs[f"o{k}_s{j}"]) for j in range(rank)), out_dtypes[k])
                      for k, rank in enumerate(structure)),
        requires=tuple(str(a) for a in requires.atoms),
        ranges=ranges,
        floats=floats,
        traces={"valid": len(valid), "invalid": len(invalid), **({"value_dependent": value_dependent} if value_dependent else {})},
    )
    return rule, notes


def analyze_api(api: str, traces: Sequence[Trace], budget_s: float = 10.0, version: str | None = None,
                limits: SynthesisLimits | None = None) -> ApiInference:
    """infer_api with its diagnostics. The budget is shared by the signatures (most valid
    calls first; what one leaves unused goes to the next)."""
    start = time.monotonic()
    end = start + budget_s
    traces = [t for t in traces if t.invocation.api == api]
    groups: dict[str, tuple[list[Trace], list[Trace]]] = {}
    for t in traces:
        groups.setdefault(t.invocation.signature(), ([], []))[0 if t.valid else 1].append(t)
    result = ApiInference(api, None)
    order = sorted(groups, key=lambda s: (-len(groups[s][0]), s))
    rules: list[SignatureRule] = []
    for n, signature in enumerate(order):
        valid, invalid = groups[signature]
        if not valid:
            result.skipped[signature] = "no valid call"
            continue
        now = time.monotonic()
        if now >= end:
            result.skipped[signature] = "the time budget ran out before this signature"
            continue
        deadline = now + (end - now) / sum(1 for s in order[n:] if groups[s][0])
        rule, notes = infer_signature(signature, valid, invalid, deadline, limits)
        if rule is None:
            result.skipped[signature] = notes[-1]
            notes = notes[:-1]
        else:
            rules.append(rule)
        if notes:
            result.notes[signature] = notes
    if rules:
        framework = framework_of(api)
        provenance = Counter(t.source.split(":", 1)[0] or "unknown" for t in traces)
        result.rules = ApiRules(framework, version or installed_version(framework), api, dict(provenance),
                                tuple(sorted(rules, key=lambda r: r.signature)))
    result.seconds = time.monotonic() - start
    return result


def infer_api(api: str, traces: Sequence[Trace], budget_s: float = 10.0, version: str | None = None) -> ApiRules | None:
    """The rules of one API from its traces (others are ignored), or None when no signature
    has one; see analyze_api for the reasons."""
    return analyze_api(api, traces, budget_s, version).rules


def _job(api: str, traces: list[Trace], budget_s: float, version: str | None) -> ApiInference:
    return analyze_api(api, traces, budget_s, version)


def infer_all(traces: Iterable[Trace], workers: int, budget_s: float, progress: Callable[[str], None] | None = None,
              versions: Mapping[str, str] | None = None,
              diagnostics: dict[str, ApiInference] | None = None) -> list[ApiRules]:
    """Rules of every traced API, sorted by API, inferred in `workers` spawned processes
    (inline for one worker). Each API's budget is enforced inside its inference (deadline
    checks between vectorized blocks, a timeout on every z3 check). `versions` maps a
    framework to the version its rules are filed under (default: the installed one);
    `diagnostics`, when given, receives every API's ApiInference."""
    by_api: dict[str, list[Trace]] = {}
    for t in traces:
        by_api.setdefault(t.invocation.api, []).append(t)
    versions = dict(versions or {})
    for api in by_api:
        framework = framework_of(api)
        if framework not in versions:
            versions[framework] = installed_version(framework)
    apis = sorted(by_api, key=lambda a: (-len(by_api[a]), a))  # big ones first: better packing
    results: dict[str, ApiInference] = {}

    def done(inference: ApiInference) -> None:
        results[inference.api] = inference
        if diagnostics is not None:
            diagnostics[inference.api] = inference
        if progress is not None:
            count = len(inference.rules.rules) if inference.rules else 0
            progress(f"{len(results)}/{len(apis)} {inference.api}: {count} signature rules, "
                     f"{len(inference.skipped)} without ({inference.seconds:.1f}s)")

    if workers <= 1:
        for api in apis:
            done(analyze_api(api, by_api[api], budget_s, versions[framework_of(api)]))
    else:
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = [pool.submit(_job, api, by_api[api], budget_s, versions[framework_of(api)]) for api in apis]
            for future in concurrent.futures.as_completed(futures):
                done(future.result())
    return [results[a].rules for a in sorted(results) if results[a].rules is not None]  # type: ignore[misc]
