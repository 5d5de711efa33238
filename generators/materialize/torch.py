"""Graph -> torch.nn.Module, with weights as buffers. Imports torch (and only here)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from generators.ir import Graph, InputRef, ValueRef
from generators.reference import as_tuple
from generators.spec import Missing, OpSpec


def to_tensor(array: np.ndarray, device: str = "cpu") -> torch.Tensor:
    """NumPy -> torch, bfloat16 included (NumPy has no native bfloat16; the trip through
    float32 is exact)."""
    # np.ascontiguousarray would turn a 0-d array into a 1-d one.
    array = np.array(array, copy=True, order="C")
    if array.dtype.name == "bfloat16":
        return torch.from_numpy(array.astype(np.float32)).to(torch.bfloat16).to(device)
    return torch.from_numpy(array).to(device)


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:
        import ml_dtypes

        return tensor.to(torch.float32).numpy().astype(ml_dtypes.bfloat16)
    return tensor.resolve_conj().resolve_neg().numpy()


class GraphModule(torch.nn.Module):
    """Runs the graph's nodes in order; forward(*inputs) takes the `input` placeholders."""

    def __init__(
        self, graph: Graph, weights: Mapping[int, np.ndarray], catalog: Mapping[str, OpSpec], device: str = "cpu"
    ) -> None:
        super().__init__()
        self.graph = graph
        self._lowerings = []
        for node in graph.nodes:
            lowering = catalog[node.op].torch
            if isinstance(lowering, Missing):
                raise NotImplementedError(f"{node.op} has no torch lowering: {lowering.reason}")
            self._lowerings.append(lowering)
        self._attrs = [node.attr_map for node in graph.nodes]
        for i in graph.weight_indices:
            self.register_buffer(f"w{i}", to_tensor(weights[i], device))
        self._input_slots = {index: k for k, index in enumerate(graph.input_indices)}

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        results: list[tuple[Any, ...]] = []

        def get(ref: ValueRef) -> Any:
            if isinstance(ref, InputRef):
                slot = self._input_slots.get(ref.index)
                return getattr(self, f"w{ref.index}") if slot is None else inputs[slot]
            return results[ref.node][ref.output]

        for node, lowering, attrs in zip(self.graph.nodes, self._lowerings, self._attrs):
            results.append(as_tuple(lowering(torch, [get(r) for r in node.inputs], attrs)))
        return tuple(get(r) for r in self.graph.outputs)


def to_torch(
    graph: Graph, weights: Mapping[int, np.ndarray], catalog: Mapping[str, OpSpec] | None = None, device: str = "cpu"
) -> GraphModule:
    if catalog is None:
        from generators.ops import catalog as full_catalog

        catalog = full_catalog()
    return GraphModule(graph, weights, catalog, device).eval()


def run(module: GraphModule, inputs: Sequence[np.ndarray], device: str = "cpu") -> list[np.ndarray]:
    with torch.no_grad():
        return [to_numpy(o) for o in module(*[to_tensor(x, device) for x in inputs])]


def gradients(
    module: GraphModule, inputs: Sequence[np.ndarray], cotangents: Sequence[np.ndarray], device: str = "cpu"
) -> list[np.ndarray]:
    """d sum_k(outputs[k] * cotangents[k]) / d input, for every float input (zeros where an
    input does not reach a float output); non-float inputs get no entry."""
    xs = [to_tensor(x, device) for x in inputs]
    wrt = [x.requires_grad_() for x in xs if x.is_floating_point()]
    with torch.enable_grad():
        outputs = module(*xs)
        terms = [(o * to_tensor(c, device)).sum() for o, c in zip(outputs, cotangents) if o.is_floating_point()]
        if not wrt or not terms:
            return [to_numpy(torch.zeros_like(x)) for x in wrt]
        grads = torch.autograd.grad(torch.stack([t.to(torch.float64) for t in terms]).sum(), wrt, allow_unused=True)
    return [to_numpy(torch.zeros_like(x) if g is None else g) for x, g in zip(wrt, grads)]
