"""The reducer on generated graphs with planted predicates that really execute things (the
NumPy reference, torch): minimal results, postconditions as properties, budgets, caching."""

from __future__ import annotations

import functools
import hashlib
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz.reduce import Arrays, Predicate, Reduction, rebuild, reduce
from generators.dtypes import DType
from generators.graph_gen import GenOptions, GraphGenerator
from generators.ir import Graph, InputRef, Node, NodeRef, Placeholder, TensorType, validate
from generators.ops import catalog
from generators.reference import evaluate, graph_outputs
from generators.values import make_feed

CATALOG = catalog()
Case = tuple[Graph, Arrays]


@functools.cache
def generator(ops: tuple[str, ...] | None = None, dtypes: tuple[DType, ...] | None = None) -> GraphGenerator:
    options = GenOptions(max_nodes=10, ops=ops) if dtypes is None else GenOptions(max_nodes=10, ops=ops, dtypes=dtypes)
    return GraphGenerator(CATALOG, options)


def case(seed: int, gen: GraphGenerator | None = None) -> Case | None:
    graph = (gen or generator()).generate(seed)
    feed = make_feed(graph, np.random.default_rng(seed), CATALOG)
    return None if feed is None else (graph, feed.arrays)


def cases(predicate: Predicate, count: int, gen: GraphGenerator | None = None, limit: int = 400) -> list[Case]:
    """The first `count` generated cases (seeds 0, 1, ...) on which `predicate` holds."""
    found: list[Case] = []
    for seed in range(limit):
        c = case(seed, gen)
        if c is not None and predicate(*c):
            found.append(c)
            if len(found) == count:
                break
    assert found, "no generated graph satisfies the planted predicate"
    return found


def assert_postconditions(before: Case, result: Reduction, predicate: Predicate) -> None:
    validate(result.graph, CATALOG)
    assert len(result.arrays) == len(result.graph.placeholders)
    for p, a in zip(result.graph.placeholders, result.arrays):
        assert a.shape == p.type.shape and a.dtype == p.type.dtype.numpy()
    assert predicate(result.graph, result.arrays)
    assert len(result.graph.nodes) <= len(before[0].nodes)


def counting(predicate: Predicate) -> tuple[Predicate, list[tuple[str, str]]]:
    """The predicate plus a log of the (graph, arrays) identities it was called on."""
    calls: list[tuple[str, str]] = []

    def wrapped(graph: Graph, arrays: Arrays) -> bool:
        digest = hashlib.sha256(b"".join(a.tobytes() + str(a.shape).encode() for a in arrays)).hexdigest()
        calls.append((graph.digest(), digest))
        return predicate(graph, arrays)

    return wrapped, calls


# --- planted predicates ----------------------------------------------------------------------


def contains(op: str) -> Predicate:
    return lambda graph, arrays: op in graph.op_names()


def reference_exceeds(threshold: float) -> Predicate:
    """Some float output of the NumPy reference holds a value above `threshold`."""

    def predicate(graph: Graph, arrays: Arrays) -> bool:
        outputs = graph_outputs(graph, evaluate(graph, arrays, CATALOG) or [], arrays)
        return any(o.dtype.kind == "f" and bool(np.any(o.astype(np.float64) > threshold)) for o in outputs)

    return predicate


def torch_exceeds(threshold: float) -> Predicate:
    """The graph materialized in torch computes a float output beyond +-`threshold`."""
    from generators.materialize.torch import run, to_torch

    def predicate(graph: Graph, arrays: Arrays) -> bool:
        module = to_torch(graph, {i: arrays[i] for i in graph.weight_indices}, CATALOG)
        outputs = run(module, [arrays[i] for i in graph.input_indices])
        return any(
            (o.dtype.kind == "f" or o.dtype.name == "bfloat16") and bool(np.any(np.abs(o.astype(np.float64)) > threshold))
            for o in outputs
        )

    return predicate


def keepdims_sum_f16(graph: Graph, arrays: Arrays) -> bool:
    return any(
        n.op == "sum" and n.attr_map["keepdims"] is True and n.outputs[0].dtype is DType.float16 for n in graph.nodes
    )


# --- minimal results -------------------------------------------------------------------------


def test_contains_exp_reduces_to_the_exp_node_alone() -> None:
    for before in cases(contains("exp"), 6):
        result = reduce(*before, CATALOG, contains("exp"))
        assert_postconditions(before, result, contains("exp"))
        assert result.graph.op_names() == ("exp",)
        assert 1 <= len(result.graph.placeholders) <= 2
        assert result.complete
        # A float32 exp of one zero-valued element: dims, dtypes and values passes all ran.
        assert result.graph.placeholders[0].type == TensorType((1,) * result.graph.placeholders[0].type.rank,
                                                               DType.float32)
        assert not np.any(result.arrays[0])


def test_numeric_reference_predicate_keeps_the_large_value() -> None:
    predicate = reference_exceeds(10.0)
    for before in cases(predicate, 5):
        result = reduce(*before, CATALOG, predicate)
        assert_postconditions(before, result, predicate)
        assert len(result.graph.nodes) == 1
        assert result.complete and result.checks <= 60


def test_torch_predicate_reduces_what_torch_really_computes() -> None:
    predicate = torch_exceeds(20.0)
    for before in cases(predicate, 3):
        result = reduce(*before, CATALOG, predicate)
        assert_postconditions(before, result, predicate)
        assert len(result.graph.nodes) == 1 and result.complete


def test_cut_replaces_upstream_nodes_by_their_reference_values() -> None:
    """tanh fed by a computed value: the reduced tanh reads a placeholder holding exactly the
    value the reference computed for that input in the original graph."""
    gen = generator(("tanh", "sin", "neg", "add", "mul"), (DType.float32,))

    def tanh_of_computed(graph: Graph, arrays: Arrays) -> bool:
        return any(n.op == "tanh" and isinstance(n.inputs[0], NodeRef) for n in graph.nodes)

    before = cases(tanh_of_computed, 1, gen)[0]
    graph, arrays = before
    src = next(n.inputs[0] for n in graph.nodes if n.op == "tanh" and isinstance(n.inputs[0], NodeRef))
    assert isinstance(src, NodeRef)
    expected = (evaluate(graph, arrays, CATALOG) or [])[src.node][src.output]

    def predicate(graph: Graph, arrays: Arrays) -> bool:
        return tanh_of_computed(graph, arrays) or any(
            n.op == "tanh" and isinstance(n.inputs[0], InputRef) and arrays[n.inputs[0].index].shape == expected.shape
            and np.array_equal(arrays[n.inputs[0].index], expected) for n in graph.nodes)

    result = reduce(graph, arrays, CATALOG, predicate)
    assert_postconditions(before, result, predicate)
    assert result.graph.op_names() == ("tanh",) and len(graph.nodes) > 1
    assert dict((p.name, p.accepted) for p in result.passes)["cut"] >= 1


def test_attribute_and_dtype_dependent_predicate_shrinks_dims() -> None:
    gen = generator(("sum", "exp", "add", "mul", "neg", "tanh", "transpose", "concat"), (DType.float16, DType.float32))

    def one_matching_sum(graph: Graph, arrays: Arrays) -> bool:
        matching = [n for n in graph.nodes if n.op == "sum" and n.attr_map["keepdims"] is True
                    and n.outputs[0].dtype is DType.float16]
        return len(matching) == 1 and max(graph.type_of(matching[0].inputs[0]).shape, default=1) > 1

    for before in cases(one_matching_sum, 3, gen):
        (node,) = [n for n in before[0].nodes if n.op == "sum" and n.attr_map["keepdims"] is True
                   and n.outputs[0].dtype is DType.float16]
        original = before[0].type_of(node.inputs[0]).shape
        result = reduce(*before, CATALOG, keepdims_sum_f16)
        assert_postconditions(before, result, keepdims_sum_f16)
        assert result.graph.op_names() == ("sum",)
        (reduced,) = result.graph.nodes
        assert reduced.attr_map["keepdims"] is True and reduced.outputs[0].dtype is DType.float16
        shape = result.graph.type_of(reduced.inputs[0]).shape
        assert len(shape) == len(original)
        assert all(d <= o for d, o in zip(shape, original)) and shape != original
        assert reduced.attr_map["axes"] == (0,)  # the attrs pass simplified the axes


# --- properties --------------------------------------------------------------------------------


def coin(graph: Graph, arrays: Arrays) -> bool:
    """A deterministic pseudo-random verdict per candidate: accepts odd subsets of them."""
    key = graph.digest() + hashlib.sha256(b"".join(a.tobytes() for a in arrays)).hexdigest()
    return hashlib.sha256(key.encode()).digest()[0] < 150


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 5000), pick=st.integers(0, 9), max_checks=st.integers(1, 60), noisy=st.booleans())
def test_postconditions_hold_and_checks_stay_within_budget(seed: int, pick: int, max_checks: int, noisy: bool) -> None:
    before = case(seed)
    if before is None:
        return
    graph, arrays = before
    op = graph.nodes[pick % len(graph.nodes)].op

    def planted(g: Graph, a: Arrays) -> bool:
        return op in g.op_names() and (not noisy or g == graph or coin(g, a))

    predicate, calls = counting(planted)
    result = reduce(graph, arrays, CATALOG, predicate, max_checks=max_checks)
    assert_postconditions(before, result, planted)
    assert op in result.graph.op_names()
    assert result.checks == len(calls) == len(set(calls)) <= max_checks
    assert sum(p.tried for p in result.passes) + 1 >= result.checks


def test_deterministic() -> None:
    before = cases(reference_exceeds(10.0), 1)[0]
    first = reduce(*before, CATALOG, reference_exceeds(10.0))
    second = reduce(*before, CATALOG, reference_exceeds(10.0))
    assert first.graph == second.graph and first.checks == second.checks and first.passes == second.passes
    assert all(np.array_equal(a, b) for a, b in zip(first.arrays, second.arrays))


# --- budgets and preconditions -------------------------------------------------------------


def test_max_checks_stops_early_with_a_valid_failing_case() -> None:
    before = cases(contains("exp"), 1)[0]
    full = reduce(*before, CATALOG, contains("exp"))
    predicate, calls = counting(contains("exp"))
    result = reduce(*before, CATALOG, predicate, max_checks=3)
    assert not result.complete and result.checks == len(calls) == 3 < full.checks
    assert_postconditions(before, result, contains("exp"))


def test_deadline_stops_early_with_a_valid_failing_case() -> None:
    before = cases(contains("exp"), 1)[0]

    def slow(graph: Graph, arrays: Arrays) -> bool:
        time.sleep(0.02)
        return "exp" in graph.op_names()

    start = time.monotonic()
    result = reduce(*before, CATALOG, slow, deadline_s=0.05)
    assert time.monotonic() - start < 1.0
    assert not result.complete and 1 <= result.checks <= 4
    assert_postconditions(before, result, contains("exp"))


def test_a_passing_input_is_a_caller_bug() -> None:
    graph, arrays = cases(contains("exp"), 1)[0]
    with pytest.raises(ValueError, match="nothing to reduce"):
        reduce(graph, arrays, CATALOG, lambda g, a: False)
    with pytest.raises(ValueError, match="placeholder"):
        reduce(graph, arrays[:-1], CATALOG, contains("exp"))


def test_progress_reports_each_accepted_step() -> None:
    lines: list[str] = []
    before = cases(contains("exp"), 1)[0]
    result = reduce(*before, CATALOG, contains("exp"), progress=lines.append)
    assert len(lines) == sum(p.accepted for p in result.passes)
    assert all(line.split(":")[0] in {p.name for p in result.passes} for line in lines)


# --- rebuild --------------------------------------------------------------------------------


def _matmul_graph() -> tuple[list[Placeholder], list[np.ndarray], list[Node]]:
    f32 = DType.float32
    placeholders = [Placeholder(TensorType((2, 3), f32)), Placeholder(TensorType((3, 4), f32)),
                    Placeholder(TensorType((5,), f32))]
    arrays = [np.ones((2, 3), np.float32), np.ones((3, 4), np.float32), np.ones(5, np.float32)]
    stale = (TensorType((9,), f32),)  # rebuild re-infers outputs; the declared ones may be stale
    nodes = [Node("neg", (InputRef(2),), (), stale),
             Node("matmul", (InputRef(0), InputRef(1)), (), stale),
             Node("exp", (NodeRef(1),), (), stale)]
    return placeholders, arrays, nodes


def test_rebuild_drops_dead_code_reindexes_and_reinfers() -> None:
    placeholders, arrays, nodes = _matmul_graph()
    built = rebuild(placeholders, arrays, nodes, [NodeRef(2)], CATALOG)
    assert built is not None
    graph, new_arrays = built
    assert graph.op_names() == ("matmul", "exp") and len(graph.placeholders) == len(new_arrays) == 2
    assert graph.nodes[1].inputs == (NodeRef(0),) and graph.outputs == (NodeRef(1),)
    assert graph.nodes[1].outputs == (TensorType((2, 4), DType.float32),)


def test_rebuild_rejects_invalid_candidates_without_raising() -> None:
    placeholders, arrays, nodes = _matmul_graph()
    placeholders[1] = Placeholder(TensorType((2, 4), DType.float32))  # inner dims no longer match
    arrays[1] = np.ones((2, 4), np.float32)
    assert rebuild(placeholders, arrays, nodes, [NodeRef(2)], CATALOG) is None
    assert rebuild(placeholders, arrays, nodes, [], CATALOG) is None
    bad_attr = Node("sum", (InputRef(0),), (("axes", (3,)), ("keepdims", True)), ())
    assert rebuild(placeholders, arrays, [bad_attr], [NodeRef(0)], CATALOG) is None
