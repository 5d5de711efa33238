"""Shape arithmetic must mean the same on ints and on z3 terms: rules are written once."""

from __future__ import annotations

import z3
from hypothesis import given
from hypothesis import strategies as st

from generators import symbolic as sym

small = st.integers(-20, 20)
positive = st.integers(1, 9)


def z3_value(expr: object) -> int | bool:
    value = z3.simplify(expr)  # type: ignore[arg-type]
    return bool(z3.is_true(value)) if z3.is_bool(value) else value.as_long()  # type: ignore[union-attr]


@given(small, positive)
def test_division_helpers_agree(a: int, b: int) -> None:
    x, y = z3.Int("x"), z3.Int("y")
    for fn in (sym.floordiv, sym.ceildiv, sym.mod):
        expr = z3.substitute(fn(x, y), (x, z3.IntVal(a)), (y, z3.IntVal(b)))
        assert z3_value(expr) == fn(a, b), fn.__name__


@given(small, small)
def test_min_max_ite_agree(a: int, b: int) -> None:
    x = z3.Int("x")
    for fn in (sym.smin, sym.smax):
        assert z3_value(z3.substitute(fn(x, b), (x, z3.IntVal(a)))) == fn(a, b)
    assert z3_value(z3.substitute(sym.ite(x > b, x, b), (x, z3.IntVal(a)))) == sym.ite(a > b, a, b)


@given(st.lists(positive, max_size=4), st.lists(positive, max_size=4))
def test_broadcast_agrees_with_numpy(a: list[int], b: list[int]) -> None:
    import numpy as np

    shape, needs = sym.broadcast(tuple(a), tuple(b))
    try:
        expected = np.broadcast_shapes(tuple(a), tuple(b))
    except ValueError:
        assert not sym.all_of(needs)
    else:
        assert sym.all_of(needs) and shape == expected
