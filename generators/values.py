"""Inputs and weights for a graph from an explicit RNG, searched so the NumPy reference
stays finite, free of integer overflow and away from operators' discontinuities.

Owns the sampling distributions and the search; the per-operator knowledge (value ranges,
stability guards) comes from the specs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from generators.dtypes import DType
from generators.ir import Graph, InputRef, Node, TensorType
from generators.reference import ReferenceRejects, evaluate, run_reference, widen
from generators.spec import OpSpec, ValueDomain, Values

DEFAULT_FLOAT_RANGE = (-2.0, 2.0)
DEFAULT_INT_RANGE = (-8, 8)


@dataclass(frozen=True)
class Feed:
    """One array per placeholder (inputs and weights, in placeholder order)."""

    arrays: tuple[np.ndarray, ...]
    attempts: int

    def inputs(self, graph: Graph) -> list[np.ndarray]:
        return [self.arrays[i] for i in graph.input_indices]

    def weights(self, graph: Graph) -> dict[int, np.ndarray]:
        return {i: self.arrays[i] for i in graph.weight_indices}


def sample_array(
    rng: np.random.Generator, ttype: TensorType, domain: ValueDomain | None, scale: float = 1.0
) -> np.ndarray:
    """Random values of `ttype` in `domain` (scaled toward 0 by `scale` when the range
    straddles 0, to retry with tamer magnitudes)."""
    dtype, shape = ttype.dtype, ttype.shape
    value_range = (domain.lo, domain.hi) if isinstance(domain, Values) else domain
    if dtype is DType.bool:
        return np.asarray(rng.random(shape) < 0.5)
    if dtype.is_int:
        lo, hi = value_range if value_range is not None else DEFAULT_INT_RANGE
        lo_i, hi_i = int(np.ceil(lo)), int(np.floor(hi))
        if dtype is DType.uint8:
            lo_i, hi_i = max(lo_i, 0), max(hi_i, 1)
        return np.asarray(rng.integers(lo_i, hi_i + 1, size=shape)).astype(dtype.numpy())
    lo, hi = value_range if value_range is not None else DEFAULT_FLOAT_RANGE
    if lo < 0 < hi:
        lo, hi = lo * scale, hi * scale
    x = rng.uniform(lo, hi, size=shape)
    if isinstance(domain, Values) and domain.fraction is not None:
        x = np.floor(x) + rng.uniform(*domain.fraction, size=shape)
    return np.asarray(x).astype(dtype.numpy())


def placeholder_ranges(graph: Graph, catalog: Mapping[str, OpSpec]) -> list[ValueDomain | None]:
    """The value domain of each placeholder: that of the first operand it feeds directly."""
    ranges: list[ValueDomain | None] = [None] * len(graph.placeholders)
    for node in graph.nodes:
        spec = catalog[node.op]
        for j, ref in enumerate(node.inputs):
            if isinstance(ref, InputRef) and ranges[ref.index] is None:
                ranges[ref.index] = spec.operand_at(j).values
    return ranges


def node_is_sound(catalog: Mapping[str, OpSpec]):  # type: ignore[no-untyped-def]
    """A node check: finite float outputs, no integer overflow, and the op's own guard."""

    def check(i: int, node: Node, inputs: Sequence[np.ndarray], outputs: Sequence[np.ndarray]) -> bool:
        spec = catalog[node.op]
        with np.errstate(all="ignore"):
            for x in inputs:
                if (x.dtype.kind == "f" or x.dtype.name == "bfloat16") and not np.all(np.isfinite(x.astype(np.float64))):
                    return False
            for o in outputs:
                if (o.dtype.kind == "f" or o.dtype.name == "bfloat16") and not np.all(np.isfinite(o.astype(np.float64))):
                    return False
            if spec.stable is not None and not spec.stable(inputs, node.attr_map):
                return False
            if not spec.modular_ints and any(o.dtype.kind in "iu" for o in outputs):
                wide = run_reference(spec, [widen(x) for x in inputs], node.attr_map)
                for o, w in zip(outputs, wide):
                    if o.dtype.kind in "iu" and not np.array_equal(o.astype(np.int64), w.astype(np.int64)):
                        return False
        return True

    return check


def make_feed(
    graph: Graph, rng: np.random.Generator, catalog: Mapping[str, OpSpec], tries: int = 24
) -> Feed | None:
    """Values for every placeholder such that the reference is finite and stable at every
    node, or None after `tries` attempts (the graph is then best skipped)."""
    try:
        return sound_feed(graph, rng, catalog, tries)
    except ReferenceRejects:
        return None  # the framework-backed reference refuses the graph itself


def sound_feed(
    graph: Graph, rng: np.random.Generator, catalog: Mapping[str, OpSpec], tries: int = 24
) -> Feed | None:
    """As `make_feed`, but a rule-backed operator refusing its call raises ReferenceRejects
    (naming the node), so the caller can drop that node instead of the whole graph."""
    ranges = placeholder_ranges(graph, catalog)
    check = node_is_sound(catalog)
    for attempt in range(tries):
        scale = 1.0 / (1 + attempt // 4)
        arrays = tuple(
            sample_array(rng, p.type, ranges[i], scale) for i, p in enumerate(graph.placeholders)
        )
        if evaluate(graph, arrays, catalog, check=check) is not None:
            return Feed(arrays, attempt + 1)
    return None
