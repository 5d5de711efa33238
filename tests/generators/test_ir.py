"""The IR: exact JSON round trip, and validate() rejecting malformed or edited graphs with
a clear GraphError rather than a traceback."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generators.errors import GraphError
from generators.ir import Graph, InputRef, NodeRef, graph_from_json, validate, without_node
from generators.strategies import graphs


@settings(max_examples=60, deadline=None)
@given(graphs(max_nodes=8))
def test_json_round_trip_is_exact(graph) -> None:  # type: ignore[no-untyped-def]
    text = graph.to_json()
    again = graph_from_json(text)
    assert again == graph
    assert again.to_json() == text
    assert again.digest() == graph.digest()
    validate(again)


@pytest.fixture
def graph_dict() -> dict:  # type: ignore[type-arg]
    return {
        "format": 1,
        "placeholders": [{"shape": [2, 3], "dtype": "float32", "kind": "input"}],
        "nodes": [
            {"op": "exp", "inputs": [{"input": 0}], "attrs": {}, "outputs": [{"shape": [2, 3], "dtype": "float32"}]},
            {"op": "abs", "inputs": [{"node": 0, "output": 0}], "attrs": {}, "outputs": [{"shape": [2, 3], "dtype": "float32"}]},
        ],
        "outputs": [{"node": 1, "output": 0}],
    }


def test_valid_hand_written_graph(graph_dict: dict) -> None:  # type: ignore[type-arg]
    validate(graph_from_json(json.dumps(graph_dict)))


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d["nodes"][0].update(op="nosuch"), "unknown operator 'nosuch'"),
        (lambda d: d["nodes"][1]["inputs"].__setitem__(0, {"node": 1, "output": 0}), "does not come before it"),
        (lambda d: d["nodes"][1]["inputs"].__setitem__(0, {"input": 7}), "placeholder 7 does not exist"),
        (lambda d: d["nodes"][0]["outputs"][0].update(shape=[2, 4]), "declared outputs"),
        (lambda d: d["placeholders"][0].update(dtype="bool"), "dtype bool not supported"),
        (lambda d: d["nodes"][0]["attrs"].update(axis=1), "attributes"),
        (lambda d: d.update(outputs=[]), "no outputs"),
    ],
)
def test_validate_names_the_problem(graph_dict: dict, edit, message: str) -> None:  # type: ignore[no-untyped-def,type-arg]
    edit(graph_dict)
    with pytest.raises(GraphError, match=message):
        validate(graph_from_json(json.dumps(graph_dict)))


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "not valid JSON"),
        ("[]", "expected an object"),
        ('{"format": 9, "placeholders": [], "nodes": [], "outputs": []}', "unsupported format"),
        ('{"format": 1, "placeholders": [{"shape": [0], "dtype": "float32", "kind": "input"}], "nodes": [], "outputs": []}',
         r"placeholders\[0\].shape\[0\]"),
        ('{"format": 1, "placeholders": [{"shape": [1], "dtype": "complex64", "kind": "input"}], "nodes": [], "outputs": []}',
         "unknown dtype"),
        ('{"format": 1, "placeholders": [], "nodes": [{"op": "abs", "inputs": ["x"], "attrs": {}, "outputs": []}], "outputs": []}',
         "expected {\"input\": i}"),
    ],
)
def test_malformed_json_is_a_graph_error(text: str, message: str) -> None:
    with pytest.raises(GraphError, match=message):
        graph_from_json(text, where="edited.json")


def _dependents(graph: Graph, index: int) -> set[int]:
    gone = {index}
    for i, node in enumerate(graph.nodes):
        if any(isinstance(r, NodeRef) and r.node in gone for r in node.inputs):
            gone.add(i)
    return gone


@settings(max_examples=80, deadline=None)
@given(graphs(max_nodes=8), st.data())
def test_without_node_drops_exactly_the_node_and_its_dependents(graph: Graph, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(graph.nodes) - 1))
    gone = _dependents(graph, index)
    smaller = without_node(graph, index)
    kept = [n for i, n in enumerate(graph.nodes) if i not in gone]
    if not kept:
        assert smaller is None
        return
    assert smaller is not None
    validate(smaller)
    assert [(n.op, n.attrs, n.outputs) for n in smaller.nodes] == [(n.op, n.attrs, n.outputs) for n in kept]
    # every value a removed node consumed, if still computed, is consumed or an output
    consumed = {r for n in smaller.nodes for r in n.inputs} | set(smaller.outputs)
    new_index = {old: new for new, old in enumerate(i for i in range(len(graph.nodes)) if i not in gone)}
    for i in gone:
        for r in graph.nodes[i].inputs:
            if isinstance(r, NodeRef) and r.node in new_index:
                assert NodeRef(new_index[r.node], r.output) in consumed
    # placeholders: exactly the ones still used
    used = {r.index for n in smaller.nodes for r in n.inputs if isinstance(r, InputRef)}
    used |= {r.index for r in smaller.outputs if isinstance(r, InputRef)}
    assert used == set(range(len(smaller.placeholders)))
