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

import numpy as np

from fuzz.backends import load
from fuzz.backends.base import Backend, Model
from fuzz.coverage import LineTracker, choice_keys
from fuzz.gradients import check_gradients
from fuzz.oracle import Expected, Outcome, Verdict, expectations, judge
from fuzz.probe import Capabilities, Pair, first_line, probe_all
from fuzz.sandbox import is_out_of_memory
from fuzz.stability import Reference, reference
from generators.graph_gen import GenOptions, GraphGenerator
from generators.ir import (
    Graph,
    InputRef,
    Node,
    NodeRef,
    Placeholder,
    disjoint_union,
    graph_from_json,
    type_variable,
    without_node,
)
from generators.reference import ReferenceRejects, evaluate
from generators.spec import OpSpec
from generators.values import Feed, sound_feed

Note = Callable[[str], None]
# Rule-backed nodes a generated graph may lose to framework refusals before it is skipped.
MAX_REFUSED_NODES = 4


@dataclass(frozen=True)
class WorkerConfig:
    backends: tuple[str, ...]  # names or module/file specs, as fuzz.backends.load takes them
    threads: int = 1  # framework threads per worker (one worker per core by default)
    coverage: tuple[str, ...] = ()  # packages whose Python line coverage is measured (--coverage)
    rules: str = ""  # a directory of inferred rules whose operators join the catalog ("" none)


@dataclass
class WorkerState:
    backends: dict[str, Backend]
    versions: dict[str, str]
    catalog: Mapping[str, OpSpec]
    generators: dict[GenOptions, GraphGenerator] = field(default_factory=dict)
    capabilities: dict[str, Capabilities] = field(default_factory=dict)  # JSON text -> parsed
    tracker: LineTracker | None = None


def setup(config: WorkerConfig) -> WorkerState:
    """Load the backends that are available here and pin framework threads."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Before any framework loads: torch also computes references (the gradient oracle's
    # float64 run) when no torch backend is under test, and its OpenMP pool would otherwise
    # take every core, spinning between calls against the other workers.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(config.threads)
    from generators.rules.catalog import catalog_for

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
    tracker = None
    if config.coverage:
        import importlib

        for package in config.coverage:  # imported before tracing starts (see LineTracker)
            importlib.import_module(package)
        tracker = LineTracker(config.coverage)
    return WorkerState(backends, versions, catalog_for(config.rules), tracker=tracker)


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
    # Probe results (Capabilities JSON) of the eagerly probed backends, carried by the job so
    # a worker on another machine (Ray) needs no shared file system.
    capabilities: tuple[str, ...] = ()
    crashed: tuple[KnownCrash, ...] = ()
    keep_arrays: bool = False  # return inputs and outputs even when the test passes
    gradients: bool = True  # also judge gradients where the forward pass agreed


@dataclass(frozen=True)
class GraphJob:
    """A given graph with given arrays (replaying or reducing a bug), judged exactly like
    a generated test; `seed` drives the stability noise."""

    seed: int
    graph_json: str
    arrays: tuple[np.ndarray, ...]
    backends: tuple[str, ...]
    capabilities: tuple[str, ...] = ()
    crashed: tuple[KnownCrash, ...] = ()
    keep_arrays: bool = True
    gradients: bool = True


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
    # --coverage: framework lines first reached since the worker's last report, and the
    # operators of the tests run since then.
    new_lines: tuple[int, ...] = ()
    lines_ops: tuple[str, ...] = ()


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


@dataclass
class _Case:
    """One test in progress inside a worker."""

    job: CaseJob | GraphJob
    graph: Graph
    feed: Feed
    ref: Reference
    expected: tuple[Expected, ...]
    pairs: set[Pair]
    seconds: dict[str, float]
    catalog: Mapping[str, OpSpec]
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    lazily: list[tuple[str, str, str, str]] = field(default_factory=list)

    @property
    def model(self) -> Model:
        return Model(self.graph, self.feed.weights(self.graph), tuple(self.feed.inputs(self.graph)), self.catalog)


def _base(job: CaseJob | GraphJob, graph: Graph) -> dict[str, object]:
    return dict(seed=job.seed, graph_json=graph.to_json(), digest=graph.digest(), ops=graph.op_names())


def _start(job: CaseJob | GraphJob, note: Note, state: WorkerState) -> _Case | CaseResult:
    """Generate the graph and its inputs (or take the given ones), and compute the
    reference (or give up: no feed)."""
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    note("generate")
    feed: Feed | None
    if isinstance(job, GraphJob):
        graph = graph_from_json(job.graph_json)
        feed = Feed(job.arrays, 1)
    else:
        generator = state.generators.get(job.options)
        if generator is None:
            if len(state.generators) >= 8:  # coverage steering changes the options as it learns
                state.generators.clear()
            generator = state.generators[job.options] = GraphGenerator(state.catalog, job.options)
        graph = generator.generate(job.seed)
        feed = None
    rng = np.random.default_rng(job.seed)
    for dropped in range(MAX_REFUSED_NODES + 1):
        try:
            if not isinstance(job, GraphJob):
                feed = sound_feed(graph, rng, state.catalog)
            seconds["generate"] = time.perf_counter() - t0
            if feed is None:
                return CaseResult(**_base(job, graph), verdict=None, outcomes=(), feed=None, seconds=seconds)  # type: ignore[arg-type]
            note("reference")
            t0 = time.perf_counter()
            ref = reference(graph, feed.arrays, state.catalog, job.seed)
            break
        except ReferenceRejects as refused:
            # A rule-backed operator's framework refused a call its rule admits: drop that node
            # (and what depends on it) from a generated graph; a given graph is skipped.
            smaller = None
            if not isinstance(job, GraphJob) and refused.node is not None and dropped < MAX_REFUSED_NODES:
                smaller = without_node(graph, refused.node)
            if smaller is None:
                return CaseResult(**_base(job, graph), verdict=None, outcomes=(), feed=None, seconds=seconds)  # type: ignore[arg-type]
            graph = smaller
            t0 = time.perf_counter()
    assert feed is not None  # the loop above returns whenever there is none
    expected = expectations(graph, state.catalog)
    seconds["reference"] = time.perf_counter() - t0
    case = _Case(job, graph, feed, ref, expected, graph_pairs(graph, state.catalog), seconds, state.catalog)
    for crash in job.crashed:
        case.outcomes[crash.backend] = Outcome(crash.backend, "crash", crash.stage, symptom=crash.symptom, message=crash.detail)  # type: ignore[arg-type]
    return case


def _gap(case: _Case, name: str, state: WorkerState, caps: Mapping[str, Capabilities]) -> Outcome | None:
    """An `unsupported` outcome when the backend cannot take part in this case at all."""
    if state.backends.get(name) is None:
        return Outcome(name, "unsupported", "", message="backend not available in this worker")
    cap = caps.get(name)
    missing = [p for p in sorted(case.pairs) if cap is not None and not cap.supports(*p)]
    if missing and cap is not None:
        op, dt = missing[0]
        return Outcome(name, "unsupported", "", message=f"{op}/{dt}: {cap.unsupported[missing[0]]}")
    return None


def _run_alone(case: _Case, name: str, state: WorkerState, note: Note) -> Outcome:
    """One backend on one case; a failure is replayed node by node to tell gaps from bugs."""
    backend = state.backends[name]
    outcome = _run_backend(backend, case.model, note)
    case.seconds[name] = outcome.seconds
    if outcome.status == "error":
        gap = _fails_alone(backend, case.graph, case.feed.arrays, state.catalog, note)
        if gap is not None:
            case.lazily.append((name, *gap))
            outcome = replace(outcome, status="unsupported", message=f"{gap[0]}/{gap[1]} fails alone: {gap[2]}")
    return outcome


def _finish(case: _Case, note: Note, state: WorkerState) -> CaseResult:
    """Judge the outcomes (and gradients where the forward pass agreed)."""
    job = case.job
    outcomes = [case.outcomes[name] for name in job.backends]
    note("compare")
    verdict = judge(outcomes, case.ref.outputs, case.ref.spread, case.expected)
    if job.gradients and verdict.kind == "pass":
        t0 = time.perf_counter()
        ran = {o.backend: state.backends[o.backend] for o in outcomes if o.status == "ok"}
        note("gradients")
        check = check_gradients(case.graph, case.feed.arrays, ran, state.catalog, job.seed)
        case.seconds["gradients"] = time.perf_counter() - t0
        if check is not None and check.findings:
            verdict = replace(verdict, kind="bug", findings=verdict.findings + check.findings)
    keep = job.keep_arrays or verdict.kind == "bug"
    if not keep:
        outcomes = [replace(o, outputs=()) for o in outcomes]
    return CaseResult(
        **_base(job, case.graph),  # type: ignore[arg-type]
        verdict=verdict,
        outcomes=tuple(outcomes),
        feed=case.feed.arrays if keep else None,
        seconds=case.seconds,
        lazily_unsupported=tuple(case.lazily),
    )


def _capability_table(texts: tuple[str, ...], state: WorkerState) -> dict[str, Capabilities]:
    caps: dict[str, Capabilities] = {}
    for text in texts:
        loaded = state.capabilities.get(text)
        if loaded is None:
            loaded = state.capabilities[text] = Capabilities.from_json(text)
        caps[loaded.backend] = loaded
    return caps


def run_test(job: CaseJob | GraphJob | Describe, note: Note, state: WorkerState) -> CaseResult | dict[str, str]:
    """The sandbox target: one test case (or a Describe request)."""
    if isinstance(job, Describe):
        return dict(state.versions)
    case = _start(job, note, state)
    if isinstance(case, CaseResult):
        return case
    caps = _capability_table(job.capabilities, state)
    for name in job.backends:
        if name not in case.outcomes:
            case.outcomes[name] = _gap(case, name, state, caps) or _run_alone(case, name, state, note)
    return _finish(case, note, state)


@dataclass(frozen=True)
class BatchJob:
    """Several tests at once: `batched` backends compile the disjoint union of the graphs
    in one go (compilation dominates their cost); the others run each graph alone."""

    jobs: tuple[CaseJob, ...]
    batched: tuple[str, ...]


def run_batch_job(job: BatchJob, note: Note, state: WorkerState) -> list[CaseResult]:
    cases: list[_Case | CaseResult] = [_start(j, note, state) for j in job.jobs]
    live = [c for c in cases if isinstance(c, _Case)]
    if live:
        caps = _capability_table(live[0].job.capabilities, state)
        for name in live[0].job.backends:
            if name not in job.batched:
                for case in live:
                    if name not in case.outcomes:
                        case.outcomes[name] = _gap(case, name, state, caps) or _run_alone(case, name, state, note)
                continue
            todo = []
            for case in live:
                if name not in case.outcomes:
                    gap = _gap(case, name, state, caps)
                    if gap is not None:
                        case.outcomes[name] = gap
                    else:
                        todo.append(case)
            _run_together(todo, name, state, note)
    return [c if isinstance(c, CaseResult) else _confirmed(c, job.batched, note, state) for c in cases]


def _run_together(cases: list[_Case], name: str, state: WorkerState, note: Note) -> None:
    """One compilation for all `cases`; if it fails, each half is compiled together again,
    down to single cases (which run alone), so one failing graph costs a few compilations
    of shrinking unions rather than one per case."""
    if len(cases) < 2:
        for case in cases:
            case.outcomes[name] = _run_alone(case, name, state, note)
        return
    union = disjoint_union([c.graph for c in cases])
    arrays = [a for c in cases for a in c.feed.arrays]
    weights = {i: arrays[i] for i in union.weight_indices}
    inputs = tuple(arrays[i] for i in union.input_indices)
    together = _run_backend(state.backends[name], Model(union, weights, inputs, state.catalog, parts=len(cases)), note)
    if together.status != "ok":
        half = len(cases) // 2
        _run_together(cases[:half], name, state, note)
        _run_together(cases[half:], name, state, note)
        return
    start = 0
    for case in cases:
        count = len(case.graph.outputs)
        case.outcomes[name] = replace(together, outputs=together.outputs[start : start + count], seconds=together.seconds / len(cases))
        case.seconds[name] = together.seconds / len(cases)
        start += count


def _confirmed(case: _Case, batched: tuple[str, ...], note: Note, state: WorkerState) -> CaseResult:
    """Judge; a finding against a batched backend is re-checked by compiling the graph alone,
    so every reported bug reproduces on its own graph."""
    result = _finish(case, note, state)
    suspects = {b for f in (result.verdict.findings if result.verdict else ()) for b in f.backends if b in batched}
    if not suspects:
        return result
    for name in suspects:
        case.outcomes[name] = _run_alone(case, name, state, note)
    return _finish(case, note, state)


@dataclass(frozen=True)
class ProbeJob:
    backend: str
    pairs: tuple[Pair, ...]


def run_probe(job: ProbeJob, note: Note, state: WorkerState) -> dict[Pair, str]:
    """The sandbox target for probing: unsupported pairs with reasons."""
    backend = state.backends[job.backend]
    return probe_all(backend, state.catalog, list(job.pairs), note)


def target(job: CaseJob | GraphJob | BatchJob | Describe | ProbeJob, note: Note, state: WorkerState) -> object:
    """The one sandbox entry point (the pool takes a single target)."""
    if isinstance(job, ProbeJob):
        return run_probe(job, note, state)
    if isinstance(job, BatchJob):
        results = run_batch_job(job, note, state)
        if state.tracker is not None and results:
            keys = [k for r in results for k in choice_keys(graph_from_json(r.graph_json), state.catalog)]
            results[0] = _with_coverage(results[0], keys, state.tracker)
        return results
    result = run_test(job, note, state)
    if state.tracker is not None and isinstance(result, CaseResult) and isinstance(job, CaseJob):
        return _with_coverage(result, choice_keys(graph_from_json(result.graph_json), state.catalog), state.tracker)
    return result


def _with_coverage(result: CaseResult, ops: list[str] | tuple[str, ...], tracker: LineTracker) -> CaseResult:
    lines, window = tracker.after_test(ops)
    return replace(result, new_lines=lines, lines_ops=window) if lines or window else result
