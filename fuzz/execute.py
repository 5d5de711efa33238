"""What a sandbox worker does with a test: generate the graph from its seed, compute the
reference and its spread, run every backend stage by stage (announcing each stage, so a
crash is attributed to its backend and stage), and judge. Runs inside worker processes;
imports frameworks only through the backends it is configured with.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from fuzz.backends import load
from fuzz.backends.base import Backend, Model
from fuzz.gradients import check_gradients
from fuzz.oracle import Outcome, Verdict, expectations, judge
from fuzz.probe import Capabilities, Pair, first_line, probe_all
from fuzz.sandbox import is_out_of_memory
from fuzz.stability import reference
from generators.graph_gen import GenOptions, GraphGenerator
from generators.ir import Graph, InputRef, Node, NodeRef, Placeholder, type_variable
from generators.reference import evaluate
from generators.spec import OpSpec
from generators.values import make_feed

Note = Callable[[str], None]


@dataclass(frozen=True)
class WorkerConfig:
    backends: tuple[str, ...]  # names or module/file specs, as fuzz.backends.load takes them
    threads: int = 1  # framework threads per worker (one worker per core by default)


@dataclass
class WorkerState:
    backends: dict[str, Backend]
    versions: dict[str, str]
    catalog: Mapping[str, OpSpec]
    generators: dict[GenOptions, GraphGenerator] = field(default_factory=dict)
    capabilities: dict[str, tuple[str, Capabilities]] = field(default_factory=dict)  # backend -> (file, caps)


def setup(config: WorkerConfig) -> WorkerState:
    """Load the backends that are available here and pin framework threads."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from generators.ops import catalog

    backends: dict[str, Backend] = {}
    versions: dict[str, str] = {}
    for spec in config.backends:
        backend = load(spec)
        if backend.available():
            backends[backend.name] = backend
            versions[backend.name] = backend.version()
    if any(b.lowering == "torch" for b in backends.values()):
        import torch

        torch.set_num_threads(config.threads)
    if any(b.lowering == "tensorflow" for b in backends.values()):
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(config.threads)
            tf.config.threading.set_inter_op_parallelism_threads(config.threads)
        except RuntimeError:  # tf already initialized in this process (in-process use): keep its pools
            pass
    return WorkerState(backends, versions, catalog())


@dataclass(frozen=True)
class KnownCrash:
    """A backend that killed an earlier worker on this very test."""

    backend: str
    symptom: str
    stage: str
    detail: str


@dataclass(frozen=True)
class CaseJob:
    seed: int
    options: GenOptions
    backends: tuple[str, ...]
    capability_files: tuple[str, ...] = ()  # probe results (JSON) for eagerly probed backends
    crashed: tuple[KnownCrash, ...] = ()
    keep_arrays: bool = False  # return inputs and outputs even when the test passes
    gradients: bool = True  # also judge gradients where the forward pass agreed


@dataclass(frozen=True)
class CaseResult:
    seed: int
    graph_json: str
    digest: str
    ops: tuple[str, ...]
    verdict: Verdict | None  # None: no stable inputs found
    outcomes: tuple[Outcome, ...]
    feed: tuple[np.ndarray, ...] | None
    seconds: Mapping[str, float]
    # Nodes that failed alone after their graph failed: (backend, op, dtype, reason).
    lazily_unsupported: tuple[tuple[str, str, str, str], ...] = ()


@dataclass(frozen=True)
class Describe:
    """A job asking a worker which backends it loaded, with their versions."""


def graph_pairs(graph: Graph, catalog: Mapping[str, OpSpec]) -> set[Pair]:
    """The (operator, type variable) pairs a graph uses."""
    pairs = set()
    for node in graph.nodes:
        t = type_variable(catalog[node.op], [graph.type_of(r).dtype for r in node.inputs], [o.dtype for o in node.outputs])
        pairs.add((node.op, t.value))
    return pairs


def _capabilities(state: WorkerState, path: str) -> Capabilities:
    caps = Capabilities.from_json(Path(path).read_text())
    state.capabilities[caps.backend] = (path, caps)
    return caps


def _run_backend(backend: Backend, model: Model, note: Note) -> Outcome:
    start = time.perf_counter()
    note(f"compile:{backend.name}")
    try:
        prepared = backend.prepare(model)
    except NotImplementedError as exc:  # our materializer: an operator lacks this lowering
        return Outcome(backend.name, "unsupported", "compile", message=first_line(exc))
    except Exception as exc:
        if is_out_of_memory(exc):
            raise  # the sandbox replaces this worker; the re-run records the "oom" outcome
        return Outcome(backend.name, "error", "compile", symptom=type(exc).__name__, message=first_line(exc),
                       seconds=time.perf_counter() - start)
    note(f"run:{backend.name}")
    try:
        outputs = backend.run(prepared, list(model.example_inputs))
    except Exception as exc:
        if is_out_of_memory(exc):
            raise
        return Outcome(backend.name, "error", "run", symptom=type(exc).__name__, message=first_line(exc),
                       seconds=time.perf_counter() - start)
    return Outcome(backend.name, "ok", "", tuple(np.asarray(o) for o in outputs), seconds=time.perf_counter() - start)


def _fails_alone(backend: Backend, graph: Graph, arrays: tuple[np.ndarray, ...], catalog: Mapping[str, OpSpec], note: Note) -> tuple[str, str, str] | None:
    """After `backend` failed on `graph`: the first node that also fails on its own, with
    the very inputs it saw (operator, dtype, reason), or None. A node failing alone is a
    gap in the backend's support for that operator, attributes and shapes (probing by
    operator x dtype cannot see attribute-specific gaps); a graph failing while every node
    runs alone is an inconsistency worth reporting. Compiled backends are probed only here."""
    values = evaluate(graph, arrays, catalog)
    assert values is not None
    for node in graph.nodes:
        in_types = [graph.type_of(r) for r in node.inputs]
        single = Graph(
            tuple(Placeholder(t) for t in in_types),
            (Node(node.op, tuple(InputRef(j) for j in range(len(in_types))), node.attrs, node.outputs),),
            tuple(NodeRef(0, k) for k in range(len(node.outputs))),
        )
        inputs = tuple(arrays[r.index] if isinstance(r, InputRef) else values[r.node][r.output] for r in node.inputs)
        note(f"compile:{backend.name}")
        try:
            backend.run(backend.prepare(Model(single, {}, inputs, catalog)), list(inputs))
        except Exception as exc:
            t = type_variable(catalog[node.op], [t.dtype for t in in_types], [o.dtype for o in node.outputs])
            return node.op, t.value, first_line(exc)
    return None


def run_test(job: CaseJob | Describe, note: Note, state: WorkerState) -> CaseResult | dict[str, str]:
    """The sandbox target: one test case (or a Describe request)."""
    if isinstance(job, Describe):
        return dict(state.versions)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    note("generate")
    generator = state.generators.get(job.options)
    if generator is None:
        generator = state.generators[job.options] = GraphGenerator(state.catalog, job.options)
    graph = generator.generate(job.seed)
    feed = make_feed(graph, np.random.default_rng(job.seed), state.catalog)
    seconds["generate"] = time.perf_counter() - t0
    base = dict(seed=job.seed, graph_json=graph.to_json(), digest=graph.digest(), ops=graph.op_names())
    if feed is None:
        return CaseResult(**base, verdict=None, outcomes=(), feed=None, seconds=seconds)  # type: ignore[arg-type]
    note("reference")
    t0 = time.perf_counter()
    ref = reference(graph, feed.arrays, state.catalog, job.seed)
    expected = expectations(graph, state.catalog)
    seconds["reference"] = time.perf_counter() - t0
    pairs = graph_pairs(graph, state.catalog)
    inputs = tuple(feed.inputs(graph))
    model = Model(graph, feed.weights(graph), inputs, state.catalog)
    crashed = {c.backend: c for c in job.crashed}
    caps: dict[str, Capabilities] = {}
    for path in job.capability_files:
        cached = next((known for p, known in state.capabilities.values() if p == path), None)
        loaded = cached or _capabilities(state, path)
        caps[loaded.backend] = loaded
    outcomes: list[Outcome] = []
    lazily: list[tuple[str, str, str, str]] = []
    for name in job.backends:
        if name in crashed:
            crash = crashed[name]
            outcomes.append(Outcome(name, "crash", crash.stage, symptom=crash.symptom, message=crash.detail))  # type: ignore[arg-type]
            continue
        backend = state.backends.get(name)
        if backend is None:
            outcomes.append(Outcome(name, "unsupported", "", message="backend not available in this worker"))
            continue
        cap = caps.get(name)
        missing = [p for p in sorted(pairs) if cap is not None and not cap.supports(*p)]
        if missing:
            op, dt = missing[0]
            outcomes.append(Outcome(name, "unsupported", "", message=f"{op}/{dt}: {cap.unsupported[missing[0]]}"))  # type: ignore[union-attr]
            continue
        outcome = _run_backend(backend, model, note)
        seconds[name] = outcome.seconds
        if outcome.status == "error":
            gap = _fails_alone(backend, graph, feed.arrays, state.catalog, note)
            if gap is not None:
                lazily.append((name, *gap))
                outcome = replace(outcome, status="unsupported", message=f"{gap[0]}/{gap[1]} fails alone: {gap[2]}")
        outcomes.append(outcome)
    note("compare")
    verdict = judge(outcomes, ref.outputs, ref.spread, expected)
    if job.gradients and verdict.kind == "pass":
        t0 = time.perf_counter()
        ran = {o.backend: state.backends[o.backend] for o in outcomes if o.status == "ok"}
        note("gradients")
        check = check_gradients(graph, feed.arrays, ran, state.catalog, job.seed)
        seconds["gradients"] = time.perf_counter() - t0
        if check is not None and check.findings:
            verdict = replace(verdict, kind="bug", findings=verdict.findings + check.findings)
    keep = job.keep_arrays or verdict.kind == "bug"
    if not keep:
        outcomes = [replace(o, outputs=()) for o in outcomes]
    return CaseResult(
        **base,  # type: ignore[arg-type]
        verdict=verdict,
        outcomes=tuple(outcomes),
        feed=feed.arrays if keep else None,
        seconds=seconds,
        lazily_unsupported=tuple(lazily),
    )


@dataclass(frozen=True)
class ProbeJob:
    backend: str
    pairs: tuple[Pair, ...]


def run_probe(job: ProbeJob, note: Note, state: WorkerState) -> dict[Pair, str]:
    """The sandbox target for probing: unsupported pairs with reasons."""
    backend = state.backends[job.backend]
    return probe_all(backend, state.catalog, list(job.pairs), note)


def target(job: CaseJob | Describe | ProbeJob, note: Note, state: WorkerState) -> object:
    """The one sandbox entry point (the pool takes a single target)."""
    if isinstance(job, ProbeJob):
        return run_probe(job, note, state)
    return run_test(job, note, state)
