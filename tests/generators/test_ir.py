"""The IR: exact JSON round trip, and validate() rejecting malformed or edited graphs with
a clear GraphError rather than a traceback."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings

from generators.errors import GraphError
from generators.ir import graph_from_json, validate
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
