"""Runs a Graph with the operators' NumPy references: the ground truth for value search and
for the oracle. Imports no framework.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from generators.errors import GauntletError
from generators.ir import Graph, InputRef, Node, ValueRef
from generators.spec import Missing, OpSpec

NodeCheck = Callable[[int, Node, Sequence[np.ndarray], Sequence[np.ndarray]], bool]
Perturb = Callable[[int, Node, tuple[np.ndarray, ...]], tuple[np.ndarray, ...]]


class NoReference(GauntletError):
    """The graph uses an operator without a NumPy reference."""


class ReferenceRejects(Exception):
    """The reference refused these inputs: a rule-backed operator (whose reference is the
    framework itself) got a call its inferred rule admits but the framework rejects. The
    test case is skipped like one without inputs, not reported. `node` is the index of the
    refusing node in the graph being evaluated (set by `evaluate`), so a caller can drop
    just that node and what depends on it."""

    node: int | None = None


def as_tuple(result: Any) -> tuple[Any, ...]:
    return tuple(result) if isinstance(result, (tuple, list)) else (result,)


def widen(array: np.ndarray) -> np.ndarray:
    """float64 for any float dtype (exact), int64 for any int; bool unchanged."""
    if array.dtype.kind == "f" or array.dtype.name == "bfloat16":
        return array.astype(np.float64)
    if array.dtype.kind in "iu":
        return array.astype(np.int64)
    return array


def run_reference(spec: OpSpec, inputs: Sequence[np.ndarray], attrs: Mapping[str, Any]) -> tuple[np.ndarray, ...]:
    if isinstance(spec.reference, Missing):
        raise NoReference(f"{spec.name} has no NumPy reference: {spec.reference.reason}")
    with np.errstate(all="ignore"):
        return tuple(np.asarray(o) for o in as_tuple(spec.reference(np, list(inputs), attrs)))


def evaluate(
    graph: Graph,
    feed: Sequence[np.ndarray],
    catalog: Mapping[str, OpSpec],
    *,
    wide: bool = False,
    check: NodeCheck | None = None,
    perturb: Perturb | None = None,
    perturb_inputs: Perturb | None = None,
) -> list[tuple[np.ndarray, ...]] | None:
    """All node outputs for `feed` (one array per placeholder). With `wide`, every node
    computes in float64/int64 (the high-precision reference). `check(i, node, inputs,
    outputs)` may veto a node; then None is returned. `perturb(i, node, outputs)` may
    replace a node's outputs before later nodes see them, `perturb_inputs(i, node,
    inputs)` the inputs one node sees (rounding-noise experiments)."""
    results: list[tuple[np.ndarray, ...]] = []

    def get(ref: ValueRef) -> np.ndarray:
        if isinstance(ref, InputRef):
            return widen(feed[ref.index]) if wide else feed[ref.index]
        value = results[ref.node][ref.output]
        return widen(value) if wide else value

    for i, node in enumerate(graph.nodes):
        inputs = [get(r) for r in node.inputs]
        if perturb_inputs is not None:
            inputs = list(perturb_inputs(i, node, tuple(inputs)))
        try:
            outputs = run_reference(catalog[node.op], inputs, node.attr_map)
        except ReferenceRejects as refused:
            refused.node = i
            raise
        if not wide:
            outputs = tuple(o.astype(t.dtype.numpy(), copy=False) for o, t in zip(outputs, node.outputs))
        if check is not None and not check(i, node, inputs, outputs):
            return None
        if perturb is not None:
            outputs = perturb(i, node, outputs)
        results.append(outputs)
    return results


def graph_outputs(graph: Graph, results: Sequence[tuple[np.ndarray, ...]], feed: Sequence[np.ndarray]) -> list[np.ndarray]:
    out = []
    for ref in graph.outputs:
        out.append(feed[ref.index] if isinstance(ref, InputRef) else results[ref.node][ref.output])
    return out
