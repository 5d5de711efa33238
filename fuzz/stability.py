"""The reference the oracle trusts: float64 outputs of the NumPy reference plus, per
element, how far rounding noise at every node moves them (the spread). Pure NumPy.

A backend computing in float32 rounds every intermediate; where the graph is
ill-conditioned (cancellation, values near a floor/round jump, ties in argmax or sort,
comparisons of nearly equal numbers), that noise changes the result legitimately. The
reference is re-evaluated with every float node output, and every float input as each
node sees it (the backward error of an operator that accumulates, like a dot product),
multiplied by (1 + u * eps) for the dtype, with u in [-NOISE_ULPS, NOISE_ULPS] drawn per
element, in antithetic pairs (u, -u) so a value close to a jump is pushed across it in one
of the two runs. The spread is the largest deviation seen; discrete outputs that change
get an infinite spread (that element cannot be judged).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from generators.dtypes import DType
from generators.ir import Graph, Node
from generators.reference import Perturb, evaluate, graph_outputs, widen
from generators.spec import OpSpec

NOISE_ULPS = 2.0
PAIRS = 2  # antithetic pairs of perturbed evaluations

# Unit roundoff (half the machine epsilon) per float dtype.
UNIT_ROUNDOFF: Mapping[DType, float] = {
    DType.float16: 2.0**-11,
    DType.bfloat16: 2.0**-8,
    DType.float32: 2.0**-24,
    DType.float64: 2.0**-53,
}


@dataclass(frozen=True)
class Reference:
    """Wide reference outputs (float64, int64 or bool) and their per-element spread
    (float64, >= 0, inf where a perturbation changed a discrete or non-finite value)."""

    outputs: tuple[np.ndarray, ...]
    spread: tuple[np.ndarray, ...]

    def unstable_fraction(self) -> float:
        total = sum(s.size for s in self.spread)
        bad = sum(int(np.sum(~np.isfinite(s))) for s in self.spread)
        return bad / total if total else 0.0


def _deviation(clean: np.ndarray, noisy: np.ndarray) -> np.ndarray:
    if clean.dtype.kind != "f":
        return np.where(clean == noisy, 0.0, np.inf)
    with np.errstate(all="ignore"):
        both_finite = np.isfinite(clean) & np.isfinite(noisy)
        same_special = (clean == noisy) | (np.isnan(clean) & np.isnan(noisy))
        return np.where(both_finite, np.abs(noisy - clean), np.where(same_special, 0.0, np.inf))


def _noisy(noise: Mapping[tuple[int, int], np.ndarray], sign: float) -> Perturb:
    """Multiplies value j of node i by (1 + sign * noise[i, j]) where noise is given."""

    def apply(i: int, node: Node, values: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
        return tuple(x * (1.0 + sign * noise[(i, j)]) if (i, j) in noise else x for j, x in enumerate(values))

    return apply


def reference(
    graph: Graph, arrays: Sequence[np.ndarray], catalog: Mapping[str, OpSpec], seed: int, pairs: int = PAIRS
) -> Reference:
    """The wide reference of `graph` on `arrays` with the spread from `pairs` antithetic
    pairs of noisy evaluations (deterministic in `seed`)."""
    wide_feed = [widen(a) for a in arrays]
    clean_results = evaluate(graph, arrays, catalog, wide=True)
    assert clean_results is not None
    clean = [np.asarray(o) for o in graph_outputs(graph, clean_results, wide_feed)]
    spread = [np.zeros(o.shape, np.float64) for o in clean]
    rng = np.random.default_rng(seed)
    for _ in range(pairs):
        noise = {
            (i, k): rng.uniform(-NOISE_ULPS, NOISE_ULPS, size=t.shape) * UNIT_ROUNDOFF[t.dtype]
            for i, node in enumerate(graph.nodes)
            for k, t in enumerate(node.outputs)
            if t.dtype.is_float
        }
        in_noise = {}
        for i, node in enumerate(graph.nodes):
            # An operator that sums R terms into each output (matmul, conv, reductions) has a
            # backward error growing with R; sqrt(R) is its typical size. R is estimated as
            # input elements per output element, so elementwise operators keep R = 1.
            terms = sum(graph.type_of(r).size for r in node.inputs) / max(1, sum(t.size for t in node.outputs))
            scale = NOISE_ULPS * math.sqrt(max(1.0, terms))
            for j, ref in enumerate(node.inputs):
                t = graph.type_of(ref)
                if t.dtype.is_float:
                    in_noise[(i, j)] = rng.uniform(-scale, scale, size=t.shape) * UNIT_ROUNDOFF[t.dtype]
        for sign in (1.0, -1.0):
            with np.errstate(all="ignore"):
                noisy_results = evaluate(
                    graph, arrays, catalog, wide=True, perturb=_noisy(noise, sign), perturb_inputs=_noisy(in_noise, sign)
                )
                assert noisy_results is not None
                noisy = graph_outputs(graph, noisy_results, wide_feed)
                for k, (c, n) in enumerate(zip(clean, noisy)):
                    spread[k] = np.maximum(spread[k], _deviation(c, np.asarray(n)))
    return Reference(tuple(clean), tuple(spread))
