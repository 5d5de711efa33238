"""The second oracle: gradients of sum_k(outputs[k] * cotangents[k]) with respect to every
float input, from each backend that can differentiate, against a float64 reference.

The reference is the gradient of the same graph with every float widened to float64,
computed by torch and by tf; an element is judged only where the two agree and where
nudging the inputs by their dtype's rounding does not move it (kinks, ties and
non-differentiable points are where frameworks legitimately pick different subgradients).
Graphs with float16/bfloat16 values are left to the forward oracle. Runs in a worker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from fuzz.backends.base import Backend, Model
from fuzz.backends.tf_eager import TfEager
from fuzz.backends.torch_eager import TorchEager
from fuzz.oracle import TOLERANCE, Expected, Finding, compare
from fuzz.stability import UNIT_ROUNDOFF
from generators.dtypes import DType
from generators.ir import Graph, InputRef, Node, NodeRef, Placeholder, TensorType
from generators.spec import AttrValue, OpSpec

# Gradients compound more rounding than the forward pass (every path is summed): judged
# with the forward table widened by this factor.
GRADIENT_SLACK = 10.0


def _wide(t: TensorType) -> TensorType:
    return TensorType(t.shape, DType.float64) if t.dtype.is_float else t


_NARROW_FLOATS = frozenset({"float16", "bfloat16", "float32"})
# Kink detection moves the inputs by at least this relative amount (and zeros by this much):
# a float64 input's own rounding is too small to survive, and ties at 0 (relu, minimum of
# equal zeros) need an additive move.
MIN_NUDGE = 2.0**-40


def _wide_attr(value: AttrValue) -> AttrValue:
    return "float64" if isinstance(value, str) and value in _NARROW_FLOATS else value


def widen_graph(graph: Graph) -> Graph:
    """The same graph with every float value declared float64 (and float dtype attributes,
    such as cast's `to` or one_hot's `dtype`, widened with them)."""
    return Graph(
        tuple(Placeholder(_wide(p.type), p.kind) for p in graph.placeholders),
        tuple(
            Node(n.op, n.inputs, tuple((k, _wide_attr(v)) for k, v in n.attrs), tuple(_wide(o) for o in n.outputs))
            for n in graph.nodes
        ),
        graph.outputs,
    )


def eligible(graph: Graph) -> bool:
    """Some float input reaches the outputs, and every float is float32 or float64."""
    floats = [p.type.dtype for p in graph.placeholders if p.type.dtype.is_float] + [
        o.dtype for n in graph.nodes for o in n.outputs if o.dtype.is_float
    ]
    has_float_input = any(graph.placeholders[i].type.dtype.is_float for i in graph.input_indices)
    return has_float_input and all(d in (DType.float32, DType.float64) for d in floats)


@dataclass(frozen=True)
class GradientCheck:
    findings: tuple[Finding, ...]
    checked: tuple[str, ...]  # backends whose gradients were judged


def _as64(arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
    return [a.astype(np.float64) if a.dtype.kind == "f" else a for a in arrays]


def _grads(backend: Backend, model: Model, inputs: Sequence[np.ndarray], cotangents: Sequence[np.ndarray]) -> list[np.ndarray]:
    return list(backend.gradients(backend.prepare(model), inputs, cotangents))  # type: ignore[attr-defined]


def _cotangents(graph: Graph, rng: np.random.Generator) -> list[np.ndarray]:
    return [
        rng.uniform(-1.0, 1.0, size=graph.type_of(r).shape).astype(graph.type_of(r).dtype.numpy())
        if graph.type_of(r).dtype.is_float else np.zeros(graph.type_of(r).shape, graph.type_of(r).dtype.numpy())
        for r in graph.outputs
    ]


def cotangents_for(graph: Graph, seed: int) -> list[np.ndarray]:
    """The cotangents `check_gradients` uses for this graph and seed (for reproducers)."""
    return _cotangents(graph, np.random.default_rng(seed + 7919))


def _loosest_downstream(graph: Graph, placeholder: int) -> DType:
    """The least precise float dtype among the placeholder and every value computed from it."""
    dtypes = {graph.placeholders[placeholder].type.dtype}
    reached: set[int] = set()
    for n, node in enumerate(graph.nodes):
        if any((isinstance(r, InputRef) and r.index == placeholder) or (isinstance(r, NodeRef) and r.node in reached)
               for r in node.inputs):
            reached.add(n)
            dtypes.update(o.dtype for o in node.outputs)
    return max((d for d in dtypes if d.is_float), key=lambda d: TOLERANCE[d].rtol)


def check_gradients(
    graph: Graph,
    arrays: Sequence[np.ndarray],
    backends: Mapping[str, Backend],
    catalog: Mapping[str, OpSpec],
    seed: int,
) -> GradientCheck | None:
    """Judge the gradients of every backend in `backends` that can differentiate; None when
    the graph is not eligible or no float64 reference could be computed."""
    if not eligible(graph):
        return None
    capable = {n: b for n, b in backends.items() if getattr(b, "differentiable", False)}
    # The references come from the eager built-ins whatever is under test, so a backend's
    # own bug cannot vouch for itself.
    refs: list[Backend] = [b for b in (TorchEager(), TfEager()) if b.lowering in {x.lowering for x in backends.values()} and b.available()]
    if not capable or not refs:
        return None
    rng = np.random.default_rng(seed + 7919)
    cotangents = _cotangents(graph, rng)
    wide = widen_graph(graph)
    wide_arrays = _as64(arrays)
    wide_weights = {i: wide_arrays[i] for i in wide.weight_indices}
    wide_inputs = [wide_arrays[i] for i in wide.input_indices]

    def reference_at(inputs: Sequence[np.ndarray], backend: Backend) -> list[np.ndarray] | None:
        try:
            return _grads(backend, Model(wide, wide_weights, tuple(inputs), catalog), inputs, _as64(cotangents))
        except Exception:  # a framework without this gradient: no reference from it
            return None

    per_framework = [g for g in (reference_at(wide_inputs, b) for b in refs) if g is not None]
    if not per_framework or len(per_framework) < len(refs):
        # A framework that cannot differentiate this graph in float64 cannot vouch for the
        # other's reference (ties and kinks show up as the two disagreeing): not judged.
        return None
    expected = per_framework[0]
    spread = [np.zeros(e.shape) for e in expected]
    for other in per_framework[1:]:
        for k, (e, o) in enumerate(zip(expected, other)):
            spread[k] = np.maximum(spread[k], _disagreement(e, o))
    # Kinks: move the inputs by their dtype's rounding and see whether the gradient jumps.
    input_types = [graph.placeholders[i].type.dtype for i in graph.input_indices]
    for sign in (1.0, -1.0):
        nudged = []
        for x, t in zip(wide_inputs, input_types):
            if not t.is_float:
                nudged.append(x)
                continue
            step = sign * max(2.0 * UNIT_ROUNDOFF[t], MIN_NUDGE) * rng.uniform(0.5, 1.0, size=x.shape)
            nudged.append(x * (1.0 + step) + step * (x == 0))
        moved = reference_at(nudged, refs[0])
        if moved is None:
            return None
        for k, (e, m) in enumerate(zip(expected, moved)):
            spread[k] = np.maximum(spread[k], _disagreement(e, m))
    float_inputs = [i for i in graph.input_indices if graph.placeholders[i].type.dtype.is_float]
    loosest = {i: _loosest_downstream(graph, i) for i in float_inputs}
    inputs = [arrays[i] for i in graph.input_indices]
    findings: list[Finding] = []
    checked = []
    for name, backend in capable.items():
        try:
            got = _grads(backend, Model(graph, {i: arrays[i] for i in graph.weight_indices}, tuple(inputs), catalog), inputs, cotangents)
        except Exception:  # gradient support varies by framework: not a bug candidate here
            continue
        checked.append(name)
        for k, (g, e, s) in enumerate(zip(got, expected, spread)):
            dtype = graph.placeholders[float_inputs[k]].type.dtype
            # The gradient flows back through every value computed from this input: the
            # least precise of them bounds its accuracy.
            base = TOLERANCE[loosest[float_inputs[k]]]
            tol = replace(base, rtol=base.rtol * GRADIENT_SLACK, atol=base.atol * GRADIENT_SLACK)
            c = compare(np.asarray(g), e, s, Expected(dtype, e.shape, tol))
            if c.symptom is not None:
                # Any disagreement of a gradient (value, NaN/Inf, shape) is one symptom, so a
                # re-run knows to compute gradients to reproduce it.
                findings.append(Finding(
                    "wrong_gradient", "compare", (name,), None,
                    f"gradient w.r.t. input placeholder {float_inputs[k]} ({c.symptom}): {c.detail}",
                ))
    return GradientCheck(tuple(findings), tuple(checked))


def _disagreement(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| per element; inf where they differ beyond rounding in float64 terms
    (a kink or a different subgradient: the element is not judged)."""
    with np.errstate(all="ignore"):
        d = np.abs(a - b)
        scale = np.maximum(np.abs(a), np.abs(b))
        return np.where(d <= 1e-6 * scale + 1e-9, d, np.inf)
