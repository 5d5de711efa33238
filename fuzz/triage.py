"""From a finding to a reported bug: deduplicate (before and after reduction), reduce the
graph while the same failure reproduces in the sandbox, and write the bug directory
(graph, inputs, standalone repro.py, issue.md, bug.json). Runs in the campaign driver.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fuzz.dedup import bug_key, covers, normalize_message, signature
from fuzz.execute import CaseResult, GraphJob
from fuzz.oracle import Finding, allowed_error, expectations
from fuzz.runner import DifferentialRunner, split_stage
from fuzz.sandbox import Died
from fuzz.store import BugRow, CampaignStore, unpack_arrays
from generators.errors import GauntletError
from generators.ir import Graph, graph_from_json
from generators.spec import OpSpec

CRASHES = frozenset({"segfault", "abort", "hang", "oom", "killed", "exit", "error", "crash"})


def dtypes_of(graph: Graph) -> list[str]:
    values = [p.type.dtype.value for p in graph.placeholders] + [o.dtype.value for n in graph.nodes for o in n.outputs]
    return sorted(set(values))


def finding_from(data: Mapping[str, Any]) -> Finding:
    return Finding(data["symptom"], data["stage"], tuple(data["backends"]), data.get("output"), data.get("detail", ""))


def choose_witness(result: CaseResult, finding: Finding, runner: DifferentialRunner) -> str:
    """An eager backend that ran this test correctly: reduction keeps it correct, so the
    reduced graph cannot drift into a case where the reference itself is the odd one out."""
    flagged = {b for f in (result.verdict.findings if result.verdict else ()) for b in f.backends}
    candidates = [o.backend for o in result.outcomes if o.status == "ok" and o.backend not in flagged and o.backend not in finding.backends]
    eager = [b for b in candidates if b not in runner.lazy and b not in runner.batched]
    return (eager or candidates or [""])[0]


# Garbage outputs (uninitialized memory, races) are NaN in one run and wrong numbers in the
# next: one failure for reproduction purposes.
_WRONG_VALUES = frozenset({"wrong_result", "nan_inf"})


def _same_symptom(a: str, b: str) -> bool:
    return a == b or (a in _WRONG_VALUES and b in _WRONG_VALUES)


def matching(answer: CaseResult | Died, finding: Finding) -> Finding:
    """The re-run's own finding of the same failure (its output index and numbers)."""
    if isinstance(answer, Died):
        return Finding(answer.symptom, finding.stage, finding.backends, None, answer.detail)
    assert answer.verdict is not None
    return next((f for f in answer.verdict.findings if _same_symptom(f.symptom, finding.symptom)
                 and set(f.backends) == set(finding.backends)), finding)


def reproduces(answer: CaseResult | Died, finding: Finding, witness: str) -> bool:
    """Whether a re-run shows the same failure: same symptom, stage and backend (and, for a
    rejection, the same normalized error), with the witness still agreeing."""
    if isinstance(answer, Died):
        stage, backend = split_stage(answer.stage)
        return answer.symptom == finding.symptom and backend in finding.backends and stage == finding.stage
    if answer.verdict is None:
        return False
    if witness:
        ok = any(o.backend == witness and o.status == "ok" for o in answer.outcomes)
        if not ok or any(witness in f.backends for f in answer.verdict.findings):
            return False
    for f in answer.verdict.findings:
        if _same_symptom(f.symptom, finding.symptom) and f.stage == finding.stage and set(f.backends) == set(finding.backends):
            if f.symptom != "rejection" or normalize_message(f.detail) == normalize_message(finding.detail):
                return True
    return False


@dataclass
class Triage:
    """The bug pipeline of one campaign."""

    store: CampaignStore
    runner: DifferentialRunner
    catalog: Mapping[str, OpSpec]
    reduce: bool = True
    reduce_checks: int = 150
    reduce_seconds: float = 120.0
    progress: Callable[[str], None] = lambda line: None
    _last: tuple[str, Finding] | None = None  # the finding of the last graph that reproduced

    def job(self, graph: Graph, arrays: Sequence[np.ndarray], finding: Finding, witness: str, seed: int) -> GraphJob:
        backends = tuple(b for b in self.runner.names if b in finding.backends or b == witness)
        return GraphJob(seed, graph.to_json(), tuple(arrays), backends, self.runner.capability_json,
                        gradients=finding.symptom == "wrong_gradient")

    def check(self, graph: Graph, arrays: Sequence[np.ndarray], finding: Finding, witness: str, seed: int) -> bool:
        answer = self.runner.pool.run([self.job(graph, arrays, finding, witness, seed)])[0]
        if reproduces(answer, finding, witness):
            self._last = (graph.digest(), matching(answer, finding))
            return True
        return False

    # --- new findings ----------------------------------------------------------------

    def handle(self, result: CaseResult) -> list[BugRow]:
        """Every finding of a test: counted as a duplicate of a known bug, or added (and
        reduced and written out). Returns the bugs that are new."""
        assert result.verdict is not None and result.feed is not None
        graph = graph_from_json(result.graph_json)
        dtypes = dtypes_of(graph)
        new: list[BugRow] = []
        seen_keys: set[str] = set()
        for finding in result.verdict.findings:
            key = bug_key(finding)
            if key in seen_keys:  # the same failure on two outputs of one test
                continue
            seen_keys.add(key)
            known = next((b for b in self.store.bugs() if b.key == key and covers(b.ops, b.dtypes, graph.op_names(), dtypes)), None)
            if known is not None:
                self.store.count_duplicate(known.id, result.seed)
                continue
            witness = choose_witness(result, finding, self.runner)
            bug = self.store.add_bug(key, asdict(finding), normalize_message(finding.detail), result.seed, graph.op_names(),
                                     dtypes, witness, result.graph_json, result.feed)
            self.progress(f"new bug candidate {bug.label}: {finding.symptom} on {', '.join(finding.backends)} (seed {result.seed})")
            finished = self.finish(bug)
            if finished.id == bug.id:
                new.append(finished)
        return new

    def finish(self, bug: BugRow) -> BugRow:
        """Reduce a bug (state `reducing`), deduplicate it by signature, write its directory."""
        finding = finding_from(bug.finding)
        graph = graph_from_json(bug.graph)
        arrays = unpack_arrays(bug.arrays)
        before = len(graph.nodes)
        info: dict[str, Any] = {"nodes_before": before, "nodes_after": before, "checks": 0, "complete": False, "seconds": 0.0}
        if self.reduce:
            graph, arrays, info = self._reduce(graph, arrays, finding, bug.witness, bug.first_seed)
        sig = signature(bug.key, graph.op_names())
        # The reduced graph's own numbers (count, position, values) for the report and issue.
        reduced = self._last[1] if self._last is not None and self._last[0] == graph.digest() else finding
        row = self.store.finish_bug(bug.id, sig, graph.op_names(), dtypes_of(graph), graph.to_json(), arrays, info,
                                    asdict(reduced))
        if row.id != bug.id:
            self.progress(f"{bug.label} reduced to the same bug as {row.label}: counted as a duplicate")
            return row
        self.write_dir(row)
        self.progress(f"{row.label}: {finding.symptom} on {', '.join(finding.backends)}, reduced {before} -> "
                      f"{len(graph.nodes)} operator(s) ({', '.join(sorted(set(graph.op_names())))}) -> {row.dir}")
        return row

    def _reduce(self, graph: Graph, arrays: Sequence[np.ndarray], finding: Finding, witness: str, seed: int
                ) -> tuple[Graph, tuple[np.ndarray, ...], dict[str, Any]]:
        from fuzz.reduce import InputPasses, reduce

        self._last = None
        start = time.monotonic()
        before = len(graph.nodes)
        try:
            reduction = reduce(
                graph, arrays, self.catalog, lambda g, a: self.check(g, a, finding, witness, seed),
                max_checks=self.reduce_checks, deadline_s=self.reduce_seconds, progress=lambda line: self.progress(f"  {line}"),
            )
        except InputPasses:
            # The reducer's first check: flaky, or failing only inside a batch. Kept unreduced.
            self.progress(f"  the failure did not reproduce on its own graph; kept unreduced (seed {seed})")
            return graph, tuple(arrays), {"nodes_before": before, "nodes_after": before, "checks": 1, "complete": False,
                                          "seconds": round(time.monotonic() - start, 2), "reproduced": False}
        info = {"nodes_before": before, "nodes_after": len(reduction.graph.nodes), "checks": reduction.checks,
                "complete": reduction.complete, "seconds": round(time.monotonic() - start, 2),
                "passes": {p.name: [p.tried, p.accepted] for p in reduction.passes}}
        return reduction.graph, reduction.arrays, info

    # --- bug directories ---------------------------------------------------------------

    def write_dir(self, bug: BugRow) -> Path:
        directory = self.store.directory / bug.dir
        if directory.exists():
            shutil.rmtree(directory)
        write_bug_dir(directory, bug, self.catalog, self.runner.versions, self.store.directory, self.runner.specs,
                      self.runner.rules)
        return directory


def write_bug_dir(directory: Path, bug: BugRow, catalog: Mapping[str, OpSpec], versions: Mapping[str, str], campaign: Path,
                  specs: Mapping[str, str] | None = None, rules: str = "") -> None:
    """graph.json, inputs, repro.py (standalone where the backend allows), issue.md, bug.json
    (with the rules directory of rule-backed operators, so replays load the same catalog)."""
    from fuzz import repro
    from fuzz.gradients import cotangents_for
    from fuzz.stability import reference

    finding = finding_from(bug.finding)
    graph = graph_from_json(bug.graph)
    arrays = unpack_arrays(bug.arrays)
    ref = reference(graph, arrays, catalog, bug.first_seed)
    want = expectations(graph, catalog)
    allowed = tuple(allowed_error(o, s, w) for o, s, w in zip(ref.outputs, ref.spread, want))
    case = repro.BugCase(
        graph, arrays, finding, ref.outputs, allowed, dict(versions), bug.first_seed,
        tuple(cotangents_for(graph, bug.first_seed)) if finding.symptom == "wrong_gradient" else None,
    )
    standalone = all(b in repro.standalone_backends() for b in finding.backends)
    if standalone:
        repro.write_bug_dir(directory, case, catalog)
    else:
        _write_replay_only(directory, graph, arrays)
    meta = {
        "id": bug.label, "signature": bug.signature, "symptom": finding.symptom, "stage": finding.stage,
        "backends": list(finding.backends), "witness": bug.witness,
        "backend_specs": {b: (specs or {}).get(b, b) for b in [*finding.backends, *([bug.witness] if bug.witness else [])]}, "ops": list(bug.ops), "dtypes": list(bug.dtypes),
        "seed": bug.first_seed, "versions": dict(versions), "finding": bug.finding, "message": bug.message,
        "reduction": bug.reduction, "standalone_repro": standalone, "campaign": str(campaign),
        "first_seen": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(bug.first_seen)),
    }
    if rules:
        meta["rules"] = rules
    (directory / "bug.json").write_text(json.dumps(meta, indent=2) + "\n")


def _write_replay_only(directory: Path, graph: Graph, arrays: Sequence[np.ndarray]) -> None:
    """A backend Gauntlet cannot write standalone code for (a third-party backend): the
    graph, its inputs, and a repro.py that replays the bug through Gauntlet."""
    from fuzz.repro import write_inputs

    directory.mkdir(parents=True, exist_ok=True)
    write_inputs(directory, graph, arrays)
    (directory / "repro.py").write_text(
        '"""Replays this bug through Gauntlet (the backend is not one Gauntlet can write\n'
        'standalone code for). Exit status 1: still reproduces; 0: fixed."""\n\n'
        "import os\nimport sys\n\nfrom fuzz.cli import main\n\n"
        "sys.exit(main(['replay', os.path.dirname(os.path.abspath(__file__)), '--exit-status']))\n"
    )


def load_bug_dir(directory: Path) -> tuple[dict[str, Any], Graph, tuple[np.ndarray, ...]]:
    """bug.json, the graph and its arrays (bfloat16 placeholders cast back)."""
    meta_path = directory / "bug.json"
    if not meta_path.is_file():
        raise GauntletError(f"{directory} is not a bug directory (no bug.json)")
    try:
        meta = json.loads(meta_path.read_text())
        graph = graph_from_json((directory / "graph.json").read_text(), where=str(directory / "graph.json"))
        arrays = tuple(
            np.load(directory / f"p{i}.npy", allow_pickle=False).astype(p.type.dtype.numpy())
            for i, p in enumerate(graph.placeholders)
        )
    except (OSError, ValueError) as exc:
        raise GauntletError(f"{directory}: unreadable bug directory ({exc})") from None
    return meta, graph, arrays
