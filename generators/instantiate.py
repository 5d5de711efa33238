"""Turns an OpSpec plus partly known operand types into one concrete, valid node instance.

Structural choices (operand ranks, axes, permutations, categorical attributes) are sampled;
the remaining integers (free operand dims, integer attributes) are first sampled concretely
(the fast path, no solver) and, if that keeps failing, solved with z3. Owns no graph state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from generators.dtypes import DType
from generators.ir import TensorType
from generators.solver import Solver, SolverBudget
from generators.spec import AttrValue, Choice, OpSpec, RankCtx
from generators.symbolic import Shape, SymBool, all_of, prod


@dataclass(frozen=True)
class Limits:
    """Size limits of generated tensors."""

    max_dim: int = 8
    max_elements: int = 4096
    max_rank: int = 4  # free operands get at most this rank unless an operand needs more


@dataclass(frozen=True)
class Instance:
    spec: OpSpec
    dtype: DType
    inputs: tuple[TensorType, ...]
    attrs: tuple[tuple[str, AttrValue], ...]
    outputs: tuple[TensorType, ...]


@dataclass
class Stats:
    """How instances were found; the benchmark prints these."""

    fast: int = 0
    solved: int = 0
    failed: int = 0


_FAST_TRIES = 8
# An op's shape rule may index past a rank it does not accept; such a sample is just rejected.
_RULE_ERRORS = (IndexError, ValueError, ZeroDivisionError, KeyError, TypeError)


def with_int_attrs(
    spec: OpSpec,
    ranks: tuple[int, ...],
    dtype: DType,
    attrs: dict[str, Any],
    make: Callable[[str, int, int], Any],
) -> dict[str, Any]:
    """`attrs` plus a value for every integer attribute (IntAttr, IntsAttr), each made by
    `make(variable name, lo, hi)`: a sample on the fast path, a z3 variable when solving."""
    full = dict(attrs)
    ctx = RankCtx(ranks, dtype, attrs)
    for name, domain in spec.attrs.items():
        if domain.symbolic:
            n = domain.length(ctx)  # type: ignore[union-attr]
            lo, hi = int(domain.lo), int(domain.hi)  # type: ignore[union-attr]
            if n is None:
                full[name] = make(f"a_{name}", lo, hi)
            else:
                full[name] = tuple(make(f"a_{name}_{i}", lo, hi) for i in range(n))
    return full


class Instantiator:
    def __init__(
        self, limits: Limits | None = None, budget: SolverBudget | None = None, fast_tries: int = _FAST_TRIES,
        choice_weights: Mapping[tuple[str, str], Sequence[float]] | None = None,
    ) -> None:
        self.limits = limits or Limits()
        # (operator, attribute) -> relative weight of each option of a Choice attribute
        # (coverage steering); other attributes are sampled uniformly.
        self.choice_weights = dict(choice_weights or {})
        self.budget = budget or SolverBudget()
        self.fast_tries = fast_tries  # 0 sends every instance through z3 (tests use that)
        self._ctx: Any = None
        self._probe: Any = None
        self.stats = Stats()

    def new_context(self) -> None:
        """Start a fresh z3 context at the next solve. Call it where a seed starts (the
        generator does, per graph): results then depend only on that seed."""
        self._ctx = None

    def _probe_context(self) -> Any:
        """A long-lived context for building constraints that are never solved."""
        if self._probe is None:
            import z3

            self._probe = z3.Context()
        return self._probe

    def _context(self) -> Any:
        if self._ctx is None:  # created lazily: most graphs never need z3
            import z3

            self._ctx = z3.Context()
        return self._ctx

    def instantiate(
        self,
        spec: OpSpec,
        rng: np.random.Generator,
        known: Sequence[TensorType | None],
        dtype: DType,
        target: TensorType | None = None,
    ) -> Instance | None:
        """An instance whose operand i has type known[i] where given; with `target`, the
        first output must have exactly that type (backward insertion). None if none found."""
        ranks = self._ranks(spec, rng, known, target)
        if ranks is None:
            return self._fail()
        attrs: dict[str, Any] = {}
        for name, domain in spec.attrs.items():
            weights = self.choice_weights.get((spec.name, name))
            if weights is not None and type(domain) is Choice and len(weights) == len(domain.values) and sum(weights) > 0:
                p = np.asarray(weights, np.float64)
                attrs[name] = domain.values[int(rng.choice(len(p), p=p / p.sum()))]
            elif not domain.symbolic:
                attrs[name] = domain.sample(rng, RankCtx(ranks, dtype, attrs))  # type: ignore[union-attr]
        in_dtypes = tuple(spec.operand_dtype(j, dtype) for j in range(len(known)))
        for j, k in enumerate(known):
            if k is not None and k.dtype != in_dtypes[j]:
                return self._fail()
        found = self._fast(spec, rng, known, ranks, dtype, attrs, target)
        if found is not None:
            self.stats.fast += 1
        else:
            found = self._solve(spec, rng, known, ranks, dtype, attrs, target)
            if found is None:
                return self._fail()
            self.stats.solved += 1
        shapes, full_attrs, out_shapes = found
        out_dtypes = spec.output_dtypes(dtype, full_attrs, len(out_shapes))
        outputs = tuple(TensorType(s, d) for s, d in zip(out_shapes, out_dtypes))
        if target is not None and outputs[0] != target:
            return self._fail()
        return Instance(
            spec=spec,
            dtype=dtype,
            inputs=tuple(TensorType(s, d) for s, d in zip(shapes, in_dtypes)),
            attrs=tuple(sorted(full_attrs.items())),
            outputs=outputs,
        )

    def _fail(self) -> Instance | None:
        self.stats.failed += 1
        return None

    # --- ranks -----------------------------------------------------------------------------

    def _ranks(
        self,
        spec: OpSpec,
        rng: np.random.Generator,
        known: Sequence[TensorType | None],
        target: TensorType | None,
    ) -> tuple[int, ...] | None:
        ranks: list[int] = []
        anchor = next((k.rank for k in known if k is not None), None)
        if spec.same_rank and any(k is not None and k.rank != anchor for k in known):
            return None
        for j, k in enumerate(known):
            allowed = spec.operand_at(j).ranks
            if k is not None:
                if k.rank not in allowed:
                    return None
                ranks.append(k.rank)
                continue
            if spec.same_rank and ranks:
                ranks.append(ranks[0])
                continue
            if spec.same_rank and anchor is not None:
                ranks.append(anchor)
                continue
            preferred = [r for r in (target.rank if target else None, anchor) if r is not None and r in allowed]
            capped = [r for r in allowed if r <= self.limits.max_rank] or list(allowed)
            if preferred and rng.random() < 0.7:
                ranks.append(preferred[int(rng.integers(len(preferred)))])
            else:
                ranks.append(capped[int(rng.integers(len(capped)))])
        if spec.same_rank and len(set(ranks)) > 1:
            return None
        return tuple(ranks)

    # --- fast path: concrete sampling ------------------------------------------------------

    def _fast(
        self,
        spec: OpSpec,
        rng: np.random.Generator,
        known: Sequence[TensorType | None],
        ranks: tuple[int, ...],
        dtype: DType,
        attrs: dict[str, Any],
        target: TensorType | None,
    ) -> tuple[list[Shape], dict[str, Any], list[Shape]] | None:
        lim = self.limits
        for _ in range(self.fast_tries):
            pool: list[tuple[int, ...]] = [k.shape for k in known if k is not None]
            if target is not None:
                pool.append(target.shape)
            shapes: list[Shape] = []
            for k, rank in zip(known, ranks):
                if k is not None:
                    shapes.append(k.shape)
                    continue
                shape = tuple(self._sample_dim(rng, pool, rank - 1 - p) for p in range(rank))
                pool.append(shape)
                shapes.append(shape)
            full = with_int_attrs(spec, ranks, dtype, attrs, lambda _, lo, hi: self._sample_int(rng, lo, hi))
            try:
                if not all_of(spec.requires(shapes, full)):
                    continue
                outs = [tuple(s) for s in spec.infer(shapes, full)]
            except _RULE_ERRORS:
                continue
            if not all(all(type(d) is int and d >= 1 for d in s) for s in outs):
                continue
            if any(prod(s) > lim.max_elements for s in [*shapes, *outs]):
                continue
            if target is not None and (not outs or outs[0] != target.shape):
                continue
            return shapes, full, outs
        return None

    def _sample_dim(self, rng: np.random.Generator, pool: list[tuple[int, ...]], from_end: int) -> int:
        """A dim for a free operand: usually copied from the same (right-aligned) position of
        a shape already in play, so equalities and broadcasts tend to hold without solving."""
        r = rng.random()
        if r < 0.75:
            aligned = [s[len(s) - 1 - from_end] for s in pool if len(s) > from_end]
            if aligned:
                return aligned[int(rng.integers(len(aligned)))]
        if r < 0.85:
            return 1
        return int(rng.integers(1, self.limits.max_dim + 1))

    @staticmethod
    def _sample_int(rng: np.random.Generator, lo: int, hi: int) -> int:
        if rng.random() < 0.5:
            return int(rng.integers(lo, min(hi, lo + 2) + 1))
        return int(rng.integers(lo, hi + 1))

    # --- slow path: z3 ---------------------------------------------------------------------

    def _solve(
        self,
        spec: OpSpec,
        rng: np.random.Generator,
        known: Sequence[TensorType | None],
        ranks: tuple[int, ...],
        dtype: DType,
        attrs: dict[str, Any],
        target: TensorType | None,
    ) -> tuple[list[Shape], dict[str, Any], list[Shape]] | None:
        import z3

        lim = self.limits
        seed = int(rng.integers(2**31))
        # Most rejections are constant (a rank or a known dim rules the op out): find them in
        # a scratch context first, so the per-graph context is touched only by real solves.
        if self._build(spec, known, ranks, dtype, attrs, target, self._probe_context()) is None:
            return None
        built = self._build(spec, known, ranks, dtype, attrs, target, self._context())
        assert built is not None
        variables, shapes, full, constraints = built
        solver = Solver(seed, self._context(), self.budget)
        solver.add(constraints)
        targets = [(v, lo, hi, self._sample_int(rng, lo, hi)) for v, lo, hi in variables]
        model = solver.solve_near(targets)
        if model is None:
            return None

        def value(x: Any) -> Any:
            if isinstance(x, tuple):
                return tuple(value(e) for e in x)
            if not z3.is_expr(x):  # concrete: ints, floats, strings, bools
                return x
            return model.get(str(x), lo_of(x))

        def lo_of(x: Any) -> int:
            for v, lo, _ in variables:
                if v.eq(x):
                    return lo
            raise AssertionError(f"unknown variable {x}")

        c_shapes = [tuple(value(d) for d in s) for s in shapes]
        c_attrs = {k: value(v) for k, v in full.items()}
        # Re-evaluate on concrete values: the rules are the ground truth, not the model.
        try:
            if not all_of(spec.requires(c_shapes, c_attrs)):
                return None
            c_outs = [tuple(s) for s in spec.infer(c_shapes, c_attrs)]
        except _RULE_ERRORS:
            return None
        if any(not all(type(d) is int and d >= 1 for d in s) for s in c_outs):
            return None
        if any(prod(s) > lim.max_elements for s in [*c_shapes, *c_outs]):
            return None
        return c_shapes, c_attrs, c_outs

    def _build(
        self,
        spec: OpSpec,
        known: Sequence[TensorType | None],
        ranks: tuple[int, ...],
        dtype: DType,
        attrs: dict[str, Any],
        target: TensorType | None,
        z3ctx: Any,
    ) -> tuple[list[tuple[Any, int, int]], list[Shape], dict[str, Any], list[SymBool]] | None:
        """z3 variables, symbolic shapes and attributes, and the constraints of one instance
        in `z3ctx`; None when a constraint is constantly false."""
        import z3

        variables: list[tuple[Any, int, int]] = []  # (var, lo, hi)

        def var(name: str, lo: int, hi: int) -> Any:
            v = z3.Int(name, z3ctx)
            variables.append((v, lo, hi))
            return v

        shapes: list[Shape] = []
        for j, (k, rank) in enumerate(zip(known, ranks)):
            shapes.append(k.shape if k is not None else tuple(var(f"d{j}_{p}", 1, self.limits.max_dim) for p in range(rank)))
        full = with_int_attrs(spec, ranks, dtype, attrs, var)
        try:
            constraints: list[SymBool] = list(spec.requires(shapes, full))
            if any(c is False for c in constraints):
                return None
            outs = [tuple(s) for s in spec.infer(shapes, full)]
        except _RULE_ERRORS:
            return None
        if target is not None:
            if not outs or len(outs[0]) != target.rank:
                return None
            constraints.extend(d == t for d, t in zip(outs[0], target.shape))
        for s in outs:
            constraints.extend(d >= 1 for d in s)
        if any(c is False for c in constraints):
            return None
        constraints.extend(v >= lo for v, lo, _ in variables)
        constraints.extend(v <= hi for v, _, hi in variables)
        return variables, shapes, full, constraints
