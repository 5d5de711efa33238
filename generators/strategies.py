"""Hypothesis strategies: `graphs()` draws every random choice of the generator from
Hypothesis, so a failing example shrinks structurally (fewer nodes, earlier operators,
smaller dims), not just to a smaller seed. Imports no framework.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
from hypothesis import note, reject
from hypothesis import strategies as st

from generators.dtypes import DType
from generators.errors import GenerationError
from generators.graph_gen import DEFAULT_DTYPES, GenOptions, GraphGenerator
from generators.instantiate import Limits
from generators.ir import Graph


class DrawnRandom:
    """The subset of numpy.random.Generator the generator uses, backed by Hypothesis draws.
    Every draw shrinks toward 0 / the first option."""

    def __init__(self, draw: Any) -> None:
        self._draw = draw

    def random(self) -> float:
        return float(self._draw(st.integers(0, 999))) / 1000.0

    def integers(self, low: int, high: int | None = None, size: Any = None) -> Any:
        if high is None:
            low, high = 0, low
        if size is None:
            return self._draw(st.integers(int(low), int(high) - 1))
        n = int(np.prod(size))
        values = [self._draw(st.integers(int(low), int(high) - 1)) for _ in range(n)]
        return np.array(values, dtype=np.int64).reshape(size)

    def uniform(self, low: float = 0.0, high: float = 1.0, size: Any = None) -> Any:
        if size is None:
            return low + (high - low) * self.random()
        n = int(np.prod(size))
        return np.array([low + (high - low) * self.random() for _ in range(n)]).reshape(size)

    def choice(self, a: Any, size: Any = None, replace: bool = True, p: Any = None) -> Any:
        items = list(range(a)) if isinstance(a, (int, np.integer)) else list(a)
        if size is None:
            return items[self._draw(st.integers(0, len(items) - 1))]
        if replace:
            return np.array([items[self._draw(st.integers(0, len(items) - 1))] for _ in range(int(size))])
        pool = list(items)
        picked = []
        for _ in range(int(size)):
            picked.append(pool.pop(self._draw(st.integers(0, len(pool) - 1))))
        return np.array(picked)

    def permutation(self, n: int) -> Any:
        return self.choice(n, size=n, replace=False)


@functools.lru_cache(maxsize=32)
def _generator(options: GenOptions) -> GraphGenerator:
    from generators.ops import catalog

    return GraphGenerator(catalog(), options)


def graphs(
    max_nodes: int = 5,
    *,
    ops: Sequence[str] | None = None,
    exclude_ops: Sequence[str] = (),
    dtypes: Sequence[DType] = DEFAULT_DTYPES,
    max_elements: int = 1024,
    max_dim: int = 8,
) -> st.SearchStrategy[Graph]:
    """Valid graphs of 1..max_nodes operators; same options as the generator."""

    @st.composite
    def build(draw: Any) -> Graph:
        n = draw(st.integers(1, max_nodes))
        options = GenOptions(
            max_nodes=n,
            ops=tuple(ops) if ops is not None else None,
            exclude_ops=tuple(exclude_ops),
            dtypes=tuple(dtypes),
            limits=Limits(max_dim=max_dim, max_elements=max_elements),
        )
        try:
            graph = _generator(options).generate_with(DrawnRandom(draw))  # type: ignore[arg-type]
        except GenerationError:
            reject()  # these draws cannot grow a graph (e.g. every choice picks a misfit)
        _describe_if_final(graph)
        return graph

    return build()


def _describe_if_final(graph: Graph) -> None:
    """On the falsifying example only: the graph as text and a line that rebuilds it exactly."""
    from hypothesis.control import current_build_context
    from hypothesis.errors import InvalidArgument

    try:
        final = current_build_context().is_final
    except InvalidArgument:  # drawn outside a test (e.g. .example())
        return
    if final:
        note(f"graph ({len(graph.nodes)} operator(s): {', '.join(graph.op_names())}):\n{graph}")
        note(f"reproduce the graph: generators.ir.graph_from_json({graph.to_json()!r})")
