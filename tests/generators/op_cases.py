"""Random single-operator cases for the generic per-operator tests: instances solved by the
instantiator, values found by the value search, and the comparison against the reference."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from generators.dtypes import DType, ordered
from generators.graph_gen import single_node_graph
from generators.instantiate import Instantiator, Limits, with_int_attrs
from generators.ir import Graph
from generators.ops import catalog
from generators.reference import evaluate, graph_outputs
from generators.spec import OpSpec
from generators.symbolic import all_of
from generators.values import Feed, make_feed

# Test tolerances per dtype for one operator against a float64 reference computed from the
# same (rounded) inputs. The oracle owns the campaign table; this one checks the lowerings.
TEST_TOLERANCE = {
    DType.float16: (1e-2, 1e-2),
    DType.bfloat16: (4e-2, 4e-2),
    DType.float32: (1e-4, 1e-5),
    DType.float64: (1e-9, 1e-12),
}


@dataclass(frozen=True)
class Case:
    spec: OpSpec
    graph: Graph
    feed: Feed

    def label(self) -> str:
        return f"{self.spec.name} {self.graph.nodes[0].attr_map} " + ", ".join(
            str(p.type) for p in self.graph.placeholders
        )


def cases(spec: OpSpec, seed: int = 0, per_dtype: int = 3) -> Iterator[Case]:
    """`per_dtype` cases for each dtype of the op (fewer only if instantiation keeps failing)."""
    rng = np.random.default_rng(seed)
    inst = Instantiator(Limits(max_dim=6, max_elements=512))
    for dtype in ordered(spec.dtypes):
        found = 0
        for _ in range(per_dtype * 20):
            if found == per_dtype:
                break
            lo, hi = spec.arity_range()
            n = int(rng.integers(lo, min(hi, lo + 2) + 1))
            instance = inst.instantiate(spec, rng, [None] * n, dtype)
            if instance is None:
                continue
            graph = single_node_graph(instance)
            feed = make_feed(graph, rng, catalog())
            if feed is None:
                continue
            found += 1
            yield Case(spec, graph, feed)
        assert found > 0, f"{spec.name}: no valid case for {dtype.value}"


def expected(case: Case) -> list[np.ndarray]:
    """Reference outputs: float64 for float outputs, exact dtype semantics otherwise."""
    cat = catalog()
    arrays = case.feed.arrays
    wide = evaluate(case.graph, arrays, cat, wide=True)
    narrow = evaluate(case.graph, arrays, cat)
    assert wide is not None and narrow is not None
    out = []
    for w, n in zip(graph_outputs(case.graph, wide, arrays), graph_outputs(case.graph, narrow, arrays)):
        out.append(w if n.dtype.kind == "f" or n.dtype.name == "bfloat16" else n)
    return out


def assert_matches(case: Case, actual: list[np.ndarray], framework: str) -> None:
    refs = expected(case)
    assert len(actual) == len(refs), f"{framework}: {len(actual)} outputs, expected {len(refs)}"
    for k, (got, ref, ttype) in enumerate(zip(actual, refs, case.graph.nodes[0].outputs)):
        where = f"{framework} {case.label()} output {k}"
        assert got.shape == ttype.shape, f"{where}: shape {got.shape} != inferred {ttype.shape}"
        assert DType.from_numpy(got.dtype) == ttype.dtype, f"{where}: dtype {got.dtype} != {ttype.dtype.value}"
        if ttype.dtype.is_float:
            rtol, atol = TEST_TOLERANCE[ttype.dtype]
            for tol in case.spec.tolerances:
                if ttype.dtype in tol.dtypes:
                    rtol, atol = max(rtol, tol.rtol), max(atol, tol.atol)
            np.testing.assert_allclose(got.astype(np.float64), ref.astype(np.float64), rtol=rtol, atol=atol, err_msg=where)
        else:
            np.testing.assert_array_equal(got, ref.astype(got.dtype), err_msg=where)


@dataclass(frozen=True)
class RawInstance:
    """Operand types and attributes sampled without solving the constraints."""

    dtype: DType
    shapes: list[tuple[int, ...]]
    attrs: dict[str, object]
    accepted: bool  # what the spec's `requires` says


def unconstrained_instances(spec: OpSpec, seed: int, count: int) -> Iterator[RawInstance]:
    """Near-miss instances: dims from {1, 2, 3}, integer attributes anywhere in their domain,
    so many violate the constraints and many satisfy them."""
    from generators.spec import RankCtx

    rng = np.random.default_rng(seed)
    dtypes = ordered(spec.dtypes)
    for _ in range(count):
        dtype = dtypes[int(rng.integers(len(dtypes)))]
        n = spec.arity_range()[0]
        ranks = [int(rng.choice([r for r in spec.operand_at(j).ranks if r <= 5])) for j in range(n)]
        if spec.same_rank:
            ranks = [ranks[0]] * n
        ctx_ranks = tuple(ranks)
        structural: dict[str, object] = {}
        for name, domain in spec.attrs.items():
            if not domain.symbolic:
                structural[name] = domain.sample(rng, RankCtx(ctx_ranks, dtype, structural))  # type: ignore[union-attr]
        attrs = with_int_attrs(spec, ctx_ranks, dtype, structural, lambda _, lo, hi: int(rng.integers(lo, hi + 1)))
        shapes = [tuple(int(d) for d in rng.integers(1, 4, size=r)) for r in ranks]
        try:
            accepted = bool(all_of(spec.requires(shapes, attrs)))
            if accepted:
                spec.infer(shapes, attrs)
        except (IndexError, ValueError, ZeroDivisionError, KeyError, TypeError):
            accepted = False
        yield RawInstance(dtype, shapes, attrs, accepted)
