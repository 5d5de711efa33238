"""The inductor scheduling pass for batched torch.compile: a valid topological order that
puts each extern depth's kernels together, and, on real inductor, fewer C++ files for a
union of graphs with the same results."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fuzz.backends.base import Model
from fuzz.backends.inductor_grouping import extern_depth_order, group_by_extern_depth
from generators.dtypes import DType
from generators.ir import Graph, InputRef, Node, NodeRef, Placeholder, TensorType, disjoint_union
from generators.ops import catalog


@dataclass
class FakeNode:
    """The three things the pass reads from an inductor scheduler node."""

    name: str
    extern: bool
    ancestors: set[str] = field(default_factory=set)

    def get_operation_names(self) -> set[str]:
        return {self.name}

    def is_extern(self) -> bool:
        return self.extern


@st.composite
def dags(draw: st.DrawFn) -> list[FakeNode]:
    """Random DAGs in a topological order, with transitive ancestor sets like inductor's."""
    n = draw(st.integers(1, 25))
    nodes: list[FakeNode] = []
    for i in range(n):
        parents = draw(st.sets(st.integers(0, i - 1), max_size=3)) if i else set()
        ancestors = set().union(*({f"op{p}"} | nodes[p].ancestors for p in parents)) if parents else set()
        nodes.append(FakeNode(f"op{i}", draw(st.booleans()), ancestors))
    return nodes


def _depths(nodes: list[FakeNode]) -> list[int]:
    depth: list[int] = []
    for node in nodes:
        depth.append(max((depth[int(a[2:])] for a in node.ancestors), default=0) + node.extern)
    return depth


@given(dags())
@settings(max_examples=200, deadline=None)
def test_the_order_is_topological_and_runs_of_kernels_are_one_per_depth(nodes: list[FakeNode]) -> None:
    order = extern_depth_order(nodes)
    assert sorted(order) == list(range(len(nodes)))
    seen: set[str] = set()
    for i in order:
        assert nodes[i].ancestors <= seen
        seen.add(nodes[i].name)
    # Runs of consecutive non-extern nodes (one C++ file each): at most one per depth.
    runs = sum(1 for k, i in enumerate(order) if not nodes[i].extern and (k == 0 or nodes[order[k - 1]].extern))
    assert runs <= max(_depths(nodes)) + 1
    assert group_by_extern_depth(nodes) == [nodes[i] for i in order]


def test_an_order_that_would_break_a_dependency_is_refused() -> None:
    # Ancestors that disagree with the given order (as if inductor's IR changed): the pass
    # leaves the nodes as they were rather than run a node before its input.
    nodes = [FakeNode("a", False, {"b"}), FakeNode("b", True)]
    assert group_by_extern_depth(nodes) == nodes


def _pointwise_matmul_pointwise(seed: int) -> tuple[Graph, list[np.ndarray]]:
    f32 = DType.float32
    graph = Graph(
        (Placeholder(TensorType((3, 4), f32)), Placeholder(TensorType((4, 5), f32))),
        (Node("exp", (InputRef(0),), (), (TensorType((3, 4), f32),)),
         Node("matmul", (NodeRef(0), InputRef(1)), (), (TensorType((3, 5), f32),)),
         Node("tanh", (NodeRef(1),), (), (TensorType((3, 5), f32),))),
        (NodeRef(2),),
    )
    rng = np.random.default_rng(seed)
    return graph, [rng.uniform(-1, 1, (3, 4)).astype(np.float32), rng.uniform(-1, 1, (4, 5)).astype(np.float32)]


def test_a_union_compiles_into_fewer_cpp_files_with_the_same_results() -> None:
    torch = pytest.importorskip("torch")
    from torch._inductor.utils import run_and_get_code

    from fuzz.backends.torch_compile import TorchCompile
    from generators.materialize import torch as mt

    parts = [_pointwise_matmul_pointwise(s) for s in range(4)]
    union = disjoint_union([g for g, _ in parts])
    arrays = [a for _, a in parts for a in a]
    cat = catalog()
    backend = TorchCompile()
    files, outputs = {}, {}
    for n in (1, 4):  # parts=1: inductor's defaults; parts=4: grouped
        model = Model(union, {}, tuple(arrays), cat, parts=n)
        torch._dynamo.reset()
        prepared, code = run_and_get_code(backend.prepare, model)
        files[n] = sum(c.count("async_compile.cpp_pybinding(") for c in code)
        outputs[n] = backend.run(prepared, arrays)
    eager = mt.run(mt.to_torch(union, {}, cat), arrays)
    assert files[4] == 2 < files[1]  # exp x4 | four matmuls | tanh x4
    for grouped, default, expected in zip(outputs[4], outputs[1], eager):
        np.testing.assert_array_equal(grouped, default)
        np.testing.assert_allclose(grouped, expected, rtol=1e-5, atol=1e-6)
