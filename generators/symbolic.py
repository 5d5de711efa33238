"""Dimension arithmetic that works on Python ints and on z3 integer terms alike.

Operator shape rules are written once with these helpers; they never branch in Python on
a value that may be symbolic. z3 is imported only when a symbolic value is present.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Union

SymInt = Union[int, Any]  # int or z3.ArithRef
SymBool = Union[bool, Any]  # bool or z3.BoolRef
Shape = tuple[SymInt, ...]


def is_concrete(value: object) -> bool:
    return isinstance(value, (int, bool))


def ite(cond: SymBool, then: SymInt, otherwise: SymInt) -> SymInt:
    if isinstance(cond, bool):
        return then if cond else otherwise
    import z3

    return z3.If(cond, then, otherwise)


def smin(a: SymInt, b: SymInt) -> SymInt:
    if is_concrete(a) and is_concrete(b):
        return min(a, b)
    return ite(a <= b, a, b)


def smax(a: SymInt, b: SymInt) -> SymInt:
    if is_concrete(a) and is_concrete(b):
        return max(a, b)
    return ite(a >= b, a, b)


def floordiv(a: SymInt, b: SymInt) -> SymInt:
    """Floor division; the divisor must be positive (z3 division is Euclidean)."""
    if is_concrete(a) and is_concrete(b):
        return a // b
    return a / b


def ceildiv(a: SymInt, b: SymInt) -> SymInt:
    """Ceiling division for a positive divisor."""
    return floordiv(a + b - 1, b)


def mod(a: SymInt, b: SymInt) -> SymInt:
    """Remainder for a positive divisor (matches Python's % then)."""
    if is_concrete(a) and is_concrete(b):
        return a % b
    return a % b


def prod(dims: Iterable[SymInt]) -> SymInt:
    out: SymInt = 1
    for d in dims:
        out = out * d
    return out


def all_of(conds: Iterable[SymBool]) -> SymBool:
    items = list(conds)
    if all(isinstance(c, bool) for c in items):
        return all(items)
    import z3

    return z3.And(*[c for c in items if not (isinstance(c, bool) and c)] or [True])


def any_of(conds: Iterable[SymBool]) -> SymBool:
    items = list(conds)
    if all(isinstance(c, bool) for c in items):
        return any(items)
    import z3

    return z3.Or(*[c for c in items if not (isinstance(c, bool) and not c)] or [False])


def broadcast(a: Shape, b: Shape) -> tuple[Shape, list[SymBool]]:
    """NumPy broadcasting of two shapes: the result shape and the constraints it needs."""
    rank = max(len(a), len(b))
    pa = (1,) * (rank - len(a)) + tuple(a)
    pb = (1,) * (rank - len(b)) + tuple(b)
    out: list[SymInt] = []
    needs: list[SymBool] = []
    for x, y in zip(pa, pb):
        needs.append(any_of([x == y, x == 1, y == 1]))
        out.append(smax(x, y))
    return tuple(out), needs


def broadcast_all(shapes: Sequence[Shape]) -> tuple[Shape, list[SymBool]]:
    result: Shape = tuple(shapes[0])
    needs: list[SymBool] = []
    for s in shapes[1:]:
        result, more = broadcast(result, s)
        needs.extend(more)
    return result, needs
