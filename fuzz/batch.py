"""A batch run: a fixed number of generated tests through the differential runner (sandboxed
backends, the judge), a summary, and a case directory per bug candidate with standalone
reproducers. The precursor of fuzz campaigns (no dedup, reduction or resume yet).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from fuzz.execute import CaseResult
from fuzz.runner import DEFAULT_BATCH, DifferentialRunner, InternalFailure
from fuzz.sandbox import SandboxLimits
from generators.graph_gen import GenOptions
from generators.ir import Graph, graph_from_json
from generators.spec import OpSpec


@dataclass
class BatchSummary:
    tests: int = 0
    backends: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    verdicts: dict[str, int] = field(default_factory=dict)  # pass, bug, rejected, ...
    findings: dict[str, int] = field(default_factory=dict)  # "symptom: backend" -> count
    unsupported: dict[str, int] = field(default_factory=dict)  # backend -> tests it sat out
    internal_failures: int = 0
    ops_covered: int = 0
    tests_per_s: float = 0.0
    total_s: float = 0.0
    cases: list[str] = field(default_factory=list)


def save_case(out: Path, result: CaseResult, catalog: Mapping[str, OpSpec]) -> Path:
    """A case directory: graph.json, inputs as .npy, standalone torch/tf scripts, the ONNX
    model when every operator has an ONNX lowering, and case.json (verdict, outcomes)."""
    from generators.materialize.script import npy_array, write_script

    graph = graph_from_json(result.graph_json)
    case = out / "cases" / f"{result.seed:06d}-{graph.digest()[:12]}"
    case.mkdir(parents=True, exist_ok=True)
    (case / "graph.json").write_text(result.graph_json + "\n")
    files: dict[int, str] = {}
    for i, array in enumerate(result.feed or ()):
        files[i] = f"p{i}.npy"
        np.save(case / files[i], npy_array(array), allow_pickle=False)
    if result.feed is not None:
        for fw, name in (("torch", "repro_torch.py"), ("tensorflow", "repro_tf.py")):
            (case / name).write_text(write_script(graph, fw, catalog, files, title=f"Gauntlet case seed {result.seed}"))  # type: ignore[arg-type]
        _save_onnx(case, graph, result.feed, catalog)
    assert result.verdict is not None
    (case / "case.json").write_text(json.dumps({
        "seed": result.seed,
        "ops": list(result.ops),
        "verdict": result.verdict.kind,
        "findings": [asdict(f) for f in result.verdict.findings],
        "outcomes": [
            {"backend": o.backend, "status": o.status, "stage": o.stage, "symptom": o.symptom, "message": o.message}
            for o in result.outcomes
        ],
    }, indent=2) + "\n")
    return case


def _save_onnx(case: Path, graph: Graph, feed: Sequence[np.ndarray], catalog: Mapping[str, OpSpec]) -> None:
    try:
        from generators.materialize.onnx import to_onnx
    except ImportError:  # onnx is optional
        return
    weights = {i: feed[i] for i in graph.weight_indices}
    try:
        model = to_onnx(graph, weights, catalog)
    except NotImplementedError:
        return
    (case / "model.onnx").write_bytes(model.SerializeToString())


def run_batch(
    count: int,
    seed: int,
    options: GenOptions,
    catalog: Mapping[str, OpSpec],
    out: Path,
    backends: Sequence[str],
    workers: int,
    limits: SandboxLimits,
    progress: Callable[[str], None] = print,
    batch: int = DEFAULT_BATCH,
) -> BatchSummary:
    summary = BatchSummary(backends=list(backends))
    verdicts: Counter[str] = Counter()
    findings: Counter[str] = Counter()
    unsupported: Counter[str] = Counter()
    ops: set[str] = set()
    out.mkdir(parents=True, exist_ok=True)
    with DifferentialRunner(backends, workers=workers, limits=limits, progress=progress, batch=batch) as runner:
        runner.start()
        summary.versions = dict(runner.versions)
        start = last = time.monotonic()
        for result in runner.run(range(seed, seed + count), options):
            summary.tests += 1
            if isinstance(result, InternalFailure):
                summary.internal_failures += 1
                progress(f"internal failure at seed {result.seed} ({result.symptom} in {result.stage}): {result.detail.splitlines()[0] if result.detail else ''}")
                continue
            ops.update(result.ops)
            kind = result.verdict.kind if result.verdict is not None else "no_stable_inputs"
            verdicts[kind] += 1
            for o in result.outcomes:
                if o.status == "unsupported":
                    unsupported[o.backend] += 1
            if result.verdict is not None and result.verdict.kind == "bug":
                for f in result.verdict.findings:
                    findings[f"{f.symptom}: {', '.join(f.backends)}"] += 1
                summary.cases.append(str(save_case(out, result, catalog)))
            now = time.monotonic()
            if now - last >= 5 or summary.tests == count:
                last = now
                progress(
                    f"[{now - start:6.1f}s] {summary.tests}/{count} tests, {verdicts['pass']} passed, "
                    f"{verdicts['bug']} with bug candidates, {summary.tests / max(now - start, 1e-9):.1f} tests/s"
                )
        summary.total_s = time.monotonic() - start
    summary.verdicts = dict(verdicts)
    summary.findings = dict(findings)
    summary.unsupported = dict(unsupported)
    summary.ops_covered = len(ops)
    summary.tests_per_s = round(summary.tests / max(summary.total_s, 1e-9), 2)
    (out / "summary.json").write_text(json.dumps(asdict(summary), indent=2) + "\n")
    return summary


def describe(summary: BatchSummary) -> list[str]:
    """The end-of-run lines for a person."""
    lines = [
        f"tests: {summary.tests}  verdicts: {', '.join(f'{k} {v}' for k, v in sorted(summary.verdicts.items()))}",
        f"operators covered: {summary.ops_covered}; {summary.tests_per_s} tests/s; total {summary.total_s:.1f}s",
    ]
    for key, n in sorted(summary.findings.items()):
        lines.append(f"  bug candidate  {key}: {n}")
    for backend, n in sorted(summary.unsupported.items()):
        lines.append(f"  {backend} sat out {n} test(s) using operators it does not support")
    if summary.internal_failures:
        lines.append(f"  internal failures (Gauntlet bugs, please report): {summary.internal_failures}")
    return lines

