"""The generator: determinism, option handling, validity of what it produces, and the
Hypothesis strategy's shrinking."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, find, given, settings

from generators.dtypes import DType
from generators.errors import GenerationError
from generators.graph_gen import GenOptions, GraphGenerator, generate_graph
from generators.instantiate import Limits
from generators.ir import validate
from generators.ops import catalog
from generators.strategies import graphs


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=__import__("hypothesis").strategies.integers(0, 2**32 - 1))
def test_same_seed_same_graph(seed: int) -> None:
    options = GenOptions(max_nodes=8)
    assert generate_graph(seed, options) == GraphGenerator(catalog(), options).generate(seed)


def test_graphs_are_valid_and_respect_options() -> None:
    options = GenOptions(max_nodes=12, dtypes=(DType.float32,), limits=Limits(max_elements=256))
    gen = GraphGenerator(catalog(), options)
    for seed in range(60):
        g = gen.generate(seed)
        validate(g)
        assert len(g.nodes) == 12
        types = [p.type for p in g.placeholders] + [t for n in g.nodes for t in n.outputs]
        assert all(t.dtype is DType.float32 for t in types)
        assert all(t.size <= 256 for t in types)


def test_allow_and_deny_lists() -> None:
    gen = GraphGenerator(catalog(), GenOptions(max_nodes=6, ops=("exp", "abs", "tanh"), exclude_ops=("abs",)))
    ops = {op for seed in range(30) for op in gen.generate(seed).op_names()}
    assert ops == {"exp", "tanh"}


def test_unknown_operator_is_a_user_error() -> None:
    with pytest.raises(GenerationError, match="unknown operator 'nope'"):
        GraphGenerator(catalog(), GenOptions(ops=("nope",)))


def test_impossible_options_are_a_user_error() -> None:
    with pytest.raises(GenerationError, match="no operator"):
        GraphGenerator(catalog(), GenOptions(ops=("logical_not",), dtypes=(DType.float32,)))


def test_backward_insertion_happens() -> None:
    """With backward insertion only, graphs still grow to size and validate: each new node
    replaces the graph input, so the result is one chain fed by a single placeholder."""
    ops = ("abs", "neg", "tanh", "atan", "square", "erf")
    gen = GraphGenerator(catalog(), GenOptions(max_nodes=6, backward_prob=1.0, ops=ops))
    for seed in range(20):
        g = gen.generate(seed)
        validate(g)
        assert len(g.nodes) == 6
        assert len(g.placeholders) == 1 and len(g.outputs) == 1


def test_failing_property_shrinks_to_a_minimal_graph() -> None:
    """A planted bug ("exp is wrong") is found and shrunk to at most 2 operators."""
    smallest = find(
        graphs(max_nodes=8, dtypes=(DType.float32,)),
        lambda g: "exp" in g.op_names(),
        settings=settings(max_examples=2000, database=None, derandomize=True),
    )
    assert "exp" in smallest.op_names()
    assert len(smallest.nodes) <= 2
