"""The reference's spread: zero where rounding cannot matter, large where the graph is
ill-conditioned, infinite where a discrete result flips; deterministic per seed."""

from __future__ import annotations

import numpy as np

from fuzz.stability import reference
from generators.dtypes import DType
from generators.ir import Graph, InputRef, Node, NodeRef, Placeholder, TensorType
from generators.ops import catalog

F32 = TensorType((4,), DType.float32)
I32 = TensorType((4,), DType.int32)


def binary_then(op: str, then: str | None, t: TensorType) -> Graph:
    nodes = [Node(op, (InputRef(0), InputRef(1)), (), (t,))]
    if then is not None:
        nodes.append(Node(then, (NodeRef(0),), (), (t,)))
    return Graph((Placeholder(t), Placeholder(t)), tuple(nodes), (NodeRef(len(nodes) - 1),))


def test_integer_graphs_have_no_spread() -> None:
    a = np.array([1, 2, 3, 4], np.int32)
    ref = reference(binary_then("add", None, I32), [a, a], catalog(), seed=0)
    np.testing.assert_array_equal(ref.outputs[0], 2 * a)
    assert np.all(ref.spread[0] == 0)


def test_a_floor_at_an_exact_integer_is_unstable_and_elsewhere_stable() -> None:
    x = np.array([1.0, 1.25, 0.5, 3.0], np.float32)
    y = np.array([1.0, 0.5, 0.25, 0.0], np.float32)  # sums: 2.0 (on the jump), 1.75, 0.75, 3.0 (on the jump)
    ref = reference(binary_then("add", "floor", F32), [x, y], catalog(), seed=0)
    np.testing.assert_array_equal(ref.outputs[0], [2.0, 1.0, 0.0, 3.0])
    assert np.isinf(ref.spread[0][0]) or ref.spread[0][0] >= 1.0
    # Elsewhere only the float output's own rounding moves it.
    assert ref.spread[0][1] < 1e-6 and ref.spread[0][2] < 1e-6


def test_cancellation_gets_a_spread_relative_to_the_rounded_operands() -> None:
    # x*x - y*y with x close to y: the squares are rounded (~1e6 * 6e-8), their difference is small.
    x = np.array([1000.0, 1.0, 2.0, 3.0], np.float32)
    y = np.array([999.99, 0.5, 1.0, 1.0], np.float32)
    nodes = (
        Node("mul", (InputRef(0), InputRef(0)), (), (F32,)),
        Node("mul", (InputRef(1), InputRef(1)), (), (F32,)),
        Node("sub", (NodeRef(0), NodeRef(1)), (), (F32,)),
    )
    graph = Graph((Placeholder(F32), Placeholder(F32)), nodes, (NodeRef(2),))
    ref = reference(graph, [x, y], catalog(), seed=0)
    assert ref.spread[0][0] > 1e-5 * abs(ref.outputs[0][0])  # far above eps * |x*x - y*y|
    assert ref.spread[0][1] < 1e-6 * abs(ref.outputs[0][1])


def test_spread_is_deterministic_per_seed() -> None:
    x = np.linspace(0.1, 0.9, 4).astype(np.float32)
    g = binary_then("mul", "exp", F32)
    a = reference(g, [x, x], catalog(), seed=5)
    b = reference(g, [x, x], catalog(), seed=5)
    np.testing.assert_array_equal(a.spread[0], b.spread[0])
