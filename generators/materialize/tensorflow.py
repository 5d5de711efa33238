"""Graph -> tf.Module, with weights as constants. Imports tensorflow (and only here).

The IR is channels-first (NCHW); tf lowerings that need channels-last transpose inside.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from generators.ir import Graph, InputRef, ValueRef  # noqa: E402
from generators.reference import as_tuple  # noqa: E402
from generators.spec import Missing, OpSpec  # noqa: E402


def to_tensor(array: np.ndarray) -> Any:
    return tf.constant(array)


def to_numpy(tensor: Any) -> np.ndarray:
    return np.asarray(tensor.numpy())


class GraphModule(tf.Module):  # type: ignore[misc]
    """Runs the graph's nodes in order; __call__(*inputs) takes the `input` placeholders."""

    def __init__(self, graph: Graph, weights: Mapping[int, np.ndarray], catalog: Mapping[str, OpSpec]) -> None:
        super().__init__()
        self.graph = graph
        self._lowerings = []
        for node in graph.nodes:
            lowering = catalog[node.op].tf
            if isinstance(lowering, Missing):
                raise NotImplementedError(f"{node.op} has no tensorflow lowering: {lowering.reason}")
            self._lowerings.append(lowering)
        self._attrs = [node.attr_map for node in graph.nodes]
        self._weights = {i: tf.constant(weights[i]) for i in graph.weight_indices}
        self._input_slots = {index: k for k, index in enumerate(graph.input_indices)}

    def __call__(self, *inputs: Any) -> tuple[Any, ...]:
        results: list[tuple[Any, ...]] = []

        def get(ref: ValueRef) -> Any:
            if isinstance(ref, InputRef):
                slot = self._input_slots.get(ref.index)
                return self._weights[ref.index] if slot is None else inputs[slot]
            return results[ref.node][ref.output]

        for node, lowering, attrs in zip(self.graph.nodes, self._lowerings, self._attrs):
            results.append(as_tuple(lowering(tf, [get(r) for r in node.inputs], attrs)))
        return tuple(get(r) for r in self.graph.outputs)


def to_tensorflow(
    graph: Graph, weights: Mapping[int, np.ndarray], catalog: Mapping[str, OpSpec] | None = None
) -> GraphModule:
    if catalog is None:
        from generators.ops import catalog as full_catalog

        catalog = full_catalog()
    return GraphModule(graph, weights, catalog)


def run(module: GraphModule, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    return [to_numpy(o) for o in module(*[to_tensor(x) for x in inputs])]


def gradients(module: GraphModule, inputs: Sequence[np.ndarray], cotangents: Sequence[np.ndarray]) -> list[np.ndarray]:
    """d sum_k(outputs[k] * cotangents[k]) / d input, for every float input (zeros where an
    input does not reach a float output); non-float inputs get no entry."""
    xs = [to_tensor(x) for x in inputs]
    wrt = [x for x in xs if x.dtype.is_floating]
    with tf.GradientTape() as tape:
        for x in wrt:
            tape.watch(x)
        outputs = module(*xs)
        terms = [
            tf.cast(tf.reduce_sum(o * tf.constant(c)), tf.float64)
            for o, c in zip(outputs, cotangents)
            if o.dtype.is_floating
        ]
        total = tf.add_n(terms) if terms else None
    if total is None or not wrt:
        return [np.zeros(x.shape, x.dtype.as_numpy_dtype) for x in wrt]
    grads = tape.gradient(total, wrt, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return [to_numpy(g) for g in grads]
