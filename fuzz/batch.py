"""A batch run: generate graphs, run each on torch and tf eager in this process, compare
with the float64 NumPy reference, and summarize. The precursor of the fuzz campaign
(no sandbox, no dedup or reduction yet). Imports frameworks lazily.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from generators.dtypes import DType
from generators.graph_gen import GenOptions, GraphGenerator
from generators.ir import Graph
from generators.reference import evaluate, graph_outputs
from generators.spec import OpSpec
from generators.values import Feed, make_feed

# Whole-graph comparison tolerances (looser than per-operator ones: errors compound).
GRAPH_TOLERANCE = {
    DType.float16: (5e-2, 5e-2),
    DType.bfloat16: (1e-1, 1e-1),
    DType.float32: (1e-3, 1e-4),
    DType.float64: (1e-6, 1e-8),
}


@dataclass
class BatchSummary:
    graphs: int = 0
    skipped_no_values: int = 0
    passed: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # "framework: ExcType" -> count
    mismatches: dict[str, int] = field(default_factory=dict)  # framework -> count
    ops_covered: int = 0
    generation_s: float = 0.0
    total_s: float = 0.0
    saved_cases: list[str] = field(default_factory=list)


def compare(actual: np.ndarray, expected: np.ndarray, dtype: DType) -> str | None:
    """None if equal within the dtype's tolerance, else a one-line description."""
    if actual.shape != expected.shape:
        return f"shape {list(actual.shape)} != {list(expected.shape)}"
    if dtype.is_float:
        rtol, atol = GRAPH_TOLERANCE[dtype]
        a, e = actual.astype(np.float64), expected.astype(np.float64)
        if np.allclose(a, e, rtol=rtol, atol=atol, equal_nan=True):
            return None
        return f"max abs error {float(np.nanmax(np.abs(a - e))):.3g}"
    if np.array_equal(actual, expected.astype(actual.dtype)):
        return None
    return f"{int(np.sum(actual != expected.astype(actual.dtype)))} element(s) differ"


def _runners() -> dict[str, Callable[[Graph, Feed], list[np.ndarray]]]:
    def run_torch(graph: Graph, feed: Feed) -> list[np.ndarray]:
        from generators.materialize import torch as mt

        return mt.run(mt.to_torch(graph, feed.weights(graph)), feed.inputs(graph))

    def run_tf(graph: Graph, feed: Feed) -> list[np.ndarray]:
        from generators.materialize import tensorflow as mtf

        return mtf.run(mtf.to_tensorflow(graph, feed.weights(graph)), feed.inputs(graph))

    return {"torch": run_torch, "tensorflow": run_tf}


def save_case(out: Path, graph: Graph, feed: Feed, seed: int, what: Mapping[str, Any], catalog: Mapping[str, OpSpec]) -> Path:
    """A case directory: graph.json, inputs as .npy, standalone torch/tf scripts, case.json."""
    from generators.materialize.script import npy_array, write_script

    case = out / "cases" / graph.digest()
    case.mkdir(parents=True, exist_ok=True)
    (case / "graph.json").write_text(graph.to_json() + "\n")
    files = {}
    for i, array in enumerate(feed.arrays):
        files[i] = f"p{i}.npy"
        np.save(case / files[i], npy_array(array), allow_pickle=False)
    for fw, name in (("torch", "repro_torch.py"), ("tensorflow", "repro_tf.py")):
        (case / name).write_text(write_script(graph, fw, catalog, files, title=f"Gauntlet case {graph.digest()}"))  # type: ignore[arg-type]
    (case / "case.json").write_text(json.dumps({"seed": seed, **what}, indent=2) + "\n")
    return case


def run_batch(
    count: int,
    seed: int,
    options: GenOptions,
    catalog: Mapping[str, OpSpec],
    out: Path,
    frameworks: Sequence[str] = ("torch", "tensorflow"),
    progress: Callable[[str], None] = print,
) -> BatchSummary:
    generator = GraphGenerator(catalog, options)
    runners = {k: v for k, v in _runners().items() if k in frameworks}
    summary = BatchSummary()
    errors: Counter[str] = Counter()
    mismatches: Counter[str] = Counter()
    ops: set[str] = set()
    start = last = time.monotonic()
    for s in range(seed, seed + count):
        t0 = time.monotonic()
        graph = generator.generate(s)
        summary.generation_s += time.monotonic() - t0
        summary.graphs += 1
        ops.update(graph.op_names())
        feed = make_feed(graph, np.random.default_rng(s), catalog)
        if feed is None:
            summary.skipped_no_values += 1
            continue
        results = evaluate(graph, feed.arrays, catalog, wide=True)
        assert results is not None
        expected = graph_outputs(graph, results, feed.arrays)
        problems: dict[str, str] = {}
        for fw, run in runners.items():
            try:
                actual = run(graph, feed)
            except Exception as exc:  # a backend failure is an outcome, not our crash
                key = f"{fw}: {type(exc).__name__}"
                errors[key] += 1
                problems[fw] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                continue
            for k, (a, e) in enumerate(zip(actual, expected)):
                diff = compare(a, e, graph.type_of(graph.outputs[k]).dtype)
                if diff is not None:
                    mismatches[fw] += 1
                    problems[fw] = f"output {k}: {diff}"
                    break
        if problems:
            case = save_case(out, graph, feed, s, {"problems": problems}, catalog)
            summary.saved_cases.append(str(case))
        else:
            summary.passed += 1
        now = time.monotonic()
        if now - last >= 5 or s == seed + count - 1:
            last = now
            progress(
                f"[{now - start:6.1f}s] {summary.graphs}/{count} graphs, {summary.passed} passed, "
                f"{sum(errors.values())} errors, {sum(mismatches.values())} mismatches"
            )
    summary.errors = dict(errors)
    summary.mismatches = dict(mismatches)
    summary.ops_covered = len(ops)
    summary.total_s = time.monotonic() - start
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(asdict(summary), indent=2) + "\n")
    return summary
