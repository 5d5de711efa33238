"""Re-running recorded bugs: replay a bug directory (or every bug of a campaign) in the
sandbox and say whether it still reproduces; reduce a bug directory again; promote a
confirmed, reduced bug into corpora/regressions.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fuzz.oracle import Finding
from fuzz.runner import DifferentialRunner
from fuzz.sandbox import Died, SandboxLimits
from fuzz.triage import finding_from, load_bug_dir, matching, reproduces
from generators.errors import GauntletError
from generators.ir import Graph
from generators.spec import OpSpec

if TYPE_CHECKING:
    from fuzz.execute import CaseResult


@dataclass(frozen=True)
class Replayed:
    directory: Path
    label: str
    reproduces: bool
    detail: str


def bug_dirs(path: Path) -> list[Path]:
    """`path` itself when it is a bug directory, else every bug directory of the campaign."""
    if (path / "bug.json").is_file():
        return [path]
    found = sorted(p.parent for p in (path / "bugs").glob("*/bug.json"))
    if not found:
        raise GauntletError(f"{path}: neither a bug directory (bug.json) nor a campaign directory with bugs/*/bug.json")
    return found


def _backends(metas: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    names: list[str] = []
    for meta in metas:
        specs = meta.get("backend_specs", {})
        for b in [*meta["backends"], *([meta["witness"]] if meta.get("witness") else [])]:
            spec = specs.get(b, b)
            if spec not in names:
                names.append(spec)
    return tuple(names)


def _answer(runner: DifferentialRunner, meta: Mapping[str, Any], graph: Graph, arrays: Sequence[np.ndarray]) -> CaseResult | Died:
    from fuzz.execute import GraphJob

    finding = finding_from(meta["finding"])
    witness = meta.get("witness", "")
    backends = tuple(b for b in runner.names if b in finding.backends or b == witness)
    job = GraphJob(int(meta["seed"]), graph.to_json(), tuple(arrays), backends, runner.capability_json,
                   gradients=finding.symptom == "wrong_gradient")
    answer: CaseResult | Died = runner.pool.run([job])[0]
    return answer


def _run(runner: DifferentialRunner, meta: Mapping[str, Any], graph: Graph, arrays: Sequence[np.ndarray]) -> tuple[bool, str]:
    finding = finding_from(meta["finding"])
    answer = _answer(runner, meta, graph, arrays)
    if reproduces(answer, finding, meta.get("witness", "")):
        return True, f"{finding.symptom} on {', '.join(finding.backends)}"
    if isinstance(answer, Died):
        return False, f"a different failure: {answer.symptom} in {answer.stage}"
    if answer.verdict is None:
        return False, "the reference found the inputs unstable"
    other = "; ".join(f"{f.symptom} on {', '.join(f.backends)}" for f in answer.verdict.findings)
    return False, f"verdict {answer.verdict.kind}" + (f" ({other})" if other else "")


def replay(path: Path, workers: int = 1, limits: SandboxLimits | None = None, progress: Callable[[str], None] = print) -> list[Replayed]:
    loaded = [(d, *load_bug_dir(d)) for d in bug_dirs(path)]
    backends = _backends([meta for _, meta, _, _ in loaded])
    rules = next((meta["rules"] for _, meta, _, _ in loaded if meta.get("rules")), "")
    results = []
    with DifferentialRunner(backends, workers=workers, limits=limits, progress=progress, rules=rules) as runner:
        runner.start()
        for directory, meta, graph, arrays in loaded:
            ok, detail = _run(runner, meta, graph, arrays)
            results.append(Replayed(directory, meta.get("id", directory.name), ok, detail))
    return results


def reduce_again(directory: Path, catalog: Mapping[str, OpSpec], max_checks: int = 300, seconds: float = 600.0,
                 limits: SandboxLimits | None = None, progress: Callable[[str], None] = print) -> tuple[int, int]:
    """Reduce a bug directory's graph further (a larger budget than the campaign's) and
    rewrite its files. Returns (nodes before, nodes after)."""
    from fuzz.reduce import InputPasses, reduce
    from fuzz.store import BugRow, pack_arrays
    from fuzz.triage import dtypes_of, write_bug_dir

    meta, graph, arrays = load_bug_dir(directory)
    backends = _backends([meta])
    rules = str(meta.get("rules", ""))
    if rules:  # a campaign with rule-backed operators: their specs come from its rules directory
        from generators.rules.catalog import catalog_for

        catalog = catalog_for(rules)
    finding = finding_from(meta["finding"])
    witness = str(meta.get("witness", ""))
    # The reduced graph's own finding: its output index and numbers differ from the original's.
    seen: dict[str, Finding] = {}

    def still_fails(g: Graph, a: Sequence[np.ndarray]) -> bool:
        answer = _answer(runner, meta, g, a)
        if reproduces(answer, finding, witness):
            seen[g.digest()] = matching(answer, finding)
            return True
        return False

    with DifferentialRunner(backends, workers=1, limits=limits, progress=progress, rules=rules) as runner:
        runner.start()
        ok, detail = _run(runner, meta, graph, arrays)
        if not ok:
            raise GauntletError(f"{directory}: the bug no longer reproduces ({detail}); nothing to reduce")
        try:
            result = reduce(graph, arrays, catalog, still_fails, max_checks=max_checks, deadline_s=seconds, progress=progress)
        except InputPasses:
            raise GauntletError(f"{directory}: the bug reproduced once, then not on the next run (flaky); the "
                                "directory is left as it was") from None
        before, after = len(graph.nodes), len(result.graph.nodes)
        reduction = {"nodes_before": (meta.get("reduction") or {}).get("nodes_before", before), "nodes_after": after,
                     "checks": result.checks, "complete": result.complete}
        reduced = seen.get(result.graph.digest(), finding)
        row = BugRow(0, "", meta.get("signature"), meta["symptom"], meta["stage"], tuple(meta["backends"]), meta.get("message", ""),
                     reduced.detail, int(meta["seed"]), 0.0, 0, "reported", tuple(sorted(set(result.graph.op_names()))),
                     tuple(dtypes_of(result.graph)), directory.name, reduction, asdict(reduced), witness,
                     result.graph.to_json(), pack_arrays(result.arrays))
        label = meta.get("id", directory.name)
        campaign = Path(meta.get("campaign", directory.parent.parent))
        # Written beside the old files first and swapped in, so a failure loses nothing.
        fresh = directory.with_name(f".{directory.name}.reduced")
        shutil.rmtree(fresh, ignore_errors=True)
        try:
            write_bug_dir(fresh, row, catalog, runner.versions, campaign, runner.specs, rules)
            data = json.loads((fresh / "bug.json").read_text())
            data["id"] = label
            data["first_seen"] = meta.get("first_seen")
            (fresh / "bug.json").write_text(json.dumps(data, indent=2) + "\n")
        except BaseException:
            shutil.rmtree(fresh, ignore_errors=True)
            raise
        old = directory.with_name(f".{directory.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        directory.rename(old)
        fresh.rename(directory)
        shutil.rmtree(old, ignore_errors=True)
    return before, after


def promote(directory: Path, regressions: Path, confirm: bool = True, limits: SandboxLimits | None = None,
            progress: Callable[[str], None] = print, upstream: str | None = None) -> Path:
    """Copy a bug directory into `regressions` once it replays (the suite replays it forever).
    `upstream` (the upstream report, e.g. its URL) becomes the entry's xfail reason."""
    meta, graph, _ = load_bug_dir(directory)
    if confirm:
        replayed = replay(directory, limits=limits, progress=progress)[0]
        if not replayed.reproduces:
            raise GauntletError(f"{directory}: does not reproduce now ({replayed.detail}); only confirmed bugs are promoted")
    reduction = meta.get("reduction") or {}
    if len(graph.nodes) > 3 and not reduction.get("complete", False):
        progress(f"note: {directory.name} has {len(graph.nodes)} operators and its reduction did not complete; "
                 "`gauntlet reduce` may shrink it first")
    ops = "-".join(sorted(set(graph.op_names())))[:60]
    name = f"{meta['symptom']}-{'-'.join(meta['backends'])}-{ops}-{str(meta.get('signature') or '')[:8]}".strip("-")
    target = regressions / name
    if target.exists():
        raise GauntletError(f"{target} already exists: this bug is already in the regression corpus")
    regressions.mkdir(parents=True, exist_ok=True)
    shutil.copytree(directory, target)
    entry = json.loads((target / "bug.json").read_text())
    entry["promoted_from"] = f"{entry.pop('campaign', '')} {directory.name}".strip()  # where it was found, for people
    entry["status"] = "open"  # open: it reproduces today; set "fixed" once the framework fixes it
    if upstream:
        entry["upstream"] = upstream
    (target / "bug.json").write_text(json.dumps(entry, indent=2) + "\n")
    return target
