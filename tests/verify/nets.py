"""Small random networks as LoadedModels for verifier tests: an MLP in the graph IR whose
`run_real` is the NumPy reference in float32 (the 'real model')."""

from __future__ import annotations

import numpy as np

from generators.dtypes import DType
from generators.ir import Graph, InputRef, Node, NodeRef, Placeholder, TensorType, ValueRef, validate
from generators.load.model import LoadedModel
from generators.load.onnx import loader_catalog
from generators.ops import catalog
from generators.reference import evaluate, graph_outputs


def mlp(widths: list[int], activation: str = "relu", seed: int = 0, slope: float = 0.1, scale: float = 1.0) -> LoadedModel:
    rng = np.random.default_rng(seed)
    f32 = DType.float32
    placeholders = [Placeholder(TensorType((1, widths[0]), f32))]
    weights: dict[int, np.ndarray] = {}
    nodes: list[Node] = []
    current: ValueRef = InputRef(0)
    for i in range(len(widths) - 1):
        w = (rng.normal(size=(widths[i + 1], widths[i])) * scale / np.sqrt(widths[i])).astype(np.float32)
        b = (rng.normal(size=(widths[i + 1],)) * 0.1).astype(np.float32)
        refs = []
        for array in (w, b):
            placeholders.append(Placeholder(TensorType(array.shape, f32), "weight"))
            weights[len(placeholders) - 1] = array
            refs.append(InputRef(len(placeholders) - 1))
        out_type = TensorType((1, widths[i + 1]), f32)
        nodes.append(Node("linear", (current, *refs), (), (out_type,)))
        current = NodeRef(len(nodes) - 1)
        if i < len(widths) - 2:
            attrs = (("negative_slope", slope),) if activation == "leaky_relu" else ()
            nodes.append(Node(activation, (current,), attrs, (out_type,)))
            current = NodeRef(len(nodes) - 1)
    graph = Graph(tuple(placeholders), tuple(nodes), (current,))
    validate(graph, loader_catalog())  # real models' attributes go beyond generation ranges
    ops = catalog()

    def run_real(x: np.ndarray) -> np.ndarray:
        feed = [np.asarray(x, np.float32).reshape(1, widths[0])] + [weights[i] for i in range(1, len(placeholders))]
        return graph_outputs(graph, evaluate(graph, feed, ops), feed)[0].astype(np.float64)

    return LoadedModel(graph, weights, run_real, f"mlp{widths} {activation} seed {seed}")
