"""The verifier's view of a model: a DAG of dense affine layers and elementwise activations
over the flattened input, built from a LoadedModel's graph in float64. Owns linearization
(composing every run of linear operators into one matrix) and the concrete forward pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from generators.ir import Graph, InputRef, NodeRef, ValueRef
from generators.load.model import LoadedModel, ModelError
from generators.reference import as_tuple
from generators.spec import Missing, OpSpec

# Operators that are affine in their variable operands. Which operands may vary differs:
# sums and concatenations in all of them; products in at most one; the rest only in the first.
AFFINE_IN_ANY = frozenset({"add", "sub", "concat", "stack"})
AFFINE_IN_ONE = frozenset({"mul", "matmul", "bmm", "einsum", "linear"})
AFFINE_IN_FIRST = frozenset({
    "div", "neg", "flatten", "reshape", "transpose", "squeeze", "unsqueeze", "broadcast_to", "tile",
    "flip", "roll", "slice", "pad", "index_select", "take", "gather", "repeat_interleave",
    "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "batch_norm",
    "avg_pool1d", "avg_pool2d", "avg_pool3d", "global_avg_pool2d", "sum", "mean",
})
ACTIVATIONS = frozenset({"relu", "leaky_relu", "sigmoid", "tanh"})
# Rewritten exactly into ReLUs: clamp(x, a, b) = a + relu(x - a) - relu(x - b), and a max over a
# pooling window as a tree of max(p, q) = p + relu(q - p).
CLAMPS = {"relu6": (0.0, 6.0), "hardtanh": ("min_val", "max_val"), "clip": ("min", "max")}
MAX_POOLS = frozenset({"max_pool1d", "max_pool2d", "max_pool3d"})
# A monotone map on the last layer: the verifier works on the logits before it. Differences
# of log-softmax outputs equal differences of logits; softmax only keeps their order.
OUTPUT_SQUASHES = frozenset({"softmax", "log_softmax"})
# Dense matrices bigger than this (float64 entries) are refused rather than swapping.
MAX_MATRIX_ENTRIES = 40_000_000
SUPPORTED = sorted(AFFINE_IN_ANY | AFFINE_IN_ONE | AFFINE_IN_FIRST | ACTIVATIONS | OUTPUT_SQUASHES | MAX_POOLS | set(CLAMPS))


@dataclass(frozen=True, eq=False)
class Affine:
    """y = sum_p weights[p] @ x_{parents[p]} + bias (flattened values)."""

    parents: tuple[int, ...]
    weights: tuple[torch.Tensor, ...]
    bias: torch.Tensor

    @property
    def size(self) -> int:
        return int(self.bias.shape[0])


@dataclass(frozen=True, eq=False)
class Activation:
    """y = f(x_parent) elementwise; the parent is always an Affine node."""

    parent: int
    kind: str
    slope: float = 0.0  # leaky_relu's negative slope
    size: int = 0


Layer = Affine | Activation


@dataclass(frozen=True, eq=False)
class Network:
    """Node 0 is the flattened input; node i > 0 is layers[i - 1]; the last node is the
    output (an Affine). `squash` names a softmax/log_softmax dropped from the output."""

    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    layers: tuple[Layer, ...]
    squash: str | None = None

    @property
    def input_size(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def output_size(self) -> int:
        return self.layers[-1].size

    def size(self, node: int) -> int:
        return self.input_size if node == 0 else self.layers[node - 1].size

    def activation_nodes(self) -> list[int]:
        return [i + 1 for i, layer in enumerate(self.layers) if isinstance(layer, Activation)]

    def forward_all(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every node's value for a batch x of shape [B, input_size]."""
        values = [x]
        for layer in self.layers:
            if isinstance(layer, Affine):
                out = layer.bias.expand(x.shape[0], -1)
                for p, w in zip(layer.parents, layer.weights):
                    out = out + values[p] @ w.T
                values.append(out)
            else:
                values.append(activate(layer, values[layer.parent]))
        return values

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_all(x)[-1]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Outputs (before any dropped squash) for a NumPy batch [B, input_size]."""
        with torch.no_grad():
            return self.forward(torch.as_tensor(np.asarray(x, dtype=np.float64))).numpy()


def activate(layer: Activation, x: torch.Tensor) -> torch.Tensor:
    if layer.kind == "relu":
        return torch.relu(x)
    if layer.kind == "leaky_relu":
        return torch.where(x >= 0, x, layer.slope * x)
    if layer.kind == "sigmoid":
        return torch.sigmoid(x)
    return torch.tanh(x)


# --- linearization ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Expr:
    """A value that is affine in the anchors: value = sum_a terms[a] . anchor_a + bias, where
    terms[a] has shape [anchor size, *value shape] (one slice per anchor coordinate)."""

    terms: Mapping[int, torch.Tensor]
    bias: torch.Tensor


def _combine(a: _Expr, b: _Expr, sign: float = 1.0) -> _Expr:
    """a + sign * b, term by term."""
    terms = dict(a.terms)
    for anchor, t in b.terms.items():
        terms[anchor] = terms[anchor] + sign * t if anchor in terms else sign * t
    return _Expr(terms, a.bias + sign * b.bias)


def _pick(expr: _Expr, index: torch.Tensor, shape: tuple[int, ...]) -> _Expr:
    """The flattened entries `index` of expr, reshaped to `shape` (a linear selection)."""
    terms = {a: t.reshape(t.shape[0], -1)[:, index].reshape((t.shape[0], *shape)) for a, t in expr.terms.items()}
    return _Expr(terms, expr.bias.reshape(-1)[index].reshape(shape))


def _constant(value: Any) -> torch.Tensor:
    array = np.asarray(value)
    if array.dtype.kind == "f" or array.dtype.name == "bfloat16":
        array = array.astype(np.float64)
    return torch.from_numpy(np.array(array, copy=True))


class _Builder:
    def __init__(self, model: LoadedModel, catalog: Mapping[str, OpSpec]) -> None:
        self.graph: Graph = model.graph
        self.weights = model.weights
        self.catalog = catalog
        self.layers: list[Layer] = []
        self.anchor_sizes: dict[int, int] = {0: model.input_size}

    def lowering(self, op: str) -> Any:
        spec = self.catalog.get(op)
        if spec is None or isinstance(spec.torch, Missing):
            raise ModelError(f"operator {op} cannot be linearized (no torch lowering)")
        return spec.torch

    def apply(self, op: str, operands: Sequence[torch.Tensor], attrs: Mapping[str, Any]) -> torch.Tensor:
        out = as_tuple(self.lowering(op)(torch, list(operands), dict(attrs)))
        if len(out) != 1:
            raise ModelError(f"operator {op} with {len(out)} outputs is not supported by the verifier")
        result: torch.Tensor = out[0]
        return result

    def affine_node(self, expr: _Expr) -> int:
        """Materializes `expr` as an Affine layer over its anchors; returns its node index."""
        parents = tuple(sorted(expr.terms))
        size = int(expr.bias.numel())
        weights = []
        for a in parents:
            t = expr.terms[a]
            weights.append(t.reshape(t.shape[0], size).T.contiguous())
        self.layers.append(Affine(parents, tuple(weights), expr.bias.reshape(size).contiguous()))
        return len(self.layers)

    def identity(self, node: int, shape: tuple[int, ...]) -> _Expr:
        size = self.anchor_sizes[node]
        self.check_size(size * size, "an activation")
        eye = torch.eye(size, dtype=torch.float64).reshape((size, *shape))
        return _Expr({node: eye}, torch.zeros(shape, dtype=torch.float64))

    def check_size(self, entries: int, what: str) -> None:
        if entries > MAX_MATRIX_ENTRIES:
            raise ModelError(
                f"{what} needs a dense matrix of {entries:,} entries (limit {MAX_MATRIX_ENTRIES:,}); "
                "the model is too large for the verifier"
            )

    def linear_step(self, index: int, op: str, values: Sequence[_Expr | torch.Tensor], attrs: Mapping[str, Any]) -> _Expr:
        variable = [i for i, v in enumerate(values) if isinstance(v, _Expr)]
        if op in AFFINE_IN_ONE and len(variable) > 1:
            raise ModelError(f"node {index} ({op}) multiplies two input-dependent values: not piecewise linear")
        if op in AFFINE_IN_FIRST and variable != [0]:
            raise ModelError(f"node {index} ({op}) depends on the input through an operand the verifier treats as constant")

        def with_parts(parts: Sequence[torch.Tensor | None]) -> torch.Tensor:
            operands: list[torch.Tensor] = []
            for part, v in zip(parts, values):
                if isinstance(v, _Expr):
                    operands.append(part if part is not None else torch.zeros_like(v.bias))
                else:
                    operands.append(v)
            return self.apply(op, operands, attrs)

        bias = with_parts([v.bias if isinstance(v, _Expr) else None for v in values])
        zero = with_parts([None] * len(values))
        exprs = [v for v in values if isinstance(v, _Expr)]
        anchors = sorted({a for e in exprs for a in e.terms})
        terms: dict[int, torch.Tensor] = {}
        for a in anchors:
            columns = [v.terms.get(a) if isinstance(v, _Expr) else None for v in values]
            self.check_size(self.anchor_sizes[a] * int(bias.numel()), f"node {index} ({op})")
            terms[a] = self.map_columns(op, values, columns, attrs) - zero
        return _Expr(terms, bias)

    def map_columns(
        self, op: str, values: Sequence[_Expr | torch.Tensor], columns: Sequence[torch.Tensor | None], attrs: Mapping[str, Any]
    ) -> torch.Tensor:
        """The operator applied to each anchor coordinate's slice (zeros where an operand does
        not depend on that anchor), batched with vmap and falling back to a loop."""
        n = next(c.shape[0] for c in columns if c is not None)
        moving = [i for i, c in enumerate(columns) if c is not None]

        def one(*slices: torch.Tensor) -> torch.Tensor:
            operands: list[torch.Tensor] = []
            for i, v in enumerate(values):
                if i in moving:
                    operands.append(slices[moving.index(i)])
                elif isinstance(v, _Expr):
                    operands.append(torch.zeros_like(v.bias))
                else:
                    operands.append(v)
            return self.apply(op, operands, attrs)

        stacked = [c for c in columns if c is not None]
        try:
            return torch.vmap(one)(*stacked)
        except Exception:  # noqa: BLE001 - some lowerings are not vmap-able; a loop is exact too
            return torch.stack([one(*(s[j] for s in stacked)) for j in range(n)])

    def relu_of(self, expr: _Expr, shape: tuple[int, ...]) -> _Expr:
        """relu(expr) as a new Affine + Activation pair; returns the activation as an anchor."""
        pre = self.affine_node(expr)
        size = self.layers[pre - 1].size
        self.layers.append(Activation(pre, "relu", 0.0, size))
        node_id = len(self.layers)
        self.anchor_sizes[node_id] = size
        return self.identity(node_id, shape)

    def clamp(self, x: _Expr, low: float, high: float, shape: tuple[int, ...]) -> _Expr:
        shift_low = _Expr(x.terms, x.bias - low)
        shift_high = _Expr(x.terms, x.bias - high)
        above_low = self.relu_of(shift_low, shape)
        above_high = self.relu_of(shift_high, shape)
        out = _combine(above_low, above_high, -1.0)
        return _Expr(out.terms, out.bias + low)

    def max_pool(self, op: str, x: _Expr, attrs: Mapping[str, Any], out_shape: tuple[int, ...]) -> _Expr:
        """Each window's members found by pooling one-hot inputs, then a tree of pairwise maxima."""
        in_shape = tuple(x.bias.shape)
        n = int(x.bias.numel())
        self.check_size(n * int(np.prod(out_shape)), op)
        probes = torch.full((n, n), -1.0, dtype=torch.float64)
        probes.fill_diagonal_(1.0)
        pooled = self.map_columns(op, [x], [probes.reshape((n, *in_shape))], attrs).reshape(n, -1)
        members = [torch.nonzero(pooled[:, o] > 0).squeeze(1) for o in range(pooled.shape[1])]
        width = max(len(m) for m in members)
        if min(len(m) for m in members) == 0:
            raise ModelError(f"{op}: a pooling window covers only padding")
        # Windows with fewer members repeat one: max(p, p) = p exactly.
        slots = torch.stack([torch.cat([m, m[:1].expand(width - len(m))]) for m in members], dim=1)
        candidates = [_pick(x, slots[j], out_shape) for j in range(width)]
        while len(candidates) > 1:
            merged = []
            for a, b in zip(candidates[0::2], candidates[1::2]):
                merged.append(_combine(a, self.relu_of(_combine(b, a, -1.0), out_shape)))
            if len(candidates) % 2:
                merged.append(candidates[-1])
            candidates = merged
        return candidates[0]

    def build(self) -> Network:
        graph = self.graph
        if len(graph.input_indices) != 1 or len(graph.outputs) != 1:
            raise ModelError("the verifier needs a model with exactly one input and one output")
        (input_index,) = graph.input_indices
        in_shape = graph.placeholders[input_index].type.shape
        values: dict[ValueRef, _Expr | torch.Tensor] = {}
        for i in range(len(graph.placeholders)):
            if i == input_index:
                values[InputRef(i)] = self.identity(0, in_shape)
            else:
                values[InputRef(i)] = _constant(self.weights[i])
        squash: str | None = None
        for index, node in enumerate(graph.nodes):
            operands = [values[r] for r in node.inputs]
            attrs = node.attr_map
            is_output = NodeRef(index, 0) == graph.outputs[0]
            if not any(isinstance(v, _Expr) for v in operands):
                with torch.no_grad():
                    outs = as_tuple(self.lowering(node.op)(torch, list(operands), dict(attrs)))
                for k, out in enumerate(outs):
                    values[NodeRef(index, k)] = out
                continue
            if node.op == "cast" and node.outputs[0].dtype.value.startswith(("float", "bfloat")):
                # The verifier reasons in real arithmetic: a cast between float types is the identity.
                values[NodeRef(index, 0)] = operands[0]
            elif node.op == "leaky_relu" and not 0.0 <= float(attrs["negative_slope"]) <= 1.0:  # type: ignore[arg-type]
                # The relaxations assume a slope in [0, 1]; any other is s*x + (1-s)*relu(x).
                s = float(attrs["negative_slope"])  # type: ignore[arg-type]
                x = operands[0]
                assert isinstance(x, _Expr)
                scaled = _Expr({a: s * t for a, t in x.terms.items()}, s * x.bias)
                relu = self.relu_of(x, node.outputs[0].shape)
                values[NodeRef(index, 0)] = _combine(scaled, _Expr({a: (1 - s) * t for a, t in relu.terms.items()}, (1 - s) * relu.bias))
            elif node.op in ACTIVATIONS:
                pre = self.affine_node(operands[0])  # type: ignore[arg-type]
                size = self.layers[pre - 1].size
                slope = float(attrs.get("negative_slope", 0.0))  # type: ignore[arg-type]
                self.layers.append(Activation(pre, node.op, slope, size))
                node_id = len(self.layers)
                self.anchor_sizes[node_id] = size
                values[NodeRef(index, 0)] = self.identity(node_id, node.outputs[0].shape)
            elif node.op in CLAMPS:
                low_key, high_key = CLAMPS[node.op]
                low = float(attrs[low_key]) if isinstance(low_key, str) else low_key  # type: ignore[arg-type]
                high = float(attrs[high_key]) if isinstance(high_key, str) else high_key  # type: ignore[arg-type]
                values[NodeRef(index, 0)] = self.clamp(operands[0], low, high, node.outputs[0].shape)  # type: ignore[arg-type]
            elif node.op in MAX_POOLS:
                if not isinstance(operands[0], _Expr) or len(node.outputs) != 1:
                    raise ModelError(f"node {index} ({node.op}): only the pooled values are supported")
                values[NodeRef(index, 0)] = self.max_pool(node.op, operands[0], attrs, node.outputs[0].shape)
            elif node.op in OUTPUT_SQUASHES and is_output:
                squash = node.op
                values[NodeRef(index, 0)] = operands[0]
                self.check_squash_axis(node.outputs[0].shape, attrs)
            elif node.op in AFFINE_IN_ANY | AFFINE_IN_ONE | AFFINE_IN_FIRST:
                if len(node.outputs) != 1:
                    raise ModelError(f"node {index} ({node.op}) has several outputs: not supported by the verifier")
                values[NodeRef(index, 0)] = self.linear_step(index, node.op, operands, attrs)
            else:
                raise ModelError(
                    f"node {index}: operator {node.op} is not supported by the verifier "
                    f"(supported: {', '.join(SUPPORTED)})"
                )
        out = values[graph.outputs[0]]
        if not isinstance(out, _Expr):
            raise ModelError("the model's output does not depend on its input")
        self.affine_node(out)
        out_shape = graph.type_of(graph.outputs[0]).shape
        return Network(tuple(in_shape), tuple(out_shape), tuple(self.layers), squash)

    @staticmethod
    def check_squash_axis(shape: tuple[int, ...], attrs: Mapping[str, Any]) -> None:
        axis = int(attrs.get("axis", attrs.get("dim", -1)))
        if axis % max(len(shape), 1) != len(shape) - 1 or int(np.prod(shape[:-1])) != 1:
            raise ModelError("a softmax at the output is supported only over the last axis of a single row")


def linearize(model: LoadedModel, catalog: Mapping[str, OpSpec] | None = None) -> Network:
    """The model as affine layers and activations. Raises ModelError naming the first
    operator the verifier cannot represent exactly."""
    if catalog is None:
        from generators.ops import catalog as full_catalog

        catalog = full_catalog()
    with torch.no_grad():
        return _Builder(model, catalog).build()
